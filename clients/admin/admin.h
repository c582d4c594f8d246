/* fedmarket-admin: operator commands. One cmd_<name>.c per command. */
#ifndef FM_CLIENTS_ADMIN_H
#define FM_CLIENTS_ADMIN_H

#include "cli/opt.h"
#include "core/cfg.h"

/* One run of the program. */
struct admin {
	const char *cmd;          /* the command running, for messages */
	const char *config;       /* --config, or NULL */
	struct fm_config cfg;     /* loaded by admin_parse */
	const struct opt *common; /* --config, taken anywhere */
};

#define ADMIN_PROG "fedmarket-admin"

/* Each command gets argv[0] = its name; returns the exit code:
 * 0 ok, 1 runtime error, 2 usage error. */
int cmd_config(struct admin *a, int argc, char **argv);
int cmd_deploy_escrow(struct admin *a, int argc, char **argv);
int cmd_escrow_task(struct admin *a, int argc, char **argv);

/* Parses a command's line against s (prog, cmd and the program's
 * options filled in here), then loads the configuration. Returns 1 to go
 * on, else 0 with *code (after --help, --version, a usage error or a
 * configuration that does not load; reported). */
int admin_parse(struct admin *a, struct opt_spec *s, int argc, char **argv,
		int *code);
/* Prints "fedmarket-admin <cmd>: <message>" and where the options are
 * on stderr; returns 2. */
int admin_usage(const struct admin *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints the current error on stderr; returns 1. */
int admin_fail(const struct admin *a);

#endif
