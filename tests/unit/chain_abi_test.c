/* ABI encoding equals cast calldata's (known answers below were made by
 * `cast calldata`); decoding is bounded and range-checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/abi.h"
#include "chain/sig.h"
#include "chain_assert.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

#define W(x) x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x
#define ZEROS24 "000000000000000000000000"

static void addr(uint8_t out[20], const char *text)
{
	assert_int_equal(chain_address_parse(out, text, NULL), FM_OK);
}

static void test_abi__static_call_matches_cast(void **state)
{
	struct abi_enc e;
	struct buf out = BUF_INIT(4096);
	uint8_t sel[4], task[32], op[20];
	struct chain_u256 reward;

	(void)state;
	memset(task, 0x11, 32);
	addr(op, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
	assert_int_equal(chain_u256_parse(&reward, "1 ether", NULL), FM_OK);
	abi_selector(sel, "fund(bytes32,address,uint64,uint256,uint32)");
	abi_enc_init(&e, sel, 5, 4096);
	abi_put_bytes32(&e, task);
	abi_put_address(&e, op);
	abi_put_u64(&e, 1700000000);
	abi_put_uint(&e, &reward);
	abi_put_u64(&e, 5);
	assert_int_equal(abi_enc_finish(&e, &out), FM_OK);
	abi_enc_cleanup(&e);
	assert_buf_hex(&out, "0e62b1e7" W("11")
		   ZEROS24 "70997970c51812dc3a010c7d01b50e0d17dc79c8"
		   "000000000000000000000000000000000000000000000000000000006553f100"
		   "0000000000000000000000000000000000000000000000000de0b6b3a7640000"
		   "0000000000000000000000000000000000000000000000000000000000000005");
	buf_cleanup(&out);
}

static void test_abi__dynamic_arrays_match_cast(void **state)
{
	struct abi_enc e;
	struct buf out = BUF_INIT(4096);
	uint8_t sel[4], task[32], ids[2][32], to[2][20];

	(void)state;
	memset(task, 0x11, 32);
	memset(ids[0], 0x22, 32);
	memset(ids[1], 0x33, 32);
	addr(to[0], "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
	addr(to[1], "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
	abi_selector(sel, "releaseBatch(bytes32,bytes32[],address[])");
	abi_enc_init(&e, sel, 3, 4096);
	abi_put_bytes32(&e, task);
	abi_put_bytes32_array(&e, (const uint8_t(*)[32])ids, 2);
	abi_put_address_array(&e, (const uint8_t(*)[20])to, 2);
	assert_int_equal(abi_enc_finish(&e, &out), FM_OK);
	abi_enc_cleanup(&e);
	assert_buf_hex(&out, "95ec6818" W("11")
		   "0000000000000000000000000000000000000000000000000000000000000060"
		   "00000000000000000000000000000000000000000000000000000000000000c0"
		   "0000000000000000000000000000000000000000000000000000000000000002"
		   W("22") W("33")
		   "0000000000000000000000000000000000000000000000000000000000000002"
		   ZEROS24 "70997970c51812dc3a010c7d01b50e0d17dc79c8"
		   ZEROS24 "3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
	buf_cleanup(&out);
}

static void test_abi__bytes_and_string_padding(void **state)
{
	struct abi_enc e;
	struct buf out = BUF_INIT(4096);
	uint8_t sel[4];

	(void)state;
	abi_selector(sel, "f(bytes,string,bool)");
	abi_enc_init(&e, sel, 3, 4096);
	abi_put_bytes(&e, "\x01\x02", 2);
	abi_put_bytes(&e, "", 0);
	abi_put_bool(&e, 1);
	assert_int_equal(abi_enc_finish(&e, &out), FM_OK);
	abi_enc_cleanup(&e);
	assert_buf_hex(&out, "babecfb0"
		   "0000000000000000000000000000000000000000000000000000000000000060"
		   "00000000000000000000000000000000000000000000000000000000000000a0"
		   "0000000000000000000000000000000000000000000000000000000000000001"
		   "0000000000000000000000000000000000000000000000000000000000000002"
		   "0102000000000000000000000000000000000000000000000000000000000000"
		   "0000000000000000000000000000000000000000000000000000000000000000");
	buf_cleanup(&out);
}

static void test_abi__argument_count_is_checked(void **state)
{
	struct abi_enc e;
	struct buf out = BUF_INIT(4096);

	(void)state;
	abi_enc_init(&e, NULL, 2, 4096);
	abi_put_u64(&e, 1);
	assert_int_equal(abi_enc_finish(&e, &out), FM_EINTERNAL);
	assert_non_null(strstr(fm_error_msg(), "2 arguments declared, 1 put"));
	abi_enc_cleanup(&e);
	abi_enc_init(&e, NULL, 1, 4096);
	abi_put_u64(&e, 1);
	abi_put_u64(&e, 2);
	assert_int_equal(abi_enc_finish(&e, &out), FM_EINTERNAL);
	abi_enc_cleanup(&e);
	/* the size cap holds */
	abi_enc_init(&e, NULL, 1, 64);
	abi_put_bytes(&e, W("ab") W("ab") W("ab"), 192);
	assert_int_equal(abi_enc_finish(&e, &out), FM_ETOOLARGE);
	abi_enc_cleanup(&e);
	assert_int_equal(out.len, 0);
	buf_cleanup(&out);
}

static void test_abi__readers_check_ranges(void **state)
{
	uint8_t data[96] = { 0 }, a[20];
	uint64_t v;
	int b;
	const uint8_t *p;
	size_t n;

	(void)state;
	data[31] = 2;          /* word 0 = 2 */
	data[32 + 11] = 1;     /* word 1: an address with a high byte set */
	data[64 + 24] = 1;     /* word 2 = 2^56 */
	assert_int_equal(abi_get_uint_bits(&v, data, 96, 0, 64, "a"), FM_OK);
	assert_int_equal(v, 2);
	assert_int_equal(abi_get_bool(&b, data, 96, 0, "flag"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "flag: value does not fit"));
	assert_int_equal(abi_get_address(a, data, 96, 1, "to"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "to: not an address"));
	assert_int_equal(abi_get_uint_bits(&v, data, 96, 2, 32, "max"),
			 FM_EINVAL);
	assert_int_equal(abi_get_uint_bits(&v, data, 96, 2, 64, "max"), FM_OK);
	assert_int_equal(v, 1ULL << 56);
	assert_int_equal(abi_get_word(data, data, 96, 3, "x"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "word 3 is missing"));
	/* a dynamic offset or length past the end */
	assert_int_equal(abi_get_bytes(&p, &n, data, 96, 0, "s"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "offset 2"));
	memset(data, 0, sizeof(data));
	data[31] = 32;
	data[63] = 33;
	assert_int_equal(abi_get_bytes(&p, &n, data, 96, 0, "s"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "runs past the end"));
	data[63] = 32;
	assert_int_equal(abi_get_bytes(&p, &n, data, 96, 0, "s"), FM_OK);
	assert_int_equal(n, 32);
	assert_ptr_equal(p, data + 64);
}

static void test_abi__revert_reasons(void **state)
{
	uint8_t data[100];
	char out[64];

	(void)state;
	/* cast calldata "Error(string)" "already paid" */
	assert_int_equal(hex_decode(data, 100,
		"08c379a0"
		"0000000000000000000000000000000000000000000000000000000000000020"
		"000000000000000000000000000000000000000000000000000000000000000c"
		"616c726561647920706169640000000000000000000000000000000000000000"),
		FM_OK);
	abi_revert_reason(out, sizeof(out), data, 100);
	assert_string_equal(out, "already paid");
	/* truncated to the output size, never past it */
	abi_revert_reason(out, 8, data, 100);
	assert_string_equal(out, "already");
	assert_int_equal(hex_decode(data, 36,
		"4e487b71"
		"0000000000000000000000000000000000000000000000000000000000000011"),
		FM_OK);
	abi_revert_reason(out, sizeof(out), data, 36);
	assert_string_equal(out, "panic 0x11 (arithmetic overflow)");
	abi_revert_reason(out, sizeof(out), data, 0);
	assert_string_equal(out, "no reason given");
	data[0] = 0xde;
	abi_revert_reason(out, sizeof(out), data, 36);
	assert_string_equal(out, "custom error 0xde487b71 (36 bytes)");
	/* an Error(string) whose length lies */
	assert_int_equal(hex_decode(data, 68,
		"08c379a0"
		"0000000000000000000000000000000000000000000000000000000000000020"
		"00000000000000000000000000000000000000000000000000000000000000ff"),
		FM_OK);
	abi_revert_reason(out, sizeof(out), data, 68);
	assert_string_equal(out, "custom error 0x08c379a0 (68 bytes)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi__static_call_matches_cast),
		cmocka_unit_test(test_abi__dynamic_arrays_match_cast),
		cmocka_unit_test(test_abi__bytes_and_string_padding),
		cmocka_unit_test(test_abi__argument_count_is_checked),
		cmocka_unit_test(test_abi__readers_check_ranges),
		cmocka_unit_test(test_abi__revert_reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
