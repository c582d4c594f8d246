/* Our encodings equal those of foundry's cast, an independent client, on
 * random inputs: keccak, EIP-55, RLP, ABI calldata of the escrow,
 * EIP-191 signatures (request signatures included) and signed EIP-1559,
 * EIP-155 and contract-creation transactions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/escrow.h"
#include "chain/keccak.h"
#include "chain/reqsig.h"
#include "chain/rlp.h"
#include "chain_testutil.h"

#define OUT_MAX 16384

static char out[OUT_MAX];

static void random_bytes(uint8_t *p, size_t n)
{
	static uint64_t s = 0x9e3779b97f4a7c15ULL;

	/* deterministic, so a failure can be replayed */
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
}

/* "0x" + hex of n bytes into a fresh heap string. */
static char *hex0x(const void *p, size_t n)
{
	char *s = malloc(2 * n + 3);

	assert_non_null(s);
	s[0] = '0';
	s[1] = 'x';
	hex_encode(s + 2, p, n);
	return s;
}

static void assert_buf_is(const struct buf *b, const char *want0x)
{
	char *h = hex0x(b->data, b->len);

	assert_string_equal(h, want0x);
	free(h);
}

static void test_interop__keccak(void **state)
{
	static const size_t lens[] = { 1, 31, 32, 55, 56, 135, 136, 137,
				       271, 272, 273, 1000 };
	uint8_t data[1000], h[32];
	char *in, *hh;

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		random_bytes(data, lens[i]);
		in = hex0x(data, lens[i]);
		cast_run(out, sizeof(out), 0, "keccak %s", in);
		chain_keccak256(h, data, lens[i]);
		hh = hex0x(h, 32);
		assert_string_equal(out, hh);
		free(in);
		free(hh);
	}
}

static void test_interop__checksummed_addresses(void **state)
{
	uint8_t a[20];
	char lower[43], ours[CHAIN_ADDR_HEX];

	(void)state;
	for (int i = 0; i < 8; i++) {
		random_bytes(a, 20);
		lower[0] = '0';
		lower[1] = 'x';
		hex_encode(lower + 2, a, 20);
		cast_run(out, sizeof(out), 0, "to-check-sum-address %s",
			 lower);
		chain_address_to_hex(ours, a);
		assert_string_equal(out, ours);
	}
}

static void test_interop__rlp(void **state)
{
	struct buf b = BUF_INIT(1 << 16);
	uint8_t big[60];
	size_t m0, m1;
	char *bh, arg[512];

	(void)state;
	random_bytes(big, sizeof(big));
	big[0] |= 0x80;
	bh = hex0x(big, sizeof(big));
	/* ["0x01", ["0x0203", <60 bytes>], "0x", "0x7f", "0x80"] */
	rlp_list_begin(&b, &m0);
	assert_int_equal(rlp_put_bytes(&b, "\x01", 1), FM_OK);
	rlp_list_begin(&b, &m1);
	assert_int_equal(rlp_put_bytes(&b, "\x02\x03", 2), FM_OK);
	assert_int_equal(rlp_put_bytes(&b, big, sizeof(big)), FM_OK);
	assert_int_equal(rlp_list_end(&b, m1), FM_OK);
	assert_int_equal(rlp_put_bytes(&b, "", 0), FM_OK);
	assert_int_equal(rlp_put_bytes(&b, "\x7f", 1), FM_OK);
	assert_int_equal(rlp_put_bytes(&b, "\x80", 1), FM_OK);
	assert_int_equal(rlp_list_end(&b, m0), FM_OK);
	snprintf(arg, sizeof(arg), "'[\"0x01\",[\"0x0203\",\"%s\"],\"0x\","
		 "\"0x7f\",\"0x80\"]'", bh);
	cast_run(out, sizeof(out), 0, "to-rlp %s", arg);
	assert_buf_is(&b, out);
	free(bh);
	buf_cleanup(&b);
}

static void test_interop__escrow_calldata(void **state)
{
	uint8_t esc[20], task[32], ids[3][32], to[3][20], op[20];
	char th[67], oh[CHAIN_ADDR_HEX], ih[3][67], ah[3][CHAIN_ADDR_HEX];
	struct chain_u256 reward = chain_u256_from_u64(0);
	uint8_t rw[32];
	char rdec[CHAIN_U256_DEC_MAX];
	struct chain_tx tx;
	struct buf b = BUF_INIT(1 << 16);

	(void)state;
	random_bytes(esc, 20);
	random_bytes(task, 32);
	random_bytes(op, 20);
	random_bytes(rw, 32);
	rw[0] = 0; /* reward x 7 must fit */
	chain_u256_from_be(&reward, rw);
	chain_u256_to_dec(rdec, sizeof(rdec), &reward);
	bytes32_hex(th, task);
	addr_hex(oh, op);
	for (int i = 0; i < 3; i++) {
		random_bytes(ids[i], 32);
		random_bytes(to[i], 20);
		bytes32_hex(ih[i], ids[i]);
		addr_hex(ah[i], to[i]);
	}
	chain_tx_init(&tx);
	assert_int_equal(escrow_fund_tx(&tx, esc, task, op, 4102444800ULL,
					&reward, 7), FM_OK);
	cast_run(out, sizeof(out), 0,
		 "calldata 'fund(bytes32,address,uint64,uint256,uint32)' %s "
		 "%s 4102444800 %s 7", th, oh, rdec);
	assert_int_equal(buf_append(&b, tx.data, tx.data_len), FM_OK);
	assert_buf_is(&b, out);
	buf_reset(&b);
	assert_int_equal(escrow_release_tx(&tx, esc, task, ids[0], to[0]),
			 FM_OK);
	cast_run(out, sizeof(out), 0,
		 "calldata 'release(bytes32,bytes32,address)' %s %s %s", th,
		 ih[0], ah[0]);
	assert_int_equal(buf_append(&b, tx.data, tx.data_len), FM_OK);
	assert_buf_is(&b, out);
	buf_reset(&b);
	assert_int_equal(escrow_release_batch_tx(&tx, esc, task,
						 (const uint8_t(*)[32])ids,
						 (const uint8_t(*)[20])to, 3),
			 FM_OK);
	cast_run(out, sizeof(out), 0,
		 "calldata 'releaseBatch(bytes32,bytes32[],address[])' %s "
		 "'[%s,%s,%s]' '[%s,%s,%s]'", th, ih[0], ih[1], ih[2], ah[0],
		 ah[1], ah[2]);
	assert_int_equal(buf_append(&b, tx.data, tx.data_len), FM_OK);
	assert_buf_is(&b, out);
	buf_reset(&b);
	assert_int_equal(escrow_refund_tx(&tx, esc, task), FM_OK);
	cast_run(out, sizeof(out), 0, "calldata 'refund(bytes32)' %s", th);
	assert_int_equal(buf_append(&b, tx.data, tx.data_len), FM_OK);
	assert_buf_is(&b, out);
	buf_reset(&b);
	assert_int_equal(escrow_cancel_tx(&tx, esc, task), FM_OK);
	cast_run(out, sizeof(out), 0, "calldata 'cancel(bytes32)' %s", th);
	assert_int_equal(buf_append(&b, tx.data, tx.data_len), FM_OK);
	assert_buf_is(&b, out);
	buf_cleanup(&b);
	chain_tx_cleanup(&tx);
}

static void test_interop__personal_sign(void **state)
{
	struct chain_key k;
	uint8_t msg[300], sig[65];
	char *mh, *sh, kh[65];

	(void)state;
	for (int i = 0; i < 4; i++) {
		size_t n = (size_t)(i * 97 + 1);

		assert_int_equal(chain_key_generate(&k), FM_OK);
		hex_encode(kh, k.priv, 32);
		random_bytes(msg, n);
		mh = hex0x(msg, n);
		/* cast reads a 0x message as bytes */
		cast_run(out, sizeof(out), 0,
			 "wallet sign --private-key 0x%s %s", kh, mh);
		assert_int_equal(chain_personal_sign(sig, k.priv, msg, n),
				 FM_OK);
		sh = hex0x(sig, 65);
		assert_string_equal(out, sh);
		free(mh);
		free(sh);
		chain_key_wipe(&k);
	}
}

static void test_interop__request_signature_verified_by_cast(void **state)
{
	static const char body[] = "{\"result\":\"0xabc\"}";
	const struct reqsig_msg m = { "POST", "/v1/results?task=1", body,
				      sizeof(body) - 1 };
	struct buf canon = BUF_INIT(8192);
	struct reqsig_headers h;
	struct chain_key k;
	char *ch;

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	assert_int_equal(reqsig_sign(&h, &k, &m, 1800000000), FM_OK);
	assert_int_equal(reqsig_canonical(&canon, &m, h.timestamp, h.nonce),
			 FM_OK);
	ch = hex0x(canon.data, canon.len);
	/* any wallet can check what a client signed */
	cast_run(out, sizeof(out), 0, "wallet verify --address %s %s %s",
		 h.address, ch, h.signature);
	free(ch);
	buf_cleanup(&canon);
	chain_key_wipe(&k);
}

/* Signs tx with a random key and compares with cast mktx. */
static void compare_mktx(struct chain_tx *tx, const char *to_and_data)
{
	struct chain_key k;
	struct buf raw = BUF_INIT(1 << 16);
	char kh[65], fee[CHAIN_U256_DEC_MAX], prio[CHAIN_U256_DEC_MAX];
	char value[CHAIN_U256_DEC_MAX];

	assert_int_equal(chain_key_generate(&k), FM_OK);
	hex_encode(kh, k.priv, 32);
	chain_u256_to_dec(fee, sizeof(fee), &tx->max_fee);
	chain_u256_to_dec(prio, sizeof(prio), &tx->max_priority_fee);
	chain_u256_to_dec(value, sizeof(value), &tx->value);
	if (tx->type == CHAIN_TX_LEGACY)
		cast_run(out, sizeof(out), 0,
			 "mktx --legacy --private-key 0x%s --nonce %llu "
			 "--gas-limit %llu --gas-price %s --chain %llu "
			 "--value %s %s", kh, (unsigned long long)tx->nonce,
			 (unsigned long long)tx->gas_limit, fee,
			 (unsigned long long)tx->chain_id, value, to_and_data);
	else
		cast_run(out, sizeof(out), 0,
			 "mktx --private-key 0x%s --nonce %llu --gas-limit "
			 "%llu --gas-price %s --priority-gas-price %s --chain "
			 "%llu --value %s %s", kh,
			 (unsigned long long)tx->nonce,
			 (unsigned long long)tx->gas_limit, fee, prio,
			 (unsigned long long)tx->chain_id, value, to_and_data);
	assert_int_equal(chain_tx_sign(&raw, NULL, tx, k.priv), FM_OK);
	assert_buf_is(&raw, out);
	buf_cleanup(&raw);
	chain_key_wipe(&k);
}

static void test_interop__transactions_equal_cast_mktx(void **state)
{
	uint8_t data[200], fee[32];
	char to[CHAIN_ADDR_HEX], *dh, args[1024];
	struct chain_tx tx;

	(void)state;
	for (int i = 0; i < 6; i++) {
		chain_tx_init(&tx);
		tx.type = i % 2 ? CHAIN_TX_LEGACY : CHAIN_TX_EIP1559;
		tx.chain_id = i < 2 ? 1 : 31337 + (uint64_t)i * 1000003;
		tx.nonce = (uint64_t)i * 4099;
		tx.gas_limit = 21000 + (uint64_t)i * 77777;
		memset(fee, 0, sizeof(fee));
		random_bytes(fee + 24, 8);
		fee[24] &= 0x0f;
		chain_u256_from_be(&tx.max_fee, fee);
		tx.max_priority_fee = chain_u256_from_u64(i);
		tx.value = chain_u256_from_u64((uint64_t)i * 1000000007ULL);
		tx.has_to = 1;
		random_bytes(tx.to, 20);
		addr_hex(to, tx.to);
		random_bytes(data, sizeof(data));
		assert_int_equal(chain_tx_set_data(&tx, data, (size_t)i * 40),
				 FM_OK);
		dh = hex0x(data, (size_t)i * 40);
		snprintf(args, sizeof(args), "%s %s", to, i ? dh : "");
		compare_mktx(&tx, args);
		free(dh);
		chain_tx_cleanup(&tx);
	}
	/* a contract creation */
	chain_tx_init(&tx);
	tx.chain_id = 31337;
	tx.gas_limit = 500000;
	tx.max_fee = chain_u256_from_u64(3000000000ULL);
	tx.max_priority_fee = chain_u256_from_u64(1000000000ULL);
	random_bytes(data, 64);
	assert_int_equal(chain_tx_set_data(&tx, data, 64), FM_OK);
	dh = hex0x(data, 64);
	snprintf(args, sizeof(args), "--create %s", dh);
	compare_mktx(&tx, args);
	free(dh);
	chain_tx_cleanup(&tx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interop__keccak),
		cmocka_unit_test(test_interop__checksummed_addresses),
		cmocka_unit_test(test_interop__rlp),
		cmocka_unit_test(test_interop__escrow_calldata),
		cmocka_unit_test(test_interop__personal_sign),
		cmocka_unit_test(test_interop__request_signature_verified_by_cast),
		cmocka_unit_test(test_interop__transactions_equal_cast_mktx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
