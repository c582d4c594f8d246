/* fedmarket-contributor: the contributor's commands. Each returns the
 * exit code: 0 ok, 1 runtime error (reported), 2 usage error (reported). */
#ifndef FM_CLIENTS_CONTRIBUTOR_H
#define FM_CLIENTS_CONTRIBUTOR_H

#include "cli/cli.h"

int cmd_list_tasks(struct cli *c, int argc, char **argv);
int cmd_show(struct cli *c, int argc, char **argv);
int cmd_assign(struct cli *c, int argc, char **argv);
int cmd_train(struct cli *c, int argc, char **argv);
int cmd_send_result(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_annotate(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_earnings(struct cli *c, int argc, char **argv);

/* The assignment aid and its task; FM_ECONFLICT saying why and what to
 * do when the assignment takes no result (not active, task cancelled or
 * closed). */
int contrib_active_assignment(struct cli *c, const char *aid, json_t **as,
			      json_t **task);

#endif
