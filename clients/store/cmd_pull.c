/* pull: fetch a bundle into a directory, every file verified. */
#include "cmd.h"

#include <stdio.h>

int cmd_pull(struct cmd_ctx *c, int argc, char **argv)
{
	struct store_ref ref;

	if (argc != 3)
		return cmd_usage_error(c, "pull: expected REF DIR");
	if (store_ref_parse(&ref, argv[1]))
		return cmd_fail(c);
	if (cmd_open_store(c))
		return 1;
	if (store_bundle_pull(c->store, &ref, argv[2], NULL,
			      cmd_xfer(c, "pull")))
		return cmd_fail(c);
	return 0;
}
