/* eval --model DIR <data flags> [--loss NAME] [--from-logits] [--json] */
#include "cli.h"

#include "core/err.h"

#include <stdio.h>

#define CMD "eval"

int cmd_eval(int argc, char **argv)
{
	struct data_flags df = { 0 };
	const char *dir = NULL, *loss_name = "sparse_categorical_crossentropy";
	int from_logits = 0, json = 0, batch = 1024, threads = 0, code;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &dir, "DIR", "model folder", 0, 0 },
		OPTS_DATA(&df),
		{ "--loss", OPT_STR, &loss_name, "NAME",
		  "sparse_categorical_crossentropy (default), "
		  "categorical_crossentropy, binary_crossentropy, "
		  "mean_squared_error", 0, 0 },
		{ "--from-logits", OPT_FLAG, &from_logits, NULL,
		  "the model outputs logits", 0, 0 },
		{ "--batch-size", OPT_INT, &batch, "B",
		  "evaluation batch (1024)", 1, 1 << 20 },
		{ "--threads", OPT_INT, &threads, "N", "BLAS threads", 1, 256 },
		{ "--json", OPT_FLAG, &json, NULL, "print JSON", 0, 0 },
		OPT_END,
	};
	struct opt_spec s = {
		.cmd = CMD, .opts = opts,
		.synopsis = "--model DIR (--test-images F --test-labels F | "
			    "--test-csv F --inputs A,B --outputs Y) [options]",
	};
	struct ml_dataset train, test, *d;
	struct ml_model *m = NULL;
	struct ml_eval ev;
	enum ml_loss loss;
	int err = FM_OK;

	if (!engine_parse(&s, argc, argv, &code))
		return code;
	if (!dir)
		return engine_usage(CMD, "--model is required");
	if (ml_loss_parse(loss_name, &loss))
		return engine_usage(CMD, "--loss: %s", fm_error_msg());
	engine_threads(threads);
	code = data_load(&df, &train, &test, 0, 0, CMD);
	if (code)
		return code;
	d = test.n ? &test : &train;
	if (!d->n) {
		code = engine_usage(CMD, "give test (or training) data");
		goto done;
	}
	err = ml_model_load(&m, dir);
	if (err)
		goto done;
	engine_check_logits(m, loss, from_logits);
	err = ml_evaluate(m, d, loss, from_logits, batch, &ev);
	if (err)
		goto done;
	if (json)
		printf("{\"loss\": %.6f, \"accuracy\": %.6f, \"n\": %zu}\n",
		       ev.loss, ev.accuracy, ev.n);
	else
		printf("loss %.4f accuracy %.4f (%zu samples)\n", ev.loss,
		       ev.accuracy, ev.n);
done:
	if (err)
		code = engine_fail(CMD);
	ml_model_free(m);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
	return code;
}
