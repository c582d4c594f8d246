/* fedmarket-engine: train, evaluate and inspect models from the command
 * line. The command table is the whole dispatch: a new command is a row
 * here, a declaration in cli.h and its cmd_<name>.c file. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "aggregate", cmd_aggregate, "combine model updates (FedAvg, robust "
				      "rules, DP) into the next model" },
	{ "eval", cmd_eval, "loss and accuracy of a model on a data set" },
	{ "init", cmd_init, "a fresh model from a layer spec, or new "
			    "weights for a model" },
	{ "predict", cmd_predict, "outputs of a model for JSON input "
				  "tensors" },
	{ "summary", cmd_summary, "layers, output shapes and parameter "
				  "counts of a model" },
	{ "simulate", cmd_simulate, "federated training simulated over "
				    "N clients" },
	{ "train", cmd_train, "train a model on IDX or CSV data" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: fedmarket-engine <command> [options]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\nfedmarket-engine <command> --help shows its options.\n");
}

int main(int argc, char **argv)
{
	int rc;

	ml_blas_setup(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("fedmarket-engine %s (OpenBLAS %s)\n", ML_VERSION,
		       ml_blas_corename());
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			rc = commands[i].run(argc - 1, argv + 1);
			return rc < 0 ? CLI_OK : rc;
		}
	}
	fprintf(stderr, "fedmarket-engine: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
