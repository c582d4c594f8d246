/* Solidity ABI: what the escrow needs. Calls are encoded with a builder
 * (head slots first, dynamic tails after); results, event data and revert
 * data are read word by word with bounds and range checks. */
#ifndef FM_CHAIN_ABI_H
#define FM_CHAIN_ABI_H

#include "chain/u256.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* First 4 bytes of keccak256 of a canonical signature "f(uint256,...)". */
void abi_selector(uint8_t out[4], const char *signature);
/* Full keccak256 of an event signature: topic 0 of its logs. */
void abi_event_topic(uint8_t out[32], const char *signature);

struct abi_enc {
	struct buf head; /* selector + one 32-byte slot per argument */
	struct buf tail; /* dynamic data */
	size_t nargs, next;
	int err; /* first failure; later puts are no-ops */
};

/* Starts a call with nargs arguments (selector may be NULL for plain
 * argument encoding, as constructors take). max bounds the result. */
void abi_enc_init(struct abi_enc *e, const uint8_t selector[4],
		  size_t nargs, size_t max);
void abi_enc_cleanup(struct abi_enc *e);
void abi_put_uint(struct abi_enc *e, const struct chain_u256 *v);
void abi_put_u64(struct abi_enc *e, uint64_t v);
void abi_put_address(struct abi_enc *e, const uint8_t addr[20]);
void abi_put_bytes32(struct abi_enc *e, const uint8_t b[32]);
void abi_put_bool(struct abi_enc *e, int v);
/* bytes32[], address[] and uint256[] */
void abi_put_bytes32_array(struct abi_enc *e, const uint8_t (*items)[32],
			   size_t n);
void abi_put_address_array(struct abi_enc *e, const uint8_t (*items)[20],
			   size_t n);
void abi_put_uint_array(struct abi_enc *e, const struct chain_u256 *items,
			size_t n);
/* bytes and string */
void abi_put_bytes(struct abi_enc *e, const void *p, size_t n);
/* Checks every argument was put and appends the encoding to out. */
int abi_enc_finish(struct abi_enc *e, struct buf *out);

/* Readers of the i-th 32-byte word of data (a return value, event data;
 * without any selector). what names the value in errors. */
int abi_get_word(uint8_t out[32], const uint8_t *data, size_t len,
		 size_t i, const char *what);
int abi_get_uint(struct chain_u256 *out, const uint8_t *data, size_t len,
		 size_t i, const char *what);
/* uintN for N <= 64: refuses values that do not fit in bits bits. */
int abi_get_uint_bits(uint64_t *out, const uint8_t *data, size_t len,
		      size_t i, unsigned bits, const char *what);
int abi_get_address(uint8_t out[20], const uint8_t *data, size_t len,
		    size_t i, const char *what);
int abi_get_bool(int *out, const uint8_t *data, size_t len, size_t i,
		 const char *what);
/* A dynamic bytes/string whose offset is in word i: borrowed pointer and
 * length inside data. */
int abi_get_bytes(const uint8_t **out, size_t *out_len, const uint8_t *data,
		  size_t len, size_t i, const char *what);

/* Human-readable revert reason of revert data: Error(string) gives the
 * string (control characters replaced), Panic(uint256) gives "panic 0x11
 * (arithmetic overflow)" and so on, anything else "custom error 0x...".
 * Empty data gives "no reason given". */
void abi_revert_reason(char *out, size_t n, const uint8_t *data,
		       size_t len);

#endif
