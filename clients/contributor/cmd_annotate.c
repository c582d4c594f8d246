/* annotate ASSIGNMENT [--labels FILE]: labels the items of a
 * data-annotation task, from a file ({"labels": {id: label}} or
 * {id: label}) or asked one by one on the terminal, checks them against
 * the task's items and labels, and submits them as labels.json. */
#include "contributor.h"

#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int allowed(const json_t *labels, const json_t *v)
{
	size_t i;
	json_t *l;

	json_array_foreach(labels, i, l)
		if (json_equal(l, v))
			return 1;
	return 0;
}

static const json_t *find_item(const json_t *items, const char *id)
{
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it)
		if (!strcmp(cli_str(it, "id"), id))
			return it;
	return NULL;
}

/* Every given label names a task item and is one of the task's labels. */
static int check_labels(const json_t *given, const json_t *doc)
{
	const json_t *items = json_object_get(doc, "items");
	const json_t *labels = json_object_get(doc, "labels");
	const char *id;
	json_t *v;

	if (!json_is_object(given) || !json_object_size(given))
		return fm_error_set(FM_EINVAL, "labels: expected {\"labels\": "
				    "{item id: label}} with at least one item");
	json_object_foreach((json_t *)given, id, v) {
		if (!find_item(items, id))
			return fm_error_set(FM_EINVAL, "labels.%s: the task has "
					    "no such item", id);
		if (!allowed(labels, v))
			return fm_error_set(FM_EINVAL, "labels.%s: not one of "
					    "the task's labels", id);
	}
	return FM_OK;
}

/* Asks for each item's label on the terminal. */
static int ask(json_t *out, const json_t *doc)
{
	const json_t *items = json_object_get(doc, "items");
	const json_t *labels = json_object_get(doc, "labels");
	size_t i, k, n = json_array_size(labels);
	json_t *it, *l;
	char line[64];

	if (!isatty(STDIN_FILENO))
		return fm_error_set(FM_EINVAL, "no --labels FILE and no "
				    "terminal to ask on");
	json_array_foreach(items, i, it) {
		const char *key;
		json_t *v;
		long pick = 0;

		printf("\nitem %zu/%zu (%s)\n", i + 1, json_array_size(items),
		       cli_str(it, "id"));
		json_object_foreach(it, key, v) {
			char *text;

			if (!strcmp(key, "id"))
				continue;
			text = json_dumps(v, JSON_ENCODE_ANY);
			printf("  %s: %s\n", key, text ? text : "?");
			free(text);
		}
		json_array_foreach(labels, k, l) {
			char *text = json_dumps(l, JSON_ENCODE_ANY);

			printf("  [%zu] %s\n", k + 1, text ? text : "?");
			free(text);
		}
		while (pick < 1 || pick > (long)n) {
			printf("label (1-%zu, empty to skip): ", n);
			fflush(stdout);
			if (!fgets(line, sizeof(line), stdin))
				return FM_OK; /* end of input: send what we have */
			if (line[0] == '\n')
				break;
			pick = strtol(line, NULL, 10);
		}
		if (pick >= 1 && pick <= (long)n)
			json_object_set(out, cli_str(it, "id"),
					json_array_get(labels, (size_t)pick - 1));
	}
	return FM_OK;
}

/* The assignment's task (a data-annotation task, the assignment
 * active) and its items.json, pulled from the task's assets. */
static int load_items(struct cli *c, const char *aid, json_t **task,
		      json_t **doc)
{
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 16];
	json_t *as = NULL;
	int err;

	err = contrib_active_assignment(c, aid, &as, task);
	if (err)
		goto done;
	if (strcmp(cli_str(*task, "kind"), "data_annotator")) {
		err = fm_error_set(FM_EINVAL, "task %s is not a data-annotation"
				   " task: use 'train %s --data PATH'",
				   cli_str(*task, "id"), aid);
		goto done;
	}
	err = work_pull(c, dir, sizeof(dir), cli_str(*task, "assets"));
	if (err)
		goto done;
	snprintf(path, sizeof(path), "%s/items.json", dir);
	err = fj_load_file(doc, path, 64u << 20);
done:
	json_decref(as);
	return err;
}

/* The labels: from file ({"labels": {...}} or {...}), else asked on the
 * terminal; checked against the task's items and labels. */
static int get_labels(struct cli *c, json_t **out, const char *file,
		      const json_t *doc)
{
	json_t *in = NULL, *labels = NULL;
	int err;

	if (file) {
		cli_on(c, CLI_ON_FILE);
		err = fj_load_file(&in, file, 64u << 20);
		if (err)
			goto done;
		labels = json_incref(json_object_get(in, "labels")
					     ? json_object_get(in, "labels")
					     : in);
	} else {
		labels = json_object();
		err = ask(labels, doc);
		if (err)
			goto done;
	}
	err = check_labels(labels, doc);
	if (err)
		goto done;
	*out = json_incref(labels);
done:
	if (err && file)
		fm_error_prefix("%s", file);
	json_decref(in);
	json_decref(labels);
	return err;
}

/* Pushes the labels as labels.json and submits them; *r gets the
 * result. */
static int submit_labels(struct cli *c, const char *aid, json_t *labels,
			 json_t **r)
{
	json_t *doc = json_pack("{s:O}", "labels", labels), *body = NULL;
	struct store_ref ref;
	struct api *a = NULL;
	char path[120];
	int err;

	err = work_push_json(c, &ref, doc, "labels.json", STORE_KIND_RESULT,
			     "labels");
	if (err)
		goto done;
	body = json_pack("{s:s, s:I}", "bundle", ref.hex, "num_examples",
			 (json_int_t)json_object_size(labels));
	err = cli_api(c, 1, &a);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "/v1/assignments/%s/result", aid);
	cli_on(c, CLI_ON_ASSIGNMENT);
	err = api_post(a, API_RESULTD, path, body, r);
done:
	json_decref(doc);
	json_decref(body);
	return err;
}

int cmd_annotate(struct cli *c, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *file = NULL;
	const struct opt opts[] = {
		{ "--labels", OPT_STR, &file, "FILE",
		  "{\"labels\": {item id: label}} (default: asked on the "
		  "terminal)", 0, 0 },
		OPT_END,
	};
	json_t *task = NULL, *doc = NULL, *labels = NULL, *r = NULL;
	char aid[37];
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "ASSIGNMENT [--labels FILE]", pos,
		       1, 1, &code))
		return code;
	if (cli_uuid(aid, pos[0], "assignment"))
		return cli_usage(c, "%s", fm_error_msg());
	err = load_items(c, aid, &task, &doc);
	if (err)
		goto done;
	err = get_labels(c, &labels, file, doc);
	if (err)
		goto done;
	err = submit_labels(c, aid, labels, &r);
	if (err)
		goto done;
	if (c->json) {
		cli_print_json(r);
	} else {
		printf("%s\n", cli_str(r, "id"));
		fprintf(stderr, "%zu labels submitted as result %s\n",
			json_object_size(labels), cli_str(r, "id"));
	}
done:
	json_decref(task);
	json_decref(doc);
	json_decref(labels);
	json_decref(r);
	return err ? cli_fail(c) : CLI_OK;
}
