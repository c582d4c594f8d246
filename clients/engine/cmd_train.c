/* train --model DIR <data flags> --out DIR [training options] */
#include "cli.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "train"

struct progress {
	const struct ml_dataset *test;
	const struct ml_dataset *val;
	enum ml_loss loss;
	int from_logits;
	int json;
	int bar;             /* stderr is a terminal */
	int epochs;
	int epoch;           /* being trained, 1-based */
	double last_draw;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_batch(void *arg, size_t done, size_t total, double loss)
{
	struct progress *p = arg;
	double t;
	int fill;

	if (!p->bar)
		return;
	t = now_s();
	if (done < total && t - p->last_draw < 0.1)
		return;
	p->last_draw = t;
	fill = (int)(30.0 * (double)done / (double)total);
	fprintf(stderr, "\repoch %d/%d [%.*s%*s] %zu/%zu loss %.4f", p->epoch,
		p->epochs, fill, "##############################", 30 - fill, "",
		done, total, loss);
	if (done == total)
		fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

static int on_epoch(void *arg, struct ml_model *m,
		    const struct ml_epoch_stats *s)
{
	struct progress *p = arg;
	struct ml_eval ev = { 0 }, vev = { 0 };

	p->epoch = s->epoch + 1;
	if ((p->test && ml_evaluate(m, p->test, p->loss, p->from_logits, 0,
				    &ev)) ||
	    (p->val && ml_evaluate(m, p->val, p->loss, p->from_logits, 0,
				   &vev))) {
		fprintf(stderr, "fedmarket-engine: %s\n", fm_error_msg());
		return 1;
	}
	if (p->json) {
		printf("{\"epoch\": %d, \"loss\": %.6f, \"accuracy\": %.6f, "
		       "\"samples\": %zu, \"seconds\": %.4f, "
		       "\"samples_per_s\": %.1f", s->epoch, s->loss,
		       s->accuracy, s->samples, s->seconds, s->samples_per_s);
		if (p->val)
			printf(", \"val_loss\": %.6f, \"val_accuracy\": %.6f",
			       vev.loss, vev.accuracy);
		if (p->test)
			printf(", \"test_loss\": %.6f, \"test_accuracy\": %.6f",
			       ev.loss, ev.accuracy);
		printf("}\n");
	} else {
		printf("epoch %d/%d: loss %.4f accuracy %.4f, %.0f samples/s",
		       s->epoch, p->epochs, s->loss, s->accuracy,
		       s->samples_per_s);
		if (p->val)
			printf(", validation loss %.4f accuracy %.4f",
			       vev.loss, vev.accuracy);
		if (p->test)
			printf(", test loss %.4f accuracy %.4f", ev.loss,
			       ev.accuracy);
		printf("\n");
	}
	fflush(stdout);
	return 0;
}

/* Holds out the validation split of *train (shuffled under seed). */
static int split_validation(struct ml_dataset *train, struct ml_dataset *val,
			    double fraction, uint64_t seed)
{
	struct ml_dataset fit = { 0 };
	int err = ml_dataset_split(&fit, val, train, fraction, seed);

	if (err)
		return err;
	ml_dataset_cleanup(train);
	*train = fit;
	return FM_OK;
}

/* Trains m on the data the flags name and saves it to out. */
static int train_model(struct ml_model *m, struct ml_train_opts *o,
		       const struct data_flags *df, double val_split,
		       const char *out, struct progress *p, int *code)
{
	struct ml_dataset train, test, val = { 0 };
	int err = FM_OK;

	*code = data_load(df, &train, &test, 1, 0, CMD);
	if (*code)
		return FM_OK;
	if (val_split > 0) {
		err = split_validation(&train, &val, val_split, o->seed);
		if (err)
			goto done;
		p->val = val.n ? &val : NULL;
	}
	p->test = test.n ? &test : NULL;
	if (p->test) {
		err = ml_data_check(m, p->test, o->loss);
		if (err) {
			fm_error_prefix("test data");
			goto done;
		}
	}
	p->loss = o->loss;
	p->from_logits = o->from_logits;
	p->bar = isatty(STDERR_FILENO);
	p->epochs = o->epochs;
	p->epoch = 1;
	o->on_epoch = on_epoch;
	o->on_batch = on_batch;
	o->cb_arg = p;
	err = ml_train(m, &train, o);
	if (err)
		goto done;
	err = ml_model_save(m, out);
done:
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
	ml_dataset_cleanup(&val);
	return err;
}

int cmd_train(int argc, char **argv)
{
	struct data_flags df = { 0 };
	struct ml_train_opts o;
	const char *dir = NULL, *out = NULL, *opt_name = "adam";
	const char *loss_name = "sparse_categorical_crossentropy";
	int no_shuffle = 0, threads = 0, code, err;
	double val_split = 0;
	struct progress p = { 0 };

	ml_train_opts_init(&o);
	const struct opt opts[] = {
		{ "--model", OPT_STR, &dir, "DIR", "model to start from", 0, 0 },
		{ "--out", OPT_STR, &out, "DIR", "where to write the trained "
		  "model", 0, 0 },
		OPTS_DATA(&df),
		{ "--epochs", OPT_INT, &o.epochs, "N", "epochs (1)", 0, 100000 },
		{ "--batch-size", OPT_INT, &o.batch_size, "B", "batch size (32)",
		  1, 1 << 20 },
		{ "--optimizer", OPT_STR, &opt_name, "NAME", "adam (default) or "
		  "sgd", 0, 0 },
		{ "--lr", OPT_NUM, &o.lr, "X", "learning rate (0.001)", 1e-12,
		  1e6 },
		{ "--momentum", OPT_NUM, &o.momentum, "X", "SGD momentum (0)", 0,
		  0.999999 },
		{ "--nesterov", OPT_FLAG, &o.nesterov, NULL, "SGD with Nesterov "
		  "momentum", 0, 0 },
		{ "--validation-split", OPT_NUM, &val_split, "F", "hold out this "
		  "fraction of the training data (shuffled under --seed)",
		  0, 0.99 },
		{ "--loss", OPT_STR, &loss_name, "NAME",
		  "sparse_categorical_crossentropy (default), "
		  "categorical_crossentropy, binary_crossentropy, "
		  "mean_squared_error", 0, 0 },
		{ "--from-logits", OPT_FLAG, &o.from_logits, NULL,
		  "the model outputs logits", 0, 0 },
		{ "--seed", OPT_U64, &o.seed, "N", "shuffling and dropout seed "
		  "(0)", 0, 0 },
		{ "--no-shuffle", OPT_FLAG, &no_shuffle, NULL,
		  "keep the data order", 0, 0 },
		{ "--threads", OPT_INT, &threads, "N", "BLAS threads", 1, 256 },
		{ "--json", OPT_FLAG, &p.json, NULL, "one JSON object per epoch",
		  0, 0 },
		OPT_END,
	};
	struct opt_spec s = {
		.cmd = CMD, .opts = opts,
		.synopsis = "--model DIR --out DIR (--train-images F "
			    "--train-labels F | --train-csv F --inputs A,B "
			    "--outputs Y) [options]",
	};
	struct ml_model *m = NULL;

	if (!engine_parse(&s, argc, argv, &code))
		return code;
	if (!dir || !out)
		return engine_usage(CMD, "--model and --out are required");
	if (ml_optimizer_parse(opt_name, &o.optimizer))
		return engine_usage(CMD, "--optimizer: %s", fm_error_msg());
	if (ml_loss_parse(loss_name, &o.loss))
		return engine_usage(CMD, "--loss: %s", fm_error_msg());
	o.shuffle = !no_shuffle;
	engine_threads(threads);
	err = ml_model_load(&m, dir);
	if (err)
		goto done;
	engine_check_logits(m, o.loss, o.from_logits);
	err = train_model(m, &o, &df, val_split, out, &p, &code);
	if (err || code)
		goto done;
	if (!p.json)
		printf("saved %s\n", out);
done:
	ml_model_free(m);
	return err ? engine_fail(CMD) : code;
}
