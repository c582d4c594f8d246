/* Keccak-256 as Ethereum uses it (the original Keccak padding 0x01, not
 * the FIPS-202 SHA3 padding 0x06, so OpenSSL's SHA3-256 will not do). */
#ifndef FM_CHAIN_KECCAK_H
#define FM_CHAIN_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define CHAIN_KECCAK_RATE 136 /* bytes absorbed per permutation */

struct chain_keccak {
	uint64_t st[25];
	size_t pos; /* bytes absorbed into the current block */
};

void chain_keccak_init(struct chain_keccak *k);
void chain_keccak_update(struct chain_keccak *k, const void *p, size_t n);
/* Writes the digest; k must be re-initialized before reuse. */
void chain_keccak_final(struct chain_keccak *k, uint8_t out[32]);

/* One-shot digest of n bytes. */
void chain_keccak256(uint8_t out[32], const void *p, size_t n);

#endif
