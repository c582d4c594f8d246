/* The marketplace CLIs' shared frame. It talks to the terminal: it is
 * the user interface of the client binaries. */
#include "cli/cli.h"

#include "cli/keys_cmd.h"
#include "chain/keystore.h"
#include "chain/u256.h"
#include "core/err.h"
#include "core/log.h"

#include <ctype.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_init(struct cli *c, const char *prog)
{
	const char *nc = getenv("NO_COLOR");

	memset(c, 0, sizeof(*c));
	c->prog = prog;
	c->color = isatty(STDOUT_FILENO) && !(nc && nc[0]);
	c->progress = isatty(STDERR_FILENO);
}

int cli_load_config(struct cli *c)
{
	int level, err;

	if (c->cfg_loaded)
		return FM_OK;
	err = cfg_load(&c->cfg, c->config_file);
	if (err)
		return err;
	c->cfg_loaded = 1;
	/* a CLI's own messages are its output; the library's info lines
	 * would only clutter the terminal */
	level = log_level_parse(c->cfg.log_level);
	if (level < LOG_WARN)
		level = getenv("FEDMARKET_LOG_LEVEL") ? level : LOG_WARN;
	log_init(c->prog, level < 0 ? LOG_WARN : (enum log_level)level,
		 c->cfg.log_json);
	log_set_stream(stderr);
	return FM_OK;
}

void cli_cleanup(struct cli *c)
{
	api_free(c->api);
	c->api = NULL;
	chain_key_wipe(&c->key);
	c->have_key = 0;
}

/* ---------------------------------------------------------------- options */

#define NCOMMON 5

/* The options every command of a marketplace CLI takes, writing into c. */
static void common_opts(struct opt out[NCOMMON], struct cli *c)
{
	const struct opt rows[NCOMMON] = {
		{ "--json", OPT_FLAG, &c->json, NULL,
		  "machine-readable output", 0, 0 },
		{ "--key", OPT_STR, &c->key_which, "ADDR|FILE",
		  "signing key: an address in keystore_dir or a keystore file",
		  0, 0 },
		{ "--password-file", OPT_STR, &c->password_file, "FILE",
		  "keystore password (default: password_file, else asked)", 0,
		  0 },
		{ "--config", OPT_STR, &c->config_file, "FILE",
		  "configuration file (default: ~/.config/fedmarket/config)",
		  0, 0 },
		OPT_END,
	};

	memcpy(out, rows, sizeof(rows));
}

/* A daemon without subcommands has no command name to show. */
static const char *cmd_of(const struct cli *c)
{
	return c->cmd ? c->cmd : "";
}

static const char *sep(const struct cli *c)
{
	return cmd_of(c)[0] ? " " : "";
}

int cli_usage(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opt_vusage(c->prog, c->cmd, fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int cli_parse(struct cli *c, const struct opt *opts, int argc, char **argv,
	      const char *synopsis, const char **pos, int min_pos,
	      int max_pos, int *code)
{
	struct opt common[NCOMMON];
	const struct opt_spec s = {
		.prog = c->prog, .cmd = c->cmd, .synopsis = synopsis,
		.about = c->about, .opts = opts, .common = common, .pos = pos,
		.min_pos = min_pos, .max_pos = max_pos,
	};

	common_opts(common, c);
	if (!opt_parse(&s, argc, argv, code))
		return 0;
	if (c->json)
		c->progress = 0;
	if (c->address && chain_address_parse(c->addr_b, c->address,
					      "--address")) {
		*code = cli_usage(c, "%s", fm_error_msg());
		return 0;
	}
	if (cli_load_config(c)) {
		*code = cli_fail(c);
		return 0;
	}
	return 1;
}

/* ----------------------------------------------------------------- errors */

enum cli_on cli_on(struct cli *c, enum cli_on on)
{
	enum cli_on prev = c->on;

	c->on = on;
	return prev;
}

static int is_creator(const struct cli *c)
{
	return c->prog && strstr(c->prog, "creator");
}

/* A service that did not answer: which one, and its setting. */
static const char *service_hint(int svc, int code)
{
	static const char *const down[API_NSERVICES] = {
		"is taskd up? check taskd_url (FEDMARKET_TASKD_URL)",
		"is assignd up? check assignd_url (FEDMARKET_ASSIGND_URL)",
		"is resultd up? check resultd_url (FEDMARKET_RESULTD_URL)",
		"is validationd up? check validationd_url "
		"(FEDMARKET_VALIDATIOND_URL)",
	};
	static const char *const slow[API_NSERVICES] = {
		"taskd did not answer in time: try again, or check taskd_url",
		"assignd did not answer in time: try again, or check "
		"assignd_url",
		"resultd did not answer in time: try again, or check "
		"resultd_url",
		"validationd did not answer in time: try again, or check "
		"validationd_url",
	};

	if (svc < 0 || svc >= API_NSERVICES)
		return NULL;
	return code == FM_ETIMEOUT ? slow[svc] : down[svc];
}

static const char *not_found_hint(const struct cli *c)
{
	switch (c->on) {
	case CLI_ON_KEY:
		if (strstr(fm_error_msg(), "keys new"))
			return NULL; /* the message says it already */
		return "list your keys with 'keys list'; --key takes one of "
		       "their addresses or a keystore file";
	case CLI_ON_PASSWORD:
		return "check --password-file (or password_file): the file "
		       "holding the keystore's password";
	case CLI_ON_TASK:
		return is_creator(c) ? "list your tasks with 'list-tasks --mine'"
				     : "list open tasks with 'list-tasks'";
	case CLI_ON_ASSIGNMENT:
		return "list your assignments with 'status'";
	case CLI_ON_RESULT:
		return is_creator(c) ? "list a task's results with "
				       "'list-results TASK'"
				     : "see your results with 'status'";
	default:
		return NULL; /* a file's message names it */
	}
}

const char *cli_hint(const struct cli *c, int code)
{
	switch (code) {
	case FM_EUNAVAIL:
	case FM_ETIMEOUT:
		if (c->on == CLI_ON_CHAIN)
			return "is the chain node up? check rpc_url "
			       "(FEDMARKET_RPC_URL)";
		if (c->on == CLI_ON_STORAGE)
			return "is the storage up? check storage_url "
			       "(FEDMARKET_STORAGE_URL)";
		return service_hint(api_unreachable(c->api), code);
	case FM_EAUTH:
		if (c->on == CLI_ON_PASSWORD)
			return "wrong keystore password: check --password-file"
			       " (or password_file)";
		return "the service refused the signature: check the clock "
		       "and the key (keys address)";
	case FM_ENOTFOUND:
		return not_found_hint(c);
	case FM_EFORBIDDEN:
		return "the signing key is not allowed to do this: check "
		       "--key";
	default:
		return NULL;
	}
}

static int report(struct cli *c, const char *hint)
{
	int code = fm_error_code();

	if (!hint)
		hint = cli_hint(c, code);
	if (c->json) {
		json_t *j = json_pack("{s:{s:s, s:s, s:s?}}", "error", "code",
				      fm_err_name(code), "message",
				      fm_error_msg(), "hint", hint);

		if (j)
			json_dumpf(j, stderr, JSON_COMPACT);
		fputc('\n', stderr);
		json_decref(j);
		return CLI_ERR;
	}
	fprintf(stderr, "%s%s%s: %s\n", c->prog, sep(c), cmd_of(c),
		fm_error_msg()[0] ? fm_error_msg() : "failed");
	if (hint)
		fprintf(stderr, "hint: %s\n", hint);
	return CLI_ERR;
}

int cli_fail(struct cli *c)
{
	return report(c, NULL);
}

int cli_fail_hint(struct cli *c, const char *fmt, ...)
{
	char hint[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hint, sizeof(hint), fmt, ap);
	va_end(ap);
	return report(c, hint);
}

/* -------------------------------------------------------------- identity */

static void set_addr(struct cli *c, const uint8_t addr[CHAIN_ADDR_LEN])
{
	memcpy(c->addr_b, addr, CHAIN_ADDR_LEN);
	c->addr[0] = '0';
	c->addr[1] = 'x';
	hex_encode(c->addr + 2, addr, CHAIN_ADDR_LEN);
	c->have_addr = 1;
}

int cli_identity(struct cli *c)
{
	char path[4096], pw[KS_PASSWORD_MAX];
	enum cli_on prev;
	int err;

	if (c->have_key)
		return FM_OK;
	prev = cli_on(c, CLI_ON_KEY);
	err = keys_identity_file(path, sizeof(path), &c->cfg, c->key_which);
	if (err)
		return err;
	cli_on(c, CLI_ON_PASSWORD);
	err = keys_password(pw, &c->cfg, c->password_file, 0);
	if (!err)
		err = ks_load(&c->key, path, pw);
	sodium_memzero(pw, sizeof(pw));
	if (err)
		return err;
	c->on = prev;
	c->have_key = 1;
	set_addr(c, c->key.addr);
	return FM_OK;
}

int cli_address(struct cli *c)
{
	uint8_t addr[CHAIN_ADDR_LEN];
	char path[4096];
	enum cli_on prev;
	int err;

	if (c->have_addr)
		return FM_OK;
	if (c->address) {
		err = chain_address_parse(addr, c->address, "--address");
		if (err)
			return err;
		set_addr(c, addr);
		return FM_OK;
	}
	prev = cli_on(c, CLI_ON_KEY);
	err = keys_identity_file(path, sizeof(path), &c->cfg, c->key_which);
	if (err)
		return err;
	err = ks_peek_address(addr, path);
	c->on = prev;
	if (err == FM_ENOTFOUND) /* no address field: only the key tells */
		return cli_identity(c);
	if (err)
		return err;
	set_addr(c, addr);
	return FM_OK;
}

int cli_api(struct cli *c, int sign, struct api **out)
{
	int err;

	if (sign && !c->api_signed) {
		err = cli_identity(c);
		if (err)
			return err;
		api_free(c->api);
		c->api = NULL;
	}
	if (!c->api) {
		err = api_new(&c->api, &c->cfg, sign ? &c->key : NULL);
		if (err)
			return err;
		c->api_signed = sign;
	}
	*out = c->api;
	return FM_OK;
}

/* ----------------------------------------------------------------- output */

const char *cli_str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

const char *cli_show(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

void cli_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

const char *cli_c(const struct cli *c, enum cli_color k)
{
	static const char *const seq[] = { "\033[0m", "\033[1m", "\033[2m",
					   "\033[31m", "\033[32m", "\033[33m",
					   "\033[36m" };

	return c->color ? seq[k] : "";
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_bar_init(struct cli_bar *b, const struct cli *c, const char *label)
{
	b->on = c->progress;
	b->start = now_s();
	b->last = 0;
	b->note[0] = '\0';
	snprintf(b->label, sizeof(b->label), "%s", label);
}

void cli_bar_note(struct cli_bar *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->note, sizeof(b->note), fmt, ap);
	va_end(ap);
}

void cli_eta(char *out, size_t n, double elapsed, uint64_t done,
	     uint64_t total)
{
	double left;
	long s;

	out[0] = '\0';
	/* the first moments say little about the pace */
	if (!done || done >= total || elapsed < 1)
		return;
	left = elapsed * (double)(total - done) / (double)done;
	if (left > 359999)
		left = 359999;
	s = (long)(left + 0.5);
	if (s >= 3600)
		snprintf(out, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(out, n, "%lds", s);
}

void cli_bar_update(struct cli_bar *b, uint64_t done, uint64_t total)
{
	static const char fill[] = "##############################";
	char eta[32];
	double t;
	int w;

	if (!b->on)
		return;
	t = now_s();
	if (done < total && t - b->last < 0.1)
		return;
	b->last = t;
	w = total ? (int)(30.0 * (double)done / (double)total) : 0;
	if (w > 30)
		w = 30;
	cli_eta(eta, sizeof(eta), t - b->start, done, total);
	/* one line, redrawn in place: \033[K clears what a longer one left */
	fprintf(stderr, "\r%s [%.*s%*s] %3d%%%s%s%s%s\033[K", b->label, w, fill,
		30 - w, "", total ? (int)(100.0 * (double)done / (double)total)
				  : 0,
		b->note[0] ? ", " : "", b->note, eta[0] ? ", ETA " : "", eta);
	fflush(stderr);
}

void cli_bar_done(struct cli_bar *b)
{
	if (!b->on)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

void cli_format_wei(char *out, size_t n, const char *wei)
{
	static const uint64_t e18 = 1000000000000000000ull;
	struct chain_u256 v, whole;
	char w[CHAIN_U256_DEC_MAX], frac[20];
	uint64_t rem;
	size_t len;

	if (!wei || chain_u256_parse(&v, wei, "amount")) {
		snprintf(out, n, "%s wei", wei ? wei : "?");
		return;
	}
	chain_u256_div_u64(&whole, &rem, &v, e18);
	chain_u256_to_dec(w, sizeof(w), &whole);
	snprintf(frac, sizeof(frac), "%018llu", (unsigned long long)rem);
	len = strlen(frac);
	while (len > 0 && frac[len - 1] == '0')
		frac[--len] = '\0';
	snprintf(out, n, "%s%s%s ETH", w, len ? "." : "", frac);
}

int cli_task_id(char out[67], const char *text)
{
	size_t i;

	if (!text || strlen(text) != 66 || text[0] != '0' ||
	    (text[1] != 'x' && text[1] != 'X'))
		return fm_error_set(FM_EINVAL, "task id \"%s\": expected 0x "
				    "and 64 hex digits",
				    text ? text : "");
	for (i = 0; i < 66; i++) {
		if (i >= 2 && !isxdigit((unsigned char)text[i]))
			return fm_error_set(FM_EINVAL, "task id \"%s\": "
					    "\"%c\" at %zu is not a hex digit",
					    text, text[i], i);
		out[i] = (char)tolower((unsigned char)text[i]);
	}
	out[66] = '\0';
	return FM_OK;
}

int cli_uuid(char out[37], const char *text, const char *what)
{
	size_t i;

	if (!text || strlen(text) != 36)
		goto bad;
	for (i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i]))
			goto bad;
		out[i] = (char)tolower((unsigned char)text[i]);
	}
	out[36] = '\0';
	return FM_OK;
bad:
	return fm_error_set(FM_EINVAL, "%s \"%s\": expected a UUID like "
			    "123e4567-e89b-12d3-a456-426614174000",
			    what, text ? text : "");
}

/* ------------------------------------------------------------------- main */

int cli_keys(struct cli *c, int argc, char **argv)
{
	return keys_cmd_run(c->prog, argc, argv);
}

int cli_main(const char *prog, const char *about, const struct cli_cmd *cmds,
	     size_t n, int argc, char **argv)
{
	struct opt common[NCOMMON];
	struct opt_prog p = {
		.prog = prog, .about = about, .common = common,
		.epilog = "Settings come from FEDMARKET_* variables and "
			  "~/.config/fedmarket/config.\n",
		.cmds = &cmds[0].cmd, .ncmds = n, .stride = sizeof(*cmds),
	};
	struct cli c;
	size_t k;
	int rc;

	cli_init(&c, prog);
	common_opts(common, &c);
	if (!opt_command(&p, &argc, argv, &k, &rc))
		return rc;
	c.cmd = cmds[k].cmd.name;
	rc = cmds[k].run(&c, argc, argv);
	cli_cleanup(&c);
	return rc;
}
