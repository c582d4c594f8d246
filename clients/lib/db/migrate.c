#include "db/migrate.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/sha256.h"

#include <dirent.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATION_MAX_BYTES (16u << 20)
#define MIGRATIONS_MAX 10000
/* pg_advisory_lock key: "fedmigr" in ASCII */
#define MIGRATE_LOCK_KEY "28548152953939570"

struct migration {
	int version;
	char name[256];
	char path[4096];
	char sha256[SHA256_HEX_LEN + 1];
	char *sql;
};

struct migration_set {
	struct migration *items;
	size_t n;
};

static void set_free(struct migration_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i].sql);
	free(s->items);
	s->items = NULL;
	s->n = 0;
}

/* NNNN_name.sql with name in [a-z0-9_]; returns the version or -1. */
static int parse_name(const char *f)
{
	size_t len = strlen(f);

	if (len < 10 || strcmp(f + len - 4, ".sql") != 0)
		return -1;
	for (int i = 0; i < 4; i++)
		if (f[i] < '0' || f[i] > '9')
			return -1;
	if (f[4] != '_')
		return -1;
	for (size_t i = 5; i < len - 4; i++)
		if (!((f[i] >= 'a' && f[i] <= 'z') ||
		      (f[i] >= '0' && f[i] <= '9') || f[i] == '_'))
			return -1;
	return atoi(f);
}

static int cmp_version(const void *a, const void *b)
{
	return ((const struct migration *)a)->version -
	       ((const struct migration *)b)->version;
}

static int load_dir(struct migration_set *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int err = FM_OK;

	if (!d)
		return fm_error_set(FM_ENOTFOUND,
				    "migrations folder %s cannot be read", dir);
	while ((e = readdir(d))) {
		struct migration *m, *grown;
		struct buf b = BUF_INIT(MIGRATION_MAX_BYTES);
		int v;

		if (e->d_name[0] == '.')
			continue;
		v = parse_name(e->d_name);
		if (v < 0) {
			err = fm_error_set(FM_EINVAL,
					   "%s/%s: migration files are named "
					   "NNNN_name.sql (name in a-z0-9_)",
					   dir, e->d_name);
			goto done;
		}
		if (s->n >= MIGRATIONS_MAX) {
			err = fm_error_set(FM_ETOOLARGE,
					   "%s: more than %d migrations", dir,
					   MIGRATIONS_MAX);
			goto done;
		}
		grown = realloc(s->items, (s->n + 1) * sizeof(*s->items));
		if (!grown) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			goto done;
		}
		s->items = grown;
		m = &s->items[s->n];
		memset(m, 0, sizeof(*m));
		m->version = v;
		snprintf(m->name, sizeof(m->name), "%s", e->d_name);
		snprintf(m->path, sizeof(m->path), "%s/%s", dir, e->d_name);
		err = buf_read_file(&b, m->path);
		if (err) {
			buf_cleanup(&b);
			goto done;
		}
		fm_sha256_hex(m->sha256, b.data, b.len);
		m->sql = buf_detach(&b, NULL);
		s->n++;
	}
	qsort(s->items, s->n, sizeof(*s->items), cmp_version);
	for (size_t i = 1; i < s->n; i++) {
		if (s->items[i].version == s->items[i - 1].version) {
			err = fm_error_set(FM_EINVAL,
					   "%s and %s share the number %04d",
					   s->items[i - 1].name,
					   s->items[i].name,
					   s->items[i].version);
			goto done;
		}
	}
done:
	closedir(d);
	return err;
}

static int exec_ok(PGconn *pg, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return FM_OK;
	return fm_error_set(PQstatus(pg) == CONNECTION_OK ? FM_EINTERNAL
							  : FM_EUNAVAIL,
			    "%s: %s", what, PQerrorMessage(pg));
}

static int simple(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int err = exec_ok(pg, r, sql);

	PQclear(r);
	return err;
}

static int connect_locked(PGconn **out, const char *conninfo)
{
	PGconn *pg = PQconnectdb(conninfo);
	int err;

	if (PQstatus(pg) != CONNECTION_OK) {
		err = fm_error_set(FM_EUNAVAIL, "database unreachable: %s",
				   PQerrorMessage(pg));
		PQfinish(pg);
		return err;
	}
	/* quiet NOTICEs such as "relation already exists, skipping" */
	err = simple(pg, "SET client_min_messages = warning");
	if (err)
		goto done;
	err = simple(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")");
	if (err)
		goto done;
	err = simple(pg,
		     "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     " version integer PRIMARY KEY,"
		     " name text NOT NULL,"
		     " sha256 text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())");
done:
	if (err) {
		PQfinish(pg);
		return err;
	}
	*out = pg;
	return FM_OK;
}

/* Looks up an applied version: 1 and its checksum in sha, or 0. */
static int applied(PGconn *pg, int version, char *sha, size_t n, int *found)
{
	char v[16];
	const char *params[1] = { v };
	PGresult *r;
	int err;

	snprintf(v, sizeof(v), "%d", version);
	r = PQexecParams(pg,
			 "SELECT sha256 FROM schema_migrations WHERE version "
			 "= $1",
			 1, NULL, params, NULL, NULL, 0);
	err = exec_ok(pg, r, "reading schema_migrations");
	if (err)
		goto done;
	*found = PQntuples(r) > 0;
	if (*found)
		snprintf(sha, n, "%s", PQgetvalue(r, 0, 0));
done:
	PQclear(r);
	return err;
}

static int apply_one(PGconn *pg, const struct migration *m)
{
	char v[16];
	const char *params[3] = { v, m->name, m->sha256 };
	PGresult *r;
	int err;

	snprintf(v, sizeof(v), "%d", m->version);
	err = simple(pg, "BEGIN");
	if (err)
		return err;
	r = PQexec(pg, m->sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQresultStatus(r) != PGRES_EMPTY_QUERY) {
		err = fm_error_set(FM_EINVAL, "%s failed, nothing applied: %s",
				   m->name,
				   PQresultErrorMessage(r));
		PQclear(r);
		PQclear(PQexec(pg, "ROLLBACK"));
		return err;
	}
	PQclear(r);
	r = PQexecParams(pg,
			 "INSERT INTO schema_migrations (version, name, sha256)"
			 " VALUES ($1, $2, $3)",
			 3, NULL, params, NULL, NULL, 0);
	err = exec_ok(pg, r, "recording the migration");
	PQclear(r);
	if (err)
		goto done;
	err = simple(pg, "COMMIT");
done:
	if (err)
		PQclear(PQexec(pg, "ROLLBACK"));
	return err;
}

/* Refuses changed files before anything is applied. */
static int verify_applied(PGconn *pg, const struct migration_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		char sha[80];
		int found = 0;
		int err = applied(pg, s->items[i].version, sha, sizeof(sha),
				  &found);

		if (err)
			return err;
		if (found && strcmp(sha, s->items[i].sha256) != 0)
			return fm_error_set(FM_ECONFLICT,
					    "%s was changed after it was "
					    "applied (sha256 %.12s... applied, "
					    "%.12s... now); add a new "
					    "migration instead",
					    s->items[i].name, sha,
					    s->items[i].sha256);
	}
	return FM_OK;
}

/* Reads the folder, connects under the lock and refuses changed files:
 * what both run and status start with. */
static int open_checked(struct migration_set *s, PGconn **pg,
			const char *conninfo, const char *dir)
{
	int err = load_dir(s, dir);

	if (err)
		return err;
	err = connect_locked(pg, conninfo);
	if (err)
		return err;
	return verify_applied(*pg, s);
}

int migrate_run(const char *conninfo, const char *dir,
		struct migrate_report *out, FILE *log)
{
	struct migration_set s = { 0 };
	struct migrate_report rep = { 0 };
	PGconn *pg = NULL;
	int err;

	err = open_checked(&s, &pg, conninfo, dir);
	if (err)
		goto done;
	for (size_t i = 0; i < s.n; i++) {
		char sha[80];
		int found = 0;

		err = applied(pg, s.items[i].version, sha, sizeof(sha),
			      &found);
		if (err)
			goto done;
		if (found) {
			rep.already++;
			continue;
		}
		err = apply_one(pg, &s.items[i]);
		if (err)
			goto done;
		rep.applied++;
		if (log)
			fprintf(log, "applied %s\n", s.items[i].name);
	}
	if (out)
		*out = rep;
done:
	if (pg)
		PQfinish(pg); /* releases the advisory lock */
	set_free(&s);
	return err;
}

int migrate_status(const char *conninfo, const char *dir, FILE *out)
{
	struct migration_set s = { 0 };
	PGconn *pg = NULL;
	int err;

	err = open_checked(&s, &pg, conninfo, dir);
	if (err)
		goto done;
	for (size_t i = 0; i < s.n; i++) {
		char sha[80];
		int found = 0;

		err = applied(pg, s.items[i].version, sha, sizeof(sha),
			      &found);
		if (err)
			goto done;
		fprintf(out, "%04d %-40s %s\n", s.items[i].version,
			s.items[i].name, found ? "applied" : "pending");
	}
done:
	if (pg)
		PQfinish(pg);
	set_free(&s);
	return err;
}
