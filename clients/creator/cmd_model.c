/* aggregate TASK and pull-model TASK: the task's model versions. */
#include "creator.h"

#include "cli/round.h"
#include "cli/rounds.h"
#include "cli/work.h"
#include "core/err.h"
#include "storage/bundle.h"

#include <stdio.h>
#include <string.h>

static int task_arg(struct cli *c, const char *text, char tid[67],
		    json_t **task)
{
	struct api *a = NULL;
	int err = cli_task_id(tid, text);

	if (err)
		return err;
	err = cli_api(c, 0, &a);
	if (err)
		return err;
	return api_task(a, tid, task);
}

/* One row of the round's table: who, then its held-out figures. */
static void print_row(const char *who, const json_t *f)
{
	printf("  %-34s", who);
	if (json_is_number(json_object_get(f, "accuracy")))
		printf("  accuracy %.4f",
		       json_number_value(json_object_get(f, "accuracy")));
	if (json_is_number(json_object_get(f, "loss")))
		printf("  loss %.4f",
		       json_number_value(json_object_get(f, "loss")));
	printf("\n");
}

/* The figures of the current version, each input and the new version,
 * side by side. */
static void print_scores(const json_t *scores)
{
	const json_t *cur = json_object_get(scores, "current");
	const json_t *next = json_object_get(scores, "next");
	int measured = json_is_true(json_object_get(scores, "measured"));
	char who[96];
	size_t i;
	json_t *in;

	if (measured)
		printf("held-out figures on %lld examples (--data):\n",
		       (long long)json_integer_value(json_object_get(
			       scores, "examples")));
	else
		printf("not measured: give --data HELD-OUT to compare the new "
		       "version with the current one (inputs as the validator "
		       "measured them):\n");
	snprintf(who, sizeof(who), "version %lld (current)",
		 (long long)json_integer_value(json_object_get(cur,
							      "version")));
	print_row(who, cur);
	json_array_foreach(json_object_get(scores, "inputs"), i, in) {
		snprintf(who, sizeof(who), "result %.8s of %.10s",
			 cli_str(in, "result"), cli_str(in, "contributor"));
		print_row(who, in);
	}
	snprintf(who, sizeof(who), "version %lld (%s, new)",
		 (long long)json_integer_value(json_object_get(next,
							      "version")),
		 cli_str(scores, "rule"));
	print_row(who, next);
}

static void print_version(struct cli *c, const struct round_report *r,
			  const char *tid)
{
	const json_t *v = r->version;
	json_t *j;

	if (c->json) {
		j = json_deep_copy(v);
		if (j && r->scores)
			json_object_set(j, "round", r->scores);
		cli_print_json(j ? j : v);
		json_decref(j);
		return;
	}
	if (r->scores)
		print_scores(r->scores);
	if (r->kept) {
		printf("%s\npublished version %lld of task %s as version %d "
		       "again (rule kept; the round's %zu results are "
		       "spent), bundle %s\n", r->reason,
		       (long long)json_integer_value(json_object_get(
			       v, "version")),
		       tid, r->base_version,
		       json_array_size(json_object_get(v, "results")),
		       json_string_value(json_object_get(v, "bundle_ref")));
		return;
	}
	printf("published version %lld of task %s: %s of %zu results, bundle "
	       "%s\n",
	       (long long)json_integer_value(json_object_get(v, "version")),
	       tid, json_string_value(json_object_get(v, "rule")),
	       json_array_size(json_object_get(v, "results")),
	       json_string_value(json_object_get(v, "bundle_ref")));
}

/* A round refused for measuring worse: the figures on stdout, the
 * refusal as the command's error. */
static int refused(struct cli *c, const json_t *task,
		   const struct round_report *r)
{
	json_t *j;

	if (c->json) {
		j = json_pack("{s:b, s:s, s:O}", "published", 0, "refused",
			      r->reason, "round", r->scores);
		if (j)
			cli_print_json(j);
		json_decref(j);
	} else {
		print_scores(r->scores);
	}
	fm_error_set(FM_EUNPROCESSABLE, "%s", r->reason);
	if (rounds_total(task) > 1)
		return cli_fail_hint(c, "publish it anyway with --force, or "
				     "version %d again in its place with "
				     "--keep so the next round opens",
				     r->base_version);
	return cli_fail_hint(c, "publish it anyway with --force; or wait for "
			     "more accepted results, which join this round");
}

int cmd_aggregate(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *data = NULL;
	int force = 0, keep = 0, code = CLI_OK, err;
	const struct opt opts[] = {
		{ "--data", OPT_STR, &data, "PATH",
		  "held-out data: the new version is measured against the "
		  "current one and the results it combines", 0, 0 },
		{ "--force", OPT_FLAG, &force, NULL,
		  "publish even with fewer results than the round wants "
		  "(min_results_per_round; async: the buffer), or a version "
		  "that measures worse on --data than the current one", 0, 0 },
		{ "--keep", OPT_FLAG, &keep, NULL,
		  "tasks of several rounds: when the new version measures "
		  "worse on --data, publish the current one again in its "
		  "place (rule \"kept\"), so the next round opens", 0, 0 },
		OPT_END,
	};
	struct ml_dataset d = { 0 };
	struct round_opts ro = { NULL, 0, 0, 0 };
	struct round_report r = { 0 };
	json_t *task = NULL;
	char tid[67];

	if (!cli_parse(c, opts, argc, argv,
		       "TASK [--data PATH] [--force | --keep]", pos, 1, 1,
		       &code))
		return code;
	if (keep && force)
		return cli_usage(c, "--keep and --force disagree: --force "
				 "publishes a worse version, --keep the "
				 "current one again");
	if (keep && !data)
		return cli_usage(c, "--keep needs --data: only held-out data "
				 "tells a worse version");
	err = task_arg(c, pos[0], tid, &task);
	if (err)
		goto done;
	if (keep && rounds_total(task) < 2) {
		err = fm_error_set(FM_EINVAL, "--keep: task %s has one round, "
				   "so no round follows to keep going; publish "
				   "a worse version with --force or wait for "
				   "more results", tid);
		goto done;
	}
	if (data) {
		err = work_load_data(&d, json_object_get(task, "spec"), data);
		if (err)
			goto done;
		ro.holdout = &d;
	}
	ro.force_small = ro.force_worse = force;
	ro.keep_worse = keep;
	err = round_publish(c, task, &ro, &r);
	if (err)
		goto done;
	if (r.refused)
		code = refused(c, task, &r);
	else
		print_version(c, &r, tid);
done:
	if (err == FM_ECONFLICT && strstr(fm_error_msg(), "wait for"))
		code = cli_fail_hint(c, "accept more results, or give --force");
	else if (err)
		code = cli_fail(c);
	ml_dataset_cleanup(&d);
	round_report_cleanup(&r);
	json_decref(task);
	return code;
}

int cmd_pull_model(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *out = NULL;
	long version = -1;
	int code, err;
	const struct opt opts[] = {
		{ "--version", OPT_LONG, &version, "N",
		  "model version (default: the newest)", 0, 1000000 },
		{ "--out", OPT_STR, &out, "DIR",
		  "where to write the bundle (must not exist or be empty)", 0,
		  0 },
		OPT_END,
	};
	struct store *st = NULL;
	struct store_ref ref;
	struct api *a = NULL;
	json_t *v = NULL;
	char tid[67];

	if (!cli_parse(c, opts, argc, argv, "TASK --out DIR [--version N]",
		       pos, 1, 1, &code))
		return code;
	if (!out)
		return cli_usage(c, "--out is required");
	err = cli_task_id(tid, pos[0]);
	if (err)
		goto done;
	err = cli_api(c, 0, &a);
	if (err)
		goto done;
	cli_on(c, CLI_ON_TASK);
	err = api_model_version(a, tid, (int)version, &v);
	if (err)
		goto done;
	err = store_ref_parse(&ref, json_string_value(json_object_get(
					    v, "bundle_ref")));
	if (err)
		goto done;
	cli_on(c, CLI_ON_STORAGE);
	err = store_open(&st, NULL, &c->cfg);
	if (err)
		goto done;
	err = store_bundle_pull(st, &ref, out, NULL, NULL);
done:
	store_free(st);
	if (err) {
		json_decref(v);
		return cli_fail(c);
	}
	if (c->json)
		cli_print_json(v);
	else
		printf("model version %lld of task %s is in %s (model/ holds "
		       "the TensorFlow.js files)\n",
		       (long long)json_integer_value(json_object_get(v,
								    "version")),
		       tid, out);
	json_decref(v);
	return CLI_OK;
}
