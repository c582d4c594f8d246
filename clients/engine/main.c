/* fedmarket-engine: train, evaluate and inspect models from the command
 * line. The command table is the whole dispatch: a new command is a row
 * here, a declaration in cli.h and its cmd_<name>.c file. */
#include "cli.h"

/* Sorted by name. */
static const struct engine_cmd {
	struct opt_command cmd;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ { "aggregate", NULL, "combine model updates (FedAvg, robust rules, "
	    "DP) into the next model" }, cmd_aggregate },
	{ { "eval", NULL, "loss and accuracy of a model on a data set" },
	  cmd_eval },
	{ { "init", NULL, "a fresh model from a layer spec, or new weights "
	    "for a model" }, cmd_init },
	{ { "predict", NULL, "outputs of a model for JSON input tensors" },
	  cmd_predict },
	{ { "shapley", NULL, "each update's Shapley value for the held-out "
	    "metric of the round's aggregate" }, cmd_shapley },
	{ { "simulate", NULL, "federated training simulated over N clients" },
	  cmd_simulate },
	{ { "summary", NULL, "layers, output shapes and parameter counts of a "
	    "model" }, cmd_summary },
	{ { "train", NULL, "train a model on IDX or CSV data" }, cmd_train },
};

int main(int argc, char **argv)
{
	struct opt_prog p = {
		.prog = ENGINE_PROG,
		.about = "train, evaluate and inspect models",
		.cmds = OPT_ROWS(commands),
	};
	size_t k;
	int rc;

	ml_blas_setup(argc, argv);
	p.version = engine_version(); /* the kernels chosen by the setup */
	if (!opt_command(&p, &argc, argv, &k, &rc))
		return rc;
	return commands[k].run(argc, argv);
}
