/* check: validate a manifest file without any store. */
#include "cmd.h"

#include "core/fjson.h"

#include <stdio.h>

int cmd_check(struct cmd_ctx *c, int argc, char **argv)
{
	json_t *m = NULL;
	int rc = 0;

	if (argc != 2)
		return cmd_usage_error(c, "check: expected one manifest file");
	if (fj_load_file(&m, argv[1], STORE_MANIFEST_MAX) ||
	    store_manifest_check(m))
		rc = cmd_fail(c);
	else
		printf("%s: ok\n", argv[1]);
	json_decref(m);
	return rc;
}
