/* fedmarket-creator: the model creator's commands. Each returns the exit
 * code: 0 ok, 1 runtime error (reported), 2 usage error (reported). */
#ifndef FM_CLIENTS_CREATOR_H
#define FM_CLIENTS_CREATOR_H

#include "cli/cli.h"

int cmd_create_task(struct cli *c, int argc, char **argv);
int cmd_list_tasks(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_watch(struct cli *c, int argc, char **argv);
int cmd_list_results(struct cli *c, int argc, char **argv);
int cmd_evaluate(struct cli *c, int argc, char **argv);
int cmd_accept(struct cli *c, int argc, char **argv);
int cmd_reject(struct cli *c, int argc, char **argv);
int cmd_aggregate(struct cli *c, int argc, char **argv);
int cmd_pull_model(struct cli *c, int argc, char **argv);
int cmd_cancel(struct cli *c, int argc, char **argv);
int cmd_refund(struct cli *c, int argc, char **argv);

#endif
