/* clients/lib/cli: the option parser (values, ranges, flags,
 * positionals, options before and after the command word, --help and
 * --version, usage errors), the marketplace CLIs' common options and
 * configuration, ids, wei formatting, task training options and data
 * loading by a task's spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "cli/view.h"
#include "cli/work.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(struct cli *c, const struct opt *opts, const char **pos,
		 int min_pos, int max_pos, int *code, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return cli_parse(c, opts, argc, argv, "ARGS", pos, min_pos, max_pos,
			 code);
}

static void test_cli__parses_values_flags_and_positionals(void **state)
{
	const char *s = NULL, *pos[2] = { NULL, NULL };
	long n = 5;
	double x = 0;
	int f = 0, code = -1;
	const struct opt opts[] = {
		{ "--name", OPT_STR, &s, "S", "a string", 0, 0 },
		{ "--count", OPT_LONG, &n, "N", "an int", 1, 10 },
		{ "--rate", OPT_NUM, &x, "X", "a number", 0, 1 },
		{ "--flag", OPT_FLAG, &f, NULL, "a flag", 0, 0 },
		OPT_END,
	};
	struct cli c;

	(void)state;
	cli_init(&c, "test");
	c.cmd = "cmd";
	assert_int_equal(parse(&c, opts, pos, 1, 2, &code, 9, "cmd", "first",
			       "--name", "abc", "--count=7", "--rate", "0.5",
			       "--flag", "--json"),
			 1);
	assert_string_equal(s, "abc");
	assert_int_equal(n, 7);
	assert_true(x == 0.5);
	assert_int_equal(f, 1);
	assert_int_equal(c.json, 1);
	assert_int_equal(c.progress, 0); /* --json turns bars off */
	assert_string_equal(pos[0], "first");
	assert_null(pos[1]);
}

static void test_cli__usage_errors_exit_2(void **state)
{
	long n = 5;
	int f = 0, code = -1;
	const char *pos[1] = { NULL };
	const struct opt opts[] = {
		{ "--count", OPT_LONG, &n, "N", "an int", 1, 10 },
		{ "--flag", OPT_FLAG, &f, NULL, "a flag", 0, 0 },
		OPT_END,
	};
	struct cli c;

	(void)state;
	cli_init(&c, "test");
	c.cmd = "cmd";
	assert_int_equal(parse(&c, opts, pos, 0, 1, &code, 3, "cmd", "--count",
			       "11"), 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(n, 5); /* unchanged */
	assert_int_equal(parse(&c, opts, pos, 0, 1, &code, 2, "cmd", "--nope"),
			 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(parse(&c, opts, pos, 0, 1, &code, 2, "cmd", "--count"),
			 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(parse(&c, opts, pos, 0, 1, &code, 2, "cmd",
			       "--flag=1"), 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(parse(&c, opts, pos, 0, 1, &code, 3, "cmd", "a", "b"),
			 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(parse(&c, opts, pos, 1, 1, &code, 1, "cmd"), 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(parse(&c, opts, pos, 0, 1, &code, 2, "cmd", "--help"),
			 0);
	assert_int_equal(code, CLI_OK);
}

/* argv of string literals, as main gets it (writable, NULL-terminated) */
static int make_argv(char **argv, size_t max, const char *const *words)
{
	int n = 0;

	while (words[n] && (size_t)n + 1 < max) {
		argv[n] = (char *)words[n];
		n++;
	}
	argv[n] = NULL;
	return n;
}

static void test_opt__options_and_positionals_mix_in_any_order(void **state)
{
	const char *name = NULL, *pos[3] = { NULL, NULL, NULL };
	int n = 0, flag = 0, npos = -1, code = -1;
	uint64_t big = 0;
	const struct opt opts[] = {
		{ "--name", OPT_STR, &name, "S", "a string", 0, 0 },
		{ "--n", OPT_INT, &n, "N", "an int", 0, 0 },
		{ "--big", OPT_U64, &big, "N", "a large count", 0, 0 },
		{ "--flag", OPT_FLAG, &flag, NULL, "a flag", 0, 0 },
		OPT_END,
	};
	const struct opt_spec s = { .prog = "p", .cmd = "c", .synopsis = "A...",
				    .opts = opts, .pos = pos, .max_pos = 3,
				    .npos = &npos };
	static const char *const line[] = { "c", "a", "--name=x y", "b",
		"--flag", "--n", "-7", "--big", "18446744073709551615", "--",
		"--not-an-option", NULL };
	char *argv[16];
	int argc = make_argv(argv, 16, line);

	(void)state;
	assert_int_equal(opt_parse(&s, argc, argv, &code), 1);
	assert_int_equal(code, CLI_OK); /* what a command returns on success */
	assert_string_equal(name, "x y");
	assert_int_equal(n, -7);
	assert_true(big == UINT64_MAX);
	assert_int_equal(flag, 1);
	assert_int_equal(npos, 3);
	assert_string_equal(pos[0], "a");
	assert_string_equal(pos[1], "b");
	assert_string_equal(pos[2], "--not-an-option");
}

static void test_opt__help_version_and_bad_values(void **state)
{
	const char *own = NULL;
	int code = -1;
	uint64_t u = 5;
	const struct opt opts[] = {
		{ "--version", OPT_STR, &own, "V", "the command's own", 0, 0 },
		{ "--u", OPT_U64, &u, "N", "a count", 0, 0 },
		OPT_END,
	};
	const struct opt_spec s = { .prog = "p", .cmd = "c", .opts = opts };
	const struct opt_spec bare = { .prog = "p", .cmd = "c" };
	char *argv[8];

	(void)state;
	assert_int_equal(opt_parse(&s, make_argv(argv, 8, (const char *[]){
		"c", "--help", NULL }), argv, &code), 0);
	assert_int_equal(code, CLI_OK);
	assert_int_equal(opt_parse(&bare, make_argv(argv, 8, (const char *[]){
		"c", "--version", NULL }), argv, &code), 0);
	assert_int_equal(code, CLI_OK);
	/* a command's own --version wins over the built-in */
	assert_int_equal(opt_parse(&s, make_argv(argv, 8, (const char *[]){
		"c", "--version", "3", NULL }), argv, &code), 1);
	assert_string_equal(own, "3");
	assert_int_equal(opt_parse(&s, make_argv(argv, 8, (const char *[]){
		"c", "--u", "-1", NULL }), argv, &code), 0);
	assert_int_equal(code, CLI_USAGE);
	assert_true(u == 5);
	/* options are never abbreviated */
	assert_int_equal(opt_parse(&s, make_argv(argv, 8, (const char *[]){
		"c", "--vers", "3", NULL }), argv, &code), 0);
	assert_int_equal(code, CLI_USAGE);
	assert_int_equal(opt_parse(&bare, make_argv(argv, 8, (const char *[]){
		"c", "x", NULL }), argv, &code), 0);
	assert_int_equal(code, CLI_USAGE);
}

struct row {
	struct opt_command cmd;
	int id;
};

static const struct row rows[] = {
	{ { "list", NULL, "list" }, 1 },
	{ { "show", "ID", "show" }, 2 },
};

static void test_opt__the_command_word_is_found_among_options(void **state)
{
	const char *config = NULL;
	int json = 0, code = -1, argc;
	const struct opt common[] = {
		{ "--config", OPT_STR, &config, "FILE", "config", 0, 0 },
		{ "--json", OPT_FLAG, &json, NULL, "json", 0, 0 },
		OPT_END,
	};
	const struct opt_prog p = { .prog = "p", .about = "a test",
				    .common = common, .cmds = OPT_ROWS(rows) };
	char *argv[12];
	size_t k = 99;

	(void)state;
	/* program options, and a command's option with its value, before
	 * the word; the word goes first, the rest keeps its order */
	argc = make_argv(argv, 12, (const char *[]){ "p", "--config", "show",
		"--state", "open", "--json", "show", "7", "--mine", NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 1);
	assert_int_equal(rows[k].id, 2);
	assert_int_equal(argc, 8);
	assert_string_equal(argv[0], "show");
	assert_string_equal(argv[1], "--config");
	assert_string_equal(argv[2], "show");
	assert_string_equal(argv[3], "--state");
	assert_string_equal(argv[6], "7");
	assert_string_equal(argv[7], "--mine");
	assert_null(argv[8]);
	/* an unknown flag just before the word does not swallow it */
	argc = make_argv(argv, 12, (const char *[]){ "p", "--mine", "list",
		NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 1);
	assert_int_equal(rows[k].id, 1);
	assert_string_equal(argv[1], "--mine");
	/* help CMD is CMD --help */
	argc = make_argv(argv, 12, (const char *[]){ "p", "help", "show",
		NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 1);
	assert_int_equal(argc, 2);
	assert_string_equal(argv[0], "show");
	assert_string_equal(argv[1], "--help");
	argc = make_argv(argv, 12, (const char *[]){ "p", "--help", NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 0);
	assert_int_equal(code, CLI_OK);
	argc = make_argv(argv, 12, (const char *[]){ "p", "--version",
		"list", NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 0);
	assert_int_equal(code, CLI_OK);
	argc = make_argv(argv, 12, (const char *[]){ "p", "--json", NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 0);
	assert_int_equal(code, CLI_USAGE);
	argc = make_argv(argv, 12, (const char *[]){ "p", "lsit", NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 0);
	assert_int_equal(code, CLI_USAGE);
	argc = make_argv(argv, 12, (const char *[]){ "p", "--bogus", NULL });
	assert_int_equal(opt_command(&p, &argc, argv, &k, &code), 0);
	assert_int_equal(code, CLI_USAGE);
}

static void test_cli__config_after_the_command_is_loaded(void **state)
{
	const struct opt opts[] = { OPT_END };
	int code = -1;
	struct cli c;

	(void)state;
	cli_init(&c, "test");
	c.cmd = "cmd";
	assert_int_equal(parse(&c, opts, NULL, 0, 0, &code, 3, "cmd",
			       "--config", "/nonexistent/fm.conf"), 0);
	assert_int_equal(code, CLI_ERR);
	assert_non_null(strstr(fm_error_msg(), "/nonexistent/fm.conf"));
	cli_cleanup(&c);
}

static void test_cli__ids_are_checked_and_lowercased(void **state)
{
	char tid[67], uuid[37];

	(void)state;
	assert_int_equal(cli_task_id(tid, "0xABCDEF0000000000000000000000000000"
					  "000000000000000000000000000001"),
			 FM_OK);
	assert_string_equal(tid, "0xabcdef00000000000000000000000000000000000"
				 "00000000000000000000001");
	assert_int_equal(cli_task_id(tid, "0x12"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "64 hex"));
	assert_int_equal(cli_task_id(tid, "0xg000000000000000000000000000000000"
					  "000000000000000000000000000001"),
			 FM_EINVAL);
	assert_int_equal(cli_uuid(uuid, "123E4567-E89B-12D3-A456-426614174000",
				  "result"), FM_OK);
	assert_string_equal(uuid, "123e4567-e89b-12d3-a456-426614174000");
	assert_int_equal(cli_uuid(uuid, "123e4567e89b12d3a456426614174000",
				  "result"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "result"));
}

static void test_cli__formats_wei_as_ether(void **state)
{
	char out[96];

	(void)state;
	cli_format_wei(out, sizeof(out), "100000000000000000");
	assert_string_equal(out, "0.1 ETH");
	cli_format_wei(out, sizeof(out), "2500000000000000000");
	assert_string_equal(out, "2.5 ETH");
	cli_format_wei(out, sizeof(out), "1");
	assert_string_equal(out, "0.000000000000000001 ETH");
	cli_format_wei(out, sizeof(out), "0");
	assert_string_equal(out, "0 ETH");
	cli_format_wei(out, sizeof(out), "x");
	assert_string_equal(out, "x wei");
}

static const char spec_text[] =
	"{\"training\": {\"epochs\": 2, \"batch_size\": 16, \"learning_rate\":"
	" 0.01, \"optimizer\": \"sgd\", \"momentum\": 0.9, \"loss\":"
	" \"sparse_categorical_crossentropy\", \"from_logits\": true,"
	" \"seed\": 3, \"data\": {\"kind\": \"tabular\", \"format\": \"csv\","
	" \"inputs\": [\"a\", \"b\"], \"label_column\": \"y\","
	" \"preprocessing\": {\"scale\": 2}}}}";

static void test_cli__training_options_come_from_the_spec(void **state)
{
	json_t *spec = json_loads(spec_text, 0, NULL), *bad;
	struct ml_train_opts o;

	(void)state;
	assert_non_null(spec);
	assert_int_equal(work_train_opts(&o, spec), FM_OK);
	assert_int_equal(o.epochs, 2);
	assert_int_equal(o.batch_size, 16);
	assert_int_equal(o.optimizer, ML_OPT_SGD);
	assert_true(o.momentum == 0.9);
	assert_int_equal(o.from_logits, 1);
	assert_int_equal((int)o.seed, 3);
	bad = json_deep_copy(spec);
	json_object_set_new(json_object_get(bad, "training"), "optimizer",
			    json_string("rmsprop"));
	assert_int_not_equal(work_train_opts(&o, bad), FM_OK);
	assert_non_null(strstr(fm_error_msg(), "optimizer"));
	json_object_del(bad, "training");
	assert_int_equal(work_train_opts(&o, bad), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "task.training"));
	json_decref(bad);
	json_decref(spec);
}

static void test_cli__data_is_read_as_the_spec_says(void **state)
{
	json_t *spec = json_loads(spec_text, 0, NULL);
	char path[] = "/tmp/fm_cli_test_XXXXXX";
	struct ml_dataset d = { 0 };
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("b,y,a\n4,1,2\n8,0,6\n", f);
	fclose(f);
	assert_int_equal(work_load_data(&d, spec, path), FM_OK);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.x_size, 2);
	/* columns in the spec's order (a, b), divided by the scale 2 */
	assert_true(d.x[0] == 1.0f && d.x[1] == 2.0f);
	assert_true(d.y[0] == 1.0f && d.y[1] == 0.0f);
	ml_dataset_cleanup(&d);
	assert_int_not_equal(work_load_data(&d, spec, "/nonexistent.csv"),
			     FM_OK);
	json_object_set_new(json_object_get(json_object_get(spec, "training"),
					    "data"),
			    "format", json_string("idx"));
	assert_int_equal(work_load_data(&d, spec, path), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "*images*"));
	unlink(path);
	json_decref(spec);
}

/* A hint names what fixes the thing that failed, or there is none: the
 * same code gets different hints for a file, a password, an assignment,
 * a result, the chain node and a service. */
static void test_cli__hints_name_what_failed(void **state)
{
	struct api *a = NULL;
	json_t *out = NULL;
	struct cli c;
	const char *h;

	(void)state;
	cli_init(&c, "fedmarket-contributor");
	fm_error_set(FM_ENOTFOUND, "data /nope: No such file or directory");
	c.on = CLI_ON_FILE;
	assert_null(cli_hint(&c, FM_ENOTFOUND)); /* the message names it */
	c.on = CLI_ON_NONE;
	assert_null(cli_hint(&c, FM_ENOTFOUND));
	c.on = CLI_ON_PASSWORD;
	assert_non_null(strstr(cli_hint(&c, FM_ENOTFOUND), "--password-file"));
	assert_non_null(strstr(cli_hint(&c, FM_EAUTH), "password"));
	c.on = CLI_ON_ASSIGNMENT;
	h = cli_hint(&c, FM_ENOTFOUND);
	assert_non_null(strstr(h, "'status'"));
	assert_null(strstr(h, "list-tasks"));
	c.on = CLI_ON_TASK;
	assert_non_null(strstr(cli_hint(&c, FM_ENOTFOUND), "'list-tasks'"));
	c.on = CLI_ON_NONE;
	assert_non_null(strstr(cli_hint(&c, FM_EAUTH), "signature"));
	c.on = CLI_ON_KEY;
	fm_error_set(FM_ENOTFOUND, "no key in /k: create one with `keys new`");
	assert_null(cli_hint(&c, FM_ENOTFOUND));
	c.prog = "fedmarket-creator";
	c.on = CLI_ON_RESULT;
	h = cli_hint(&c, FM_ENOTFOUND);
	assert_non_null(strstr(h, "list-results"));
	assert_null(strstr(h, "--mine"));
	c.on = CLI_ON_TASK;
	assert_non_null(strstr(cli_hint(&c, FM_ENOTFOUND), "--mine"));

	/* only the chain node down: its setting, not the services' */
	c.on = CLI_ON_CHAIN;
	fm_error_set(FM_EUNAVAIL, "eth_getBalance: Connection refused");
	h = cli_hint(&c, FM_EUNAVAIL);
	assert_non_null(strstr(h, "rpc_url"));
	assert_null(strstr(h, "taskd_url"));
	c.on = CLI_ON_STORAGE;
	assert_non_null(strstr(cli_hint(&c, FM_EUNAVAIL), "storage_url"));
	/* a service down: the one that did not answer */
	setenv("FEDMARKET_ASSIGND_URL", "http://127.0.0.1:1", 1);
	assert_int_equal(cli_load_config(&c), FM_OK);
	unsetenv("FEDMARKET_ASSIGND_URL");
	assert_int_equal(cli_api(&c, 0, &a), FM_OK);
	c.on = CLI_ON_ASSIGNMENT;
	assert_int_equal(api_get(a, API_ASSIGND, "/v1/assignments/x", &out),
			 FM_EUNAVAIL);
	h = cli_hint(&c, FM_EUNAVAIL);
	assert_non_null(strstr(h, "assignd_url"));
	assert_null(strstr(h, "rpc_url"));
	c.on = CLI_ON_NONE;
	fm_error_set(FM_EUNAVAIL, "taskd has no escrow configured");
	api_free(c.api);
	c.api = NULL;
	assert_null(cli_hint(&c, FM_EUNAVAIL));
	cli_cleanup(&c);
}

/* show in text names what a contributor's data must hold: CSV columns,
 * label column, epochs, preprocessing. */
static void test_cli__show_says_how_to_train(void **state)
{
	json_t *spec = json_loads(spec_text, 0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(spec);
	assert_non_null(f);
	view_training(f, spec);
	fclose(f);
	assert_non_null(strstr(text, "2 epoch(s), batch 16, sgd"));
	assert_non_null(strstr(text, "tabular, csv"));
	assert_non_null(strstr(text, "CSV columns: a, b\n"));
	assert_non_null(strstr(text, "label column: y\n"));
	assert_non_null(strstr(text, "divided by 2\n"));
	free(text);
	json_decref(spec);
}

/* The bar's time left: nothing until it can be told, then h/m/s. */
static void test_cli__eta_is_told_once_known(void **state)
{
	char eta[32];

	(void)state;
	cli_eta(eta, sizeof(eta), 0.5, 10, 100);
	assert_string_equal(eta, ""); /* under a second: too early */
	cli_eta(eta, sizeof(eta), 10, 0, 100);
	assert_string_equal(eta, "");
	cli_eta(eta, sizeof(eta), 10, 100, 100);
	assert_string_equal(eta, "");
	cli_eta(eta, sizeof(eta), 10, 50, 100);
	assert_string_equal(eta, "10s");
	cli_eta(eta, sizeof(eta), 65, 50, 100);
	assert_string_equal(eta, "1m05s");
	cli_eta(eta, sizeof(eta), 3600, 25, 100);
	assert_string_equal(eta, "3h00m");
}

/* NO_COLOR turns the colours off, not the progress (which follows
 * whether stderr is a terminal). */
static void test_cli__no_color_leaves_progress(void **state)
{
	struct cli c;

	(void)state;
	setenv("NO_COLOR", "1", 1);
	cli_init(&c, "test");
	unsetenv("NO_COLOR");
	assert_int_equal(c.color, 0);
	assert_string_equal(cli_c(&c, CLI_GREEN), "");
	assert_int_equal(c.progress, isatty(STDERR_FILENO));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli__parses_values_flags_and_positionals),
		cmocka_unit_test(test_cli__usage_errors_exit_2),
		cmocka_unit_test(
			test_opt__options_and_positionals_mix_in_any_order),
		cmocka_unit_test(test_opt__help_version_and_bad_values),
		cmocka_unit_test(
			test_opt__the_command_word_is_found_among_options),
		cmocka_unit_test(test_cli__config_after_the_command_is_loaded),
		cmocka_unit_test(test_cli__ids_are_checked_and_lowercased),
		cmocka_unit_test(test_cli__formats_wei_as_ether),
		cmocka_unit_test(test_cli__training_options_come_from_the_spec),
		cmocka_unit_test(test_cli__data_is_read_as_the_spec_says),
		cmocka_unit_test(test_cli__hints_name_what_failed),
		cmocka_unit_test(test_cli__show_says_how_to_train),
		cmocka_unit_test(test_cli__eta_is_told_once_known),
		cmocka_unit_test(test_cli__no_color_leaves_progress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
