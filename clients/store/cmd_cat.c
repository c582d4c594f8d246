/* cat: print a blob, or one file of a bundle, after verifying it. */
#include "cmd.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

/* cat holds the whole blob to verify it before printing anything */
#define CAT_MAX (256u << 20)

/* The reference of file path in the manifest of bundle ref. */
static int find_file(struct cmd_ctx *c, const struct store_ref *bundle,
		     const char *path, struct store_ref *out)
{
	json_t *m = NULL, *files;
	int err;

	err = store_bundle_manifest(c->store, bundle, &m);
	if (err)
		return err;
	files = json_object_get(m, "files");
	err = fm_error_set(FM_ENOTFOUND, "%s: no such file in bundle %s", path,
			   bundle->hex);
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);

		if (strcmp(json_string_value(json_object_get(f, "path")),
			   path) == 0) {
			err = store_ref_parse(out, json_string_value(
				json_object_get(f, "sha256")));
			break;
		}
	}
	json_decref(m);
	return err;
}

int cmd_cat(struct cmd_ctx *c, int argc, char **argv)
{
	struct buf b = BUF_INIT(CAT_MAX);
	const char *pos[2] = { NULL, NULL };
	struct opt_spec s = { .synopsis = "REF [PATH]", .pos = pos,
			      .min_pos = 1, .max_pos = 2 };
	struct store_ref ref;
	int code, err;

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	if (store_ref_parse(&ref, pos[0]))
		return cmd_fail(c);
	if (cmd_open_store(c))
		return CLI_ERR;
	if (pos[1]) {
		err = find_file(c, &ref, pos[1], &ref);
		if (err)
			goto done;
	}
	err = store_blob_get_mem(c->store, &ref, &b);
	if (err)
		goto done;
	if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout))
		err = fm_error_set(FM_EIO, "cannot write to standard output");
done:
	buf_cleanup(&b);
	return err ? cmd_fail(c) : CLI_OK;
}
