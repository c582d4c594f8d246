/* fedmarket-admin: deploys the escrow, inspects it, manages keys, shows
 * the configuration. */
#include "admin.h"

#include "cli/keys_cmd.h"
#include "core/err.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static int cmd_keys(struct admin *a, int argc, char **argv)
{
	(void)a;
	return keys_cmd_run(ADMIN_PROG, argc, argv);
}

/* Sorted by name. */
static const struct admin_cmd {
	struct opt_command cmd;
	int (*run)(struct admin *a, int argc, char **argv);
} commands[] = {
	{ { "config", NULL,
	    "print the settings in effect, or every setting (--keys)" },
	  cmd_config },
	{ { "deploy-escrow", NULL,
	    "deploy the escrow contract and print its address" },
	  cmd_deploy_escrow },
	{ { "escrow-task", "TASK_ID",
	    "show a task's deposit, payouts and state on chain" },
	  cmd_escrow_task },
	{ { "keys", "ACTION", "create, import and list keystores" },
	  cmd_keys },
};

int admin_usage(const struct admin *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opt_vusage(ADMIN_PROG, a->cmd, fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int admin_fail(const struct admin *a)
{
	return opt_fail(ADMIN_PROG, a->cmd);
}

int admin_parse(struct admin *a, struct opt_spec *s, int argc, char **argv,
		int *code)
{
	int level;

	s->prog = ADMIN_PROG;
	s->cmd = a->cmd;
	s->common = a->common;
	if (!opt_parse(s, argc, argv, code))
		return 0;
	if (cfg_load(&a->cfg, a->config)) {
		*code = admin_fail(a);
		return 0;
	}
	level = log_level_parse(a->cfg.log_level);
	log_init("admin", level < 0 ? LOG_INFO : (enum log_level)level,
		 a->cfg.log_json);
	log_set_stream(stderr);
	return 1;
}

int main(int argc, char **argv)
{
	struct admin a = { 0 };
	const struct opt common[] = {
		{ "--config", OPT_STR, &a.config, "FILE",
		  "configuration file (default: ~/.config/fedmarket/config)",
		  0, 0 },
		OPT_END,
	};
	const struct opt_prog p = {
		.prog = ADMIN_PROG, .about = "operate a fedmarket deployment",
		.common = common, .cmds = OPT_ROWS(commands),
	};
	size_t k;
	int rc;

	a.common = common;
	if (!opt_command(&p, &argc, argv, &k, &rc))
		return rc;
	a.cmd = commands[k].cmd.name;
	return commands[k].run(&a, argc, argv);
}
