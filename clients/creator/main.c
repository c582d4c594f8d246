/* fedmarket-creator: post tasks with their reward in escrow, review
 * results, publish model versions, take back what was not paid. */
#include "creator.h"

#include "engine/ml.h"

/* Sorted by name. */
static const struct cli_cmd commands[] = {
	{ "accept", cmd_accept, "accept a result (its reward is paid on chain)" },
	{ "aggregate", cmd_aggregate,
	  "combine accepted results into the next model version" },
	{ "cancel", cmd_cancel, "cancel a task; the unpaid escrow is refunded" },
	{ "create-task", cmd_create_task,
	  "push the assets, fund the escrow and post a task" },
	{ "evaluate", cmd_evaluate, "evaluate a result on your own test data" },
	{ "list-results", cmd_list_results, "results of a task" },
	{ "list-tasks", cmd_list_tasks, "tasks (yours with --mine)" },
	{ "pull-model", cmd_pull_model, "download a model version of a task" },
	{ "refund", cmd_refund,
	  "withdraw a task's unpaid escrow after its deadline" },
	{ "reject", cmd_reject, "reject a result with a reason" },
	{ "status", cmd_status, "a task: state, slots, results, versions, "
	  "payouts, escrow" },
};

int main(int argc, char **argv)
{
	ml_blas_setup(argc, argv);
	return cli_main("fedmarket-creator",
			"post machine-learning tasks and pay for results",
			commands, sizeof(commands) / sizeof(commands[0]), argc,
			argv);
}
