/* Damaged input never crashes the decoders: thousands of truncations,
 * bit flips and byte changes of valid signed transactions, RLP, ABI
 * return data, event logs and keystores each end in FM_OK or an error
 * with a message (run under ASan+UBSan by `make check`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/abi.h"
#include "chain/escrow.h"
#include "chain/keystore.h"
#include "chain/rlp.h"
#include "chain/tx.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 3000

static uint64_t rng = 0x853c49e6748fea9bULL;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* A damaged copy of p[0..n) into out (same size buffer + 8); returns its
 * length: cut short, bits flipped, bytes set to edge values. */
static size_t mutate(uint8_t *out, const uint8_t *p, size_t n)
{
	static const uint8_t edge[] = { 0x00, 0x7f, 0x80, 0x81, 0xb7, 0xb8,
					0xbf, 0xc0, 0xf7, 0xf8, 0xff };
	size_t len = n;
	int k = 1 + (int)(next() % 4);

	memcpy(out, p, n);
	while (k--) {
		switch (next() % 4) {
		case 0:
			len = len ? next() % len : 0;
			break;
		case 1:
			if (len)
				out[next() % len] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 2:
			if (len)
				out[next() % len] =
					edge[next() % sizeof(edge)];
			break;
		default:
			if (len < n + 8)
				out[len++] = (uint8_t)next();
			break;
		}
	}
	return len;
}

/* A failure must carry a message. */
static void assert_clean(int err)
{
	if (err != FM_OK)
		assert_true(fm_error_msg()[0] != '\0');
	fm_error_clear();
}

static void test_mutation__signed_transactions(void **state)
{
	struct chain_tx tx, back;
	struct chain_key k;
	struct buf raw = BUF_INIT(1 << 16);
	uint8_t data[100], *bad, from[20];
	size_t n;
	struct rlp_item it;

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	for (int type = 0; type <= 2; type += 2) {
		chain_tx_init(&tx);
		tx.type = (enum chain_tx_type)type;
		tx.chain_id = 31337;
		tx.nonce = 300;
		tx.gas_limit = 90000;
		tx.max_fee = chain_u256_from_u64(3000000000ULL);
		tx.has_to = 1;
		memset(tx.to, 0x42, 20);
		memset(data, 0x99, sizeof(data));
		assert_int_equal(chain_tx_set_data(&tx, data, sizeof(data)),
				 FM_OK);
		buf_reset(&raw);
		assert_int_equal(chain_tx_sign(&raw, NULL, &tx, k.priv), FM_OK);
		bad = malloc(raw.len + 8);
		assert_non_null(bad);
		for (int i = 0; i < ROUNDS; i++) {
			n = mutate(bad, (uint8_t *)raw.data, raw.len);
			int err = chain_tx_decode(&back, from, bad, n);

			if (!err)
				chain_tx_cleanup(&back);
			assert_clean(err);
			assert_clean(rlp_decode(&it, bad, n));
		}
		free(bad);
		chain_tx_cleanup(&tx);
	}
	buf_cleanup(&raw);
	chain_key_wipe(&k);
}

static void test_mutation__abi_and_logs(void **state)
{
	struct abi_enc e;
	struct buf ret = BUF_INIT(4096);
	struct escrow_task t;
	struct escrow_event ev;
	struct chain_log log;
	uint8_t bad[4096 + 8], addr[20] = { 1 }, topic[32];
	const uint8_t *s;
	size_t n, slen;
	char reason[64];

	(void)state;
	/* a tasks() answer and an Error(string) */
	abi_enc_init(&e, NULL, 8, 4096);
	abi_put_address(&e, addr);
	abi_put_u64(&e, 1800000000);
	abi_put_u64(&e, 3);
	abi_put_address(&e, addr);
	abi_put_u64(&e, 1);
	abi_put_u64(&e, 1);
	abi_put_u64(&e, 1000);
	abi_put_u64(&e, 2000);
	assert_int_equal(abi_enc_finish(&e, &ret), FM_OK);
	abi_enc_cleanup(&e);
	for (int i = 0; i < ROUNDS; i++) {
		n = mutate(bad, (uint8_t *)ret.data, ret.len);
		assert_clean(escrow_decode_task(&t, bad, n));
		assert_clean(abi_get_bytes(&s, &slen, bad, n, next() % 9,
					   "x"));
		abi_revert_reason(reason, sizeof(reason), bad, n);
		assert_true(strlen(reason) < sizeof(reason));
		fm_error_clear();
	}
	/* a Released log */
	memset(&log, 0, sizeof(log));
	escrow_event_topic(log.topics[0], ESCROW_EV_RELEASED);
	memset(log.topics[1], 0x11, 32);
	memset(log.topics[2], 0x22, 32);
	memset(log.topics[3] + 12, 0x33, 20);
	log.ntopics = 4;
	for (int i = 0; i < ROUNDS; i++) {
		n = mutate(bad, (uint8_t *)ret.data, 32);
		log.data = bad;
		log.data_len = n;
		log.ntopics = 1 + next() % 4;
		memcpy(topic, log.topics[3], 32);
		if (next() % 2)
			log.topics[3][next() % 32] ^= 1;
		assert_clean(escrow_decode_log(&ev, &log));
		memcpy(log.topics[3], topic, 32);
	}
	buf_cleanup(&ret);
}

static void test_mutation__keystores(void **state)
{
	static const struct ks_params light = { 16, 1, 1 };
	struct buf json = BUF_INIT(KS_FILE_MAX);
	struct chain_key k, out;
	uint8_t *bad;
	char want[64], hex[41];
	size_t n;
	int opened = 0;

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	hex_encode(hex, k.addr, 20);
	snprintf(want, sizeof(want), "\"address\":\"%s\"", hex);
	/* a tiny scrypt cost keeps thousands of attempts fast */
	assert_int_equal(ks_encrypt(&json, &k, "pw", &light), FM_OK);
	bad = malloc(json.len + 8);
	assert_non_null(bad);
	for (int i = 0; i < ROUNDS; i++) {
		n = mutate(bad, (uint8_t *)json.data, json.len);
		int err = ks_decrypt(&out, (char *)bad, n, "pw", "ks");

		/* the v3 MAC does not cover the IV: only the address field
		 * tells a changed IV; while it is intact, the key is right */
		if (!err && memmem(bad, n, want, strlen(want))) {
			assert_memory_equal(out.priv, k.priv, 32);
			opened++;
		}
		assert_clean(err);
	}
	assert_true(opened < ROUNDS);
	free(bad);
	buf_cleanup(&json);
	chain_key_wipe(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutation__signed_transactions),
		cmocka_unit_test(test_mutation__abi_and_logs),
		cmocka_unit_test(test_mutation__keystores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
