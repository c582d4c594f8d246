/* fedmarket-store: subcommands share the opened store and options. */
#ifndef FM_CLIENTS_STORE_CMD_H
#define FM_CLIENTS_STORE_CMD_H

#include "cli/opt.h"
#include "core/cfg.h"
#include "storage/bundle.h"
#include "storage/store.h"

struct cmd_ctx {
	const char *prog;
	const char *cmd;      /* the command running, for messages */
	const char *config;   /* --config, or NULL */
	struct fm_config cfg; /* loaded by cmd_parse */
	const char *url;      /* --store, or NULL for cfg.storage_url */
	int progress;         /* --progress: report on stderr */
	const struct opt *common; /* the options above, taken anywhere */
	struct store *store;
};

/* Parses a command's line against s (prog, cmd and the program's
 * options filled in here), then loads the configuration. Returns 1 to go
 * on, else 0 with *code (after --help, --version, a usage error or a
 * configuration that does not load; reported). */
int cmd_parse(struct cmd_ctx *c, struct opt_spec *s, int argc, char **argv,
	      int *code);
/* Opens ctx->store (once); prints the error and returns 1 on failure. */
int cmd_open_store(struct cmd_ctx *c);
/* Prints "prog cmd: <current error message>" and returns CLI_ERR. */
int cmd_fail(const struct cmd_ctx *c);
/* Prints "prog cmd: <msg>" and a usage hint; returns CLI_USAGE. */
int cmd_usage_error(const struct cmd_ctx *c, const char *msg);
/* Transfer options for --progress (NULL when off). */
const struct store_xfer *cmd_xfer(struct cmd_ctx *c, const char *label);

int cmd_push(struct cmd_ctx *c, int argc, char **argv);
int cmd_pull(struct cmd_ctx *c, int argc, char **argv);
int cmd_cat(struct cmd_ctx *c, int argc, char **argv);
int cmd_check(struct cmd_ctx *c, int argc, char **argv);
int cmd_ls(struct cmd_ctx *c, int argc, char **argv);
int cmd_put(struct cmd_ctx *c, int argc, char **argv);
int cmd_get(struct cmd_ctx *c, int argc, char **argv);

#endif
