/* push: store a directory as a bundle and print its reference. */
#include "cmd.h"

#include "core/err.h"
#include "core/fjson.h"

#include <getopt.h>
#include <stdio.h>

#define JSON_FILE_MAX (1u << 20)

int cmd_push(struct cmd_ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "create", no_argument, NULL, 'C' },
		{ "description", required_argument, NULL, 'd' },
		{ "kind", required_argument, NULL, 'k' },
		{ "meta", required_argument, NULL, 'M' },
		{ "model", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },
		{ "version", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_bundle_info info = { .version = "1" };
	const char *kind = NULL, *model_file = NULL, *meta_file = NULL;
	json_t *model = NULL, *meta = NULL;
	struct store_ref ref;
	int opt, create = 0, rc = 1;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'C':
			create = 1;
			break;
		case 'd':
			info.description = optarg;
			break;
		case 'k':
			kind = optarg;
			break;
		case 'M':
			meta_file = optarg;
			break;
		case 'm':
			model_file = optarg;
			break;
		case 'n':
			info.name = optarg;
			break;
		case 'v':
			info.version = optarg;
			break;
		default:
			return cmd_usage_error(c, "push: unknown option");
		}
	}
	if (optind != argc - 1)
		return cmd_usage_error(c, "push: expected one directory");
	if (!kind || !info.name)
		return cmd_usage_error(c, "push: --kind and --name are required");
	if (store_kind_parse(&info.kind, kind))
		return cmd_usage_error(c, fm_error_msg());
	if (model_file && fj_load_file(&model, model_file, JSON_FILE_MAX))
		goto done;
	if (meta_file && fj_load_file(&meta, meta_file, JSON_FILE_MAX))
		goto done;
	info.model = model;
	info.meta = meta;
	if (cmd_open_store(c))
		return 1;
	if (create && store_ensure(c->store))
		goto done;
	if (store_bundle_push(c->store, &ref, NULL, argv[optind], &info,
			      cmd_xfer(c, "push")))
		goto done;
	printf("%s\n", ref.hex);
	rc = 0;
done:
	if (rc)
		cmd_fail(c);
	json_decref(model);
	json_decref(meta);
	return rc;
}
