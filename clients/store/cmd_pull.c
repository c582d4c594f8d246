/* pull: fetch a bundle into a directory, every file verified. */
#include "cmd.h"

#include <stdio.h>

int cmd_pull(struct cmd_ctx *c, int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL };
	struct opt_spec s = { .synopsis = "REF DIR", .pos = pos, .min_pos = 2,
			      .max_pos = 2 };
	struct store_ref ref;
	int code;

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	if (store_ref_parse(&ref, pos[0]))
		return cmd_fail(c);
	if (cmd_open_store(c))
		return CLI_ERR;
	if (store_bundle_pull(c->store, &ref, pos[1], NULL,
			      cmd_xfer(c, "pull")))
		return cmd_fail(c);
	return CLI_OK;
}
