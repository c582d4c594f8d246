/* Request signatures: the canonical string, sign/verify round trips, and
 * every refusal (missing, malformed, stale, tampered, wrong signer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/reqsig.h"
#include "chain_assert.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

#define ANVIL0_KEY "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define NOW 1800000000LL

static const char body[] = "{\"spec\":1}";

static struct reqsig_msg msg(void)
{
	struct reqsig_msg m = { "POST", "/v1/tasks?dry=1", body,
				sizeof(body) - 1 };
	return m;
}

static void test_reqsig__canonical_string(void **state)
{
	struct buf b = BUF_INIT(8192);
	struct reqsig_msg m = msg();

	(void)state;
	assert_int_equal(reqsig_canonical(&b, &m, "1800000000",
					  "00112233445566778899aabbccddeeff"),
			 FM_OK);
	/* sha256 of {"spec":1}, by sha256sum */
	assert_string_equal(b.data,
		"fedmarket-request-v1\nPOST\n/v1/tasks?dry=1\n"
		"bc7e620846574cc092d36bfe6fa9a8d623d310853932e6f224cffbd64154cbfc"
		"\n1800000000\n00112233445566778899aabbccddeeff");
	buf_cleanup(&b);
}

static void test_reqsig__sign_then_verify(void **state)
{
	struct chain_key k;
	struct reqsig_headers h;
	struct reqsig_msg m = msg();
	uint8_t who[20];

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, ANVIL0_KEY), FM_OK);
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_OK);
	assert_string_equal(h.address,
			    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
	assert_string_equal(h.timestamp, "1800000000");
	assert_int_equal(strlen(h.nonce), 32);
	assert_int_equal(strlen(h.signature), 132);
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW, 300), FM_OK);
	assert_memory_equal(who, k.addr, 20);
	/* within the skew on both sides */
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW + 300, 300),
			 FM_OK);
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW - 300, 300),
			 FM_OK);
	/* an empty body is the sha256 of nothing, not an error */
	m.body = NULL;
	m.body_len = 0;
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_OK);
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW, 300), FM_OK);
	chain_key_wipe(&k);
}

static void test_reqsig__nonces_are_fresh(void **state)
{
	struct chain_key k;
	struct reqsig_headers a, b;
	struct reqsig_msg m = msg();

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	assert_int_equal(reqsig_sign(&a, &k, &m, NOW), FM_OK);
	assert_int_equal(reqsig_sign(&b, &k, &m, NOW), FM_OK);
	assert_string_not_equal(a.nonce, b.nonce);
	assert_string_not_equal(a.signature, b.signature);
	chain_key_wipe(&k);
}

static void test_reqsig__refuses_tampering(void **state)
{
	struct chain_key k;
	struct reqsig_headers h;
	struct reqsig_msg m = msg(), t;
	uint8_t who[20];

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, ANVIL0_KEY), FM_OK);
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_OK);
	t = m;
	t.body = "{\"spec\":2}";
	assert_int_equal(reqsig_verify(who, &t, h.address, h.timestamp,
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	assert_msg_contains("not by 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
	t = m;
	t.target = "/v1/tasks?dry=0";
	assert_int_equal(reqsig_verify(who, &t, h.address, h.timestamp,
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	t = m;
	t.method = "PUT";
	assert_int_equal(reqsig_verify(who, &t, h.address, h.timestamp,
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	/* a changed timestamp or nonce breaks the signature too */
	assert_int_equal(reqsig_verify(who, &m, h.address, "1800000001",
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	h.nonce[0] = h.nonce[0] == 'a' ? 'b' : 'a';
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	/* someone else's address in the header */
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_OK);
	assert_int_equal(reqsig_verify(who, &m,
				       "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
				       h.timestamp, h.nonce, h.signature, NOW,
				       300), FM_EAUTH);
	assert_msg_contains("signed by 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
	chain_key_wipe(&k);
}

static void test_reqsig__refuses_stale_and_malformed(void **state)
{
	struct chain_key k;
	struct reqsig_headers h;
	struct reqsig_msg m = msg();
	uint8_t who[20];
	char sig[200];

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, ANVIL0_KEY), FM_OK);
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_OK);
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW + 301, 300),
			 FM_EAUTH);
	assert_msg_contains("301 s behind the server's clock");
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, h.signature, NOW - 1000, 300),
			 FM_EAUTH);
	assert_msg_contains("1000 s ahead of");
	assert_int_equal(reqsig_verify(who, &m, NULL, h.timestamp, h.nonce,
				       h.signature, NOW, 300), FM_EAUTH);
	assert_msg_contains("X-Fedmarket-Address is missing");
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, NULL, NOW, 300), FM_EAUTH);
	assert_msg_contains("X-Fedmarket-Signature is missing");
	assert_int_equal(reqsig_verify(who, &m, "0x1234", h.timestamp,
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	assert_msg_contains("X-Fedmarket-Address");
	assert_int_equal(reqsig_verify(who, &m, h.address, "-5", h.nonce,
				       h.signature, NOW, 300), FM_EAUTH);
	assert_msg_contains("X-Fedmarket-Timestamp: expected unix seconds");
	assert_int_equal(reqsig_verify(who, &m, h.address, "01800000000",
				       h.nonce, h.signature, NOW, 300),
			 FM_EAUTH);
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       "abcdef", h.signature, NOW, 300),
			 FM_EAUTH);
	assert_msg_contains("X-Fedmarket-Nonce: expected 32 to 128 hex");
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, "0x1234", NOW, 300), FM_EAUTH);
	assert_msg_contains("X-Fedmarket-Signature: expected 0x and 130");
	/* v = 29 */
	snprintf(sig, sizeof(sig), "%.130s1d", h.signature);
	assert_int_equal(reqsig_verify(who, &m, h.address, h.timestamp,
				       h.nonce, sig, NOW, 300), FM_EAUTH);
	assert_msg_contains("v is 29");
	/* a method or target that could make two requests sign alike */
	m.target = "/v1/tasks\nPOST";
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_EINVAL);
	assert_msg_contains("control character");
	m.target = "v1/tasks";
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_EINVAL);
	m = msg();
	m.method = "post";
	assert_int_equal(reqsig_sign(&h, &k, &m, NOW), FM_EINVAL);
	chain_key_wipe(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reqsig__canonical_string),
		cmocka_unit_test(test_reqsig__sign_then_verify),
		cmocka_unit_test(test_reqsig__nonces_are_fresh),
		cmocka_unit_test(test_reqsig__refuses_tampering),
		cmocka_unit_test(test_reqsig__refuses_stale_and_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
