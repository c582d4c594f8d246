#include "chain/escrow.h"

#include "chain/abi.h"
#include "core/err.h"

#include <string.h>

/* Calldata is at most a batch: 4 + 32 * (9 + 3 * ESCROW_BATCH_MAX). */
#define CALL_MAX (64u * 1024)

static const struct {
	enum escrow_event_kind kind;
	const char *signature;
} events[] = {
	{ ESCROW_EV_FUNDED,
	  "Funded(bytes32,address,address,uint256,uint32,uint64)" },
	{ ESCROW_EV_RELEASED, "Released(bytes32,bytes32,address,uint256)" },
	{ ESCROW_EV_ALREADY_PAID, "AlreadyPaid(bytes32,bytes32)" },
	{ ESCROW_EV_REFUNDED, "Refunded(bytes32,address,uint256,bool)" },
	{ ESCROW_EV_CREDITED, "Credited(address,uint256)" },
	{ ESCROW_EV_WITHDRAWN, "Withdrawn(address,uint256)" },
	{ ESCROW_EV_SCORED, "Scored(bytes32,uint32,bytes32)" },
};

#define NEVENTS (sizeof(events) / sizeof(events[0]))

static int append_hex(struct buf *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	int err = buf_reserve(out, n);

	if (err)
		return err;
	if (hex_decode((uint8_t *)out->data + out->len, n, hex))
		return fm_error_set(FM_EINTERNAL, "escrow bytecode: not hex "
				    "(regenerate with contracts/compile)");
	out->len += n;
	out->data[out->len] = '\0';
	return FM_OK;
}

int escrow_creation_code(struct buf *out)
{
	return append_hex(out, escrow_creation_hex);
}

int escrow_runtime_code(struct buf *out)
{
	return append_hex(out, escrow_runtime_hex);
}

int escrow_deploy_tx(struct chain_tx *tx)
{
	struct buf code = BUF_INIT(CHAIN_TX_DATA_MAX);
	int err = escrow_creation_code(&code);

	if (err)
		goto done;
	err = chain_tx_set_data(tx, code.data, code.len);
	if (err)
		goto done;
	tx->has_to = 0;
	tx->value = chain_u256_from_u64(0);
done:
	buf_cleanup(&code);
	return err;
}

/* Sets tx's destination, value and the encoded call. */
static int finish_call(struct chain_tx *tx, const uint8_t escrow[20],
		       struct abi_enc *e, const struct chain_u256 *value)
{
	struct buf data = BUF_INIT(CALL_MAX);
	int err = abi_enc_finish(e, &data);

	if (err)
		goto done;
	err = chain_tx_set_data(tx, data.data, data.len);
	if (err)
		goto done;
	tx->has_to = 1;
	memcpy(tx->to, escrow, CHAIN_ADDR_LEN);
	tx->value = value ? *value : chain_u256_from_u64(0);
done:
	buf_cleanup(&data);
	abi_enc_cleanup(e);
	return err;
}

static void start_call(struct abi_enc *e, const char *signature,
		       size_t nargs)
{
	uint8_t sel[4];

	abi_selector(sel, signature);
	abi_enc_init(e, sel, nargs, CALL_MAX);
}

int escrow_fund_tx(struct chain_tx *tx, const uint8_t escrow[CHAIN_ADDR_LEN],
		   const uint8_t task_id[32],
		   const uint8_t operator[CHAIN_ADDR_LEN], uint64_t deadline,
		   const struct chain_u256 *reward, uint32_t max_payouts)
{
	struct chain_u256 total;
	struct abi_enc e;

	if (chain_address_is_zero(operator))
		return fm_error_set(FM_EINVAL, "fund: the operator is the "
				    "zero address");
	if (chain_u256_is_zero(reward) || max_payouts == 0)
		return fm_error_set(FM_EINVAL, "fund: reward and max payouts "
				    "must be above zero");
	if (chain_u256_mul_u64(&total, reward, max_payouts))
		return fm_error_set(FM_EINVAL, "fund: reward x max payouts "
				    "overflows 256 bits");
	start_call(&e, "fund(bytes32,address,uint64,uint256,uint32)", 5);
	abi_put_bytes32(&e, task_id);
	abi_put_address(&e, operator);
	abi_put_u64(&e, deadline);
	abi_put_uint(&e, reward);
	abi_put_u64(&e, max_payouts);
	return finish_call(tx, escrow, &e, &total);
}

int escrow_fund_scored_tx(struct chain_tx *tx,
			  const uint8_t escrow[CHAIN_ADDR_LEN],
			  const uint8_t task_id[32],
			  const uint8_t operator[CHAIN_ADDR_LEN],
			  uint64_t deadline, const struct chain_u256 *reward,
			  uint32_t max_payouts,
			  const struct chain_u256 *max_per_result)
{
	struct chain_u256 total;
	struct abi_enc e;

	if (chain_address_is_zero(operator))
		return fm_error_set(FM_EINVAL, "fund: the operator is the "
				    "zero address");
	if (chain_u256_is_zero(reward) || max_payouts == 0)
		return fm_error_set(FM_EINVAL, "fund: reward and max payouts "
				    "must be above zero");
	if (chain_u256_mul_u64(&total, reward, max_payouts))
		return fm_error_set(FM_EINVAL, "fund: reward x max payouts "
				    "overflows 256 bits");
	if (chain_u256_cmp(max_per_result, reward) < 0 ||
	    chain_u256_cmp(max_per_result, &total) > 0)
		return fm_error_set(FM_EINVAL, "fund: the per-result cap must "
				    "lie between the reward and the deposit");
	start_call(&e, "fundScored(bytes32,address,uint64,uint256,uint32,"
		       "uint256)", 6);
	abi_put_bytes32(&e, task_id);
	abi_put_address(&e, operator);
	abi_put_u64(&e, deadline);
	abi_put_uint(&e, reward);
	abi_put_u64(&e, max_payouts);
	abi_put_uint(&e, max_per_result);
	return finish_call(tx, escrow, &e, &total);
}

int escrow_release_tx(struct chain_tx *tx,
		      const uint8_t escrow[CHAIN_ADDR_LEN],
		      const uint8_t task_id[32], const uint8_t result_id[32],
		      const uint8_t to[CHAIN_ADDR_LEN])
{
	struct abi_enc e;

	if (chain_address_is_zero(to))
		return fm_error_set(FM_EINVAL, "release: the recipient is the "
				    "zero address");
	start_call(&e, "release(bytes32,bytes32,address)", 3);
	abi_put_bytes32(&e, task_id);
	abi_put_bytes32(&e, result_id);
	abi_put_address(&e, to);
	return finish_call(tx, escrow, &e, NULL);
}

int escrow_release_batch_tx(struct chain_tx *tx,
			    const uint8_t escrow[CHAIN_ADDR_LEN],
			    const uint8_t task_id[32],
			    const uint8_t (*result_ids)[32],
			    const uint8_t (*to)[CHAIN_ADDR_LEN], size_t n)
{
	struct abi_enc e;

	if (n == 0 || n > ESCROW_BATCH_MAX)
		return fm_error_set(FM_EINVAL, "release batch: %zu results, "
				    "expected 1 to %d", n, ESCROW_BATCH_MAX);
	for (size_t i = 0; i < n; i++)
		if (chain_address_is_zero(to[i]))
			return fm_error_set(FM_EINVAL, "release batch: "
					    "recipient %zu is the zero "
					    "address", i);
	start_call(&e, "releaseBatch(bytes32,bytes32[],address[])", 3);
	abi_put_bytes32(&e, task_id);
	abi_put_bytes32_array(&e, result_ids, n);
	abi_put_address_array(&e, to, n);
	return finish_call(tx, escrow, &e, NULL);
}

int escrow_release_scored_tx(struct chain_tx *tx,
			     const uint8_t escrow[CHAIN_ADDR_LEN],
			     const uint8_t task_id[32], uint32_t round,
			     const uint8_t report_hash[32],
			     const uint8_t (*result_ids)[32],
			     const uint8_t (*to)[CHAIN_ADDR_LEN],
			     const struct chain_u256 *amounts, size_t n)
{
	struct abi_enc e;

	if (n == 0 || n > ESCROW_BATCH_MAX)
		return fm_error_set(FM_EINVAL, "scored release: %zu results, "
				    "expected 1 to %d", n, ESCROW_BATCH_MAX);
	for (size_t i = 0; i < n; i++) {
		if (chain_address_is_zero(to[i]))
			return fm_error_set(FM_EINVAL, "scored release: "
					    "recipient %zu is the zero "
					    "address", i);
		if (chain_u256_is_zero(&amounts[i]))
			return fm_error_set(FM_EINVAL, "scored release: "
					    "amount %zu is zero", i);
	}
	start_call(&e, "releaseScored(bytes32,uint32,bytes32,bytes32[],"
		       "address[],uint256[])", 6);
	abi_put_bytes32(&e, task_id);
	abi_put_u64(&e, round);
	abi_put_bytes32(&e, report_hash);
	abi_put_bytes32_array(&e, result_ids, n);
	abi_put_address_array(&e, to, n);
	abi_put_uint_array(&e, amounts, n);
	return finish_call(tx, escrow, &e, NULL);
}

/* A transaction calling a function whose only argument is a task id. */
static int task_tx(struct chain_tx *tx, const uint8_t escrow[CHAIN_ADDR_LEN],
		   const char *signature, const uint8_t task_id[32])
{
	struct abi_enc e;

	start_call(&e, signature, 1);
	abi_put_bytes32(&e, task_id);
	return finish_call(tx, escrow, &e, NULL);
}

int escrow_refund_tx(struct chain_tx *tx,
		     const uint8_t escrow[CHAIN_ADDR_LEN],
		     const uint8_t task_id[32])
{
	return task_tx(tx, escrow, "refund(bytes32)", task_id);
}

int escrow_cancel_tx(struct chain_tx *tx,
		     const uint8_t escrow[CHAIN_ADDR_LEN],
		     const uint8_t task_id[32])
{
	return task_tx(tx, escrow, "cancel(bytes32)", task_id);
}

int escrow_withdraw_tx(struct chain_tx *tx,
		       const uint8_t escrow[CHAIN_ADDR_LEN])
{
	struct abi_enc e;

	start_call(&e, "withdraw()", 0);
	return finish_call(tx, escrow, &e, NULL);
}

const char *escrow_state_name(enum escrow_state s)
{
	switch (s) {
	case ESCROW_NONE: return "none";
	case ESCROW_OPEN: return "open";
	case ESCROW_REFUNDED: return "refunded";
	case ESCROW_CANCELLED: return "cancelled";
	}
	return "unknown";
}

/* Calldata of a function taking one 32-byte word. */
static int word_call(struct buf *out, const char *signature,
		     const uint8_t arg[32])
{
	struct abi_enc e;
	int err;

	start_call(&e, signature, 1);
	abi_put_bytes32(&e, arg);
	err = abi_enc_finish(&e, out);
	abi_enc_cleanup(&e);
	return err;
}

int escrow_tasks_calldata(struct buf *out, const uint8_t task_id[32])
{
	return word_call(out, "tasks(bytes32)", task_id);
}

int escrow_decode_task(struct escrow_task *out, const uint8_t *data,
		       size_t len)
{
	struct escrow_task t;
	uint64_t v = 0;
	int err;

	/* (creator, deadline, maxPayouts, operator, paidCount, state,
	 *  reward, balance), the order of the Task struct */
	memset(&t, 0, sizeof(t));
	err = abi_get_address(t.creator, data, len, 0, "tasks.creator");
	if (err)
		return err;
	err = abi_get_uint_bits(&t.deadline, data, len, 1, 64,
				"tasks.deadline");
	if (err)
		return err;
	err = abi_get_uint_bits(&v, data, len, 2, 32, "tasks.maxPayouts");
	if (err)
		return err;
	t.max_payouts = (uint32_t)v;
	err = abi_get_address(t.operator, data, len, 3, "tasks.operator");
	if (err)
		return err;
	err = abi_get_uint_bits(&v, data, len, 4, 32, "tasks.paidCount");
	if (err)
		return err;
	t.paid_count = (uint32_t)v;
	err = abi_get_uint_bits(&v, data, len, 5, 8, "tasks.state");
	if (err)
		return err;
	if (v > ESCROW_CANCELLED)
		return fm_error_set(FM_EINVAL, "tasks.state: unknown state "
				    "%llu", (unsigned long long)v);
	t.state = (enum escrow_state)v;
	err = abi_get_uint(&t.reward, data, len, 6, "tasks.reward");
	if (err)
		return err;
	err = abi_get_uint(&t.balance, data, len, 7, "tasks.balance");
	if (err)
		return err;
	err = abi_get_uint(&t.max_per_result, data, len, 8,
			   "tasks.maxPerResult");
	if (err)
		return err;
	if (chain_u256_is_zero(&t.max_per_result))
		t.max_per_result = t.reward;
	*out = t;
	return FM_OK;
}

/* eth_call of a view; empty return data means no contract is there. */
static int view_call(struct chain_rpc *r, struct buf *ret,
		     const uint8_t escrow[CHAIN_ADDR_LEN],
		     const struct buf *call)
{
	int err = chain_rpc_eth_call(r, ret, NULL, escrow, call->data,
				     call->len);

	if (err)
		return err;
	if (ret->len == 0)
		return fm_error_set(FM_EUNPROCESSABLE, "escrow: no contract "
				    "answers at that address");
	return FM_OK;
}

int escrow_get_task(struct chain_rpc *r, struct escrow_task *out,
		    const uint8_t escrow[CHAIN_ADDR_LEN],
		    const uint8_t task_id[32])
{
	struct buf call = BUF_INIT(256), ret = BUF_INIT(4096);
	struct escrow_task t;
	char hex[65];
	int err;

	err = escrow_tasks_calldata(&call, task_id);
	if (err)
		goto done;
	err = view_call(r, &ret, escrow, &call);
	if (err)
		goto done;
	err = escrow_decode_task(&t, (uint8_t *)ret.data, ret.len);
	if (err)
		goto done;
	if (t.state == ESCROW_NONE) {
		hex_encode(hex, task_id, 32);
		err = fm_error_set(FM_ENOTFOUND, "escrow: task 0x%s is not "
				   "funded", hex);
		goto done;
	}
	*out = t;
done:
	buf_cleanup(&call);
	buf_cleanup(&ret);
	return err;
}

/* eth_call of a one-argument view returning one word. */
static int view_word(struct chain_rpc *r, uint8_t word[32],
		     const uint8_t escrow[CHAIN_ADDR_LEN],
		     const char *signature, const uint8_t arg[32])
{
	struct buf call = BUF_INIT(256), ret = BUF_INIT(4096);
	int err = word_call(&call, signature, arg);

	if (err)
		goto done;
	err = view_call(r, &ret, escrow, &call);
	if (err)
		goto done;
	err = abi_get_word(word, (uint8_t *)ret.data, ret.len, 0, signature);
done:
	buf_cleanup(&call);
	buf_cleanup(&ret);
	return err;
}

int escrow_is_paid(struct chain_rpc *r, int *out,
		   const uint8_t escrow[CHAIN_ADDR_LEN],
		   const uint8_t result_id[32])
{
	uint8_t w[32];
	int err = view_word(r, w, escrow, "paid(bytes32)", result_id);

	if (err)
		return err;
	return abi_get_bool(out, w, 32, 0, "paid");
}

int escrow_owed(struct chain_rpc *r, struct chain_u256 *out,
		const uint8_t escrow[CHAIN_ADDR_LEN],
		const uint8_t addr[CHAIN_ADDR_LEN])
{
	uint8_t arg[32] = { 0 }, w[32];
	int err;

	memcpy(arg + 12, addr, CHAIN_ADDR_LEN);
	err = view_word(r, w, escrow, "owed(address)", arg);
	if (err)
		return err;
	chain_u256_from_be(out, w);
	return FM_OK;
}

void escrow_event_topic(uint8_t out[32], enum escrow_event_kind kind)
{
	for (size_t i = 0; i < NEVENTS; i++)
		if (events[i].kind == kind) {
			abi_event_topic(out, events[i].signature);
			return;
		}
	FM_ASSERT(!"unknown escrow event kind");
}

/* An indexed address topic: 12 zero bytes, then the address. */
static int topic_address(uint8_t out[20], const uint8_t topic[32],
			 const char *what)
{
	return abi_get_address(out, topic, 32, 0, what);
}

/* The account of an indexed address topic and the amount in word 0 of
 * the data. */
static int decode_payment(struct escrow_event *ev, const uint8_t topic[32],
			  const char *what, const uint8_t *d, size_t n)
{
	int err = topic_address(ev->account, topic, what);

	if (err)
		return err;
	return abi_get_uint(&ev->amount, d, n, 0, "amount");
}

static int decode_funded(struct escrow_event *ev, const struct chain_log *log)
{
	const uint8_t *d = log->data;
	size_t n = log->data_len;
	uint64_t v = 0;
	int err;

	memcpy(ev->task_id, log->topics[1], 32);
	err = topic_address(ev->account, log->topics[2], "creator");
	if (err)
		return err;
	err = topic_address(ev->operator, log->topics[3], "operator");
	if (err)
		return err;
	err = abi_get_uint(&ev->amount, d, n, 0, "reward");
	if (err)
		return err;
	err = abi_get_uint_bits(&v, d, n, 1, 32, "maxPayouts");
	if (err)
		return err;
	ev->max_payouts = (uint32_t)v;
	return abi_get_uint_bits(&ev->deadline, d, n, 2, 64, "deadline");
}

int escrow_decode_log(struct escrow_event *out, const struct chain_log *log)
{
	/* by kind: indexed arguments + 1 */
	static const size_t want_topics[] = { 0, 4, 4, 3, 3, 2, 2, 3 };
	struct escrow_event ev;
	const uint8_t *d = log->data;
	size_t n = log->data_len, idx = 0;
	uint64_t v = 0;
	uint8_t topic[32];
	int err = FM_OK;

	memset(&ev, 0, sizeof(ev));
	if (log->ntopics == 0)
		return fm_error_set(FM_ENOTFOUND, "log: no topics");
	for (size_t i = 0; i < NEVENTS && !ev.kind; i++) {
		abi_event_topic(topic, events[i].signature);
		if (!memcmp(topic, log->topics[0], 32)) {
			ev.kind = events[i].kind;
			idx = i;
		}
	}
	if (!ev.kind)
		return fm_error_set(FM_ENOTFOUND, "log: not an escrow event");
	if (log->ntopics != want_topics[ev.kind])
		return fm_error_set(FM_EINVAL, "log: %s with %zu topics",
				    events[idx].signature,
				    log->ntopics);
	switch (ev.kind) {
	case ESCROW_EV_FUNDED:
		err = decode_funded(&ev, log);
		break;
	case ESCROW_EV_RELEASED:
		memcpy(ev.task_id, log->topics[1], 32);
		memcpy(ev.result_id, log->topics[2], 32);
		err = decode_payment(&ev, log->topics[3], "to", d, n);
		break;
	case ESCROW_EV_ALREADY_PAID:
		memcpy(ev.task_id, log->topics[1], 32);
		memcpy(ev.result_id, log->topics[2], 32);
		break;
	case ESCROW_EV_REFUNDED:
		memcpy(ev.task_id, log->topics[1], 32);
		err = decode_payment(&ev, log->topics[2], "creator", d, n);
		if (err)
			break;
		err = abi_get_bool(&ev.cancelled, d, n, 1, "cancelled");
		break;
	case ESCROW_EV_CREDITED:
	case ESCROW_EV_WITHDRAWN:
		err = decode_payment(&ev, log->topics[1], "to", d, n);
		break;
	case ESCROW_EV_SCORED:
		memcpy(ev.task_id, log->topics[1], 32);
		err = abi_get_uint_bits(&v, log->topics[2], 32, 0, 32,
					"round");
		if (err)
			break;
		ev.round = (uint32_t)v;
		err = abi_get_word(ev.report_hash, d, n, 0, "reportHash");
		break;
	}
	if (err) {
		fm_error_prefix("log");
		return err;
	}
	*out = ev;
	return FM_OK;
}

int escrow_find_event(struct chain_rpc *r, uint8_t tx_out[32],
		      uint64_t *block_out,
		      const uint8_t escrow[CHAIN_ADDR_LEN],
		      enum escrow_event_kind kind, const uint8_t *t1,
		      const uint8_t *t2)
{
	struct chain_log_filter f = { 0 };
	struct chain_log *logs = NULL;
	uint8_t topic[32];
	size_t n = 0;
	int err;

	escrow_event_topic(topic, kind);
	f.address = escrow;
	f.to_block = UINT64_MAX;
	f.topics[0] = topic;
	f.topics[1] = t1;
	f.topics[2] = t2;
	f.ntopics = t2 ? 3 : 2;
	f.max_logs = 64;
	err = chain_rpc_get_logs(r, &logs, &n, &f);
	if (err)
		return err;
	err = fm_error_set(FM_ENOTFOUND, "no %s event found",
			   kind == ESCROW_EV_FUNDED ? "Funded" : "escrow");
	for (size_t i = n; i-- > 0;) {
		if (logs[i].removed)
			continue;
		memcpy(tx_out, logs[i].tx_hash, 32);
		if (block_out)
			*block_out = logs[i].block_number;
		fm_error_clear();
		err = FM_OK;
		break;
	}
	chain_logs_free(logs, n);
	return err;
}
