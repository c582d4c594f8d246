/* secp256k1 identities: private keys, Ethereum addresses (EIP-55),
 * recoverable signatures (low-s, RFC 6979 nonces) and EIP-191
 * personal_sign. Signatures are 65 bytes r || s || v. */
#ifndef FM_CHAIN_SIG_H
#define FM_CHAIN_SIG_H

#include <stddef.h>
#include <stdint.h>

#define CHAIN_ADDR_LEN 20
/* "0x" + 40 hex digits + NUL */
#define CHAIN_ADDR_HEX 43
#define CHAIN_SIG_LEN 65

struct chain_key {
	uint8_t priv[32];
	uint8_t addr[CHAIN_ADDR_LEN];
};

/* Checks priv is a valid secp256k1 scalar and derives its address. */
int chain_key_from_priv(struct chain_key *out, const uint8_t priv[32]);
/* Same from hex text (64 digits, optional 0x, surrounding white space
 * ignored, as key files are written). */
int chain_key_from_hex(struct chain_key *out, const char *hex);
/* A new key from the system's random source. */
int chain_key_generate(struct chain_key *out);
/* Zeroes the private key (not optimized away). */
void chain_key_wipe(struct chain_key *k);

/* Address of a 65-byte uncompressed public key (0x04 || X || Y). */
void chain_address_from_pubkey(uint8_t out[CHAIN_ADDR_LEN],
			       const uint8_t pub[65]);
/* EIP-55 mixed-case checksummed "0x..." text. */
void chain_address_to_hex(char out[CHAIN_ADDR_HEX],
			  const uint8_t addr[CHAIN_ADDR_LEN]);
/* Parses "0x" + 40 hex digits (the 0x is optional). All-lower or
 * all-upper digits are accepted as is; mixed case must be a valid EIP-55
 * checksum. what names the input in errors. */
int chain_address_parse(uint8_t out[CHAIN_ADDR_LEN], const char *text,
			const char *what);
int chain_address_is_zero(const uint8_t addr[CHAIN_ADDR_LEN]);

/* Signs a 32-byte digest: out = r || s || recid (0 or 1), s in the lower
 * half of the curve order. */
int chain_sign_hash(uint8_t out[CHAIN_SIG_LEN], const uint8_t priv[32],
		    const uint8_t hash[32]);
/* Address that signed hash. v may be 0/1 or 27/28; high-s signatures are
 * refused (EIP-2), so each message has one valid signature per key.
 * FM_EAUTH when the signature is malformed or recovers no key. */
int chain_recover(uint8_t out[CHAIN_ADDR_LEN], const uint8_t hash[32],
		  const uint8_t sig[CHAIN_SIG_LEN]);

/* keccak256("\x19Ethereum Signed Message:\n" || len || msg). */
void chain_eip191_hash(uint8_t out[32], const void *msg, size_t n);
/* personal_sign as wallets do it: v is 27 or 28. */
int chain_personal_sign(uint8_t out[CHAIN_SIG_LEN], const uint8_t priv[32],
			const void *msg, size_t n);
int chain_personal_recover(uint8_t out[CHAIN_ADDR_LEN], const void *msg,
			   size_t n, const uint8_t sig[CHAIN_SIG_LEN]);

#endif
