/* fedmarket-contributor: take tasks, train on your own data (it never
 * leaves this machine), send results, get paid on chain. */
#include "contributor.h"

#include "engine/ml.h"

/* Sorted by name. */
static const struct cli_cmd commands[] = {
	{ "annotate", cmd_annotate,
	  "label a data-annotation task's items and send the labels" },
	{ "assign", cmd_assign, "take a slot of a task" },
	{ "earnings", cmd_earnings,
	  "your payouts with their transactions, and your balance" },
	{ "list-tasks", cmd_list_tasks, "open tasks" },
	{ "run", cmd_run, "assign, train and send-result in one go" },
	{ "send-result", cmd_send_result,
	  "push a trained (or your own) model and submit it" },
	{ "show", cmd_show, "one task: what to do and how it pays" },
	{ "status", cmd_status, "your assignments and their state" },
	{ "train", cmd_train,
	  "train the task's current model on your data" },
};

int main(int argc, char **argv)
{
	ml_blas_setup(argc, argv);
	return cli_main("fedmarket-contributor",
			"train on your own data, get paid for accepted "
			"results",
			commands, sizeof(commands) / sizeof(commands[0]), argc,
			argv);
}
