/* The escrow contract on the stack's anvil, driven by the C library:
 * every rule, passing and refused. Balances are checked with cast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/escrow.h"
#include "chain_testutil.h"

#include <time.h>

#define TIMEOUT_MS 20000

static struct chain_rpc *rpc;
static uint8_t escrow[20];
static struct chain_key deployer, creator, operator, stranger;
static struct chain_u256 reward;

static void random_id(uint8_t out[32])
{
	struct chain_key k;

	assert_int_equal(chain_key_generate(&k), FM_OK);
	memcpy(out, k.priv, 32);
	chain_key_wipe(&k);
}

static void random_address(uint8_t out[20])
{
	struct chain_key k;

	assert_int_equal(chain_key_generate(&k), FM_OK);
	memcpy(out, k.addr, 20);
	chain_key_wipe(&k);
}

/* Sends tx from key and frees it; returns the library's code. */
static int send_tx(struct chain_receipt *rc, struct chain_tx *tx,
		   const struct chain_key *key)
{
	struct chain_receipt local;
	int err;

	memset(&local, 0, sizeof(local));
	err = chain_rpc_send_tx(rpc, rc ? rc : &local, tx, key, TIMEOUT_MS);
	chain_tx_cleanup(tx);
	chain_receipt_cleanup(&local);
	return err;
}

static void expect_ok(struct chain_receipt *rc, struct chain_tx *tx,
		      const struct chain_key *key)
{
	if (send_tx(rc, tx, key))
		fail_msg("transaction refused: %s", fm_error_msg());
}

/* A refused call: estimateGas reverts with reason before anything is
 * sent. */
static void expect_revert(struct chain_tx *tx, const struct chain_key *key,
			  const char *reason)
{
	assert_int_equal(send_tx(NULL, tx, key), FM_ECONFLICT);
	assert_msg_contains(reason);
	assert_string_equal(chain_rpc_revert_reason(rpc), reason);
}

static uint64_t chain_now(void)
{
	json_t *res = NULL;
	uint64_t t = 0;
	const char *hex;

	assert_int_equal(chain_rpc_call(rpc, &res, "eth_getBlockByNumber",
					json_pack("[s, b]", "latest", 0)),
			 FM_OK);
	hex = json_string_value(json_object_get(res, "timestamp"));
	assert_non_null(hex);
	t = strtoull(hex + 2, NULL, 16);
	json_decref(res);
	return t;
}

static void fund(uint8_t task[32], uint32_t max, uint64_t deadline)
{
	struct chain_tx tx;
	struct chain_receipt rc;
	struct escrow_event ev;
	int funded = 0;

	random_id(task);
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_tx(&tx, escrow, task, operator.addr,
					deadline, &reward, max), FM_OK);
	expect_ok(&rc, &tx, &creator);
	for (size_t i = 0; i < rc.nlogs; i++)
		if (!escrow_decode_log(&ev, &rc.logs[i]) &&
		    ev.kind == ESCROW_EV_FUNDED) {
			assert_memory_equal(ev.task_id, task, 32);
			assert_memory_equal(ev.account, creator.addr, 20);
			assert_memory_equal(ev.operator, operator.addr, 20);
			assert_int_equal(ev.max_payouts, max);
			assert_int_equal(ev.deadline, deadline);
			assert_int_equal(chain_u256_cmp(&ev.amount, &reward), 0);
			funded = 1;
		}
	assert_true(funded);
	chain_receipt_cleanup(&rc);
}

static void release(struct chain_receipt *rc, const uint8_t task[32],
		    const uint8_t result[32], const uint8_t to[20])
{
	struct chain_tx tx;

	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_ok(rc, &tx, &operator);
}

static void assert_balance(const uint8_t who[20], const char *wei)
{
	char out[128];

	cast_balance(out, sizeof(out), who);
	assert_string_equal(out, wei);
}

static void assert_task(const uint8_t task[32], enum escrow_state state,
			uint32_t paid, const char *balance_wei)
{
	struct escrow_task t;
	char dec[CHAIN_U256_DEC_MAX];

	assert_int_equal(escrow_get_task(rpc, &t, escrow, task), FM_OK);
	assert_int_equal(t.state, state);
	assert_int_equal(t.paid_count, paid);
	chain_u256_to_dec(dec, sizeof(dec), &t.balance);
	assert_string_equal(dec, balance_wei);
}

static int group_setup(void **state)
{
	struct chain_tx tx;
	struct chain_receipt rc;
	struct buf code = BUF_INIT(1 << 20), want = BUF_INIT(1 << 20);

	(void)state;
	rpc = test_rpc();
	anvil_key(&deployer, 0);
	anvil_key(&creator, 1);
	anvil_key(&operator, 2);
	anvil_key(&stranger, 3);
	assert_int_equal(chain_u256_parse(&reward, "0.01 ether", NULL), FM_OK);
	chain_tx_init(&tx);
	assert_int_equal(escrow_deploy_tx(&tx), FM_OK);
	expect_ok(&rc, &tx, &deployer);
	assert_true(rc.has_contract);
	memcpy(escrow, rc.contract_address, 20);
	chain_receipt_cleanup(&rc);
	/* what runs there is the committed runtime code */
	assert_int_equal(chain_rpc_code(rpc, &code, escrow), FM_OK);
	assert_int_equal(escrow_runtime_code(&want), FM_OK);
	assert_int_equal(code.len, want.len);
	assert_memory_equal(code.data, want.data, want.len);
	buf_cleanup(&code);
	buf_cleanup(&want);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	chain_rpc_free(rpc);
	return 0;
}

static void test_escrow__fund_holds_exact_deposit(void **state)
{
	uint8_t task[32];
	char task_hex[67], esc_hex[CHAIN_ADDR_HEX], out[512], before[128];
	char creator_hex[CHAIN_ADDR_HEX], op_hex[CHAIN_ADDR_HEX];
	struct chain_u256 total, b;
	uint64_t deadline = chain_now() + 3600;

	(void)state;
	addr_hex(esc_hex, escrow);
	cast_run(before, sizeof(before), 1, "balance %s", esc_hex);
	fund(task, 3, deadline);
	assert_task(task, ESCROW_OPEN, 0, "30000000000000000");
	/* the contract holds what was deposited, seen by cast */
	assert_int_equal(chain_u256_parse(&b, before, NULL), FM_OK);
	assert_int_equal(chain_u256_mul_u64(&total, &reward, 3), FM_OK);
	assert_int_equal(chain_u256_add(&total, &total, &b), FM_OK);
	chain_u256_to_dec(before, sizeof(before), &total);
	assert_balance(escrow, before);
	/* and cast decodes tasks() as we do */
	bytes32_hex(task_hex, task);
	cast_run(out, sizeof(out), 1,
		 "call %s 'tasks(bytes32)(address,uint64,uint32,address,"
		 "uint32,uint8,uint256,uint256)' %s", esc_hex, task_hex);
	addr_hex(creator_hex, creator.addr);
	addr_hex(op_hex, operator.addr);
	assert_non_null(strstr(out, creator_hex));
	assert_non_null(strstr(out, op_hex));
	assert_non_null(strstr(out, "30000000000000000"));
}

static void test_escrow__fund_refuses_bad_deposits(void **state)
{
	struct chain_tx tx;
	uint8_t task[32];
	uint64_t deadline = chain_now() + 3600;

	(void)state;
	/* one wei short of reward x max */
	random_id(task);
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_tx(&tx, escrow, task, operator.addr,
					deadline, &reward, 2), FM_OK);
	assert_int_equal(chain_u256_sub(&tx.value, &tx.value,
					&(struct chain_u256){ { 1, 0, 0, 0 } }),
			 FM_OK);
	expect_revert(&tx, &creator, "wrong deposit");
	/* a deadline in the past */
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_tx(&tx, escrow, task, operator.addr,
					chain_now() - 1, &reward, 2), FM_OK);
	expect_revert(&tx, &creator, "deadline passed");
	/* a task id funded twice */
	fund(task, 1, deadline);
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_tx(&tx, escrow, task, operator.addr,
					deadline, &reward, 1), FM_OK);
	expect_revert(&tx, &creator, "task exists");
	/* refused by the builder before any node sees them */
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_tx(&tx, escrow, task, operator.addr,
					deadline, &reward, 0), FM_EINVAL);
	assert_int_equal(escrow_fund_tx(&tx, escrow, task,
					(uint8_t[20]){ 0 }, deadline, &reward,
					1), FM_EINVAL);
	chain_tx_cleanup(&tx);
}

static void test_escrow__release_pays_once(void **state)
{
	uint8_t task[32], result[32], to[20];
	struct chain_receipt rc;
	struct escrow_event ev;
	struct chain_tx tx;
	int paid = 0, released = 0;

	(void)state;
	fund(task, 2, chain_now() + 3600);
	random_id(result);
	random_address(to);
	assert_int_equal(escrow_is_paid(rpc, &paid, escrow, result), FM_OK);
	assert_false(paid);
	release(&rc, task, result, to);
	for (size_t i = 0; i < rc.nlogs; i++)
		if (!escrow_decode_log(&ev, &rc.logs[i]) &&
		    ev.kind == ESCROW_EV_RELEASED) {
			assert_memory_equal(ev.result_id, result, 32);
			assert_memory_equal(ev.account, to, 20);
			released++;
		}
	assert_int_equal(released, 1);
	chain_receipt_cleanup(&rc);
	assert_balance(to, "10000000000000000");
	assert_int_equal(escrow_is_paid(rpc, &paid, escrow, result), FM_OK);
	assert_true(paid);
	assert_task(task, ESCROW_OPEN, 1, "10000000000000000");
	/* the second release is refused before it is sent... */
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_revert(&tx, &operator, "already paid");
	/* ...and, forced on chain with a fixed gas limit, reverts there */
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	tx.gas_limit = 200000;
	memset(&rc, 0, sizeof(rc));
	assert_int_equal(send_tx(&rc, &tx, &operator), FM_ECONFLICT);
	assert_int_equal(rc.status, 0);
	assert_msg_contains("reverted in block");
	assert_msg_contains("already paid");
	chain_receipt_cleanup(&rc);
	assert_balance(to, "10000000000000000");
	assert_task(task, ESCROW_OPEN, 1, "10000000000000000");
}

static void test_escrow__release_refuses_non_operator(void **state)
{
	uint8_t task[32], result[32], to[20];
	struct chain_tx tx;

	(void)state;
	fund(task, 1, chain_now() + 3600);
	random_id(result);
	random_address(to);
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_revert(&tx, &creator, "not operator");
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_revert(&tx, &stranger, "not operator");
	/* an unknown task */
	random_id(task);
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_revert(&tx, &operator, "no such task");
	assert_int_equal(escrow_get_task(rpc, &(struct escrow_task){ 0 },
					 escrow, task), FM_ENOTFOUND);
	assert_balance(to, "0");
}

static void test_escrow__release_never_beyond_funds(void **state)
{
	uint8_t task[32], result[32], to[20];
	struct chain_tx tx;
	struct chain_receipt rc;

	(void)state;
	fund(task, 2, chain_now() + 3600);
	random_address(to);
	for (int i = 0; i < 2; i++) {
		random_id(result);
		release(&rc, task, result, to);
		chain_receipt_cleanup(&rc);
	}
	assert_task(task, ESCROW_OPEN, 2, "0");
	random_id(result);
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_revert(&tx, &operator, "no funds left");
	assert_balance(to, "20000000000000000");
}

static void test_escrow__batch_skips_paid_ids(void **state)
{
	uint8_t task[32], ids[3][32], to[3][20];
	struct chain_receipt rc;
	struct escrow_event ev;
	struct chain_tx tx;
	int released = 0, skipped = 0;

	(void)state;
	fund(task, 4, chain_now() + 3600);
	for (int i = 0; i < 3; i++) {
		random_id(ids[i]);
		random_address(to[i]);
	}
	release(&rc, task, ids[0], to[0]);
	chain_receipt_cleanup(&rc);
	/* ids[0] is paid already: skipped with an event, the rest paid */
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_batch_tx(&tx, escrow, task,
						 (const uint8_t(*)[32])ids,
						 (const uint8_t(*)[20])to, 3),
			 FM_OK);
	expect_ok(&rc, &tx, &operator);
	for (size_t i = 0; i < rc.nlogs; i++) {
		if (escrow_decode_log(&ev, &rc.logs[i]))
			continue;
		if (ev.kind == ESCROW_EV_RELEASED)
			released++;
		if (ev.kind == ESCROW_EV_ALREADY_PAID) {
			assert_memory_equal(ev.result_id, ids[0], 32);
			skipped++;
		}
	}
	chain_receipt_cleanup(&rc);
	assert_int_equal(released, 2);
	assert_int_equal(skipped, 1);
	/* eth_getLogs finds the three payouts of this task by topic */
	{
		struct chain_log_filter f;
		struct chain_log *logs = NULL;
		uint8_t topic[32];
		size_t n = 0;

		memset(&f, 0, sizeof(f));
		escrow_event_topic(topic, ESCROW_EV_RELEASED);
		f.address = escrow;
		f.to_block = UINT64_MAX;
		f.topics[0] = topic;
		f.topics[1] = task;
		f.ntopics = 2;
		assert_int_equal(chain_rpc_get_logs(rpc, &logs, &n, &f), FM_OK);
		assert_int_equal(n, 3);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(escrow_decode_log(&ev, &logs[i]), FM_OK);
			assert_int_equal(ev.kind, ESCROW_EV_RELEASED);
			assert_memory_equal(ev.task_id, task, 32);
		}
		chain_logs_free(logs, n);
	}
	for (int i = 0; i < 3; i++)
		assert_balance(to[i], "10000000000000000");
	assert_task(task, ESCROW_OPEN, 3, "10000000000000000");
}

static void test_escrow__batch_beyond_funds_reverts_whole(void **state)
{
	uint8_t task[32], ids[3][32], to[3][20];
	struct chain_tx tx;

	(void)state;
	fund(task, 2, chain_now() + 3600);
	for (int i = 0; i < 3; i++) {
		random_id(ids[i]);
		random_address(to[i]);
	}
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_batch_tx(&tx, escrow, task,
						 (const uint8_t(*)[32])ids,
						 (const uint8_t(*)[20])to, 3),
			 FM_OK);
	expect_revert(&tx, &operator, "no funds left");
	for (int i = 0; i < 3; i++)
		assert_balance(to[i], "0");
	assert_task(task, ESCROW_OPEN, 0, "20000000000000000");
	/* the builder refuses empty and oversized batches */
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_batch_tx(&tx, escrow, task,
						 (const uint8_t(*)[32])ids,
						 (const uint8_t(*)[20])to, 0),
			 FM_EINVAL);
	assert_int_equal(escrow_release_batch_tx(&tx, escrow, task,
						 (const uint8_t(*)[32])ids,
						 (const uint8_t(*)[20])to,
						 ESCROW_BATCH_MAX + 1),
			 FM_EINVAL);
	chain_tx_cleanup(&tx);
}

/* fundScored: a task paying by contribution, 4 results of 0.01 ether
 * (0.04 held), no result above a cap of 0.02. */
static void fund_scored(uint8_t task[32], const char *cap_wei)
{
	struct chain_u256 cap;
	struct chain_tx tx;

	random_id(task);
	assert_int_equal(chain_u256_parse(&cap, cap_wei, NULL), FM_OK);
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_scored_tx(&tx, escrow, task,
					       operator.addr,
					       chain_now() + 3600, &reward, 4,
					       &cap),
			 FM_OK);
	expect_ok(NULL, &tx, &creator);
}

static int scored_tx(struct chain_tx *tx, const uint8_t task[32],
		     uint32_t round, const uint8_t report[32],
		     uint8_t (*ids)[32], uint8_t (*to)[20],
		     const char *const *wei, size_t n)
{
	struct chain_u256 amounts[8];

	for (size_t i = 0; i < n; i++)
		assert_int_equal(chain_u256_parse(&amounts[i], wei[i], NULL),
				 FM_OK);
	chain_tx_init(tx);
	return escrow_release_scored_tx(tx, escrow, task, round, report,
					(const uint8_t(*)[32])ids,
					(const uint8_t(*)[20])to, amounts, n);
}

static void test_escrow__scored_release_pays_each_its_amount(void **state)
{
	static const char *const wei[] = { "15000000000000000",
					   "4000000000000000",
					   "1000000000000000" };
	static const char *const over[] = { "20000000000000001" };
	static const char *const again[] = { "15000000000000000",
					     "20000000000000000" };
	uint8_t task[32], ids[3][32], to[3][20], report[32], more[2][32];
	uint8_t more_to[2][20];
	struct escrow_task t;
	struct chain_receipt rc;
	struct escrow_event ev;
	struct chain_tx tx;
	char dec[CHAIN_U256_DEC_MAX];
	int scored = 0, released = 0, skipped = 0;

	(void)state;
	fund_scored(task, "20000000000000000");
	assert_int_equal(escrow_get_task(rpc, &t, escrow, task), FM_OK);
	chain_u256_to_dec(dec, sizeof(dec), &t.max_per_result);
	assert_string_equal(dec, "20000000000000000");
	random_id(report);
	for (int i = 0; i < 3; i++) {
		random_id(ids[i]);
		random_address(to[i]);
	}
	/* one amount above the cap reverts the whole release */
	assert_int_equal(scored_tx(&tx, task, 1, report, ids, to, over, 1),
			 FM_OK);
	expect_revert(&tx, &operator, "amount above cap");
	assert_task(task, ESCROW_OPEN, 0, "40000000000000000");
	/* amounts differ per result; Scored names the round and report */
	assert_int_equal(scored_tx(&tx, task, 7, report, ids, to, wei, 3),
			 FM_OK);
	expect_ok(&rc, &tx, &operator);
	for (size_t i = 0; i < rc.nlogs; i++) {
		if (escrow_decode_log(&ev, &rc.logs[i]))
			continue;
		if (ev.kind == ESCROW_EV_SCORED) {
			assert_memory_equal(ev.task_id, task, 32);
			assert_int_equal(ev.round, 7);
			assert_memory_equal(ev.report_hash, report, 32);
			scored++;
		}
		if (ev.kind == ESCROW_EV_RELEASED)
			released++;
	}
	chain_receipt_cleanup(&rc);
	assert_int_equal(scored, 1);
	assert_int_equal(released, 3);
	for (int i = 0; i < 3; i++)
		assert_balance(to[i], wei[i]);
	assert_task(task, ESCROW_OPEN, 3, "20000000000000000");
	/* a paid id is skipped; what is left (0.02) cannot cover 0.015 for
	 * ids[0] again plus 0.02: only the new id is paid */
	memcpy(more[0], ids[0], 32);
	random_id(more[1]);
	memcpy(more_to[0], to[0], 20);
	random_address(more_to[1]);
	assert_int_equal(scored_tx(&tx, task, 8, report, more, more_to, again,
				   2),
			 FM_OK);
	expect_ok(&rc, &tx, &operator);
	for (size_t i = 0; i < rc.nlogs; i++)
		if (!escrow_decode_log(&ev, &rc.logs[i]) &&
		    ev.kind == ESCROW_EV_ALREADY_PAID)
			skipped++;
	chain_receipt_cleanup(&rc);
	assert_int_equal(skipped, 1);
	assert_balance(to[0], wei[0]);
	assert_balance(more_to[1], "20000000000000000");
	assert_task(task, ESCROW_OPEN, 4, "0");
	/* nothing left: a further result reverts */
	random_id(more[1]);
	assert_int_equal(scored_tx(&tx, task, 9, report, &more[1], more_to,
				   wei + 2, 1),
			 FM_OK);
	expect_revert(&tx, &operator, "no funds left");
}

static void test_escrow__scored_funding_rules(void **state)
{
	struct chain_u256 cap;
	struct chain_tx tx;
	uint8_t task[32], id[32], to[20], report[32];
	static const char *const wei[] = { "10000000000000000" };
	static const char *const two[] = { "10000000000000001" };

	(void)state;
	random_id(task);
	/* the builder refuses a cap below the reward or above the deposit */
	assert_int_equal(chain_u256_parse(&cap, "9999999999999999", NULL),
			 FM_OK);
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_scored_tx(&tx, escrow, task,
					       operator.addr,
					       chain_now() + 3600, &reward, 4,
					       &cap),
			 FM_EINVAL);
	assert_int_equal(chain_u256_parse(&cap, "40000000000000001", NULL),
			 FM_OK);
	assert_int_equal(escrow_fund_scored_tx(&tx, escrow, task,
					       operator.addr,
					       chain_now() + 3600, &reward, 4,
					       &cap),
			 FM_EINVAL);
	chain_tx_cleanup(&tx);
	/* a flat task's cap is its reward: scored amounts above it revert */
	fund(task, 2, chain_now() + 3600);
	random_id(id);
	random_id(report);
	random_address(to);
	assert_int_equal(scored_tx(&tx, task, 1, report, &id, &to, two, 1),
			 FM_OK);
	expect_revert(&tx, &operator, "amount above cap");
	/* only the operator releases */
	assert_int_equal(scored_tx(&tx, task, 1, report, &id, &to, wei, 1),
			 FM_OK);
	expect_revert(&tx, &stranger, "not operator");
	assert_int_equal(scored_tx(&tx, task, 1, report, &id, &to, wei, 1),
			 FM_OK);
	expect_ok(NULL, &tx, &operator);
	assert_balance(to, "10000000000000000");
	/* zero amounts never reach a node */
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_scored_tx(
				 &tx, escrow, task, 1, report,
				 (const uint8_t(*)[32])&id,
				 (const uint8_t(*)[20])&to,
				 &(struct chain_u256){ { 0, 0, 0, 0 } }, 1),
			 FM_EINVAL);
	chain_tx_cleanup(&tx);
}

static void test_escrow__refund_waits_for_deadline(void **state)
{
	uint8_t task[32], result[32], to[20];
	struct chain_tx tx;
	struct chain_receipt rc;
	struct escrow_event ev;
	struct chain_u256 before, after, gas, want;
	char snap[80], dec[CHAIN_U256_DEC_MAX];
	json_t *res = NULL;
	int refunded = 0;

	(void)state;
	fund(task, 3, chain_now() + 3600);
	random_id(result);
	random_address(to);
	release(&rc, task, result, to);
	chain_receipt_cleanup(&rc);
	chain_tx_init(&tx);
	assert_int_equal(escrow_refund_tx(&tx, escrow, task), FM_OK);
	expect_revert(&tx, &creator, "deadline not reached");
	/* move chain time past the deadline; the snapshot puts it back so
	 * later suites see the chain's clock near the wall clock */
	assert_int_equal(chain_rpc_call(rpc, &res, "evm_snapshot", NULL),
			 FM_OK);
	snprintf(snap, sizeof(snap), "%s", json_string_value(res));
	json_decref(res);
	anvil_call(rpc, "evm_increaseTime", json_pack("[i]", 3601));
	anvil_call(rpc, "evm_mine", NULL);
	chain_tx_init(&tx);
	assert_int_equal(escrow_refund_tx(&tx, escrow, task), FM_OK);
	expect_revert(&tx, &stranger, "not creator");
	assert_int_equal(chain_rpc_balance(rpc, &before, creator.addr), FM_OK);
	chain_tx_init(&tx);
	assert_int_equal(escrow_refund_tx(&tx, escrow, task), FM_OK);
	expect_ok(&rc, &tx, &creator);
	for (size_t i = 0; i < rc.nlogs; i++)
		if (!escrow_decode_log(&ev, &rc.logs[i]) &&
		    ev.kind == ESCROW_EV_REFUNDED) {
			chain_u256_to_dec(dec, sizeof(dec), &ev.amount);
			assert_string_equal(dec, "20000000000000000");
			assert_false(ev.cancelled);
			refunded = 1;
		}
	assert_true(refunded);
	/* the creator got the unpaid two rewards, minus gas */
	assert_int_equal(chain_rpc_balance(rpc, &after, creator.addr), FM_OK);
	assert_int_equal(chain_u256_mul_u64(&gas, &rc.effective_gas_price,
					    rc.gas_used), FM_OK);
	assert_int_equal(chain_u256_mul_u64(&want, &reward, 2), FM_OK);
	assert_int_equal(chain_u256_add(&want, &want, &before), FM_OK);
	assert_int_equal(chain_u256_sub(&want, &want, &gas), FM_OK);
	assert_int_equal(chain_u256_cmp(&want, &after), 0);
	chain_receipt_cleanup(&rc);
	assert_task(task, ESCROW_REFUNDED, 1, "0");
	/* closed: no refund twice, no release after */
	chain_tx_init(&tx);
	assert_int_equal(escrow_refund_tx(&tx, escrow, task), FM_OK);
	expect_revert(&tx, &creator, "task closed");
	random_id(result);
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, result, to),
			 FM_OK);
	expect_revert(&tx, &operator, "task closed");
	anvil_call(rpc, "evm_revert", json_pack("[s]", snap));
}

static void test_escrow__operator_cancels_unpaid_slots(void **state)
{
	uint8_t task[32], result[32], to[20];
	struct chain_tx tx;
	struct chain_receipt rc;
	struct chain_u256 before, after, want;

	(void)state;
	fund(task, 3, chain_now() + 3600);
	random_id(result);
	random_address(to);
	release(&rc, task, result, to);
	chain_receipt_cleanup(&rc);
	/* only the operator can cancel */
	chain_tx_init(&tx);
	assert_int_equal(escrow_cancel_tx(&tx, escrow, task), FM_OK);
	expect_revert(&tx, &creator, "not operator");
	assert_int_equal(chain_rpc_balance(rpc, &before, creator.addr), FM_OK);
	chain_tx_init(&tx);
	assert_int_equal(escrow_cancel_tx(&tx, escrow, task), FM_OK);
	expect_ok(NULL, &tx, &operator);
	assert_int_equal(chain_rpc_balance(rpc, &after, creator.addr), FM_OK);
	assert_int_equal(chain_u256_mul_u64(&want, &reward, 2), FM_OK);
	assert_int_equal(chain_u256_add(&want, &want, &before), FM_OK);
	assert_int_equal(chain_u256_cmp(&want, &after), 0);
	assert_task(task, ESCROW_CANCELLED, 1, "0");
	chain_tx_init(&tx);
	assert_int_equal(escrow_cancel_tx(&tx, escrow, task), FM_OK);
	expect_revert(&tx, &operator, "task closed");
}

static void test_escrow__failed_push_is_credited(void **state)
{
	/* a contract whose every call reverts: 0x60006000fd is
	 * PUSH1 0 PUSH1 0 REVERT; the init code returns it */
	static const char init_hex[] = "6460006000fd6000526005601bf3";
	uint8_t init[14], task[32], ids[2][32], to[2][20], sink[20];
	struct chain_tx tx;
	struct chain_receipt rc;
	struct escrow_event ev;
	struct chain_u256 owed;
	int credited = 0;

	(void)state;
	assert_int_equal(hex_decode(init, sizeof(init), init_hex), FM_OK);
	chain_tx_init(&tx);
	assert_int_equal(chain_tx_set_data(&tx, init, sizeof(init)), FM_OK);
	expect_ok(&rc, &tx, &deployer);
	assert_true(rc.has_contract);
	memcpy(sink, rc.contract_address, 20);
	chain_receipt_cleanup(&rc);
	/* the bad recipient does not block the other one in the batch */
	fund(task, 2, chain_now() + 3600);
	random_id(ids[0]);
	random_id(ids[1]);
	memcpy(to[0], sink, 20);
	random_address(to[1]);
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_batch_tx(&tx, escrow, task,
						 (const uint8_t(*)[32])ids,
						 (const uint8_t(*)[20])to, 2),
			 FM_OK);
	expect_ok(&rc, &tx, &operator);
	for (size_t i = 0; i < rc.nlogs; i++)
		if (!escrow_decode_log(&ev, &rc.logs[i]) &&
		    ev.kind == ESCROW_EV_CREDITED) {
			assert_memory_equal(ev.account, sink, 20);
			credited = 1;
		}
	chain_receipt_cleanup(&rc);
	assert_true(credited);
	assert_balance(to[1], "10000000000000000");
	assert_balance(sink, "0");
	assert_int_equal(escrow_owed(rpc, &owed, escrow, sink), FM_OK);
	assert_int_equal(chain_u256_cmp(&owed, &reward), 0);
	/* it still counts as paid: no second payout */
	chain_tx_init(&tx);
	assert_int_equal(escrow_release_tx(&tx, escrow, task, ids[0], sink),
			 FM_OK);
	expect_revert(&tx, &operator, "already paid");
	/* someone owed nothing has nothing to withdraw */
	chain_tx_init(&tx);
	assert_int_equal(escrow_withdraw_tx(&tx, escrow), FM_OK);
	expect_revert(&tx, &stranger, "nothing owed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escrow__fund_holds_exact_deposit),
		cmocka_unit_test(test_escrow__fund_refuses_bad_deposits),
		cmocka_unit_test(test_escrow__release_pays_once),
		cmocka_unit_test(test_escrow__release_refuses_non_operator),
		cmocka_unit_test(test_escrow__release_never_beyond_funds),
		cmocka_unit_test(test_escrow__batch_skips_paid_ids),
		cmocka_unit_test(test_escrow__batch_beyond_funds_reverts_whole),
		cmocka_unit_test(test_escrow__scored_release_pays_each_its_amount),
		cmocka_unit_test(test_escrow__scored_funding_rules),
		cmocka_unit_test(test_escrow__refund_waits_for_deadline),
		cmocka_unit_test(test_escrow__operator_cancels_unpaid_slots),
		cmocka_unit_test(test_escrow__failed_push_is_credited),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
