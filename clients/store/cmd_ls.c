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
	struct store_ref ref;

	if (argc > 2)
		return cmd_usage_error(c, "ls: expected at most one REF");
	if (argc == 2 && store_ref_parse(&ref, argv[1]))
		return cmd_fail(c);
	if (cmd_open_store(c))
		return 1;
	if (argc == 2)
		return list_bundle(c, &ref);
	if (store_list(c->store, "", print_key, NULL))
		return cmd_fail(c);
	return 0;
}
