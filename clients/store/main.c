/* fedmarket-store: push, pull and inspect bundles and blobs, for people
 * debugging a deployment. */
#include "cmd.h"

#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

/* Sorted by name. */
static const struct store_cmd {
	struct opt_command cmd;
	int (*fn)(struct cmd_ctx *c, int argc, char **argv);
} commands[] = {
	{ { "cat", "REF [PATH]",
	    "print blob REF, or file PATH of bundle REF" }, cmd_cat },
	{ { "check", "FILE", "check a manifest file (no store needed)" },
	  cmd_check },
	{ { "get", "KEY FILE", "download KEY into FILE as is" }, cmd_get },
	{ { "ls", "[REF]", "list bundle REF's files, or the store's keys" },
	  cmd_ls },
	{ { "pull", "REF DIR",
	    "fetch bundle REF into DIR (every file verified)" }, cmd_pull },
	{ { "push", "--kind KIND --name NAME DIR",
	    "store DIR as a bundle; prints its reference" }, cmd_push },
	{ { "put", "FILE KEY", "upload FILE under KEY as is" }, cmd_put },
};

static const char epilog[] =
	"\nKIND is model, result, task-assets or dataset. REF is a sha256 (64\n"
	"hex digits). The store defaults to the storage_url setting;\n"
	"s3:// stores use the s3_* settings (FEDMARKET_S3_* variables).\n";

int cmd_fail(const struct cmd_ctx *c)
{
	return opt_fail(c->prog, c->cmd);
}

int cmd_usage_error(const struct cmd_ctx *c, const char *msg)
{
	return opt_usage(c->prog, c->cmd, "%s", msg);
}

int cmd_parse(struct cmd_ctx *c, struct opt_spec *s, int argc, char **argv,
	      int *code)
{
	int level;

	s->prog = c->prog;
	s->cmd = c->cmd;
	s->common = c->common;
	if (!opt_parse(s, argc, argv, code))
		return 0;
	if (cfg_load(&c->cfg, c->config)) {
		*code = cmd_fail(c);
		return 0;
	}
	level = log_level_parse(c->cfg.log_level);
	log_init("store", level < 0 ? LOG_INFO : (enum log_level)level,
		 c->cfg.log_json);
	log_set_stream(stderr);
	return 1;
}

int cmd_open_store(struct cmd_ctx *c)
{
	if (c->store)
		return 0;
	if (store_open(&c->store, c->url, &c->cfg))
		return cmd_fail(c);
	return 0;
}

static void show_progress(void *ud, uint64_t done, uint64_t total)
{
	const char *label = ud;

	if (total)
		fprintf(stderr, "\r%s: %3d%% (%.1f of %.1f MiB)", label,
			(int)(done * 100 / total), done / 1048576.0,
			total / 1048576.0);
	else
		fprintf(stderr, "\r%s: %.1f MiB", label, done / 1048576.0);
	if (total && done == total)
		fputc('\n', stderr);
}

const struct store_xfer *cmd_xfer(struct cmd_ctx *c, const char *label)
{
	static struct store_xfer x;

	if (!c->progress)
		return NULL;
	x.progress = show_progress;
	x.progress_ud = (void *)label;
	return &x;
}

int main(int argc, char **argv)
{
	struct cmd_ctx c = { .prog = "fedmarket-store" };
	const struct opt common[] = {
		{ "--store", OPT_STR, &c.url, "URL",
		  "file://, s3:// or http(s):// store (default: storage_url)",
		  0, 0 },
		{ "--progress", OPT_FLAG, &c.progress, NULL,
		  "report transfers on stderr", 0, 0 },
		{ "--config", OPT_STR, &c.config, "FILE",
		  "configuration file (default: ~/.config/fedmarket/config)",
		  0, 0 },
		OPT_END,
	};
	const struct opt_prog p = {
		.prog = c.prog, .about = "push, pull and inspect bundles and "
		"blobs", .epilog = epilog, .common = common,
		.cmds = OPT_ROWS(commands),
	};
	size_t k;
	int rc;

	c.common = common;
	if (!opt_command(&p, &argc, argv, &k, &rc))
		return rc;
	c.cmd = commands[k].cmd.name;
	rc = commands[k].fn(&c, argc, argv);
	store_free(c.store);
	return rc;
}
