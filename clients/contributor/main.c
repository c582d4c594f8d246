/* fedmarket-contributor: take tasks, train on your own data (it never
 * leaves this machine), send results, get paid on chain. */
#include "contributor.h"

#include "engine/ml.h"

/* Sorted by name. */
static const struct cli_cmd commands[] = {
	{ { "abandon", "ASSIGNMENT",
	    "give an active assignment back: its slot is free again" },
	  cmd_abandon },
	{ { "annotate", "ASSIGNMENT",
	    "label a data-annotation task's items and send the labels" },
	  cmd_annotate },
	{ { "assign", "TASK", "take a slot of a task" }, cmd_assign },
	{ { "earnings", NULL,
	    "your payouts with their transactions, and your balance" },
	  cmd_earnings },
	{ { "keys", "ACTION", "create, import and list signing keys "
	    "(keystore v3)" }, cli_keys },
	{ { "list-tasks", NULL, "open tasks" }, cmd_list_tasks },
	{ { "run", "TASK", "assign, train and send-result in one go, round "
	    "after round (--rounds)" }, cmd_run },
	{ { "send-result", "ASSIGNMENT",
	    "push a trained (or your own) model and submit it" },
	  cmd_send_result },
	{ { "show", "TASK", "one task: what to do and how it pays" },
	  cmd_show },
	{ { "status", NULL, "your assignments and their state" }, cmd_status },
	{ { "train", "ASSIGNMENT",
	    "train the task's current model on your data" }, cmd_train },
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
