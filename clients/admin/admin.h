/* fedmarket-admin: operator commands. One cmd_<name>.c per command. */
#ifndef FM_CLIENTS_ADMIN_H
#define FM_CLIENTS_ADMIN_H

#include "core/cfg.h"

/* Each command gets argv[0] = its name; returns the exit code:
 * 0 ok, 1 runtime error, 2 usage error. */
int cmd_config(int argc, char **argv, struct fm_config *cfg);
int cmd_deploy_escrow(int argc, char **argv, struct fm_config *cfg);
int cmd_escrow_task(int argc, char **argv, struct fm_config *cfg);

/* Prints "fedmarket-admin <cmd>: <message>" and the command's usage on
 * stderr; returns 2. */
int admin_usage(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prints the current error on stderr; returns 1. */
int admin_fail(const char *cmd);

#endif
