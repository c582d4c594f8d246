/* put and get: move one object as is, under a key of your choice. */
#include "cmd.h"

int cmd_put(struct cmd_ctx *c, int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL };
	struct opt_spec s = { .synopsis = "FILE KEY", .pos = pos,
			      .min_pos = 2, .max_pos = 2 };
	int code;

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	if (cmd_open_store(c))
		return CLI_ERR;
	if (store_put_file(c->store, pos[1], pos[0], cmd_xfer(c, "put")))
		return cmd_fail(c);
	return CLI_OK;
}

int cmd_get(struct cmd_ctx *c, int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL };
	struct opt_spec s = { .synopsis = "KEY FILE", .pos = pos,
			      .min_pos = 2, .max_pos = 2 };
	int code;

	if (!cmd_parse(c, &s, argc, argv, &code))
		return code;
	if (cmd_open_store(c))
		return CLI_ERR;
	if (store_get_file(c->store, pos[0], pos[1], cmd_xfer(c, "get")))
		return cmd_fail(c);
	return CLI_OK;
}
