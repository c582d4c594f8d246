/* fedmarket-engine: the command table's functions and what commands
 * share (option parsing, data flags, output). A command is one
 * cmd_<name>.c file defining `int cmd_<name>(int argc, char **argv)`
 * plus one row in main.c's table and one declaration below. Commands
 * return CLI_OK, CLI_ERR (runtime error, message already printed) or
 * CLI_USAGE (usage error). */
#ifndef FM_CLIENTS_ENGINE_CLI_H
#define FM_CLIENTS_ENGINE_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cli/opt.h"
#include "engine/ml.h"

#define ENGINE_PROG "fedmarket-engine"

int cmd_summary(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_aggregate(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_shapley(int argc, char **argv);

/* "1.0 (OpenBLAS <kernels>)", what --version prints after the name. */
const char *engine_version(void);

/* Parses a command's line against s (prog and version filled in here):
 * 1 to go on, else 0 with *code (after --help, --version or a usage
 * error, reported). */
int engine_parse(struct opt_spec *s, int argc, char **argv, int *code);

/* Prints "fedmarket-engine <cmd>: <fm_error_msg()>" and returns CLI_ERR. */
int engine_fail(const char *cmd);
/* Prints "fedmarket-engine <cmd>: <message>" for a usage error and
 * returns CLI_USAGE. */
int engine_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- data flags shared by train, eval and what comes later ------------- */

struct data_flags {
	const char *train_images, *train_labels;
	const char *test_images, *test_labels;
	const char *train_csv, *test_csv;
	const char *inputs, *outputs;   /* comma-separated column names */
	double scale;                   /* x /= scale when > 0 */
	int standardize;                /* CSV: mean/std from the train set */
	const char *resize;             /* "HxW" */
};

/* The option rows for these flags; append with OPTS_DATA(&flags). */
#define OPTS_DATA(f) \
	{ "--train-images", OPT_STR, &(f)->train_images, "F", \
	  "training images (IDX, .gz ok)", 0, 0 }, \
	{ "--train-labels", OPT_STR, &(f)->train_labels, "F", \
	  "training labels (IDX)", 0, 0 }, \
	{ "--test-images", OPT_STR, &(f)->test_images, "F", \
	  "test images (IDX)", 0, 0 }, \
	{ "--test-labels", OPT_STR, &(f)->test_labels, "F", \
	  "test labels (IDX)", 0, 0 }, \
	{ "--train-csv", OPT_STR, &(f)->train_csv, "F", \
	  "training data (CSV with a header)", 0, 0 }, \
	{ "--test-csv", OPT_STR, &(f)->test_csv, "F", \
	  "test data (CSV)", 0, 0 }, \
	{ "--inputs", OPT_STR, &(f)->inputs, "A,B", \
	  "CSV input columns", 0, 0 }, \
	{ "--outputs", OPT_STR, &(f)->outputs, "Y", \
	  "CSV output columns", 0, 0 }, \
	{ "--scale", OPT_NUM, &(f)->scale, "X", \
	  "divide inputs by X (255 for pixels)", 1e-30, 1e30 }, \
	{ "--standardize", OPT_FLAG, &(f)->standardize, NULL, \
	  "CSV: per-column mean/std of the training set", 0, 0 }, \
	{ "--resize", OPT_STR, &(f)->resize, "HxW", \
	  "resize images (bilinear)", 0, 0 }

/* Loads what the flags name: *train when train flags are given (else
 * left empty), *test likewise. Applies scale, resize and standardize
 * (statistics from train, or from test when there is no train set).
 * need_train / need_test: a usage error when missing. */
int data_load(const struct data_flags *f, struct ml_dataset *train,
	      struct ml_dataset *test, int need_train, int need_test,
	      const char *cmd);

/* "a,b,c" into up to max names (pointers into buf, a copy). */
int split_names(char *buf, size_t bufsize, const char *list,
		const char **names, size_t max, size_t *n);

/* A warning on stderr when the loss and the model's output disagree
 * (cross-entropy on a linear output without --from-logits, or logits
 * asked of a softmax/sigmoid output): Keras would compute it silently. */
void engine_check_logits(const struct ml_model *m, enum ml_loss loss,
			 int from_logits);

/* Sets OpenBLAS threads from --threads when given (> 0). */
void engine_threads(int threads);

#endif
