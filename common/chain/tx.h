/* Ethereum transactions: EIP-1559 (type 2) and EIP-155 legacy, their
 * signing hashes, signing into the raw bytes eth_sendRawTransaction takes,
 * and a bounded decoder of signed raw transactions. */
#ifndef FM_CHAIN_TX_H
#define FM_CHAIN_TX_H

#include "chain/sig.h"
#include "chain/u256.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

enum chain_tx_type {
	CHAIN_TX_LEGACY = 0,  /* EIP-155 replay-protected */
	CHAIN_TX_EIP1559 = 2, /* dynamic fee, empty access list */
};

/* Largest calldata accepted when building or decoding. */
#define CHAIN_TX_DATA_MAX (1u << 20)

struct chain_tx {
	enum chain_tx_type type;
	uint64_t chain_id;
	uint64_t nonce;
	uint64_t gas_limit;
	struct chain_u256 max_priority_fee; /* EIP-1559 only */
	struct chain_u256 max_fee;          /* gas price for legacy */
	int has_to;                         /* 0: contract creation */
	uint8_t to[CHAIN_ADDR_LEN];
	struct chain_u256 value;
	uint8_t *data; /* owned: freed by chain_tx_cleanup */
	size_t data_len;
};

void chain_tx_init(struct chain_tx *tx);
void chain_tx_cleanup(struct chain_tx *tx);
/* Copies n bytes of calldata into tx (replacing what it had). */
int chain_tx_set_data(struct chain_tx *tx, const void *p, size_t n);

/* Raises the max fee and the priority fee by percent, rounded up: a
 * replacement of a pending transaction (same nonce) must outbid it, by
 * 10% on both for geth's pool. FM_EINVAL if a fee would overflow. */
int chain_tx_bump_fees(struct chain_tx *tx, unsigned percent);

/* The digest a signer signs. */
int chain_tx_signing_hash(uint8_t out[32], const struct chain_tx *tx);
/* Signs tx and appends the raw transaction to raw; hash_out (may be NULL)
 * gets the transaction hash, keccak256 of the raw bytes. */
int chain_tx_sign(struct buf *raw, uint8_t hash_out[32],
		  const struct chain_tx *tx, const uint8_t priv[32]);

/* Decodes a signed raw transaction into out (initialized here; its data
 * is a copy) and recovers its sender. Refuses non-canonical encodings,
 * unsupported types, non-empty access lists and high-s signatures. */
int chain_tx_decode(struct chain_tx *out, uint8_t from[CHAIN_ADDR_LEN],
		    const uint8_t *raw, size_t n);

#endif
