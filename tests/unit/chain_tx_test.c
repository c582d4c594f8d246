/* Transactions: the EIP-155 example of the EIP itself, and EIP-1559 and
 * legacy transactions byte-equal to `cast mktx` (an independent signer;
 * RFC 6979 makes signatures deterministic). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/keccak.h"
#include "chain/tx.h"
#include "chain_assert.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

#define ANVIL0_KEY "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

static void test_tx__eip155_example(void **state)
{
	struct chain_tx tx;
	struct chain_key k;
	struct buf raw = BUF_INIT(4096);
	uint8_t h[32], want[32];

	(void)state;
	chain_tx_init(&tx);
	tx.type = CHAIN_TX_LEGACY;
	tx.chain_id = 1;
	tx.nonce = 9;
	assert_int_equal(chain_u256_parse(&tx.max_fee, "20 gwei", NULL), FM_OK);
	tx.gas_limit = 21000;
	tx.has_to = 1;
	memset(tx.to, 0x35, 20);
	assert_int_equal(chain_u256_parse(&tx.value, "1 ether", NULL), FM_OK);
	assert_int_equal(chain_tx_signing_hash(h, &tx), FM_OK);
	assert_int_equal(hex_decode(want, 32, "daf5a779ae972f972197303d7b5747"
					      "46c7ef83eadac0f2791ad23db92e4c8e53"),
			 FM_OK);
	assert_memory_equal(h, want, 32);
	assert_int_equal(chain_key_from_hex(&k, "46464646464646464646464646464646"
						"46464646464646464646464646464646"),
			 FM_OK);
	assert_int_equal(chain_tx_sign(&raw, h, &tx, k.priv), FM_OK);
	assert_buf_hex(&raw, "f86c098504a817c800825208943535353535353535353535353535"
			 "353535353535880de0b6b3a76400008025a028ef61340bd939bc"
			 "2195fe537567866003e1a15d3c71ff63e1590620aa636276a067"
			 "cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1"
			 "966a3b6d83");
	chain_keccak256(want, raw.data, raw.len);
	assert_memory_equal(h, want, 32);
	buf_cleanup(&raw);
	chain_tx_cleanup(&tx);
	chain_key_wipe(&k);
}

static void transfer(struct chain_tx *tx, enum chain_tx_type type)
{
	chain_tx_init(tx);
	tx->type = type;
	tx->chain_id = 31337;
	tx->nonce = 7;
	tx->gas_limit = 21000;
	assert_int_equal(chain_u256_parse(&tx->max_fee, "30gwei", NULL), FM_OK);
	if (type == CHAIN_TX_EIP1559)
		assert_int_equal(chain_u256_parse(&tx->max_priority_fee, "2gwei",
						  NULL), FM_OK);
	tx->has_to = 1;
	assert_int_equal(chain_address_parse(
		tx->to, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", NULL),
		FM_OK);
	assert_int_equal(chain_u256_parse(&tx->value, "1ether", NULL), FM_OK);
}

/* cast mktx --private-key <anvil key 0> --nonce 7 --gas-limit 21000
 *   --gas-price 30gwei [--priority-gas-price 2gwei | --legacy]
 *   --chain 31337 --value 1ether 0x7099...79C8 */
static const char cast_1559[] =
	"02f875827a690784773594008506fc23ac008252089470997970c51812dc3a010c7d"
	"01b50e0d17dc79c8880de0b6b3a764000080c001a0f55bd52c7e477ef867267ed1d3"
	"162cf46461eb77bc1f12f73ca2ec5587f7f330a04efc3da06e26e4f7288a404fea53"
	"309cce72f06f76e9550339755e674b8b95a4";
static const char cast_legacy[] =
	"f86e078506fc23ac008252089470997970c51812dc3a010c7d01b50e0d17dc79c888"
	"0de0b6b3a76400008082f4f5a07ced0ce8cfefca39b86236a276220fd43340d38a81"
	"6e4e06763b6bc42d5ad546a0023bb040946cc3bcd1856930806b1bbc36215f2da86e"
	"3f166e4c06270e97a683";

static void test_tx__signed_bytes_equal_cast(void **state)
{
	struct chain_tx tx;
	struct chain_key k;
	struct buf raw = BUF_INIT(4096);

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, ANVIL0_KEY), FM_OK);
	transfer(&tx, CHAIN_TX_EIP1559);
	assert_int_equal(chain_tx_sign(&raw, NULL, &tx, k.priv), FM_OK);
	assert_buf_hex(&raw, cast_1559);
	chain_tx_cleanup(&tx);
	buf_reset(&raw);
	transfer(&tx, CHAIN_TX_LEGACY);
	assert_int_equal(chain_tx_sign(&raw, NULL, &tx, k.priv), FM_OK);
	assert_buf_hex(&raw, cast_legacy);
	chain_tx_cleanup(&tx);
	buf_cleanup(&raw);
	chain_key_wipe(&k);
}

static void test_tx__decode_round_trip(void **state)
{
	struct chain_tx tx, back;
	struct chain_key k;
	struct buf raw = BUF_INIT(1 << 21);
	uint8_t from[20], data[3000];

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	for (int type = 0; type <= 2; type += 2) {
		transfer(&tx, (enum chain_tx_type)type);
		tx.has_to = type == 0; /* a creation for type 2 */
		tx.chain_id = 0x123456789ULL;
		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)i;
		assert_int_equal(chain_tx_set_data(&tx, data, sizeof(data)),
				 FM_OK);
		buf_reset(&raw);
		assert_int_equal(chain_tx_sign(&raw, NULL, &tx, k.priv), FM_OK);
		assert_int_equal(chain_tx_decode(&back, from,
						 (uint8_t *)raw.data, raw.len),
				 FM_OK);
		assert_memory_equal(from, k.addr, 20);
		assert_int_equal(back.type, tx.type);
		assert_int_equal(back.chain_id, tx.chain_id);
		assert_int_equal(back.nonce, 7);
		assert_int_equal(back.gas_limit, 21000);
		assert_int_equal(back.has_to, tx.has_to);
		assert_int_equal(chain_u256_cmp(&back.value, &tx.value), 0);
		assert_int_equal(chain_u256_cmp(&back.max_fee, &tx.max_fee), 0);
		assert_int_equal(back.data_len, sizeof(data));
		assert_memory_equal(back.data, data, sizeof(data));
		chain_tx_cleanup(&back);
		chain_tx_cleanup(&tx);
	}
	buf_cleanup(&raw);
	chain_key_wipe(&k);
}

static void assert_decode_refused(const char *hex, const char *msg_part)
{
	uint8_t raw[200], from[20];
	size_t n = strlen(hex) / 2;
	struct chain_tx tx;

	assert_true(n <= sizeof(raw));
	assert_int_equal(hex_decode(raw, n, hex), FM_OK);
	assert_int_not_equal(chain_tx_decode(&tx, from, raw, n), FM_OK);
	assert_msg_contains(msg_part);
}

static void test_tx__decode_refuses_bad_input(void **state)
{
	char bad[sizeof(cast_1559)];

	(void)state;
	assert_decode_refused("01c0", "type 0x01 is not supported");
	assert_decode_refused("02c0", "0 fields, expected 12");
	/* cut short */
	memcpy(bad, cast_1559, sizeof(bad));
	bad[100] = '\0';
	assert_decode_refused(bad, "claims");
	/* y parity 2: bytes 52..53 are the empty access list and y */
	memcpy(bad, cast_1559, sizeof(bad));
	memcpy(bad + 2 * 52, "c002", 4);
	assert_decode_refused(bad, "y parity 2");
	/* a pre-EIP-155 v: bytes 43..45 (82f4f5) become 1b (27), and the
	 * list is two bytes shorter */
	memcpy(bad, cast_legacy, 2 * 43);
	strcpy(bad + 2 * 43, "1b");
	strcat(bad, cast_legacy + 2 * 46);
	memcpy(bad + 2, "6c", 2);
	assert_decode_refused(bad, "not EIP-155");
}

static void test_tx__refuses_bad_fields(void **state)
{
	struct chain_tx tx;
	uint8_t h[32];

	(void)state;
	transfer(&tx, CHAIN_TX_EIP1559);
	tx.chain_id = 0;
	assert_int_equal(chain_tx_signing_hash(h, &tx), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "chain id is 0"));
	tx.chain_id = 1;
	tx.max_priority_fee = chain_u256_from_u64(31000000000ULL);
	assert_int_equal(chain_tx_signing_hash(h, &tx), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "priority fee above"));
	assert_int_equal(chain_tx_set_data(&tx, h, CHAIN_TX_DATA_MAX + 1),
			 FM_ETOOLARGE);
	chain_tx_cleanup(&tx);
}

static void test_tx__bump_fees_rounds_up(void **state)
{
	struct chain_tx tx;
	char dec[CHAIN_U256_DEC_MAX];
	uint8_t max[32];

	(void)state;
	transfer(&tx, CHAIN_TX_EIP1559);
	tx.max_fee = chain_u256_from_u64(1000000001);
	tx.max_priority_fee = chain_u256_from_u64(7);
	assert_int_equal(chain_tx_bump_fees(&tx, 10), FM_OK);
	chain_u256_to_dec(dec, sizeof(dec), &tx.max_fee);
	assert_string_equal(dec, "1100000002"); /* 1100000001.1 up */
	chain_u256_to_dec(dec, sizeof(dec), &tx.max_priority_fee);
	assert_string_equal(dec, "8"); /* 7.7 up */
	/* zero stays zero; overflow is refused and changes nothing */
	tx.max_priority_fee = chain_u256_from_u64(0);
	memset(max, 0xff, sizeof(max));
	chain_u256_from_be(&tx.max_fee, max);
	assert_int_equal(chain_tx_bump_fees(&tx, 10), FM_EINVAL);
	assert_int_equal(tx.max_fee.w[3], UINT64_MAX);
	chain_tx_cleanup(&tx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx__eip155_example),
		cmocka_unit_test(test_tx__signed_bytes_equal_cast),
		cmocka_unit_test(test_tx__decode_round_trip),
		cmocka_unit_test(test_tx__decode_refuses_bad_input),
		cmocka_unit_test(test_tx__refuses_bad_fields),
		cmocka_unit_test(test_tx__bump_fees_rounds_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
