/* fedmarket-creator: post tasks with their reward in escrow, review
 * results, publish model versions, take back what was not paid. */
#include "creator.h"

#include "engine/ml.h"

/* Sorted by name. */
static const struct cli_cmd commands[] = {
	{ { "accept", "RESULT",
	    "accept a result (its reward is paid on chain)" }, cmd_accept },
	{ { "aggregate", "TASK",
	    "combine accepted results into the next model version" },
	  cmd_aggregate },
	{ { "cancel", "TASK",
	    "cancel a task; the unpaid escrow is refunded" }, cmd_cancel },
	{ { "create-task", NULL,
	    "push the assets, fund the escrow and post a task" },
	  cmd_create_task },
	{ { "evaluate", "RESULT", "evaluate a result on your own test data" },
	  cmd_evaluate },
	{ { "keys", "ACTION", "create, import and list signing keys "
	    "(keystore v3)" }, cli_keys },
	{ { "list-results", "TASK", "results of a task" }, cmd_list_results },
	{ { "list-tasks", NULL, "tasks (yours with --mine)" }, cmd_list_tasks },
	{ { "pull-model", "TASK", "download a model version of a task" },
	  cmd_pull_model },
	{ { "refund", "TASK",
	    "withdraw a task's unpaid escrow after its deadline" },
	  cmd_refund },
	{ { "reject", "RESULT", "reject a result with a reason" }, cmd_reject },
	{ { "status", "TASK", "a task: state, rounds, slots, results, "
	    "versions, payouts, escrow" }, cmd_status },
	{ { "watch", "TASK", "follow a task's rounds live until it ends" },
	  cmd_watch },
};

int main(int argc, char **argv)
{
	ml_blas_setup(argc, argv);
	return cli_main("fedmarket-creator",
			"post machine-learning tasks and pay for results",
			commands, sizeof(commands) / sizeof(commands[0]), argc,
			argv);
}
