/* simulate --model DIR <data flags> [--clients N --rounds R
 * --local-epochs E --batch-size B --split iid|dirichlet:A|shards:K
 * --rule R --malicious M --attack A --dp-clip C --dp-noise S
 * --sample-rate Q --seed N --json]
 *
 * TensorFlow Federated-style simulation: the training set split over N
 * clients, R rounds of local training and aggregation, the test set
 * evaluated after every round (one line, or one JSON object, per
 * round). */
#include "fedcli.h"

#include "core/err.h"
#include "engine/fedsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "simulate"

static int print_round(void *arg, const struct ml_fed_round *r)
{
	const struct fed_flags *ff = arg;

	if (ff->json) {
		printf("{\"round\": %d, \"test_accuracy\": %.6f, "
		       "\"test_loss\": %.6f, \"train_loss\": %.6f, "
		       "\"participants\": %zu, \"malicious\": %zu, "
		       "\"seconds\": %.3f", r->round, r->test_accuracy,
		       r->test_loss, r->train_loss, r->participants,
		       r->malicious, r->seconds);
		if (!isnan(r->client_accuracy))
			printf(", \"client_accuracy\": %.6f, "
			       "\"client_loss\": %.6f", r->client_accuracy,
			       r->client_loss);
		if (ff->dp_clip > 0)
			printf(", \"epsilon\": %.6f, \"dp_clipped\": %zu",
			       r->epsilon, r->dp_clipped);
		printf("}\n");
	} else {
		printf("round %d: test accuracy %.4f loss %.4f, %zu clients",
		       r->round, r->test_accuracy, r->test_loss,
		       r->participants);
		if (r->malicious)
			printf(" (%zu attackers)", r->malicious);
		if (!isnan(r->client_accuracy))
			printf(", on the clients' data %.4f",
			       r->client_accuracy);
		if (ff->dp_clip > 0)
			printf(", epsilon %.4f", r->epsilon);
		printf(", %.2f s\n", r->seconds);
	}
	fflush(stdout);
	return 0;
}

/* Keeps n random samples of d (seeded), in place. */
static int limit_train(struct ml_dataset *d, size_t n, uint64_t seed)
{
	struct ml_dataset sub;
	struct ml_rng r;
	size_t *idx;
	int err;

	if (n == 0 || n >= d->n)
		return FM_OK;
	idx = malloc(d->n * sizeof(*idx));
	if (!idx)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu samples)",
				    d->n);
	for (size_t i = 0; i < d->n; i++)
		idx[i] = i;
	ml_rng_seed(&r, seed);
	ml_rng_shuffle(&r, idx, d->n);
	err = ml_dataset_subset(&sub, d, idx, n);
	free(idx);
	if (err)
		return err;
	ml_dataset_cleanup(d);
	*d = sub;
	return FM_OK;
}

/* The command line: the simulation's options and what they name. */
struct sim_args {
	struct data_flags df;
	struct fed_flags ff;
	struct ml_fed_sim_opts o;
	const char *dir, *out, *split, *attack, *opt_name, *loss_name;
	int clients, malicious, classes, threads, max_train;
};

/* Parses the line into a; 1 to go on, else 0 with *code. */
static int parse_line(struct sim_args *a, int argc, char **argv, int *code)
{
	struct ml_fed_sim_opts *o = &a->o;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &a->dir, "DIR", "initial global model",
		  0, 0 },
		OPTS_DATA(&a->df),
		{ "--clients", OPT_INT, &a->clients, "N",
		  "simulated clients (10)", 1, ML_AGG_MAX_UPDATES },
		{ "--rounds", OPT_INT, &o->rounds, "R", "rounds (5)", 1,
		  100000 },
		{ "--local-epochs", OPT_INT, &o->local.epochs, "E",
		  "local epochs per round (1)", 1, 100000 },
		{ "--batch-size", OPT_INT, &o->local.batch_size, "B",
		  "local batch size (32)", 1, 1 << 20 },
		{ "--optimizer", OPT_STR, &a->opt_name, "NAME",
		  "local optimizer: adam (default) or sgd", 0, 0 },
		{ "--lr", OPT_NUM, &o->local.lr, "X", "local learning rate "
		  "(0.001)", 1e-12, 1e6 },
		{ "--momentum", OPT_NUM, &o->local.momentum, "X",
		  "SGD momentum (0)", 0, 0.999999 },
		{ "--loss", OPT_STR, &a->loss_name, "NAME",
		  "sparse_categorical_crossentropy (default), ...", 0, 0 },
		{ "--from-logits", OPT_FLAG, &o->local.from_logits, NULL,
		  "the model outputs logits", 0, 0 },
		{ "--classes", OPT_INT, &a->classes, "N", "label classes (the "
		  "model's outputs)", 1, 100000 },
		{ "--split", OPT_STR, &a->split, "S", "iid (default), "
		  "dirichlet:ALPHA or shards:K", 0, 0 },
		{ "--sample-rate", OPT_NUM, &o->sample_rate, "Q", "fraction "
		  "of clients per round (1)", 1e-9, 1 },
		{ "--malicious", OPT_INT, &a->malicious, "M", "attacking "
		  "clients (0)", 0, ML_AGG_MAX_UPDATES },
		{ "--attack", OPT_STR, &a->attack, "A", "sign_flip[:K] "
		  "(default), scale:K or noise[:S]", 0, 0 },
		{ "--max-train", OPT_INT, &a->max_train, "N", "use N random "
		  "training samples (all)", 1, 2147483647 },
		{ "--fed-eval", OPT_FLAG, &o->fed_eval, NULL, "also evaluate "
		  "each round on every client's data (federated evaluation)",
		  0, 0 },
		{ "--out", OPT_STR, &a->out, "DIR", "write the final model", 0,
		  0 },
		{ "--threads", OPT_INT, &a->threads, "N", "BLAS threads", 1,
		  256 },
		OPTS_FED(&a->ff),
		OPT_END,
	};
	struct opt_spec s = {
		.cmd = CMD, .opts = opts,
		.synopsis = "--model DIR (--train-images F --train-labels F | "
			    "--train-csv F ...) (--test-images F --test-labels "
			    "F | --test-csv F) [options]",
	};

	if (!engine_parse(&s, argc, argv, code))
		return 0;
	*code = fed_flags_finish(&a->ff, CMD);
	return *code == CLI_OK;
}

/* Turns the names of the line into the simulation's options; a usage
 * error is reported and returned. */
static int sim_options(struct sim_args *a)
{
	struct ml_fed_sim_opts *o = &a->o;

	if (!a->dir)
		return engine_usage(CMD, "--model is required");
	if (ml_optimizer_parse(a->opt_name, &o->local.optimizer))
		return engine_usage(CMD, "--optimizer: %s", fm_error_msg());
	if (ml_loss_parse(a->loss_name, &o->local.loss))
		return engine_usage(CMD, "--loss: %s", fm_error_msg());
	if (ml_fed_split_parse(&o->split, a->split))
		return engine_usage(CMD, "--split: %s", fm_error_msg());
	if (ml_fed_attack_parse(&o->attack, a->attack))
		return engine_usage(CMD, "--attack: %s", fm_error_msg());
	if (a->malicious > a->clients)
		return engine_usage(CMD, "--malicious %d: more than the %d "
				    "clients", a->malicious, a->clients);
	o->clients = (size_t)a->clients;
	o->malicious = (size_t)a->malicious;
	o->agg = a->ff.agg;
	o->dp_clip = a->ff.dp_clip;
	o->dp_noise = a->ff.dp_clip > 0 ? a->ff.dp_noise : 0;
	o->dp_delta = a->ff.dp_delta;
	o->seed = a->ff.seed;
	o->local.seed = a->ff.seed;
	o->on_round = print_round;
	o->cb_arg = &a->ff;
	return CLI_OK;
}

/* The simulation proper on loaded data; the model goes to --out. */
static int simulate(struct sim_args *a, struct ml_dataset *train,
		    const struct ml_dataset *test)
{
	struct ml_model *m = NULL;
	int err;

	err = ml_model_load(&m, a->dir);
	if (err)
		goto done;
	err = limit_train(train, (size_t)a->max_train, a->ff.seed);
	if (err)
		goto done;
	a->o.classes = a->classes ? a->classes
				  : (int)ml_model_output_size(m);
	err = ml_fed_simulate(m, train, test, &a->o);
	if (err || !a->out)
		goto done;
	err = ml_model_save(m, a->out);
	if (err) {
		fm_error_prefix("%s", a->out);
		goto done;
	}
	if (!a->ff.json)
		printf("saved %s\n", a->out);
done:
	ml_model_free(m);
	return err;
}

int cmd_simulate(int argc, char **argv)
{
	struct sim_args a = {
		.split = "iid", .attack = "sign_flip", .opt_name = "adam",
		.loss_name = "sparse_categorical_crossentropy", .clients = 10,
	};
	struct ml_dataset train = { 0 }, test = { 0 };
	int code;

	fed_flags_init(&a.ff);
	ml_fed_sim_opts_init(&a.o);
	if (!parse_line(&a, argc, argv, &code))
		return code;
	code = sim_options(&a);
	if (code)
		return code;
	engine_threads(a.threads);
	code = data_load(&a.df, &train, &test, 1, 1, CMD);
	if (code)
		return code;
	if (simulate(&a, &train, &test))
		code = engine_fail(CMD);
	ml_dataset_cleanup(&train);
	ml_dataset_cleanup(&test);
	return code;
}
