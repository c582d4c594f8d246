/* Schema migrations: migrations/NNNN_name.sql applied in order, each in
 * its own transaction, recorded with its sha256 in schema_migrations, under
 * an advisory lock so two runners cannot race. */
#ifndef FM_DB_MIGRATE_H
#define FM_DB_MIGRATE_H

#include <stdio.h>

struct migrate_report {
	int applied; /* files applied by this run */
	int already; /* files found already applied */
};

/* Applies what is pending in dir to the database at conninfo. A changed
 * checksum of an applied file, a malformed file name or a duplicate number
 * is refused before anything runs; a failing file is rolled back and named
 * with PostgreSQL's message. Progress lines go to log (may be NULL). */
int migrate_run(const char *conninfo, const char *dir,
		struct migrate_report *out, FILE *log);

/* Prints one line per file: version, name, applied or pending. */
int migrate_status(const char *conninfo, const char *dir, FILE *out);

#endif
