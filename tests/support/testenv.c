#include "testenv.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tenv_require(const char *name)
{
	const char *v = getenv(name);

	if (!v || !v[0]) {
		fprintf(stderr,
			"%s is not set: run integration tests through "
			"`make test` or with `eval \"$(deploy/local/stack "
			"env)\"`\n",
			name);
		exit(1);
	}
	return v;
}

static int admin_exec(const char *sql)
{
	char url[1024];
	const char *base = tenv_require("FEDMARKET_DATABASE_URL");
	const char *slash = strrchr(base, '/');
	PGconn *pg;
	PGresult *r;
	int ok;

	snprintf(url, sizeof(url), "%.*s/postgres", (int)(slash - base), base);
	pg = PQconnectdb(url);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "testenv: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return -1;
	}
	r = PQexec(pg, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "testenv: %s", PQerrorMessage(pg));
	PQclear(r);
	PQfinish(pg);
	return ok ? 0 : -1;
}

int tenv_db_create(char *url, size_t url_n, char *name, size_t name_n)
{
	const char *base = tenv_require("FEDMARKET_DATABASE_URL");
	const char *slash = strrchr(base, '/');
	char sql[256];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, name_n, "fmtest_%d_%ld_%ld", (int)getpid(),
		 (long)ts.tv_sec % 100000, ts.tv_nsec / 1000);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (admin_exec(sql))
		return -1;
	snprintf(url, url_n, "%.*s/%s", (int)(slash - base), base, name);
	return 0;
}

int tenv_db_drop(const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		 name);
	return admin_exec(sql);
}

static int run(char *out, size_t n, const char *fmt, va_list ap)
{
	char cmd[8192];
	FILE *p;
	size_t len = 0;
	int st;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && n) {
		len = fread(out, 1, n - 1, p);
		out[len] = '\0';
		while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
			out[--len] = '\0';
	}
	/* drain what does not fit so the child never blocks */
	char sink[4096];
	while (fread(sink, 1, sizeof(sink), p) > 0)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tenv_sh(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = run(NULL, 0, fmt, ap);
	va_end(ap);
	return rc;
}

int tenv_sh_out(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = run(out, n, fmt, ap);
	va_end(ap);
	return rc;
}
