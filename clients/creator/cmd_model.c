/* aggregate TASK and pull-model TASK: the task's model versions. */
#include "creator.h"

#include "cli/round.h"
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

static void print_version(struct cli *c, const json_t *v, const char *tid)
{
	const json_t *met = json_object_get(v, "metrics");

	if (c->json) {
		cli_print_json(v);
		return;
	}
	printf("published version %lld of task %s: %s of %zu results, bundle "
	       "%s\n",
	       (long long)json_integer_value(json_object_get(v, "version")),
	       tid, json_string_value(json_object_get(v, "rule")),
	       json_array_size(json_object_get(v, "results")),
	       json_string_value(json_object_get(v, "bundle_ref")));
	if (json_object_get(met, "accuracy"))
		printf("held-out accuracy %.4f (was %.4f)\n",
		       json_number_value(json_object_get(met, "accuracy")),
		       json_number_value(json_object_get(met,
							 "previous_accuracy")));
}

int cmd_aggregate(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *data = NULL;
	int force = 0, code = CLI_OK, err;
	const struct opt opts[] = {
		{ "--data", OPT_STR, &data, "PATH",
		  "held-out data: the new version's accuracy goes into its "
		  "metrics", 0, 0 },
		{ "--force", OPT_FLAG, &force, NULL,
		  "aggregate even with fewer results than "
		  "min_results_per_round", 0, 0 },
		OPT_END,
	};
	struct ml_dataset d = { 0 };
	json_t *task = NULL, *v = NULL;
	char tid[67];

	if (!cli_parse(c, opts, argc, argv, "TASK [--data PATH]", pos, 1, 1,
		       &code))
		return code;
	err = task_arg(c, pos[0], tid, &task);
	if (err)
		goto done;
	if (data) {
		err = work_load_data(&d, json_object_get(task, "spec"), data);
		if (err)
			goto done;
	}
	err = round_publish(c, task, data ? &d : NULL, force, &v);
	if (err)
		goto done;
	print_version(c, v, tid);
done:
	if (err == FM_ECONFLICT && strstr(fm_error_msg(), "wait for"))
		code = cli_fail_hint(c, "accept more results, or give --force");
	else if (err)
		code = cli_fail(c);
	ml_dataset_cleanup(&d);
	json_decref(task);
	json_decref(v);
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
