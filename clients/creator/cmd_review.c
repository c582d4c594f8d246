/* Looking at tasks and results, and deciding on them by hand:
 * list-tasks, status, list-results, evaluate, accept, reject. */
#include "creator.h"

#include "cli/view.h"
#include "cli/work.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int cmd_list_tasks(struct cli *c, int argc, char **argv)
{
	struct view_task_query q = { 0 };
	int mine = 0, code;
	const struct opt opts[] = {
		{ "--mine", OPT_FLAG, &mine, NULL, "only tasks you created", 0,
		  0 },
		{ "--state", OPT_STR, &q.state, "S",
		  "draft, funded, open, closed, expired or cancelled", 0, 0 },
		{ "--kind", OPT_STR, &q.kind, "K",
		  "model_contributor, model_engineer or data_annotator", 0, 0 },
		{ "--limit", OPT_LONG, &q.limit, "N", "at most N tasks (50)", 1,
		  200 },
		CLI_OPT_ADDRESS(c),
		OPT_END,
	};

	if (!cli_parse(c, opts, argc, argv, "[--mine [--address ADDR]] "
		       "[--state S]", NULL, 0, 0, &code))
		return code;
	if (c->address && !mine)
		return cli_usage(c, "--address goes with --mine");
	if (mine) {
		if (cli_address(c))
			return cli_fail(c);
		q.creator = c->addr;
	}
	return view_tasks(c, &q) ? cli_fail(c) : CLI_OK;
}

/* Parses the one TASK argument of a command. */
static int one_task(struct cli *c, int argc, char **argv, char tid[67],
		    const struct opt *opts, int *code)
{
	const char *pos[1] = { NULL };

	if (!cli_parse(c, opts, argc, argv, "TASK", pos, 1, 1, code))
		return 0;
	if (cli_task_id(tid, pos[0])) {
		*code = cli_usage(c, "%s", fm_error_msg());
		return 0;
	}
	return 1;
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	const struct opt opts[] = { OPT_END };
	char tid[67];
	int code;

	c->about = "The task, its rounds (a table: round, state, version, "
		   "accepted, rejected,\nheld-out accuracy, epsilon, paid; "
		   "the current round; why it ended and\nthe refund), model "
		   "versions, results, payouts and the escrow on chain.\n"
		   "--json: the task with \"rounds_list\" (GET "
		   "/v1/tasks/{id}/rounds), \"models\",\n\"results\", "
		   "\"payouts\" and \"escrow\".\n";
	if (!one_task(c, argc, argv, tid, opts, &code))
		return code;
	return view_task(c, tid, 1) ? cli_fail(c) : CLI_OK;
}

int cmd_list_results(struct cli *c, int argc, char **argv)
{
	const char *state = NULL;
	const struct opt opts[] = {
		{ "--state", OPT_STR, &state, "S",
		  "submitted, accepted or rejected", 0, 0 },
		OPT_END,
	};
	char tid[67];
	int code;

	if (!one_task(c, argc, argv, tid, opts, &code))
		return code;
	if (state && strcmp(state, "submitted") && strcmp(state, "accepted") &&
	    strcmp(state, "rejected"))
		return cli_usage(c, "--state: expected submitted, accepted or "
				 "rejected");
	return view_results(c, tid, state) ? cli_fail(c) : CLI_OK;
}

/* The result and its task. */
static int load_result(struct cli *c, const char *rid, json_t **result,
		       json_t **task)
{
	struct api *a = NULL;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	cli_on(c, CLI_ON_RESULT);
	err = api_result(a, rid, result);
	if (err)
		return err;
	cli_on(c, CLI_ON_NONE);
	return api_task(a, json_string_value(json_object_get(*result,
							     "task_id")),
			task);
}

/* The accuracy and loss, on d, of result r's model and of the task's
 * newest version *ver. */
static int evaluate_both(struct cli *c, const json_t *r, const json_t *t,
			 const struct ml_dataset *d, struct ml_eval *ev,
			 struct ml_eval *cev, json_t **ver)
{
	const json_t *spec = json_object_get(t, "spec");
	struct ml_model *m = NULL, *cur = NULL;
	struct api *a = NULL;
	int err;

	err = work_load_bundle_model(
		c, json_string_value(json_object_get(r, "bundle_ref")), &m);
	if (err)
		goto done;
	err = work_evaluate(m, spec, d, ev);
	if (err)
		goto done;
	err = cli_api(c, 0, &a);
	if (err)
		goto done;
	err = api_model_version(a, json_string_value(json_object_get(t, "id")),
				-1, ver);
	if (err)
		goto done;
	err = work_load_bundle_model(
		c, json_string_value(json_object_get(*ver, "bundle_ref")),
		&cur);
	if (err)
		goto done;
	err = work_evaluate(cur, spec, d, cev);
done:
	ml_model_free(m);
	ml_model_free(cur);
	return err;
}

static void print_evaluation(struct cli *c, const char *rid, size_t n,
			     const struct ml_eval *ev,
			     const struct ml_eval *cev, const json_t *ver)
{
	long long version = json_integer_value(json_object_get(ver, "version"));

	if (c->json) {
		json_t *j = json_pack("{s:s, s:I, s:f, s:f, s:i, s:f, s:f}",
				      "result", rid, "examples", (json_int_t)n,
				      "accuracy", ev->accuracy, "loss",
				      ev->loss, "current_version",
				      (int)version, "current_accuracy",
				      cev->accuracy, "current_loss",
				      cev->loss);

		cli_print_json(j);
		json_decref(j);
		return;
	}
	printf("result %s on %zu examples: accuracy %.4f, loss %.4f\n"
	       "model version %lld: accuracy %.4f, loss %.4f (%s%+.4f%s)\n",
	       rid, n, ev->accuracy, ev->loss, version, cev->accuracy,
	       cev->loss,
	       cli_c(c, ev->accuracy >= cev->accuracy ? CLI_GREEN : CLI_RED),
	       ev->accuracy - cev->accuracy, cli_c(c, CLI_RESET));
}

int cmd_evaluate(struct cli *c, int argc, char **argv)
{
	const char *data = NULL, *pos[1] = { NULL };
	const struct opt opts[] = {
		{ "--data", OPT_STR, &data, "PATH",
		  "test data in the task's format: a folder with *images* and "
		  "*labels* IDX files, IMAGES,LABELS, or a CSV file", 0, 0 },
		OPT_END,
	};
	struct ml_dataset d = { 0 };
	struct ml_eval ev, cev;
	json_t *r = NULL, *t = NULL, *ver = NULL;
	char rid[37];
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "RESULT --data PATH", pos, 1, 1,
		       &code))
		return code;
	if (!data)
		return cli_usage(c, "--data is required");
	if (cli_uuid(rid, pos[0], "result"))
		return cli_usage(c, "%s", fm_error_msg());
	err = load_result(c, rid, &r, &t);
	if (err)
		goto done;
	if (!strcmp(json_string_value(json_object_get(t, "kind")),
		    "data_annotator")) {
		err = fm_error_set(FM_EINVAL, "result %s labels data; there is "
				   "no model to evaluate", rid);
		goto done;
	}
	cli_on(c, CLI_ON_FILE);
	err = work_load_data(&d, json_object_get(t, "spec"), data);
	if (err)
		goto done;
	cli_on(c, CLI_ON_NONE);
	err = evaluate_both(c, r, t, &d, &ev, &cev, &ver);
	if (err)
		goto done;
	print_evaluation(c, rid, d.n, &ev, &cev, ver);
done:
	ml_dataset_cleanup(&d);
	json_decref(r);
	json_decref(t);
	json_decref(ver);
	return err ? cli_fail(c) : CLI_OK;
}

static int decide(struct cli *c, const char *rid, int accept,
		  const char *reason)
{
	char path[120];
	struct api *a = NULL;
	json_t *body = json_pack("{s:s, s:s?}", "decision",
				 accept ? "accept" : "reject", "reason", reason);
	json_t *out = NULL;
	int err = body ? cli_api(c, 1, &a) : fm_error_set(FM_ENOMEM, "oom");

	snprintf(path, sizeof(path), "/v1/results/%s/decision", rid);
	if (err)
		goto done;
	cli_on(c, CLI_ON_RESULT);
	err = api_post(a, API_VALIDATIOND, path, body, &out);
done:
	json_decref(body);
	if (err)
		return cli_fail(c);
	if (c->json)
		cli_print_json(out);
	else
		printf("result %s %s%s%s%s\n", rid,
		       cli_c(c, accept ? CLI_GREEN : CLI_RED),
		       accept ? "accepted" : "rejected", cli_c(c, CLI_RESET),
		       accept ? "; its reward is queued for payment on chain"
			      : "");
	json_decref(out);
	return CLI_OK;
}

int cmd_accept(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	const struct opt opts[] = { OPT_END };
	char rid[37];
	int code;

	if (!cli_parse(c, opts, argc, argv, "RESULT", pos, 1, 1, &code))
		return code;
	if (cli_uuid(rid, pos[0], "result"))
		return cli_usage(c, "%s", fm_error_msg());
	return decide(c, rid, 1, NULL);
}

int cmd_reject(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *reason = NULL;
	const struct opt opts[] = {
		{ "--reason", OPT_STR, &reason, "TEXT",
		  "why (the contributor sees it)", 0, 0 },
		OPT_END,
	};
	char rid[37];
	int code;

	if (!cli_parse(c, opts, argc, argv, "RESULT --reason TEXT", pos, 1, 1,
		       &code))
		return code;
	if (!reason || !reason[0])
		return cli_usage(c, "--reason is required: say why");
	if (cli_uuid(rid, pos[0], "result"))
		return cli_usage(c, "%s", fm_error_msg());
	return decide(c, rid, 0, reason);
}
