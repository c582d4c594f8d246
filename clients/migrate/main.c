/* fedmarket-migrate: applies migrations/NNNN_name.sql in order. */
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "db/migrate.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fedmarket-migrate [--dir DIR] [--database-url URL] "
		"[up|status]\n"
		"  up       apply pending migrations (default)\n"
		"  status   list migrations and whether each is applied\n"
		"  --dir    migrations folder (default: migrations)\n"
		"  --database-url  overrides FEDMARKET_DATABASE_URL\n");
}

int main(int argc, char **argv)
{
	struct fm_config cfg;
	struct migrate_report rep = { 0 };
	const char *dir = "migrations", *url = NULL, *cmd = "up";
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--database-url") &&
			   i + 1 < argc) {
			url = argv[++i];
		} else if (!strcmp(argv[i], "up") ||
			   !strcmp(argv[i], "status")) {
			cmd = argv[i];
		} else {
			fprintf(stderr, "fedmarket-migrate: unknown argument "
					"\"%s\"\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (cfg_load(&cfg, NULL)) {
		fprintf(stderr, "fedmarket-migrate: %s\n", fm_error_msg());
		return 2;
	}
	log_init("migrate", LOG_WARN, 0);
	if (!url)
		url = cfg.database_url;
	if (!strcmp(cmd, "status"))
		err = migrate_status(url, dir, stdout);
	else
		err = migrate_run(url, dir, &rep, stdout);
	if (err) {
		fprintf(stderr, "fedmarket-migrate: %s\n", fm_error_msg());
		return 1;
	}
	if (!strcmp(cmd, "up"))
		printf("migrations: %d applied, %d already applied\n",
		       rep.applied, rep.already);
	return 0;
}
