/* PostgreSQL access: a thread-safe connection pool over libpq, queries
 * with parameters only, and transactions that retry serialization
 * failures and deadlocks and survive a server restart. */
#ifndef FM_DB_DB_H
#define FM_DB_DB_H

#include <libpq-fe.h>
#include <stddef.h>

struct db_pool;
struct db_conn;

/* Opens up to size connections lazily; fails with FM_EUNAVAIL (naming the
 * server's message) when the first connection cannot be made. */
int db_pool_new(struct db_pool **out, const char *conninfo, int size);
void db_pool_free(struct db_pool *p);

/* Waits up to timeout_ms for a free connection; a broken one is reset
 * first. FM_EUNAVAIL when the server cannot be reached. */
int db_acquire(struct db_pool *p, struct db_conn **out, int timeout_ms);
/* Returns c to the pool; a connection left inside a transaction is rolled
 * back first. Accepts NULL. */
void db_release(struct db_pool *p, struct db_conn *c);
PGconn *db_conn_pg(struct db_conn *c);

/* Runs sql with text parameters (NULL entries are SQL NULL). On success
 * *out (when out is not NULL) is the result, owned by the caller
 * (PQclear). Errors map SQLSTATE: unique/exclusion violations ->
 * FM_ECONFLICT, check/not-null/foreign-key violations and bad input ->
 * FM_EINVAL, connection loss -> FM_EUNAVAIL, serialization failure and
 * deadlock -> FM_ECONFLICT with db_conn_retryable() true. */
int db_exec(struct db_conn *c, PGresult **out, const char *sql, int nparams,
	    const char *const *params);
/* Number of rows changed or returned by the last db_exec, for callers that
 * only need a count. */
long db_last_rows(const struct db_conn *c);

/* The count and the array of a statement's text parameters, for
 * db_exec and the helpers shaped like it:
 * db_exec(c, &r, sql, DB_ARGS(id, state)). */
#define DB_ARGS(...) \
	(int)(sizeof((const char *[]){ __VA_ARGS__ }) / \
	      sizeof(const char *)), \
	(const char *const[]){ __VA_ARGS__ }

#define db_execp(c, out, sql, ...) \
	db_exec((c), (out), (sql), DB_ARGS(__VA_ARGS__))

/* SQLSTATE of the last failure on c ("" if none). */
const char *db_conn_sqlstate(const struct db_conn *c);
/* Whether the last failure may succeed when the transaction is retried. */
int db_conn_retryable(const struct db_conn *c);

/* DB_AUTOCOMMIT runs fn without BEGIN/COMMIT, so each statement is its own
 * transaction: for fn that is one read (or otherwise safe to repeat),
 * two round trips fewer. */
enum db_isolation { DB_READ_COMMITTED, DB_REPEATABLE_READ, DB_SERIALIZABLE,
		    DB_AUTOCOMMIT };

typedef int (*db_tx_fn)(struct db_conn *c, void *arg);
/* Frees what one attempt of a db_tx_fn left in its argument and clears
 * it; must accept an argument the attempt left nothing in. */
typedef void (*db_tx_drop_fn)(void *arg);

/* Runs fn inside BEGIN ... COMMIT (none for DB_AUTOCOMMIT) on a pooled
 * connection. fn returning an error rolls back and passes the error on.
 * Serialization failures, deadlocks and connection loss before COMMIT are
 * retried (up to 8 times, with jittered backoff); fn must therefore have
 * no effects outside the database and arg.
 *
 * An attempt can fail after fn succeeded (at COMMIT), so fn leaves what
 * it reads in arg, never in the caller's *out: after every attempt that
 * did not commit, drop(arg) (when drop is not NULL) frees it. On an error
 * arg holds nothing; on FM_OK the caller hands the result on. */
int db_tx(struct db_pool *p, enum db_isolation iso, db_tx_fn fn,
	  db_tx_drop_fn drop, void *arg);

/* Column value helpers over a result row: NULL -> def. */
const char *db_str(const PGresult *r, int row, const char *col,
		   const char *def);
long long db_int(const PGresult *r, int row, const char *col, long long def);
int db_bool(const PGresult *r, int row, const char *col);

#endif
