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
int cmd_abandon(struct cli *c, int argc, char **argv);
int cmd_annotate(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_earnings(struct cli *c, int argc, char **argv);

#define DATA_HELP \
	"your data in the task's format: a folder with *images* and " \
	"*labels* IDX files, IMAGES,LABELS, or a CSV file"
#define ATTACK_HELP \
	"testing only: send a malicious update instead (sign_flip[:K], " \
	"scale:K, noise[:S]) to see the validator reject it"

/* The assignment aid and its task; FM_ECONFLICT saying why and what to
 * do when the assignment takes no result (not active, task cancelled or
 * closed). */
int contrib_active_assignment(struct cli *c, const char *aid, json_t **as,
			      json_t **task);

/* Takes a slot of task tid (its current round); aid gets the assignment
 * id, *out (may be NULL) the assignment. */
int contrib_assign(struct cli *c, const char *tid, char aid[37],
		   json_t **out);

/* Trains the task's newest model version on data for assignment aid;
 * the model and result.json (assignment, task_id, num_examples,
 * base_version: the version trained from, metrics) go to the
 * assignment's folder under work_dir; *summary gets result.json. */
int contrib_train(struct cli *c, const char *aid, const char *data,
		  const char *attack_spec, json_t **summary);

/* What contrib_train left for aid (its result.json); FM_ENOTFOUND when
 * nothing was trained for it here. */
int contrib_trained(struct cli *c, const char *aid, json_t **summary);

/* Pushes a model (model_dir, else the one trained for aid) and submits
 * it as aid's result with its example count (model_dir: examples) and
 * the version it was trained from (what train recorded, else
 * base_version, which < 0 leaves to the service); *out gets the
 * result. */
int contrib_send(struct cli *c, const char *aid, const char *model_dir,
		 long examples, long base_version, json_t **out);

void contrib_print_trained(struct cli *c, const json_t *summary);
void contrib_print_sent(struct cli *c, const json_t *result);

/* From here until contrib_on_stop(c, NULL), Ctrl-C (or SIGTERM) prints
 * "prog cmd: " and the message (made now), then ends the program as
 * interrupted. */
void contrib_on_stop(struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
