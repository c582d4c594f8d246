/* assign, train, send-result and run: a contributor's work on a model
 * task. The trained model and what send-result needs (example count,
 * metrics) stay in work_dir/assignments/<id>/ between the steps. */
#include "contributor.h"

#include "cli/rounds.h"
#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"
#include "engine/fedsim.h"
#include "market/spec.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* What train leaves in a model folder beside model.json: the example
 * count and metrics of the run that made it. */
#define TRAINING_JSON "training.json"

int contrib_assign(struct cli *c, const char *tid, char aid[37],
		   json_t **out)
{
	char path[120];
	struct api *a = NULL;
	json_t *as = NULL;
	int err = cli_api(c, 1, &a);

	if (err)
		return err;
	snprintf(path, sizeof(path), "/v1/tasks/%s/assignments", tid);
	cli_on(c, CLI_ON_TASK);
	err = api_post(a, API_ASSIGND, path, NULL, &as);
	if (err)
		return err;
	err = cli_uuid(aid, cli_str(as, "id"), "assignment id");
	if (err)
		goto done;
	if (out)
		*out = json_incref(as);
done:
	json_decref(as);
	return err;
}

int cmd_assign(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	const struct opt opts[] = { OPT_END };
	json_t *as = NULL;
	char tid[67], aid[37];
	int code;

	if (!cli_parse(c, opts, argc, argv, "TASK", pos, 1, 1, &code))
		return code;
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	if (contrib_assign(c, tid, aid, &as))
		return cli_fail(c);
	/* stdout is the id alone, for A=$(fedmarket-contributor assign T) */
	if (c->json) {
		cli_print_json(as);
	} else {
		printf("%s\n", aid);
		fprintf(stderr, "assignment %s of task %s: submit before %s\n",
			aid, tid, cli_str(as, "deadline_at"));
	}
	json_decref(as);
	return CLI_OK;
}

/* Why assignment as of task t takes no result, and what to do. */
static int not_active(const json_t *as, const json_t *t)
{
	const char *aid = cli_str(as, "id"), *st = cli_str(as, "state");
	const char *tid = cli_str(t, "id"), *tst = cli_str(t, "state");

	if (!strcmp(tst, "cancelled"))
		return fm_error_set(FM_ECONFLICT, "task %s was cancelled by its "
				    "creator: assignment %s (%s) takes no "
				    "result", tid, aid, st);
	if (strcmp(tst, "open"))
		return fm_error_set(FM_ECONFLICT, "assignment %s is %s and task "
				    "%s is %s: it takes no more results", aid,
				    st, tid, tst);
	if (!strcmp(st, "submitted") || !strcmp(st, "accepted"))
		return fm_error_set(FM_ECONFLICT, "assignment %s is %s: its "
				    "result was sent already (see 'status')",
				    aid, st);
	return fm_error_set(FM_ECONFLICT, "assignment %s is %s, not active: "
			    "take a new slot with 'assign %s'", aid, st, tid);
}

int contrib_active_assignment(struct cli *c, const char *aid, json_t **as,
			      json_t **task)
{
	struct api *a = NULL;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	cli_on(c, CLI_ON_ASSIGNMENT);
	err = api_assignment(a, aid, as);
	if (err)
		return err;
	cli_on(c, CLI_ON_NONE);
	err = api_task(a, cli_str(*as, "task_id"), task);
	if (err)
		return err;
	if (strcmp(cli_str(*as, "state"), "active"))
		return not_active(*as, *task);
	return FM_OK;
}

static int local_dir(struct cli *c, char *out, size_t n, const char *aid)
{
	char sub[64];

	snprintf(sub, sizeof(sub), "assignments/%s", aid);
	return work_dir(c, out, n, sub);
}

/* ------------------------------------------------------------------ train */

struct train_ctx {
	struct cli_bar bar;
	struct ml_epoch_stats last;
	int epochs, epoch; /* epoch: the one running, from 1 */
};

/* One line for the whole run: the share of every epoch's samples done,
 * the epoch, its running loss and the time left. */
static void on_batch(void *arg, size_t done, size_t total, double loss)
{
	struct train_ctx *t = arg;

	cli_bar_note(&t->bar, "epoch %d/%d, loss %.4f", t->epoch, t->epochs,
		     loss);
	cli_bar_update(&t->bar,
		       (uint64_t)(t->epoch - 1) * total + done,
		       (uint64_t)t->epochs * total);
}

static int on_epoch(void *arg, struct ml_model *m,
		    const struct ml_epoch_stats *s)
{
	struct train_ctx *t = arg;

	(void)m;
	t->last = *s;
	t->epoch = s->epoch + 1;
	return 0;
}

/* What Ctrl-C says: written by the handler, so it is made before
 * (write is async-signal-safe, printf is not). */
static char stop_msg[768];
static size_t stop_len;

static void on_stop(int sig)
{
	if (stop_len && write(STDERR_FILENO, stop_msg, stop_len) < 0) {
		/* nothing more can be done about it here */
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void contrib_on_stop(struct cli *c, const char *fmt, ...)
{
	struct sigaction sa;
	va_list ap;
	int n, head;

	if (!fmt) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		return;
	}
	head = snprintf(stop_msg, sizeof(stop_msg), "%s%s %s: ",
			c->progress ? "\r\033[K" : "", c->prog, c->cmd);
	if (head < 0 || (size_t)head >= sizeof(stop_msg))
		head = 0;
	va_start(ap, fmt);
	n = vsnprintf(stop_msg + head, sizeof(stop_msg) - (size_t)head, fmt,
		      ap);
	va_end(ap);
	n = n < 0 ? head : head + n;
	stop_len = (size_t)n < sizeof(stop_msg) ? (size_t)n
						: sizeof(stop_msg) - 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* From here until stop_catch(0), Ctrl-C (or SIGTERM) says what stays
 * and how to go on before the program ends as interrupted. */
static void stop_catch(struct cli *c, const json_t *as)
{
	if (!as) {
		contrib_on_stop(c, NULL);
		return;
	}
	contrib_on_stop(c, "interrupted; nothing was sent and this run's "
			"training is lost\nassignment %s keeps its slot of "
			"task %s until %s: run the same command again before "
			"then\n",
			cli_show(as, "id"), cli_show(as, "task_id"),
			cli_show(as, "deadline_at"));
}

/* Replaces the honest update by an attack's (testing validators). */
static int attack(const char *spec, struct ml_model *trained,
		  const struct ml_model *base)
{
	struct ml_fed_attack at;
	struct ml_rng rng;
	size_t n = 0, i;
	const float *b = ml_model_params_const(base, &n);
	float *p = ml_model_params(trained, &n);
	int err = ml_fed_attack_parse(&at, spec);

	if (err)
		return err;
	for (i = 0; i < n; i++)
		p[i] -= b[i];
	ml_rng_seed(&rng, 1);
	ml_fed_attack_apply(&at, p, n, &rng);
	for (i = 0; i < n; i++)
		p[i] += b[i];
	return FM_OK;
}

/* What training for an assignment needs. */
struct train_in {
	json_t *task, *ver; /* the task and its newest model version */
	struct ml_model *m; /* that version's model */
	struct ml_dataset d;
	struct ml_train_opts o;
};

static void train_in_cleanup(struct train_in *in)
{
	json_decref(in->task);
	json_decref(in->ver);
	ml_model_free(in->m);
	ml_dataset_cleanup(&in->d);
}

/* The task's training options and newest model, and the data, checked
 * against that model. */
static int train_load(struct cli *c, const char *aid, const char *data,
		      struct train_in *in)
{
	json_t *as = NULL;
	const json_t *spec;
	struct api *a = NULL;
	int err;

	err = contrib_active_assignment(c, aid, &as, &in->task);
	if (err)
		goto done;
	stop_catch(c, as);
	if (!strcmp(cli_str(in->task, "kind"), "data_annotator")) {
		err = fm_error_set(FM_EINVAL, "task %s is a data-annotation "
				   "task: use 'annotate %s'",
				   cli_str(in->task, "id"), aid);
		goto done;
	}
	spec = json_object_get(in->task, "spec");
	err = work_train_opts(&in->o, spec);
	if (err)
		goto done;
	err = cli_api(c, 0, &a);
	if (err)
		goto done;
	err = api_model_version(a, cli_str(in->task, "id"), -1, &in->ver);
	if (err)
		goto done;
	err = work_load_bundle_model(c, cli_str(in->ver, "bundle_ref"),
				     &in->m);
	if (err)
		goto done;
	cli_on(c, CLI_ON_FILE);
	err = work_load_data(&in->d, spec, data);
	if (err)
		goto done;
	err = ml_data_check(in->m, &in->d, in->o.loss);
	if (err && in->d.n && fm_error_code() == FM_EINVAL)
		fm_error_prefix("data %s does not fit the task's model", data);
done:
	json_decref(as);
	return err;
}

static int dump_to(const json_t *doc, const char *path)
{
	if (json_dump_file(doc, path, JSON_INDENT(1)))
		return fm_error_set(FM_EIO, "cannot write %s", path);
	return FM_OK;
}

/* dir/result.json: what send-result submits with the model; *summary
 * gets it too. The model folder keeps a copy as training.json, so the
 * model sent from anywhere with --model still tells its example count
 * (its weight in FedAvg). */
static int write_summary(json_t **summary, const char *dir, const char *aid,
			 const struct train_in *in, const struct train_ctx *t)
{
	char path[WORK_PATH_MAX + 32];
	json_t *res;
	int err;

	res = json_pack("{s:s, s:s, s:I, s:i, s:{s:f, s:f}}", "assignment",
			aid, "task_id", cli_str(in->task, "id"), "num_examples",
			(json_int_t)in->d.n, "base_version",
			(int)json_integer_value(json_object_get(in->ver,
								"version")),
			"metrics", "loss",
			isfinite(t->last.loss) ? t->last.loss : 0, "accuracy",
			t->last.accuracy);
	if (!res)
		return fm_error_set(FM_ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/model/" TRAINING_JSON, dir);
	err = dump_to(res, path);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "%s/result.json", dir);
	err = dump_to(res, path);
	if (err)
		goto done;
	*summary = json_incref(res);
done:
	json_decref(res);
	return err;
}

int contrib_train(struct cli *c, const char *aid, const char *data,
		  const char *attack_spec, json_t **summary)
{
	struct train_in in = { 0 };
	struct ml_model *base = NULL;
	struct train_ctx t = { 0 };
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16];
	int err;

	err = train_load(c, aid, data, &in);
	if (err)
		goto done;
	if (attack_spec) {
		err = ml_model_clone(&base, in.m);
		if (err)
			goto done;
	}
	cli_bar_init(&t.bar, c, "training");
	t.epochs = in.o.epochs;
	t.epoch = 1;
	in.o.on_batch = on_batch;
	in.o.on_epoch = on_epoch;
	in.o.cb_arg = &t;
	err = ml_train(in.m, &in.d, &in.o);
	cli_bar_done(&t.bar);
	if (err)
		goto done;
	if (attack_spec) {
		err = attack(attack_spec, in.m, base);
		if (err)
			goto done;
	}
	cli_on(c, CLI_ON_FILE);
	err = local_dir(c, dir, sizeof(dir), aid);
	if (err)
		goto done;
	/* result.json is written last: without it the model is not whole */
	snprintf(path, sizeof(path), "%s/result.json", dir);
	if (unlink(path) && errno != ENOENT) {
		err = fm_error_set(FM_EIO, "cannot remove %s: %s", path,
				   strerror(errno));
		goto done;
	}
	snprintf(path, sizeof(path), "%s/model", dir);
	err = ml_model_save(in.m, path);
	if (err)
		goto done;
	err = write_summary(summary, dir, aid, &in, &t);
done:
	stop_catch(c, NULL);
	ml_model_free(base);
	train_in_cleanup(&in);
	return err;
}

void contrib_print_trained(struct cli *c, const json_t *s)
{
	const json_t *m = json_object_get(s, "metrics");

	if (c->json) {
		cli_print_json(s);
		return;
	}
	printf("trained model version %lld on %lld examples: loss %.4f, "
	       "accuracy %.4f\n",
	       (long long)json_integer_value(json_object_get(s,
							    "base_version")),
	       (long long)json_integer_value(json_object_get(s,
							    "num_examples")),
	       json_number_value(json_object_get(m, "loss")),
	       json_number_value(json_object_get(m, "accuracy")));
}

int cmd_train(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *data = NULL, *att = NULL;
	const struct opt opts[] = {
		{ "--data", OPT_STR, &data, "PATH", DATA_HELP, 0, 0 },
		{ "--attack", OPT_STR, &att, "KIND", ATTACK_HELP, 0, 0 },
		OPT_END,
	};
	json_t *s = NULL;
	char aid[37];
	int code;

	if (!cli_parse(c, opts, argc, argv, "ASSIGNMENT --data PATH", pos, 1,
		       1, &code))
		return code;
	if (!data)
		return cli_usage(c, "--data is required");
	if (cli_uuid(aid, pos[0], "assignment"))
		return cli_usage(c, "%s", fm_error_msg());
	if (contrib_train(c, aid, data, att, &s))
		return cli_fail(c);
	contrib_print_trained(c, s);
	if (!c->json)
		printf("next: send-result %s\n", aid);
	json_decref(s);
	return CLI_OK;
}

/* ------------------------------------------------------------ send-result */

/* A model folder, loaded and checked for NaN and infinity. */
static int load_checked(struct ml_model **m, const char *dir)
{
	int err = ml_model_load(m, dir);

	if (err)
		goto done;
	err = ml_model_check_finite(*m);
done:
	if (err)
		fm_error_prefix("model %s", dir);
	return err;
}

/* What train left in dir for aid: the model and result.json. */
static int load_trained(struct ml_model **m, json_t **res, const char *dir,
			const char *aid)
{
	char path[WORK_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/result.json", dir);
	if (fj_load_file(res, path, 1u << 20))
		return fm_error_set(FM_ENOTFOUND, "nothing trained for "
				    "assignment %s: run 'train %s --data "
				    "PATH' or give --model DIR", aid, aid);
	snprintf(path, sizeof(path), "%s/model", dir);
	return load_checked(m, path);
}

int contrib_trained(struct cli *c, const char *aid, json_t **summary)
{
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16];
	json_t *res = NULL;
	int err = local_dir(c, dir, sizeof(dir), aid);

	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/result.json", dir);
	if (access(path, F_OK))
		return fm_error_set(FM_ENOTFOUND, "nothing trained for "
				    "assignment %s", aid);
	err = fj_load_file(&res, path, 1u << 20);
	if (err)
		return err;
	if (strcmp(cli_str(res, "assignment"), aid)) {
		json_decref(res);
		return fm_error_set(FM_ENOTFOUND, "%s is not assignment %s's",
				    path, aid);
	}
	*summary = res;
	return FM_OK;
}

/* The most examples a result of task may claim. */
static long long examples_cap(const json_t *task)
{
	const json_t *v = json_object_get(json_object_get(task, "spec"),
					  "max_examples_per_result");

	return json_is_integer(v) && json_integer_value(v) > 0
		? (long long)json_integer_value(v) : SPEC_EXAMPLES_DEFAULT;
}

int contrib_send(struct cli *c, const char *aid, const char *model_dir,
		 long examples, long base_version, json_t **out)
{
	json_t *as = NULL, *task = NULL, *res = NULL, *body = NULL;
	struct ml_model *m = NULL;
	struct store_ref ref;
	struct api *a = NULL;
	char dir[WORK_PATH_MAX], path[120], name[64];
	long long n = examples, cap;
	int err;

	/* a model given by path is checked before anything is asked */
	cli_on(c, CLI_ON_FILE);
	if (model_dir) {
		err = load_checked(&m, model_dir);
		if (err)
			goto done;
	}
	err = contrib_active_assignment(c, aid, &as, &task);
	if (err)
		goto done;
	cli_on(c, CLI_ON_FILE);
	err = local_dir(c, dir, sizeof(dir), aid);
	if (err)
		goto done;
	if (!m) {
		err = load_trained(&m, &res, dir, aid);
		if (err)
			goto done;
	}
	cap = examples_cap(task);
	if (res) {
		/* trained here on more than the task weighs: it weighs the
		 * cap, as aggregation would */
		n = json_integer_value(json_object_get(res, "num_examples"));
		if (n > cap)
			n = cap;
	}
	if (n < 1 || n > cap) {
		/* resultd's words, before anything is uploaded */
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "num_examples: %lld is not in 1 to %lld "
				   "(task.max_examples_per_result)",
				   n, cap);
		goto done;
	}
	snprintf(name, sizeof(name), "result-%.8s", aid);
	err = work_push_model(c, &ref, m, STORE_KIND_RESULT, name, NULL);
	if (err)
		goto done;
	body = json_pack("{s:s, s:I}", "bundle", ref.hex, "num_examples",
			 (json_int_t)n);
	if (res) {
		json_object_set(body, "metrics", json_object_get(res, "metrics"));
		if (json_is_integer(json_object_get(res, "base_version")))
			base_version = (long)json_integer_value(
				json_object_get(res, "base_version"));
	}
	/* the version training started from: the service checks it is
	 * (sync) the current one, or (async) not too old; a marketplace
	 * without rounds knows no such field */
	if (base_version >= 0 && rounds_known(task))
		json_object_set_new(body, "base_version",
				    json_integer(base_version));
	err = cli_api(c, 1, &a);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "/v1/assignments/%s/result", aid);
	cli_on(c, CLI_ON_ASSIGNMENT);
	err = api_post(a, API_RESULTD, path, body, out);
done:
	json_decref(as);
	json_decref(task);
	json_decref(res);
	json_decref(body);
	ml_model_free(m);
	return err;
}

void contrib_print_sent(struct cli *c, const json_t *r)
{
	if (c->json) {
		cli_print_json(r);
		return;
	}
	printf("%s\n", cli_str(r, "id"));
	fprintf(stderr, "result %s submitted for task %s; the validator "
		"decides next (see 'status' and 'earnings')\n",
		cli_str(r, "id"), cli_str(r, "task_id"));
}

/* What train recorded in a model folder (its training.json): the
 * example count into *examples and, when it says, the version it
 * trained from into *base (else left alone); FM_ENOTFOUND when the
 * folder has none. */
static int model_recorded(long *examples, long *base, const char *dir)
{
	char path[WORK_PATH_MAX + 32];
	json_t *doc = NULL;
	json_int_t n;
	int err;

	snprintf(path, sizeof(path), "%s/" TRAINING_JSON, dir);
	err = fj_load_file(&doc, path, 1u << 20);
	if (err)
		return err;
	n = json_integer_value(json_object_get(doc, "num_examples"));
	if (json_is_integer(json_object_get(doc, "base_version")) &&
	    *base < 0)
		*base = (long)json_integer_value(json_object_get(
			doc, "base_version"));
	json_decref(doc);
	if (n <= 0)
		return fm_error_set(FM_EINVAL, "%s: no num_examples", path);
	if (*examples < 0)
		*examples = (long)n;
	return FM_OK;
}

int cmd_send_result(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *model = NULL;
	long examples = -1, base = -1;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &model, "DIR",
		  "a TensorFlow.js model folder made with any tool (default: "
		  "what train made)", 0, 0 },
		{ "--examples", OPT_LONG, &examples, "N",
		  "with --model: examples it was trained on, its FedAvg "
		  "weight (default: what train recorded in DIR/"
		  TRAINING_JSON ")", 0, 1e12 },
		{ "--base-version", OPT_LONG, &base, "V",
		  "with --model: the model version its training started "
		  "from (default: what train recorded in DIR/" TRAINING_JSON
		  ", else the version before the assignment's round)", 0,
		  1e6 },
		OPT_END,
	};
	json_t *r = NULL;
	char aid[37];
	int code;

	if (!cli_parse(c, opts, argc, argv,
		       "ASSIGNMENT [--model DIR [--examples N] "
		       "[--base-version V]]", pos, 1, 1, &code))
		return code;
	if (cli_uuid(aid, pos[0], "assignment"))
		return cli_usage(c, "%s", fm_error_msg());
	if (examples >= 0 && !model)
		return cli_usage(c, "--examples goes with --model (train "
				 "records the count of its own model)");
	if (base >= 0 && !model)
		return cli_usage(c, "--base-version goes with --model (train "
				 "records the version of its own model)");
	/* a model sent without its example count would weigh nothing */
	if (model && model_recorded(&examples, &base, model) &&
	    examples < 0)
		return cli_usage(c, "--model %s: how many examples was it "
				 "trained on? give --examples N (its weight "
				 "in federated averaging); only models made "
				 "by 'train' record it", model);
	if (contrib_send(c, aid, model, examples, base, &r))
		return cli_fail(c);
	contrib_print_sent(c, r);
	json_decref(r);
	return CLI_OK;
}
