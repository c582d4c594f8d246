#include "db/db.h"

#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Statements prepared on one connection, so each is parsed and
 * analysed once per connection rather than once per call. */
#define STMT_CACHE 96

struct db_stmt {
	unsigned long hash;
	char *sql;
};

struct db_conn {
	PGconn *pg;
	struct db_conn *next_free;
	char sqlstate[6];
	int retryable;
	long rows;
	int nstmts;
	struct db_stmt stmts[STMT_CACHE];
};

struct db_pool {
	char *conninfo;
	int size;
	int opened;
	struct db_conn *conns; /* size entries; pg NULL until opened */
	struct db_conn *free_list;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

#define TX_MAX_ATTEMPTS 8

/* The server forgets prepared statements when its session ends. */
static void stmts_forget(struct db_conn *c)
{
	for (int i = 0; i < c->nstmts; i++)
		free(c->stmts[i].sql);
	c->nstmts = 0;
}

/* libpq's text names hosts and ports: it goes to the log, and callers
 * (whose messages may reach clients) get a plain one. */
static int unreachable(const char *detail)
{
	char d[FM_ERR_MSG_MAX];
	size_t n;

	snprintf(d, sizeof(d), "%s", detail ? detail : "");
	n = strlen(d);
	while (n && (d[n - 1] == '\n' || d[n - 1] == ' '))
		d[--n] = '\0';
	log_warn("database unreachable: %s", d);
	return fm_error_set(FM_EUNAVAIL, "database unreachable");
}

static int conn_open(struct db_conn *c, const char *conninfo)
{
	c->pg = PQconnectdb(conninfo);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		int err = unreachable(PQerrorMessage(c->pg));

		PQfinish(c->pg);
		c->pg = NULL;
		return err;
	}
	return FM_OK;
}

int db_pool_new(struct db_pool **out, const char *conninfo, int size)
{
	struct db_pool *p;
	int err;

	if (size < 1)
		return fm_error_set(FM_EINVAL, "pool size must be at least 1");
	p = calloc(1, sizeof(*p));
	if (!p)
		return fm_error_set(FM_ENOMEM, "out of memory");
	p->conns = calloc((size_t)size, sizeof(*p->conns));
	p->conninfo = strdup(conninfo);
	if (!p->conns || !p->conninfo) {
		free(p->conns);
		free(p->conninfo);
		free(p);
		return fm_error_set(FM_ENOMEM, "out of memory");
	}
	p->size = size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (int i = size - 1; i >= 0; i--) {
		p->conns[i].next_free = p->free_list;
		p->free_list = &p->conns[i];
	}
	/* fail early on a wrong URL rather than on the first request */
	err = conn_open(&p->conns[0], conninfo);
	if (err) {
		db_pool_free(p);
		return err;
	}
	*out = p;
	return FM_OK;
}

void db_pool_free(struct db_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->size; i++) {
		if (p->conns[i].pg)
			PQfinish(p->conns[i].pg);
		stmts_forget(&p->conns[i]);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->conns);
	free(p->conninfo);
	free(p);
}

static int conn_ready(struct db_pool *p, struct db_conn *c)
{
	if (!c->pg)
		return conn_open(c, p->conninfo);
	if (PQstatus(c->pg) == CONNECTION_OK)
		return FM_OK;
	stmts_forget(c);
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK)
		return unreachable(PQerrorMessage(c->pg));
	log_info("database connection re-established");
	return FM_OK;
}

int db_acquire(struct db_pool *p, struct db_conn **out, int timeout_ms)
{
	struct timespec deadline;
	struct db_conn *c;
	int err;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (!p->free_list) {
		if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&p->lock);
			return fm_error_set(FM_EUNAVAIL,
					    "database pool exhausted: no "
					    "connection free within %d ms",
					    timeout_ms);
		}
	}
	c = p->free_list;
	p->free_list = c->next_free;
	pthread_mutex_unlock(&p->lock);

	err = conn_ready(p, c);
	if (err) {
		db_release(p, c);
		return err;
	}
	c->sqlstate[0] = '\0';
	c->retryable = 0;
	*out = c;
	return FM_OK;
}

void db_release(struct db_pool *p, struct db_conn *c)
{
	if (!c)
		return;
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK &&
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c->pg, "ROLLBACK");

		PQclear(r);
	}
	pthread_mutex_lock(&p->lock);
	c->next_free = p->free_list;
	p->free_list = c;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

PGconn *db_conn_pg(struct db_conn *c)
{
	return c->pg;
}

const char *db_conn_sqlstate(const struct db_conn *c)
{
	return c->sqlstate;
}

int db_conn_retryable(const struct db_conn *c)
{
	return c->retryable;
}

long db_last_rows(const struct db_conn *c)
{
	return c->rows;
}

static int map_failure(struct db_conn *c, PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			    : NULL;
	const char *constraint =
		r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;

	if (!msg)
		msg = PQerrorMessage(c->pg);
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	c->retryable = 0;
	if (PQstatus(c->pg) != CONNECTION_OK || !state ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		c->retryable = 1;
		return unreachable(msg);
	}
	if (!strcmp(state, "40001") || !strcmp(state, "40P01")) {
		c->retryable = 1;
		return fm_error_set(FM_ECONFLICT,
				    "concurrent update, try again: %s", msg);
	}
	if (!strcmp(state, "23505") || !strcmp(state, "23P01"))
		return fm_error_set(FM_ECONFLICT, "%s%s%s", msg,
				    constraint ? " on " : "",
				    constraint ? constraint : "");
	if (!strncmp(state, "23", 2) || !strncmp(state, "22", 2))
		return fm_error_set(FM_EINVAL, "%s%s%s", msg,
				    constraint ? " on " : "",
				    constraint ? constraint : "");
	return fm_error_set(FM_EINTERNAL, "database error %s: %s", state,
			    msg);
}

static unsigned long sql_hash(const char *s)
{
	unsigned long h = 14695981039346656037UL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211UL;
	return h;
}

/* The name sql is prepared under on c ("fm<i>"), preparing it first.
 * name is empty when the cache is full (run it unprepared); a failed
 * prepare (bad SQL, lost connection) returns the server's answer, which
 * is then the statement's. */
static PGresult *stmt_name(struct db_conn *c, const char *sql, int nparams,
			   char name[16])
{
	unsigned long h = sql_hash(sql);
	PGresult *r;
	char *copy;
	int i;

	name[0] = '\0';
	for (i = 0; i < c->nstmts; i++)
		if (c->stmts[i].hash == h && !strcmp(c->stmts[i].sql, sql)) {
			snprintf(name, 16, "fm%d", i);
			return NULL;
		}
	if (c->nstmts == STMT_CACHE ||
	    PQtransactionStatus(c->pg) == PQTRANS_INERROR)
		return NULL;
	copy = strdup(sql);
	if (!copy)
		return NULL;
	i = c->nstmts;
	snprintf(name, 16, "fm%d", i);
	r = PQprepare(c->pg, name, sql, nparams, NULL);
	if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
		c->stmts[i].hash = h;
		c->stmts[i].sql = copy;
		c->nstmts++;
		PQclear(r);
		return NULL;
	}
	free(copy);
	name[0] = '\0';
	return r ? r : PQmakeEmptyPGresult(c->pg, PGRES_FATAL_ERROR);
}

/* Drops the entry named name so the next call prepares sql afresh. */
static void stmt_drop(struct db_conn *c, const char *name)
{
	int i = atoi(name + 2);
	char sql[32];
	PGresult *r;

	if (i >= c->nstmts)
		return;
	if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
		r = PQexec(c->pg, sql);
		PQclear(r);
	}
	/* keep the slot so the other names stay valid; a hash of 0 with an
	 * empty text matches no statement */
	c->stmts[i].sql[0] = '\0';
	c->stmts[i].hash = 0;
}

/* A cached plan whose tables changed shape (a migration) or a statement
 * the server no longer knows: prepare again and the call succeeds. */
static int stale_statement(const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return state && (!strcmp(state, "0A000") || !strcmp(state, "26000"));
}

int db_exec(struct db_conn *c, PGresult **out, const char *sql, int nparams,
	    const char *const *params)
{
	PGresult *r;
	ExecStatusType st;
	char name[16];
	int err;

	c->rows = 0;
	r = stmt_name(c, sql, nparams, name);
	if (!r && name[0])
		r = PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
	else if (!r)
		r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL,
				 0);
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (name[0] && st == PGRES_FATAL_ERROR && stale_statement(r)) {
		int in_tx = PQtransactionStatus(c->pg) != PQTRANS_IDLE;

		stmt_drop(c, name);
		if (in_tx) {
			/* the transaction is aborted: db_tx runs it again */
			err = map_failure(c, r);
			c->retryable = 1;
			PQclear(r);
			return err;
		}
		PQclear(r);
		r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL,
				 0);
		st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	}
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err = map_failure(c, r);
		PQclear(r);
		return err;
	}
	c->rows = st == PGRES_TUPLES_OK ? PQntuples(r)
					: strtol(PQcmdTuples(r), NULL, 10);
	if (out)
		*out = r;
	else
		PQclear(r);
	return FM_OK;
}

static void backoff(int attempt)
{
	/* 5, 10, 20 ... ms plus jitter: spreads retries of racing
	 * transactions */
	long ms = 5L << (attempt < 6 ? attempt : 6);
	struct timespec ts;

	ms += rand() % (ms + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

static const char *const begin_sql[] = {
	"BEGIN ISOLATION LEVEL READ COMMITTED",
	"BEGIN ISOLATION LEVEL REPEATABLE READ",
	"BEGIN ISOLATION LEVEL SERIALIZABLE",
};

/* One attempt of db_tx. *retry says whether running it again may
 * succeed. */
static int tx_attempt(struct db_pool *p, enum db_isolation iso,
		      db_tx_fn fn, void *arg, int *retry)
{
	struct db_conn *c = NULL;
	int err;

	err = db_acquire(p, &c, 10000);
	if (err) {
		/* the server may be restarting: keep trying */
		*retry = 1;
		return err;
	}
	if (iso != DB_AUTOCOMMIT) {
		err = db_exec(c, NULL, begin_sql[iso], 0, NULL);
		if (err)
			goto done;
	}
	err = fn(c, arg);
	if (err || iso == DB_AUTOCOMMIT)
		goto done;
	err = db_exec(c, NULL, "COMMIT", 0, NULL);
	if (err && PQstatus(c->pg) != CONNECTION_OK) {
		/* COMMIT may or may not have landed: never guess */
		err = fm_error_set(FM_EUNAVAIL, "database connection lost "
				   "during commit; the outcome is unknown");
		c->retryable = 0;
	}
done:
	*retry = err && c->retryable;
	db_release(p, c);
	return err;
}

int db_tx(struct db_pool *p, enum db_isolation iso, db_tx_fn fn,
	  db_tx_drop_fn drop, void *arg)
{
	int err = FM_OK, retry = 0;

	for (int attempt = 0; attempt < TX_MAX_ATTEMPTS; attempt++) {
		if (attempt) {
			log_debug("retrying transaction (attempt %d): %s",
				  attempt + 1, fm_error_msg());
			backoff(attempt);
		}
		err = tx_attempt(p, iso, fn, arg, &retry);
		if (err && drop)
			drop(arg);
		if (!err || !retry)
			break;
	}
	return err;
}

static int col(const PGresult *r, const char *name)
{
	int i = PQfnumber(r, name);

	FM_ASSERT(i >= 0);
	return i;
}

const char *db_str(const PGresult *r, int row, const char *name,
		   const char *def)
{
	int i = col(r, name);

	return PQgetisnull(r, row, i) ? def : PQgetvalue(r, row, i);
}

long long db_int(const PGresult *r, int row, const char *name,
		 long long def)
{
	int i = col(r, name);

	return PQgetisnull(r, row, i) ? def
				      : strtoll(PQgetvalue(r, row, i), NULL,
						10);
}

int db_bool(const PGresult *r, int row, const char *name)
{
	int i = col(r, name);

	return !PQgetisnull(r, row, i) && PQgetvalue(r, row, i)[0] == 't';
}
