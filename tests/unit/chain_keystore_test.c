/* Keystore v3: the Web3 Secret Storage test vectors (scrypt and PBKDF2),
 * round trips, and refusal of wrong passwords and damaged files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/keystore.h"
#include "chain_assert.h"
#include "core/err.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VECTOR_KEY "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"

static const struct ks_params light = KS_SCRYPT_LIGHT;

static void fixture(char *out, size_t n, const char *name)
{
	const char *top = getenv("FM_TOP");

	snprintf(out, n, "%s/tests/fixtures/chain/%s", top ? top : ".", name);
}

static void assert_key_hex(const struct chain_key *k, const char *hex)
{
	char h[65];

	hex_encode(h, k->priv, 32);
	assert_string_equal(h, hex);
}

static void test_ks__decrypts_spec_vectors(void **state)
{
	struct chain_key k;
	char path[4096];

	(void)state;
	fixture(path, sizeof(path), "keystore_pbkdf2.json");
	assert_int_equal(ks_load(&k, path, "testpassword"), FM_OK);
	assert_key_hex(&k, VECTOR_KEY);
	fixture(path, sizeof(path), "keystore_scrypt.json");
	assert_int_equal(ks_load(&k, path, "testpassword"), FM_OK);
	assert_key_hex(&k, VECTOR_KEY);
	chain_key_wipe(&k);
}

static void test_ks__wrong_password_is_clear(void **state)
{
	struct chain_key k;
	char path[4096];

	(void)state;
	memset(&k, 0x5a, sizeof(k));
	fixture(path, sizeof(path), "keystore_pbkdf2.json");
	assert_int_equal(ks_load(&k, path, "testpassword "), FM_EAUTH);
	assert_msg_contains("keystore_pbkdf2.json: wrong password");
	/* k is untouched: no partial key escapes */
	for (size_t i = 0; i < sizeof(k.priv); i++)
		assert_int_equal(k.priv[i], 0x5a);
}

static void test_ks__round_trip(void **state)
{
	struct chain_key k, back;
	struct buf json = BUF_INIT(KS_FILE_MAX);

	(void)state;
	assert_int_equal(chain_key_generate(&k), FM_OK);
	assert_int_equal(ks_encrypt(&json, &k, "pässwörd", &light), FM_OK);
	assert_non_null(strstr(json.data, "\"kdf\":\"scrypt\""));
	assert_int_equal(ks_decrypt(&back, json.data, json.len, "pässwörd",
				    "mem"), FM_OK);
	assert_memory_equal(back.priv, k.priv, 32);
	assert_memory_equal(back.addr, k.addr, 20);
	assert_int_equal(ks_decrypt(&back, json.data, json.len, "password",
				    "mem"), FM_EAUTH);
	/* an empty password is a password */
	buf_reset(&json);
	assert_int_equal(ks_encrypt(&json, &k, "", &light), FM_OK);
	assert_int_equal(ks_decrypt(&back, json.data, json.len, "", "mem"),
			 FM_OK);
	assert_memory_equal(back.priv, k.priv, 32);
	buf_cleanup(&json);
	chain_key_wipe(&k);
	chain_key_wipe(&back);
}

static void test_ks__save_is_private_and_named(void **state)
{
	char dir[] = "/tmp/fm-ks-test-XXXXXX", path[4096], sub[4200];
	struct chain_key k, back;
	uint8_t peek[20];
	struct stat st;
	char addr_hex[41];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/keys", dir);
	assert_int_equal(chain_key_generate(&k), FM_OK);
	assert_int_equal(ks_save(path, sizeof(path), sub, &k, "pw", &light),
			 FM_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	hex_encode(addr_hex, k.addr, 20);
	assert_non_null(strstr(path, "/UTC--"));
	assert_non_null(strstr(path, addr_hex));
	assert_int_equal(ks_peek_address(peek, path), FM_OK);
	assert_memory_equal(peek, k.addr, 20);
	assert_int_equal(ks_load(&back, path, "pw"), FM_OK);
	assert_memory_equal(back.priv, k.priv, 32);
	/* no temporary file left behind */
	{
		DIR *d = opendir(sub);
		struct dirent *e;
		int files = 0;

		assert_non_null(d);
		while ((e = readdir(d)))
			files += e->d_name[0] != '.';
		closedir(d);
		assert_int_equal(files, 1);
	}
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
	chain_key_wipe(&k);
	chain_key_wipe(&back);
}

/* Encrypts a known key, replaces `from` by `to` once in the JSON, and
 * expects decryption to fail with code and a message naming part. */
static void assert_damaged(const char *from, const char *to, int code,
			   const char *part)
{
	struct chain_key k, out;
	struct buf json = BUF_INIT(KS_FILE_MAX), bad = BUF_INIT(KS_FILE_MAX);
	char *at;

	assert_int_equal(chain_key_from_hex(&k, VECTOR_KEY), FM_OK);
	assert_int_equal(ks_encrypt(&json, &k, "pw", &light), FM_OK);
	at = strstr(json.data, from);
	if (!at)
		fail_msg("\"%s\" not in %s", from, json.data);
	assert_int_equal(buf_append(&bad, json.data,
				    (size_t)(at - json.data)), FM_OK);
	assert_int_equal(buf_appends(&bad, to), FM_OK);
	assert_int_equal(buf_appends(&bad, at + strlen(from)), FM_OK);
	assert_int_equal(ks_decrypt(&out, bad.data, bad.len, "pw", "k.json"),
			 code);
	assert_msg_contains(part);
	buf_cleanup(&json);
	buf_cleanup(&bad);
}

static void test_ks__refuses_damaged_files(void **state)
{
	(void)state;
	assert_damaged("{\"address\"", "[", FM_EINVAL, "k.json: invalid JSON");
	assert_damaged("\"version\":3", "\"version\":1", FM_EINVAL, "version");
	assert_damaged("\"crypto\"", "\"krypto\"", FM_EINVAL, "crypto");
	assert_damaged("aes-128-ctr", "aes-256-gcm", FM_EINVAL,
		       "crypto.cipher: \"aes-256-gcm\" is not supported");
	assert_damaged("\"ciphertext\":\"", "\"ciphertext\":\"00", FM_EINVAL,
		       "crypto.ciphertext");
	assert_damaged("\"iv\":\"", "\"iv\":\"zz", FM_EINVAL,
		       "crypto.cipherparams.iv");
	assert_damaged("\"kdf\":\"scrypt\"", "\"kdf\":\"argon2\"", FM_EINVAL,
		       "crypto.kdf: \"argon2\" is not supported");
	assert_damaged("\"n\":4096", "\"n\":4095", FM_EINVAL,
		       "crypto.kdfparams.n: 4095 is not a power of two");
	/* a keystore may not make us allocate gigabytes */
	assert_damaged("\"n\":4096", "\"n\":1073741824", FM_EINVAL,
		       "more than 512 MiB");
	assert_damaged("\"dklen\":32", "\"dklen\":16", FM_EINVAL,
		       "crypto.kdfparams.dklen");
	/* a flipped MAC digit cannot be told from a wrong password */
	assert_damaged("\"mac\":\"", "\"mac\":\"f", FM_EINVAL, "crypto.mac");
	/* a key that is not the address it claims */
	assert_damaged("\"address\":\"", "\"address\":\"1", FM_EINVAL,
		       "address");
}

static void test_ks__refuses_foreign_address(void **state)
{
	struct chain_key k, out;
	struct buf json = BUF_INIT(KS_FILE_MAX);
	char hex[41];
	char *at;

	(void)state;
	assert_int_equal(chain_key_from_hex(&k, VECTOR_KEY), FM_OK);
	assert_int_equal(ks_encrypt(&json, &k, "pw", &light), FM_OK);
	hex_encode(hex, k.addr, 20);
	at = strstr(json.data, hex);
	assert_non_null(at);
	at[39] = at[39] == '0' ? '1' : '0';
	assert_int_equal(ks_decrypt(&out, json.data, json.len, "pw", "k"),
			 FM_EINVAL);
	assert_msg_contains("belongs to another address");
	buf_cleanup(&json);
}

static void test_ks__refuses_huge_file(void **state)
{
	struct chain_key out;
	char *big = malloc(KS_FILE_MAX + 2);

	(void)state;
	assert_non_null(big);
	memset(big, ' ', KS_FILE_MAX + 1);
	big[KS_FILE_MAX + 1] = '\0';
	assert_int_equal(ks_decrypt(&out, big, KS_FILE_MAX + 1, "pw", "big"),
			 FM_ETOOLARGE);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ks__decrypts_spec_vectors),
		cmocka_unit_test(test_ks__wrong_password_is_clear),
		cmocka_unit_test(test_ks__round_trip),
		cmocka_unit_test(test_ks__save_is_private_and_named),
		cmocka_unit_test(test_ks__refuses_damaged_files),
		cmocka_unit_test(test_ks__refuses_foreign_address),
		cmocka_unit_test(test_ks__refuses_huge_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
