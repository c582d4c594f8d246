/* fedmarket-store: subcommands share the opened store and options. */
#ifndef FM_CLIENTS_STORE_CMD_H
#define FM_CLIENTS_STORE_CMD_H

#include "core/cfg.h"
#include "storage/bundle.h"
#include "storage/store.h"

/* Exit codes: 0 ok, 1 runtime error, 2 usage error. */
#define EXIT_USAGE 2

struct cmd_ctx {
	const char *prog;
	struct fm_config cfg;
	const char *url; /* --store, or NULL for cfg.storage_url */
	int progress;    /* --progress: report on stderr */
	struct store *store;
};

/* Opens ctx->store (once); prints the error and returns 1 on failure. */
int cmd_open_store(struct cmd_ctx *c);
/* Prints "prog: <current error message>" and returns 1. */
int cmd_fail(const struct cmd_ctx *c);
/* Prints "prog: <msg>" and a usage hint; returns EXIT_USAGE. */
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
