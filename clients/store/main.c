/* fedmarket-store: push, pull and inspect bundles and blobs, for people
 * debugging a deployment. */
#include "cmd.h"

#include "core/err.h"
#include "core/log.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"usage: fedmarket-store [--store URL] [--config FILE] [--progress]\n"
	"                       COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  push --kind KIND --name NAME [--version V] [--description TEXT]\n"
	"       [--model FILE.json] [--meta FILE.json] [--create] DIR\n"
	"                    store DIR as a bundle; prints its reference\n"
	"  pull REF DIR      fetch bundle REF into DIR (every file verified)\n"
	"  cat REF [PATH]    print blob REF, or file PATH of bundle REF\n"
	"  ls [REF]          list bundle REF's files, or the store's keys\n"
	"  put FILE KEY      upload FILE under KEY as is\n"
	"  get KEY FILE      download KEY into FILE as is\n"
	"  check FILE        check a manifest file (no store needed)\n"
	"\n"
	"KIND is model, result, task-assets or dataset. REF is a sha256 (64\n"
	"hex digits). The store defaults to the storage_url setting;\n"
	"s3:// stores use the s3_* settings (FEDMARKET_S3_* variables).\n";

static const struct {
	const char *name;
	int (*fn)(struct cmd_ctx *c, int argc, char **argv);
} commands[] = {
	{ "cat", cmd_cat },   { "check", cmd_check }, { "get", cmd_get },
	{ "ls", cmd_ls },     { "pull", cmd_pull },   { "push", cmd_push },
	{ "put", cmd_put },
};

int cmd_fail(const struct cmd_ctx *c)
{
	fprintf(stderr, "%s: %s\n", c->prog, fm_error_msg());
	return 1;
}

int cmd_usage_error(const struct cmd_ctx *c, const char *msg)
{
	fprintf(stderr, "%s: %s\nTry '%s --help'.\n", c->prog, msg, c->prog);
	return EXIT_USAGE;
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
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "progress", no_argument, NULL, 'p' },
		{ "store", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct cmd_ctx c = { .prog = "fedmarket-store" };
	const char *config = NULL;
	int opt, level, rc;

	/* '+' stops at the command: its options are its own */
	while ((opt = getopt_long(argc, argv, "+c:hps:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'p':
			c.progress = 1;
			break;
		case 's':
			c.url = optarg;
			break;
		default:
			return cmd_usage_error(&c, "unknown option");
		}
	}
	if (optind >= argc)
		return cmd_usage_error(&c, "missing command");
	if (cfg_load(&c.cfg, config))
		return cmd_fail(&c);
	level = log_level_parse(c.cfg.log_level);
	log_init("store", level < 0 ? LOG_INFO : (enum log_level)level,
		 c.cfg.log_json);
	log_set_stream(stderr);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			/* the command sees itself as argv[0] */
			rc = commands[i].fn(&c, argc - optind, argv + optind);
			store_free(c.store);
			return rc;
		}
	}
	fprintf(stderr, "%s: unknown command \"%s\"\nTry '%s --help'.\n",
		c.prog, argv[optind], c.prog);
	return EXIT_USAGE;
}
