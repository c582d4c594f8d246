/* Unit tests of common/core: errors, buffers, hex, JSON getters, config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "core/sha256.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_err__set_returns_code_and_keeps_one_line(void **state)
{
	(void)state;
	assert_int_equal(fm_error_set(FM_EINVAL, "bad\nvalue %d", 3),
			 FM_EINVAL);
	assert_string_equal(fm_error_msg(), "bad value 3");
	assert_int_equal(fm_error_code(), FM_EINVAL);
	fm_error_prefix("task.json");
	assert_string_equal(fm_error_msg(), "task.json: bad value 3");
	fm_error_set(FM_EUNPROCESSABLE, "bundle: %s", fm_error_msg());
	assert_string_equal(fm_error_msg(), "bundle: task.json: bad value 3");
	fm_error_clear();
	assert_string_equal(fm_error_msg(), "");
	assert_int_equal(fm_error_code(), FM_OK);
}

static void test_err__http_mapping(void **state)
{
	(void)state;
	assert_int_equal(fm_err_http_status(FM_EINVAL), 400);
	assert_int_equal(fm_err_http_status(FM_EAUTH), 401);
	assert_int_equal(fm_err_http_status(FM_EFORBIDDEN), 403);
	assert_int_equal(fm_err_http_status(FM_ENOTFOUND), 404);
	assert_int_equal(fm_err_http_status(FM_ECONFLICT), 409);
	assert_int_equal(fm_err_http_status(FM_ETOOLARGE), 413);
	assert_int_equal(fm_err_http_status(FM_EUNPROCESSABLE), 422);
	assert_int_equal(fm_err_http_status(FM_EUNAVAIL), 503);
	assert_int_equal(fm_err_http_status(-999), 500);
	assert_string_equal(fm_err_name(FM_ECONFLICT), "conflict");
}

static void test_err__long_message_is_truncated_not_overflowed(void **state)
{
	char big[FM_ERR_MSG_MAX * 2];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fm_error_set(FM_EINVAL, "%s", big);
	assert_int_equal(strlen(fm_error_msg()), FM_ERR_MSG_MAX - 1);
	fm_error_prefix("%s", big);
	assert_int_equal(strlen(fm_error_msg()), FM_ERR_MSG_MAX - 1);
}

static void test_buf__append_grows_and_caps(void **state)
{
	struct buf b = BUF_INIT(10);

	(void)state;
	assert_int_equal(buf_append(&b, "hello", 5), FM_OK);
	assert_int_equal(buf_appendf(&b, "%d", 1234), FM_OK);
	assert_string_equal(b.data, "hello1234");
	assert_int_equal(b.len, 9);
	/* going past the cap frees and reports */
	assert_int_equal(buf_append(&b, "ab", 2), FM_ETOOLARGE);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	buf_cleanup(&b);
	buf_cleanup(&b); /* idempotent */
}

static void test_buf__read_file_respects_limit(void **state)
{
	char path[] = "/tmp/fm_core_test_XXXXXX";
	int fd = mkstemp(path);
	struct buf b = BUF_INIT(4);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "12345", 5), 5);
	close(fd);
	assert_int_equal(buf_read_file(&b, path), FM_ETOOLARGE);
	assert_non_null(strstr(fm_error_msg(), path));
	b.max = 5;
	assert_int_equal(buf_read_file(&b, path), FM_OK);
	assert_string_equal(b.data, "12345");
	buf_cleanup(&b);
	unlink(path);
	assert_int_equal(buf_read_file(&b, path), FM_ENOTFOUND);
	buf_cleanup(&b);
}

static void test_buf__hex_round_trip_and_rejects(void **state)
{
	uint8_t in[4] = { 0x00, 0xab, 0x10, 0xff }, out[4];
	char hex[9];

	(void)state;
	hex_encode(hex, in, 4);
	assert_string_equal(hex, "00ab10ff");
	assert_int_equal(hex_decode(out, 4, "0x00AB10ff"), FM_OK);
	assert_memory_equal(in, out, 4);
	assert_int_equal(hex_decode(out, 4, "00ab10f"), FM_EINVAL);
	assert_int_equal(hex_decode(out, 4, "00ab10fg"), FM_EINVAL);
	assert_int_equal(hex_decode(out, 4, NULL), FM_EINVAL);
}

static void test_sha256__known_vectors(void **state)
{
	char hex[65];

	(void)state;
	fm_sha256_hex(hex, "", 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	fm_sha256_hex(hex, "abc", 3);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad");
}

static json_t *parse(const char *s)
{
	json_t *j = NULL;

	assert_int_equal(fj_parse(&j, s, strlen(s), "test"), FM_OK);
	return j;
}

static void test_fjson__getters_name_the_field_path(void **state)
{
	json_t *j = parse("{\"training\":{\"batch_size\":0,\"lr\":0.1,"
			  "\"name\":\"x\",\"opt\":\"adam\"}}");
	json_t *t;
	long long bs;
	double lr;
	const char *name;
	int opt;
	static const char *const opts[] = { "sgd", "adam", NULL };

	(void)state;
	assert_int_equal(fj_obj(j, "task", "training", &t), FM_OK);
	assert_int_equal(fj_int(t, "task.training", "batch_size", 1,
				LLONG_MAX, &bs),
			 FM_EINVAL);
	assert_string_equal(fm_error_msg(),
			    "task.training.batch_size: expected integer >= 1");
	assert_int_equal(fj_num(t, "task.training", "lr", 0, 1, &lr), FM_OK);
	assert_true(lr > 0.09 && lr < 0.11);
	assert_int_equal(fj_str(t, "task.training", "name", 10, &name), FM_OK);
	assert_string_equal(name, "x");
	assert_int_equal(fj_enum(t, "task.training", "opt", opts, &opt),
			 FM_OK);
	assert_int_equal(opt, 1);
	assert_int_equal(fj_int(t, "task.training", "missing", 0, 1, &bs),
			 FM_EINVAL);
	assert_string_equal(fm_error_msg(),
			    "task.training.missing: required field is missing");
	assert_int_equal(fj_int_opt(t, "task.training", "missing", 0, 9, 7,
				    &bs),
			 FM_OK);
	assert_int_equal(bs, 7);
	assert_int_equal(fj_str(t, "task.training", "lr", 10, &name),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "task.training.lr: expected "
					       "string"));
	json_decref(j);
}

static void test_fjson__enum_and_unknown_fields(void **state)
{
	json_t *j = parse("{\"kind\":\"bogus\",\"extra\":1}");
	static const char *const kinds[] = { "a", "b", NULL };
	static const char *const allowed[] = { "kind", NULL };
	int k;

	(void)state;
	assert_int_equal(fj_enum(j, "task", "kind", kinds, &k), FM_EINVAL);
	assert_string_equal(fm_error_msg(),
			    "task.kind: expected one of \"a\", \"b\"");
	assert_int_equal(fj_no_unknown(j, "task", allowed), FM_EINVAL);
	assert_string_equal(fm_error_msg(), "task.extra: unknown field");
	json_decref(j);
}

static void test_fjson__parse_errors_give_position(void **state)
{
	json_t *j = NULL;

	(void)state;
	assert_int_equal(fj_parse(&j, "{\"a\":1,}", 8, "body"), FM_EINVAL);
	assert_null(j);
	assert_non_null(strstr(fm_error_msg(), "body: invalid JSON at line 1"));
	/* duplicate keys are ambiguous: refused */
	assert_int_equal(fj_parse(&j, "{\"a\":1,\"a\":2}", 13, "body"),
			 FM_EINVAL);
}

static void test_fjson__number_bounds_and_nonfinite(void **state)
{
	json_t *j = parse("{\"x\":5,\"y\":true}");
	double d;
	int b;

	(void)state;
	assert_int_equal(fj_num(j, "", "x", 0, 1, &d), FM_EINVAL);
	assert_string_equal(fm_error_msg(), "x: expected number in [0, 1]");
	assert_int_equal(fj_bool(j, "", "y", &b), FM_OK);
	assert_true(b);
	assert_int_equal(fj_bool(j, "", "x", &b), FM_EINVAL);
	json_decref(j);
}

static void clear_env(void)
{
	unsetenv("FEDMARKET_CONFIG");
	unsetenv("FEDMARKET_HTTP_THREADS");
	unsetenv("FEDMARKET_NO_SUCH_KEY");
	unsetenv("FEDMARKET_LOG_LEVEL");
}

static void test_cfg__defaults_file_then_env(void **state)
{
	char path[] = "/tmp/fm_cfg_test_XXXXXX";
	int fd = mkstemp(path);
	struct fm_config c;
	const char *text = "# comment\nhttp_threads = 9\n"
			   "storage_url = s3://bucket/prefix\n";

	(void)state;
	clear_env();
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(cfg_load(&c, path), FM_OK);
	assert_int_equal(c.http_threads, 9);
	assert_string_equal(c.storage_url, "s3://bucket/prefix");
	assert_int_equal(c.chain_id, 31337); /* default */
	setenv("FEDMARKET_HTTP_THREADS", "12", 1);
	assert_int_equal(cfg_load(&c, path), FM_OK);
	assert_int_equal(c.http_threads, 12);
	clear_env();
	unlink(path);
}

static void test_cfg__unknown_keys_and_bad_values_are_errors(void **state)
{
	char path[] = "/tmp/fm_cfg_test_XXXXXX";
	int fd = mkstemp(path);
	struct fm_config c;
	const char *text = "htp_threads = 9\n";

	(void)state;
	clear_env();
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(cfg_load(&c, path), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), ":1: unknown setting "
					       "\"htp_threads\""));
	unlink(path);

	setenv("FEDMARKET_NO_SUCH_KEY", "1", 1);
	assert_int_equal(cfg_load(&c, "/dev/null"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "FEDMARKET_NO_SUCH_KEY"));
	clear_env();

	setenv("FEDMARKET_HTTP_THREADS", "0", 1);
	assert_int_equal(cfg_load(&c, "/dev/null"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "http_threads: expected "
					       "integer in [1, 256]"));
	clear_env();

	setenv("FEDMARKET_LOG_LEVEL", "loud", 1);
	assert_int_equal(cfg_load(&c, "/dev/null"), FM_EINVAL);
	clear_env();
	assert_int_equal(cfg_load(&c, "/nonexistent/fm.conf"), FM_EINVAL);
}

static void test_cfg__table_sorted_and_secrets_hidden(void **state)
{
	size_t n;
	const struct cfg_key *k = cfg_keys(&n);
	struct fm_config c;
	char v[64];

	(void)state;
	clear_env();
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(k[i - 1].name, k[i].name) < 0);
	assert_int_equal(cfg_load(&c, "/dev/null"), FM_OK);
	assert_int_equal(cfg_set(&c, "s3_secret_key", "hunter2", "test"),
			 FM_OK);
	assert_int_equal(cfg_get(&c, "s3_secret_key", v, sizeof(v)), FM_OK);
	assert_string_equal(v, "***");
	assert_int_equal(cfg_get(&c, "chain_id", v, sizeof(v)), FM_OK);
	assert_string_equal(v, "31337");
}

static void test_log__levels_filter_and_json_lines(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	log_set_stream(f);
	log_init("test", LOG_WARN, 1);
	log_info("hidden");
	log_ctx_set("req-1");
	log_warn("shown %d", 42);
	log_ctx_set(NULL);
	fflush(f);
	assert_null(strstr(text, "hidden"));
	assert_non_null(strstr(text, "\"msg\":\"shown 42\""));
	assert_non_null(strstr(text, "\"ctx\":\"req-1\""));
	assert_non_null(strstr(text, "\"level\":\"warn\""));
	log_set_stream(NULL);
	log_init("test", LOG_INFO, 0);
	fclose(f);
	free(text);
	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("nope"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err__set_returns_code_and_keeps_one_line),
		cmocka_unit_test(test_err__http_mapping),
		cmocka_unit_test(
			test_err__long_message_is_truncated_not_overflowed),
		cmocka_unit_test(test_buf__append_grows_and_caps),
		cmocka_unit_test(test_buf__read_file_respects_limit),
		cmocka_unit_test(test_buf__hex_round_trip_and_rejects),
		cmocka_unit_test(test_sha256__known_vectors),
		cmocka_unit_test(test_fjson__getters_name_the_field_path),
		cmocka_unit_test(test_fjson__enum_and_unknown_fields),
		cmocka_unit_test(test_fjson__parse_errors_give_position),
		cmocka_unit_test(test_fjson__number_bounds_and_nonfinite),
		cmocka_unit_test(test_cfg__defaults_file_then_env),
		cmocka_unit_test(
			test_cfg__unknown_keys_and_bad_values_are_errors),
		cmocka_unit_test(test_cfg__table_sorted_and_secrets_hidden),
		cmocka_unit_test(test_log__levels_filter_and_json_lines),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
