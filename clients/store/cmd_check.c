/* check: validate a manifest file without any store. */
#include "cmd.h"

#include "core/fjson.h"

#include <stdio.h>

int cmd_check(struct cmd_ctx *c, int argc, char **argv)
{
	const char *pos[1] = { NULL };
	struct opt_spec s = { .synopsis = "FILE", .pos = pos, .min_pos = 1,
			      .max_pos = 1 };
	json_t *m = NULL;
	int code, err;

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	err = fj_load_file(&m, pos[0], STORE_MANIFEST_MAX);
	if (err)
		goto done;
	err = store_manifest_check(m);
	if (err)
		goto done;
	printf("%s: ok\n", pos[0]);
done:
	json_decref(m);
	return err ? cmd_fail(c) : CLI_OK;
}
