/* assign, train, send-result and run: a contributor's work on a model
 * task. The trained model and what send-result needs (example count,
 * metrics) stay in work_dir/assignments/<id>/ between the steps. */
#include "contributor.h"

#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"
#include "engine/fedsim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Takes a slot of task tid; aid gets the assignment id. */
static int assign(struct cli *c, const char *tid, char aid[37], json_t **out)
{
	char path[120];
	struct api *a = NULL;
	json_t *as = NULL;
	int err = cli_api(c, 1, &a);

	snprintf(path, sizeof(path), "/v1/tasks/%s/assignments", tid);
	if (!err)
		err = api_post(a, API_ASSIGND, path, NULL, &as);
	if (!err)
		err = cli_uuid(aid, cli_str(as, "id"), "assignment id");
	if (!err && out)
		*out = json_incref(as);
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
	if (assign(c, tid, aid, &as))
		return cli_fail(c);
	if (c->json)
		cli_print_json(as);
	else
		printf("%s\nassignment %s of task %s: submit before %s\n", aid,
		       aid, tid, cli_str(as, "deadline_at"));
	json_decref(as);
	return CLI_OK;
}

/* The assignment (it must be active: submitting to any other fails) and
 * its task. */
static int active_assignment(struct cli *c, const char *aid, json_t **as,
			     json_t **task)
{
	struct api *a = NULL;
	int err = cli_api(c, 0, &a);

	if (!err)
		err = api_assignment(a, aid, as);
	if (err)
		return err;
	if (strcmp(cli_str(*as, "state"), "active"))
		return fm_error_set(FM_ECONFLICT, "assignment %s is %s, not "
				    "active: take a new slot with 'assign %s'",
				    aid, cli_str(*as, "state"),
				    cli_str(*as, "task_id"));
	return api_task(a, cli_str(*as, "task_id"), task);
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
	int epochs;
};

static void on_batch(void *arg, size_t done, size_t total, double loss)
{
	struct train_ctx *t = arg;

	(void)loss;
	cli_bar_update(&t->bar, done, total);
}

static int on_epoch(void *arg, struct ml_model *m,
		    const struct ml_epoch_stats *s)
{
	struct train_ctx *t = arg;

	(void)m;
	t->last = *s;
	cli_bar_done(&t->bar);
	return 0;
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

/* Trains the task's newest model version on data; the model and
 * result.json go to the assignment's local folder. */
static int train(struct cli *c, const char *aid, const char *data,
		 const char *attack_spec, json_t **summary)
{
	json_t *as = NULL, *task = NULL, *ver = NULL, *res = NULL;
	struct ml_model *m = NULL, *base = NULL;
	struct ml_dataset d = { 0 };
	struct ml_train_opts o;
	struct train_ctx t = { 0 };
	struct api *a = NULL;
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16];
	const json_t *spec;
	int err;

	err = active_assignment(c, aid, &as, &task);
	if (!err && !strcmp(cli_str(task, "kind"), "data_annotator"))
		err = fm_error_set(FM_EINVAL, "task %s is a data-annotation "
				   "task: use 'annotate %s'",
				   cli_str(task, "id"), aid);
	spec = json_object_get(task, "spec");
	if (!err)
		err = work_train_opts(&o, spec);
	if (!err)
		err = cli_api(c, 0, &a);
	if (!err)
		err = api_model_version(a, cli_str(task, "id"), -1, &ver);
	if (!err)
		err = work_load_bundle_model(c, cli_str(ver, "bundle_ref"), &m);
	if (!err)
		err = work_load_data(&d, spec, data);
	if (!err)
		err = ml_data_check(m, &d, o.loss);
	if (err) {
		if (d.n && fm_error_code() == FM_EINVAL)
			fm_error_prefix("data %s does not fit the task's model",
					data);
		goto done;
	}
	if (attack_spec)
		err = ml_model_clone(&base, m);
	cli_bar_init(&t.bar, c, "training");
	t.epochs = o.epochs;
	o.on_batch = on_batch;
	o.on_epoch = on_epoch;
	o.cb_arg = &t;
	if (!err)
		err = ml_train(m, &d, &o);
	if (!err && attack_spec)
		err = attack(attack_spec, m, base);
	if (!err)
		err = local_dir(c, dir, sizeof(dir), aid);
	snprintf(path, sizeof(path), "%s/model", dir);
	if (!err)
		err = ml_model_save(m, path);
	if (err)
		goto done;
	res = json_pack("{s:s, s:I, s:i, s:{s:f, s:f}}", "assignment", aid,
			"num_examples", (json_int_t)d.n, "base_version",
			(int)json_integer_value(json_object_get(ver, "version")),
			"metrics", "loss", isfinite(t.last.loss) ? t.last.loss : 0,
			"accuracy", t.last.accuracy);
	snprintf(path, sizeof(path), "%s/result.json", dir);
	if (!res || json_dump_file(res, path, JSON_INDENT(1)))
		err = fm_error_set(FM_EIO, "cannot write %s", path);
	if (!err)
		*summary = json_incref(res);
done:
	json_decref(as);
	json_decref(task);
	json_decref(ver);
	json_decref(res);
	ml_model_free(m);
	ml_model_free(base);
	ml_dataset_cleanup(&d);
	return err;
}

static void print_trained(struct cli *c, const json_t *s)
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

#define DATA_HELP \
	"your data in the task's format: a folder with *images* and " \
	"*labels* IDX files, IMAGES,LABELS, or a CSV file"
#define ATTACK_HELP \
	"testing only: send a malicious update instead (sign_flip[:K], " \
	"scale:K, noise[:S]) to see the validator reject it"

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
	if (train(c, aid, data, att, &s))
		return cli_fail(c);
	print_trained(c, s);
	if (!c->json)
		printf("next: send-result %s\n", aid);
	json_decref(s);
	return CLI_OK;
}

/* ------------------------------------------------------------ send-result */

/* Pushes the model (model_dir, else the one train left) and submits it;
 * *out gets the result. */
static int send_result(struct cli *c, const char *aid, const char *model_dir,
		       long examples, json_t **out)
{
	json_t *as = NULL, *task = NULL, *res = NULL, *body = NULL;
	struct ml_model *m = NULL;
	struct store_ref ref;
	struct api *a = NULL;
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16], name[64];
	int err;

	/* a model given by path is checked before anything is asked */
	if (model_dir) {
		err = ml_model_load(&m, model_dir);
		if (!err)
			err = ml_model_check_finite(m);
		if (err) {
			fm_error_prefix("model %s", model_dir);
			goto done;
		}
	}
	err = active_assignment(c, aid, &as, &task);
	if (!err)
		err = local_dir(c, dir, sizeof(dir), aid);
	if (err)
		goto done;
	if (!m) {
		snprintf(path, sizeof(path), "%s/result.json", dir);
		err = fj_load_file(&res, path, 1u << 20);
		if (err) {
			err = fm_error_set(FM_ENOTFOUND, "nothing trained for "
					   "assignment %s: run 'train %s --data "
					   "PATH' or give --model DIR",
					   aid, aid);
			goto done;
		}
		snprintf(path, sizeof(path), "%s/model", dir);
		err = ml_model_load(&m, path);
		if (!err)
			err = ml_model_check_finite(m);
		if (err) {
			fm_error_prefix("model %s", path);
			goto done;
		}
	}
	snprintf(name, sizeof(name), "result-%.8s", aid);
	err = work_push_model(c, &ref, m, STORE_KIND_RESULT, name, NULL);
	if (err)
		goto done;
	body = json_pack("{s:s, s:I}", "bundle", ref.hex, "num_examples",
			 (json_int_t)(res ? json_integer_value(json_object_get(
						    res, "num_examples"))
					  : examples));
	if (res)
		json_object_set(body, "metrics", json_object_get(res, "metrics"));
	err = cli_api(c, 1, &a);
	snprintf(path, sizeof(path), "/v1/assignments/%s/result", aid);
	if (!err)
		err = api_post(a, API_RESULTD, path, body, out);
done:
	json_decref(as);
	json_decref(task);
	json_decref(res);
	json_decref(body);
	ml_model_free(m);
	return err;
}

static void print_sent(struct cli *c, const json_t *r)
{
	if (c->json) {
		cli_print_json(r);
		return;
	}
	printf("%s\nresult %s submitted for task %s; the validator decides "
	       "next (see 'status' and 'earnings')\n",
	       cli_str(r, "id"), cli_str(r, "id"), cli_str(r, "task_id"));
}

int cmd_send_result(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *model = NULL;
	long examples = 0;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &model, "DIR",
		  "a TensorFlow.js model folder made with any tool (default: "
		  "what train made)", 0, 0 },
		{ "--examples", OPT_LONG, &examples, "N",
		  "with --model: examples it was trained on (the FedAvg "
		  "weight)", 0, 1e12 },
		OPT_END,
	};
	json_t *r = NULL;
	char aid[37];
	int code;

	if (!cli_parse(c, opts, argc, argv, "ASSIGNMENT [--model DIR]", pos, 1,
		       1, &code))
		return code;
	if (cli_uuid(aid, pos[0], "assignment"))
		return cli_usage(c, "%s", fm_error_msg());
	if (send_result(c, aid, model, examples, &r))
		return cli_fail(c);
	print_sent(c, r);
	json_decref(r);
	return CLI_OK;
}

/* This contributor's active assignment of task tid, into aid. */
static int my_active(struct cli *c, const char *tid, char aid[37])
{
	char path[200];
	struct api *a = NULL;
	json_t *list = NULL, *as;
	size_t i;
	int err = cli_api(c, 1, &a);

	snprintf(path, sizeof(path), "/v1/assignments?contributor=%s&task=%s",
		 c->addr, tid);
	if (!err)
		err = api_get(a, API_ASSIGND, path, &list);
	if (err)
		return err;
	err = fm_error_set(FM_ENOTFOUND, "no active assignment");
	json_array_foreach(json_object_get(list, "assignments"), i, as)
		if (!strcmp(cli_str(as, "state"), "active")) {
			err = cli_uuid(aid, cli_str(as, "id"), "assignment id");
			break;
		}
	json_decref(list);
	return err;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *data = NULL, *att = NULL;
	const struct opt opts[] = {
		{ "--data", OPT_STR, &data, "PATH", DATA_HELP, 0, 0 },
		{ "--attack", OPT_STR, &att, "KIND", ATTACK_HELP, 0, 0 },
		OPT_END,
	};
	json_t *s = NULL, *r = NULL, *j;
	char tid[67], aid[37];
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "TASK --data PATH", pos, 1, 1,
		       &code))
		return code;
	if (!data)
		return cli_usage(c, "--data is required");
	if (cli_task_id(tid, pos[0]))
		return cli_usage(c, "%s", fm_error_msg());
	err = assign(c, tid, aid, NULL);
	if (err == FM_ECONFLICT) {
		/* a slot taken before and not used yet is this run's */
		char msg[FM_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", fm_error_msg());
		err = my_active(c, tid, aid) == FM_OK
			      ? FM_OK
			      : fm_error_set(FM_ECONFLICT, "%s", msg);
	}
	if (!err && !c->json)
		printf("assignment %s of task %s\n", aid, tid);
	if (!err)
		err = train(c, aid, data, att, &s);
	if (!err && !c->json)
		print_trained(c, s);
	if (!err)
		err = send_result(c, aid, NULL, 0, &r);
	if (err) {
		json_decref(s);
		return cli_fail(c);
	}
	if (c->json) {
		j = json_pack("{s:s, s:O, s:O}", "assignment", aid, "training",
			      s, "result", r);
		cli_print_json(j);
		json_decref(j);
	} else {
		print_sent(c, r);
	}
	json_decref(s);
	json_decref(r);
	return CLI_OK;
}
