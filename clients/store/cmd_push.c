/* push: store a directory as a bundle and print its reference. */
#include "cmd.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>

#define JSON_FILE_MAX (1u << 20)

/* Stores dir as a bundle described by info (with the model and meta
 * files, when given) and prints its reference. */
static int push(struct cmd_ctx *c, struct store_bundle_info *info,
		const char *dir, const char *model_file, const char *meta_file,
		int create)
{
	json_t *model = NULL, *meta = NULL;
	struct store_ref ref;
	int err = FM_OK;

	if (model_file) {
		err = fj_load_file(&model, model_file, JSON_FILE_MAX);
		if (err)
			goto done;
	}
	if (meta_file) {
		err = fj_load_file(&meta, meta_file, JSON_FILE_MAX);
		if (err)
			goto done;
	}
	info->model = model;
	info->meta = meta;
	err = store_open(&c->store, c->url, &c->cfg);
	if (err)
		goto done;
	if (create) {
		err = store_ensure(c->store);
		if (err)
			goto done;
	}
	err = store_bundle_push(c->store, &ref, NULL, dir, info,
				cmd_xfer(c, "push"));
	if (err)
		goto done;
	printf("%s\n", ref.hex);
done:
	json_decref(model);
	json_decref(meta);
	return err;
}

int cmd_push(struct cmd_ctx *c, int argc, char **argv)
{
	struct store_bundle_info info = { .version = "1" };
	const char *kind = NULL, *model_file = NULL, *meta_file = NULL;
	const char *pos[1] = { NULL };
	int create = 0, code;
	const struct opt opts[] = {
		{ "--kind", OPT_STR, &kind, "KIND",
		  "model, result, task-assets or dataset", 0, 0 },
		{ "--name", OPT_STR, &info.name, "NAME", "the bundle's name", 0,
		  0 },
		{ "--version", OPT_STR, &info.version, "V",
		  "the bundle's version (1)", 0, 0 },
		{ "--description", OPT_STR, &info.description, "TEXT",
		  "what the bundle holds", 0, 0 },
		{ "--model", OPT_STR, &model_file, "FILE.json",
		  "the model's description (model bundles)", 0, 0 },
		{ "--meta", OPT_STR, &meta_file, "FILE.json",
		  "more metadata for the manifest", 0, 0 },
		{ "--create", OPT_FLAG, &create, NULL,
		  "create the bucket or folder when missing", 0, 0 },
		OPT_END,
	};
	struct opt_spec s = {
		.synopsis = "--kind KIND --name NAME [options] DIR",
		.opts = opts, .pos = pos, .min_pos = 1, .max_pos = 1,
	};

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	if (!kind || !info.name)
		return cmd_usage_error(c, "--kind and --name are required");
	if (store_kind_parse(&info.kind, kind))
		return cmd_usage_error(c, fm_error_msg());
	if (push(c, &info, pos[0], model_file, meta_file, create))
		return cmd_fail(c);
	return CLI_OK;
}
