/* put and get: move one object as is, under a key of your choice. */
#include "cmd.h"

int cmd_put(struct cmd_ctx *c, int argc, char **argv)
{
	if (argc != 3)
		return cmd_usage_error(c, "put: expected FILE KEY");
	if (cmd_open_store(c))
		return 1;
	if (store_put_file(c->store, argv[2], argv[1], cmd_xfer(c, "put")))
		return cmd_fail(c);
	return 0;
}

int cmd_get(struct cmd_ctx *c, int argc, char **argv)
{
	if (argc != 3)
		return cmd_usage_error(c, "get: expected KEY FILE");
	if (cmd_open_store(c))
		return 1;
	if (store_get_file(c->store, argv[1], argv[2], cmd_xfer(c, "get")))
		return cmd_fail(c);
	return 0;
}
