/* The data flags: IDX or CSV files into data sets, then preprocessing. */
#include "cli.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS 4096

static int load_csv(struct ml_dataset *d, const char *path,
		    const struct data_flags *f, const char *cmd)
{
	static char ibuf[65536], obuf[65536];
	static const char *in[MAX_COLUMNS], *out[MAX_COLUMNS];
	size_t ni = 0, no = 0;

	if (!f->inputs || !f->outputs)
		return engine_usage(cmd, "CSV data needs --inputs and "
				    "--outputs");
	if (split_names(ibuf, sizeof(ibuf), f->inputs, in, MAX_COLUMNS, &ni) ||
	    split_names(obuf, sizeof(obuf), f->outputs, out, MAX_COLUMNS, &no))
		return engine_usage(cmd, "%s", fm_error_msg());
	if (ml_dataset_load_csv(d, path, in, ni, out, no))
		return engine_fail(cmd);
	return CLI_OK;
}

static int load_one(struct ml_dataset *d, const char *images,
		    const char *labels, const char *csv,
		    const struct data_flags *f, const char *cmd,
		    const char *which)
{
	if (csv && (images || labels))
		return engine_usage(cmd, "give either --%s-csv or "
				    "--%s-images/--%s-labels", which, which,
				    which);
	if (csv)
		return load_csv(d, csv, f, cmd);
	if (!images || !labels)
		return engine_usage(cmd, "--%s-images needs --%s-labels "
				    "(and the other way round)", which, which);
	if (ml_dataset_load_idx(d, images, labels))
		return engine_fail(cmd);
	return CLI_OK;
}

static int preprocess(struct ml_dataset *d, const struct data_flags *f,
		      const char *cmd)
{
	int h, w;
	char tail;

	if (f->resize) {
		if (sscanf(f->resize, "%dx%d%c", &h, &w, &tail) != 2)
			return engine_usage(cmd, "--resize: expected HxW, "
					    "got \"%s\"", f->resize);
		if (ml_dataset_resize(d, h, w))
			return engine_fail(cmd);
	}
	if (f->scale > 0)
		ml_dataset_scale(d, (float)f->scale);
	return CLI_OK;
}

/* Scales both sets by the statistics of ref (train, else test). */
static int standardize(struct ml_dataset *train, struct ml_dataset *test,
		       int have_train, int have_test)
{
	const struct ml_dataset *ref = have_train ? train : test;
	float *mean = NULL, *std = NULL;
	int err = FM_OK;

	if (have_train && have_test && test->x_size != train->x_size)
		return fm_error_set(FM_EINVAL, "test samples have %zu values, "
				    "training samples %zu", test->x_size,
				    train->x_size);
	mean = malloc(ref->x_size * sizeof(float) + 1);
	std = malloc(ref->x_size * sizeof(float) + 1);
	if (!mean || !std) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	ml_dataset_stats(ref, mean, std);
	if (have_train)
		ml_dataset_standardize(train, mean, std);
	if (have_test)
		ml_dataset_standardize(test, mean, std);
done:
	free(mean);
	free(std);
	return err;
}

/* One set: load_one, then preprocess. */
static int load_set(struct ml_dataset *d, const char *images,
		    const char *labels, const char *csv,
		    const struct data_flags *f, const char *cmd,
		    const char *which)
{
	int rc = load_one(d, images, labels, csv, f, cmd, which);

	return rc ? rc : preprocess(d, f, cmd);
}

int data_load(const struct data_flags *f, struct ml_dataset *train,
	      struct ml_dataset *test, int need_train, int need_test,
	      const char *cmd)
{
	int have_train = f->train_images || f->train_labels || f->train_csv;
	int have_test = f->test_images || f->test_labels || f->test_csv;
	int rc = CLI_OK;

	memset(train, 0, sizeof(*train));
	memset(test, 0, sizeof(*test));
	if (need_train && !have_train)
		return engine_usage(cmd, "training data is needed "
				    "(--train-images/--train-labels or "
				    "--train-csv)");
	if (need_test && !have_test)
		return engine_usage(cmd, "test data is needed "
				    "(--test-images/--test-labels or "
				    "--test-csv)");
	if (have_train) {
		rc = load_set(train, f->train_images, f->train_labels,
			      f->train_csv, f, cmd, "train");
		if (rc)
			goto done;
	}
	if (have_test) {
		rc = load_set(test, f->test_images, f->test_labels,
			      f->test_csv, f, cmd, "test");
		if (rc)
			goto done;
	}
	if (f->standardize &&
	    standardize(train, test, have_train, have_test))
		rc = engine_fail(cmd);
done:
	if (rc) {
		ml_dataset_cleanup(train);
		ml_dataset_cleanup(test);
	}
	return rc;
}
