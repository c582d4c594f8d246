/* What the marketplace CLIs (creator, contributor, validator daemon)
 * share: their common options (--config, --json, --key,
 * --password-file) on top of the option parser of cli/opt.h,
 * configuration loading, the signing identity from the keystore, the
 * marketplace client, colours (only on a terminal, never under
 * NO_COLOR), progress bars (only on a terminal) and the reporting of
 * errors. Nothing here exits; main returns the code. */
#ifndef FM_CLI_CLI_H
#define FM_CLI_CLI_H

#include "chain/sig.h"
#include "cli/opt.h"
#include "client/api.h"
#include "core/cfg.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* What a command is working on: a failure's hint names what fixes that
 * thing (cli_hint). A step sets it with cli_on before it starts. */
enum cli_on {
	CLI_ON_NONE = 0,   /* nothing in particular: hint from the code */
	CLI_ON_FILE,       /* a local file or folder the user named */
	CLI_ON_KEY,        /* finding the keystore (--key, keystore_dir) */
	CLI_ON_PASSWORD,   /* its password (--password-file) and decryption */
	CLI_ON_TASK,       /* a task id the user gave */
	CLI_ON_ASSIGNMENT, /* an assignment id the user gave */
	CLI_ON_RESULT,     /* a result id the user gave */
	CLI_ON_STORAGE,    /* pushing or pulling bundles (storage_url) */
	CLI_ON_CHAIN,      /* the chain node (rpc_url) */
};

/* One run of a CLI: configuration and what commands load lazily. */
struct cli {
	const char *prog;          /* "fedmarket-creator" */
	const char *cmd;           /* the command running, for messages */
	const char *about;         /* lines under the command's usage in
				    * --help (set before cli_parse), or NULL */
	const char *config_file;   /* --config, or NULL */
	struct fm_config cfg;
	int cfg_loaded;
	int json;                  /* --json: machine-readable stdout */
	int color;                 /* stdout is a terminal, NO_COLOR unset */
	int progress;              /* stderr is a terminal and not --json */
	const char *key_which;     /* --key ADDR|FILE, or NULL */
	const char *password_file; /* --password-file, or NULL */
	struct chain_key key;
	int have_key;
	char addr[CHAIN_ADDR_HEX]; /* lowercase address of key */
	uint8_t addr_b[CHAIN_ADDR_LEN]; /* the same, as bytes */
	int have_addr;             /* addr is set (cli_address) */
	const char *address;       /* --address ADDR of read-only commands */
	struct api *api;
	int api_signed;
	enum cli_on on;            /* what the running step works on */
};

/* The --address option of commands that only read an account's data. */
#define CLI_OPT_ADDRESS(c)                                                  \
	{ "--address", OPT_STR, &(c)->address, "ADDR",                      \
	  "whose (default: the address of your keystore, read without "     \
	  "its password)", 0, 0 }

/* A row of a CLI's command table. */
struct cli_cmd {
	struct opt_command cmd;
	int (*run)(struct cli *c, int argc, char **argv);
};

/* `keys`, the command every marketplace CLI has (cli/keys_cmd.h). */
int cli_keys(struct cli *c, int argc, char **argv);

/* The whole main of a CLI with subcommands (cmds sorted by name):
 * finds the command (options may come before or after it), --help,
 * --version, `help CMD`, dispatch. Returns the exit code. */
int cli_main(const char *prog, const char *about, const struct cli_cmd *cmds,
	     size_t n, int argc, char **argv);

/* Sets up c for prog (used by cli_main, and by daemons without
 * subcommands): terminal detection and NO_COLOR. */
void cli_init(struct cli *c, const char *prog);
/* Loads the configuration once (c->config_file or the default file,
 * then FEDMARKET_* variables) and starts logging on stderr. */
int cli_load_config(struct cli *c);
void cli_cleanup(struct cli *c);

/* Parses argv[1..] (argv[0] is the command) against opts plus the common
 * options (opt_parse), then loads the configuration (cli_load_config):
 * every command's --config is applied before it does anything.
 * Positional arguments go to pos (at most max_pos of them; fewer than
 * min_pos is a usage error). Returns 1 to go on; 0 when the command
 * should return *code at once (0 after --help or --version, 2 after a
 * usage error, 1 when the configuration does not load; reported).
 * synopsis follows the command name in usage. */
int cli_parse(struct cli *c, const struct opt *opts, int argc, char **argv,
	      const char *synopsis, const char **pos, int min_pos,
	      int max_pos, int *code);

/* Prints "prog cmd: <message>" (and "usage: ...") on stderr; returns
 * CLI_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sets what the next steps work on; returns what it was, so a helper
 * can put it back once its own step succeeded. */
enum cli_on cli_on(struct cli *c, enum cli_on on);
/* The hint for a failure with code while c works on c->on (NULL: none):
 * it names the setting or command that fixes what failed. */
const char *cli_hint(const struct cli *c, int code);

/* Reports fm_error_msg() on stderr with the hint of cli_hint (or the
 * given hint, which wins); in --json mode as {"error": {"code",
 * "message", "hint"}}. Returns CLI_ERR. */
int cli_fail(struct cli *c);
int cli_fail_hint(struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Loads the signing key once (--key, --password-file, keystore_dir,
 * password_file; else asks on the terminal); sets the address too. */
int cli_identity(struct cli *c);
/* The account a read-only command is about, into c->addr and c->addr_b:
 * --address, else the address field of the keystore (--key,
 * keystore_dir) read without its password; only a keystore without that
 * field is decrypted (cli_identity). */
int cli_address(struct cli *c);
/* The marketplace client: signed (loads the identity) or read-only.
 * Borrowed; lives as long as c. */
int cli_api(struct cli *c, int sign, struct api **out);

/* The string member k of o, or "" (cli_str) / "-" (cli_show, for
 * display) when it is absent or not a string. Borrowed from o. */
const char *cli_str(const json_t *o, const char *k);
const char *cli_show(const json_t *o, const char *k);

/* Prints j on stdout as indented JSON (borrowed). */
void cli_print_json(const json_t *j);

enum cli_color { CLI_RESET = 0, CLI_BOLD, CLI_DIM, CLI_RED, CLI_GREEN,
		 CLI_YELLOW, CLI_CYAN };
/* The escape sequence for k, or "" when colours are off. */
const char *cli_c(const struct cli *c, enum cli_color k);

/* A progress bar on stderr, drawn only when c->progress is set (stderr
 * is a terminal; NO_COLOR leaves it on), at most ten times a second, with
 * the time left once it can be told. */
struct cli_bar {
	int on;
	double start, last;
	char label[48];
	char note[96]; /* shown after the counts ("epoch 2/5, loss 0.41") */
};
void cli_bar_init(struct cli_bar *b, const struct cli *c, const char *label);
void cli_bar_update(struct cli_bar *b, uint64_t done, uint64_t total);
/* Sets the text shown after the counts from the next update on. */
void cli_bar_note(struct cli_bar *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "1m05s", "42s": the time left when done of total took elapsed
 * seconds ("" when it cannot be told yet). */
void cli_eta(char *out, size_t n, double elapsed, uint64_t done,
	     uint64_t total);
/* Clears the bar's line. */
void cli_bar_done(struct cli_bar *b);

/* A decimal wei amount as ether, "0.25 ETH" (out >= 96 bytes). */
void cli_format_wei(char *out, size_t n, const char *wei);

/* Checks a task id ("0x" + 64 hex, case-insensitive) and writes its
 * lowercase form into out (67 bytes); FM_EINVAL naming the input. */
int cli_task_id(char out[67], const char *text);
/* Checks a UUID (result or assignment id) and lowercases it into out
 * (37 bytes); what names it in errors. */
int cli_uuid(char out[37], const char *text, const char *what);

#endif
