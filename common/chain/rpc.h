/* Ethereum JSON-RPC over HTTP (libcurl). A handle is one connection and
 * is not thread-safe: use one per thread. Transport failures (no
 * connection, timeouts, HTTP 429/502/503/504) are retried with backoff;
 * answers are never retried. Every answer is bounded and checked (JSON,
 * id, types); node errors become one-line messages with decoded revert
 * reasons.
 *
 * Error codes: FM_EUNAVAIL node down or answering garbage, FM_ETIMEOUT
 * timed out, FM_ETOOLARGE answer over the cap, FM_ECONFLICT refused by
 * state (a revert, "nonce too low", "replacement underpriced"),
 * FM_EUNPROCESSABLE other refusals (insufficient funds, wrong chain id),
 * FM_ENOTFOUND no such receipt yet. */
#ifndef FM_CHAIN_RPC_H
#define FM_CHAIN_RPC_H

#include "chain/sig.h"
#include "chain/tx.h"
#include "chain/u256.h"
#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct chain_rpc_opts {
	long timeout_ms;         /* one attempt, connect included */
	long connect_timeout_ms;
	int retries;             /* extra attempts after transport errors */
	long retry_delay_ms;     /* doubled after each attempt */
	size_t max_response;     /* bytes of one answer */
};

#define CHAIN_RPC_OPTS_INIT { 15000, 3000, 2, 100, 16u << 20 }

struct chain_rpc;

/* url is http:// or https://; opts may be NULL for the defaults. */
int chain_rpc_new(struct chain_rpc **out, const char *url,
		  const struct chain_rpc_opts *opts);
void chain_rpc_free(struct chain_rpc *r);

/* One call. params (a JSON array, may be NULL) is consumed. *result is a
 * new reference (json null is a valid result). */
int chain_rpc_call(struct chain_rpc *r, json_t **result, const char *method,
		   json_t *params);
/* Reason of the last revert seen on this handle ("" if none); borrowed,
 * valid until the next call. The payout worker matches "already paid". */
const char *chain_rpc_revert_reason(const struct chain_rpc *r);

int chain_rpc_chain_id(struct chain_rpc *r, uint64_t *out);
int chain_rpc_block_number(struct chain_rpc *r, uint64_t *out);
/* block is "latest" or "pending" (the next nonce to use). */
int chain_rpc_nonce(struct chain_rpc *r, uint64_t *out,
		    const uint8_t addr[CHAIN_ADDR_LEN], const char *block);
int chain_rpc_balance(struct chain_rpc *r, struct chain_u256 *out,
		      const uint8_t addr[CHAIN_ADDR_LEN]);
/* Deployed code at addr into out (empty for an account without code). */
int chain_rpc_code(struct chain_rpc *r, struct buf *out,
		   const uint8_t addr[CHAIN_ADDR_LEN]);
/* eth_call at "latest"; from may be NULL. Return data goes into out. A
 * revert is FM_ECONFLICT "execution reverted: <reason>". */
int chain_rpc_eth_call(struct chain_rpc *r, struct buf *out,
		       const uint8_t *from, const uint8_t to[CHAIN_ADDR_LEN],
		       const void *data, size_t n);
/* Gas the node estimates for tx sent by from. */
int chain_rpc_estimate_gas(struct chain_rpc *r, uint64_t *out,
			   const uint8_t from[CHAIN_ADDR_LEN],
			   const struct chain_tx *tx);

struct chain_fees {
	struct chain_u256 base_fee;     /* of the next block */
	struct chain_u256 priority_fee; /* suggested tip */
	struct chain_u256 max_fee;      /* 2 * base_fee + priority_fee */
};
/* From eth_feeHistory and eth_maxPriorityFeePerGas. */
int chain_rpc_fees(struct chain_rpc *r, struct chain_fees *out);

/* Broadcasts a signed transaction; hash_out gets its hash. Idempotent: a
 * transaction the node already holds or has mined counts as sent. */
int chain_rpc_send_raw(struct chain_rpc *r, uint8_t hash_out[32],
		       const uint8_t *raw, size_t n);

#define CHAIN_LOG_TOPICS_MAX 4

struct chain_log {
	uint8_t address[CHAIN_ADDR_LEN];
	uint8_t topics[CHAIN_LOG_TOPICS_MAX][32];
	size_t ntopics;
	uint8_t *data; /* owned */
	size_t data_len;
	uint64_t block_number;
	uint64_t log_index;
	uint8_t tx_hash[32];
	int removed; /* dropped by a reorg */
};

struct chain_receipt {
	uint8_t tx_hash[32];
	int status; /* 1 success, 0 reverted */
	uint64_t block_number;
	uint64_t gas_used;
	struct chain_u256 effective_gas_price;
	int has_contract;
	uint8_t contract_address[CHAIN_ADDR_LEN];
	struct chain_log *logs; /* owned */
	size_t nlogs;
};

void chain_receipt_cleanup(struct chain_receipt *rc);
/* FM_ENOTFOUND while the transaction is pending or unknown. */
int chain_rpc_receipt(struct chain_rpc *r, struct chain_receipt *out,
		      const uint8_t hash[32]);
/* Polls every poll_ms until the receipt exists; FM_ETIMEOUT after
 * timeout_ms. */
int chain_rpc_wait_receipt(struct chain_rpc *r, struct chain_receipt *out,
			   const uint8_t hash[32], long timeout_ms,
			   long poll_ms);

struct chain_log_filter {
	const uint8_t *address;  /* NULL: any contract */
	uint64_t from_block;
	uint64_t to_block;       /* UINT64_MAX: "latest" */
	/* NULL entries match anything; ntopics leading entries are used */
	const uint8_t *topics[CHAIN_LOG_TOPICS_MAX];
	size_t ntopics;
	size_t max_logs;         /* more is FM_ETOOLARGE; 0 = 10000 */
};

/* Logs matching f: *out is an array of *n logs, freed with
 * chain_logs_free. */
int chain_rpc_get_logs(struct chain_rpc *r, struct chain_log **out,
		       size_t *n, const struct chain_log_filter *f);
void chain_logs_free(struct chain_log *logs, size_t n);

/* Fills what a transaction from `from` needs to be sent now: chain id,
 * the pending nonce, fees, and gas_limit when it is 0 (the estimate plus
 * 25%). */
int chain_rpc_prepare_tx(struct chain_rpc *r, struct chain_tx *tx,
			 const uint8_t from[CHAIN_ADDR_LEN]);
/* prepare + sign + broadcast + wait for the receipt (timeout_ms). A
 * mined but reverted transaction is FM_ECONFLICT naming its hash; *out is
 * filled either way once mined. */
int chain_rpc_send_tx(struct chain_rpc *r, struct chain_receipt *out,
		      struct chain_tx *tx, const struct chain_key *key,
		      long timeout_ms);

#endif
