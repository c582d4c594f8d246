/* ls: the files of a bundle, or the keys of the store. */
#include "cmd.h"

#include <inttypes.h>
#include <stdio.h>

static int print_key(void *ud, const char *key, uint64_t size)
{
	(void)ud;
	printf("%12" PRIu64 "  %s\n", size, key);
	return 0;
}

static int list_bundle(struct cmd_ctx *c, const struct store_ref *ref)
{
	json_t *m = NULL, *files;

	if (store_bundle_manifest(c->store, ref, &m))
		return cmd_fail(c);
	printf("# %s %s version %s, created %s\n",
	       json_string_value(json_object_get(m, "kind")),
	       json_string_value(json_object_get(m, "name")),
	       json_string_value(json_object_get(m, "version")),
	       json_string_value(json_object_get(m, "created")));
	files = json_object_get(m, "files");
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);

		printf("%12" JSON_INTEGER_FORMAT "  %s  %s\n",
		       json_integer_value(json_object_get(f, "size")),
		       json_string_value(json_object_get(f, "sha256")),
		       json_string_value(json_object_get(f, "path")));
	}
	json_decref(m);
	return 0;
}

int cmd_ls(struct cmd_ctx *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	struct opt_spec s = { .synopsis = "[REF]", .pos = pos, .max_pos = 1 };
	struct store_ref ref;
	int code;

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	if (pos[0] && store_ref_parse(&ref, pos[0]))
		return cmd_fail(c);
	if (cmd_open_store(c))
		return CLI_ERR;
	if (pos[0])
		return list_bundle(c, &ref);
	if (store_list(c->store, "", print_key, NULL))
		return cmd_fail(c);
	return CLI_OK;
}
