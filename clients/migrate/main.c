/* fedmarket-migrate: applies migrations/NNNN_name.sql in order. */
#include "cli/opt.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "db/migrate.h"

#include <stdio.h>
#include <string.h>

#define PROG "fedmarket-migrate"

static const char about[] =
	"commands:\n"
	"  up                         apply pending migrations (default)\n"
	"  status                     list migrations and whether each is "
	"applied\n";

/* up or status against the database at url. */
static int run(const char *cmd, const char *url, const char *dir)
{
	struct migrate_report rep = { 0 };
	int err;

	if (!strcmp(cmd, "status"))
		return migrate_status(url, dir, stdout);
	err = migrate_run(url, dir, &rep, stdout);
	if (err)
		return err;
	printf("migrations: %d applied, %d already applied\n", rep.applied,
	       rep.already);
	return FM_OK;
}

int main(int argc, char **argv)
{
	const char *dir = "migrations", *url = NULL, *config = NULL;
	const char *pos[1] = { NULL };
	const struct opt opts[] = {
		{ "--dir", OPT_STR, &dir, "DIR",
		  "migrations folder (default: migrations)", 0, 0 },
		{ "--database-url", OPT_STR, &url, "URL",
		  "overrides database_url (FEDMARKET_DATABASE_URL)", 0, 0 },
		{ "--config", OPT_STR, &config, "FILE",
		  "configuration file (default: ~/.config/fedmarket/config)",
		  0, 0 },
		OPT_END,
	};
	const struct opt_spec s = {
		.prog = PROG, .synopsis = "[options] [up|status]",
		.about = about, .opts = opts, .pos = pos, .max_pos = 1,
	};
	const char *cmd;
	struct fm_config cfg;
	int code;

	if (!opt_parse(&s, argc, argv, &code))
		return code;
	cmd = pos[0] ? pos[0] : "up";
	if (strcmp(cmd, "up") && strcmp(cmd, "status"))
		return opt_usage(PROG, NULL, "unknown command \"%s\"", cmd);
	if (cfg_load(&cfg, config))
		return opt_fail(PROG, NULL);
	log_init("migrate", LOG_WARN, 0);
	if (run(cmd, url ? url : cfg.database_url, dir))
		return opt_fail(PROG, NULL);
	return CLI_OK;
}
