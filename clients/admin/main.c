/* fedmarket-admin: deploys the escrow, inspects it, manages keys, shows
 * the configuration. */
#include "admin.h"

#include "cli/keys_cmd.h"
#include "core/err.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int cmd_keys(int argc, char **argv, struct fm_config *cfg)
{
	return keys_cmd_run(argc, argv, cfg);
}

/* Sorted by name. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv, struct fm_config *cfg);
	const char *help;
} commands[] = {
	{ "config", cmd_config,
	  "print the settings in effect, or every setting (--keys)" },
	{ "deploy-escrow", cmd_deploy_escrow,
	  "deploy the escrow contract and print its address" },
	{ "escrow-task", cmd_escrow_task,
	  "show a task's deposit, payouts and state on chain" },
	{ "keys", cmd_keys, "create, import and list keystores" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int usage(FILE *f)
{
	fprintf(f, "usage: fedmarket-admin [--config FILE] COMMAND [ARGS]\n"
		   "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "Run fedmarket-admin COMMAND --help for its options.\n");
	return 2;
}

int admin_usage(const char *cmd, const char *usage_text, const char *fmt,
		...)
{
	va_list ap;

	fprintf(stderr, "fedmarket-admin %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: fedmarket-admin %s %s\n", cmd, usage_text);
	return 2;
}

int admin_fail(const char *cmd)
{
	fprintf(stderr, "fedmarket-admin %s: %s\n", cmd, fm_error_msg());
	return 1;
}

int main(int argc, char **argv)
{
	struct fm_config cfg;
	const char *config = NULL;
	int i = 1, level;

	if (i + 1 < argc && !strcmp(argv[i], "--config")) {
		config = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		return usage(stderr);
	if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "help")) {
		usage(stdout);
		return 0;
	}
	if (cfg_load(&cfg, config)) {
		fprintf(stderr, "fedmarket-admin: %s\n", fm_error_msg());
		return 1;
	}
	level = log_level_parse(cfg.log_level);
	log_init("admin", level < 0 ? LOG_INFO : (enum log_level)level,
		 cfg.log_json);
	log_set_stream(stderr);
	for (size_t c = 0; c < NCOMMANDS; c++)
		if (!strcmp(argv[i], commands[c].name))
			return commands[c].run(argc - i, argv + i, &cfg);
	fprintf(stderr, "fedmarket-admin: unknown command \"%s\"\n", argv[i]);
	return usage(stderr);
}
