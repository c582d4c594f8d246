/* Integration tests of services/lib/db against the stack's real PostgreSQL:
 * migrations, the pool, retrying transactions, schema invariants, and a
 * server restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testenv.h"

#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	char url[1024];
	char name[128];
	char migrations[1024];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || tenv_db_create(f->url, sizeof(f->url), f->name,
				 sizeof(f->name)))
		return -1;
	snprintf(f->migrations, sizeof(f->migrations), "%s/migrations",
		 tenv_require("FM_TOP"));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tenv_db_drop(f->name);
	free(f);
	return 0;
}

static long long scalar(const char *url, const char *sql)
{
	struct db_pool *p = NULL;
	struct db_conn *c = NULL;
	PGresult *r = NULL;
	long long v;

	assert_int_equal(db_pool_new(&p, url, 1), FM_OK);
	assert_int_equal(db_acquire(p, &c, 1000), FM_OK);
	assert_int_equal(db_exec(c, &r, sql, 0, NULL), FM_OK);
	v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	db_release(p, c);
	db_pool_free(p);
	return v;
}

static void test_migrate__applies_once_then_noop(void **state)
{
	struct fixture *f = *state;
	struct migrate_report rep;

	assert_int_equal(migrate_run(f->url, f->migrations, &rep, NULL),
			 FM_OK);
	assert_true(rep.applied >= 1);
	assert_int_equal(rep.already, 0);
	assert_int_equal(migrate_run(f->url, f->migrations, &rep, NULL),
			 FM_OK);
	assert_int_equal(rep.applied, 0);
	assert_true(rep.already >= 1);
	assert_true(scalar(f->url, "SELECT count(*) FROM information_schema"
				   ".tables WHERE table_name = 'payouts'") ==
		    1);
}

/* Makes a migrations folder holding 0001 and an extra file. */
static void make_dir(char *dir, size_t n, const struct fixture *f,
		     const char *extra_name, const char *extra_sql)
{
	char path[2048];
	FILE *o;

	snprintf(dir, n, "/tmp/fm_mig_XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(tenv_sh("cp %s/0001_init.sql %s/", f->migrations,
				 dir),
			 0);
	if (extra_name) {
		snprintf(path, sizeof(path), "%s/%s", dir, extra_name);
		o = fopen(path, "w");
		assert_non_null(o);
		fputs(extra_sql, o);
		fclose(o);
	}
}

static void test_migrate__failure_rolls_back_and_names_the_file(void **state)
{
	struct fixture *f = *state;
	struct migrate_report rep;
	char dir[64];

	make_dir(dir, sizeof(dir), f, "0002_broken.sql",
		 "CREATE TABLE half_done (x int);\n"
		 "INSERT INTO no_such_table VALUES (1);\n");
	assert_int_equal(migrate_run(f->url, dir, &rep, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "0002_broken.sql failed"));
	assert_non_null(strstr(fm_error_msg(), "no_such_table"));
	/* 0001 went in; nothing of 0002 did */
	assert_int_equal(scalar(f->url, "SELECT count(*) FROM "
					"schema_migrations"),
			 1);
	assert_int_equal(scalar(f->url, "SELECT count(*) FROM information_"
					"schema.tables WHERE table_name = "
					"'half_done'"),
			 0);
	tenv_sh("rm -rf %s", dir);
}

static void test_migrate__changed_file_is_refused(void **state)
{
	struct fixture *f = *state;
	struct migrate_report rep;
	char dir[64];

	make_dir(dir, sizeof(dir), f, "0002_extra.sql",
		 "CREATE TABLE extra (x int);\n");
	assert_int_equal(migrate_run(f->url, dir, &rep, NULL), FM_OK);
	assert_int_equal(rep.applied, 2);
	assert_int_equal(tenv_sh("echo '-- edited' >> %s/0002_extra.sql", dir),
			 0);
	assert_int_equal(migrate_run(f->url, dir, &rep, NULL), FM_ECONFLICT);
	assert_non_null(strstr(fm_error_msg(),
			       "0002_extra.sql was changed after it was "
			       "applied"));
	tenv_sh("rm -rf %s", dir);
}

static void test_migrate__bad_names_are_refused(void **state)
{
	struct fixture *f = *state;
	struct migrate_report rep;
	char dir[64];

	make_dir(dir, sizeof(dir), f, "2_Bad-Name.sql", "SELECT 1;\n");
	assert_int_equal(migrate_run(f->url, dir, &rep, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "2_Bad-Name.sql"));
	assert_int_equal(tenv_sh("rm %s/2_Bad-Name.sql && cp %s/0001_init.sql "
				 "%s/0001_again.sql",
				 dir, dir, dir),
			 0);
	assert_int_equal(migrate_run(f->url, dir, &rep, NULL), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "share the number 0001"));
	tenv_sh("rm -rf %s", dir);
}

struct race {
	const struct fixture *f;
	int err;
	struct migrate_report rep;
};

static void *race_main(void *arg)
{
	struct race *r = arg;

	r->err = migrate_run(r->f->url, r->f->migrations, &r->rep, NULL);
	return NULL;
}

static void test_migrate__concurrent_runners_apply_once(void **state)
{
	struct fixture *f = *state;
	struct race r[4];
	pthread_t t[4];
	int total = 0;
	char pattern[1100];
	glob_t files;

	snprintf(pattern, sizeof(pattern), "%s/[0-9]*.sql", f->migrations);
	assert_int_equal(glob(pattern, 0, NULL, &files), 0);
	for (int i = 0; i < 4; i++) {
		r[i].f = f;
		pthread_create(&t[i], NULL, race_main, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].err, FM_OK);
		total += r[i].rep.applied;
	}
	/* every migration once, whoever applied it */
	assert_int_equal(total, (int)files.gl_pathc);
	globfree(&files);
}

struct counter_arg {
	struct db_pool *pool;
	int errs;
};

static int incr(struct db_conn *c, void *arg)
{
	PGresult *r = NULL;
	int err;
	char v[32];

	(void)arg;
	err = db_execp(c, &r, "SELECT n FROM counter WHERE id = $1", "1");
	if (err)
		return err;
	snprintf(v, sizeof(v), "%lld", db_int(r, 0, "n", 0) + 1);
	PQclear(r);
	return db_execp(c, NULL, "UPDATE counter SET n = $1 WHERE id = 1", v);
}

static void *incr_main(void *arg)
{
	struct counter_arg *a = arg;

	for (int i = 0; i < 25; i++)
		if (db_tx(a->pool, DB_SERIALIZABLE, incr, NULL, NULL))
			a->errs++;
	return NULL;
}

static void test_db__serializable_conflicts_are_retried(void **state)
{
	struct fixture *f = *state;
	struct db_pool *p = NULL;
	struct db_conn *c = NULL;
	struct counter_arg a[4];
	pthread_t t[4];
	int errs = 0;

	assert_int_equal(db_pool_new(&p, f->url, 4), FM_OK);
	assert_int_equal(db_acquire(p, &c, 1000), FM_OK);
	assert_int_equal(db_exec(c, NULL, "CREATE TABLE counter (id int "
					  "PRIMARY KEY, n int)", 0, NULL),
			 FM_OK);
	assert_int_equal(db_exec(c, NULL, "INSERT INTO counter VALUES (1, 0)",
				 0, NULL),
			 FM_OK);
	db_release(p, c);
	for (int i = 0; i < 4; i++) {
		a[i].pool = p;
		a[i].errs = 0;
		pthread_create(&t[i], NULL, incr_main, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		errs += a[i].errs;
	}
	db_pool_free(p);
	/* lost updates would show as a smaller count */
	assert_int_equal(scalar(f->url, "SELECT n FROM counter"), 100 - errs);
	assert_true(errs <= 2);
}

static void test_db__constraint_errors_map_to_codes(void **state)
{
	struct fixture *f = *state;
	struct db_pool *p = NULL;
	struct db_conn *c = NULL;
	const char *a = "0x1111111111111111111111111111111111111111";

	assert_int_equal(migrate_run(f->url, f->migrations, NULL, NULL),
			 FM_OK);
	assert_int_equal(db_pool_new(&p, f->url, 2), FM_OK);
	assert_int_equal(db_acquire(p, &c, 1000), FM_OK);
	assert_int_equal(db_execp(c, NULL, "INSERT INTO accounts (address) "
					   "VALUES ($1)", a),
			 FM_OK);
	assert_int_equal(db_last_rows(c), 1);
	assert_int_equal(db_execp(c, NULL, "INSERT INTO accounts (address) "
					   "VALUES ($1)", a),
			 FM_ECONFLICT);
	assert_string_equal(db_conn_sqlstate(c), "23505");
	/* the domain refuses a malformed address */
	assert_int_equal(db_execp(c, NULL, "INSERT INTO accounts (address) "
					   "VALUES ($1)", "0xABC"),
			 FM_EINVAL);
	/* a task cannot hand out more slots than it has */
	assert_int_equal(
		db_execp(c, NULL,
			 "INSERT INTO tasks (id, creator, validator, operator,"
			 " escrow_address, chain_id, title, kind, reward_wei,"
			 " max_assignments, slots_used, assignment_duration_s,"
			 " round_duration_s, expires_at, validation_strategy,"
			 " assets_ref, spec)"
			 " VALUES ($1, $2, $2, $2, $2, 31337, 't',"
			 " 'model_contributor', 1, 2, 3, 3600, 3600,"
			 " now() + interval '1 day', 'auto', $3, '{}')",
			 "0x" "00000000000000000000000000000000"
			      "00000000000000000000000000000001",
			 a,
			 "00000000000000000000000000000000"
			 "00000000000000000000000000000002"),
		FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "check constraint"));
	db_release(p, c);
	db_pool_free(p);
}

static int select_one(struct db_conn *c, void *arg)
{
	(void)arg;
	return db_execp(c, NULL, "SELECT $1::int", "1");
}

static void test_db__pool_survives_server_restart(void **state)
{
	struct fixture *f = *state;
	struct db_pool *p = NULL;

	assert_int_equal(db_pool_new(&p, f->url, 2), FM_OK);
	assert_int_equal(db_tx(p, DB_READ_COMMITTED, select_one, NULL, NULL), FM_OK);
	assert_int_equal(tenv_sh("%s/deploy/local/stack pg-restart >/dev/null"
				 " 2>&1",
				 tenv_require("FM_TOP")),
			 0);
	/* the old connection is dead; the transaction helper reconnects,
	 * with or without BEGIN */
	assert_int_equal(db_tx(p, DB_AUTOCOMMIT, select_one, NULL, NULL), FM_OK);
	assert_int_equal(db_tx(p, DB_READ_COMMITTED, select_one, NULL, NULL), FM_OK);
	db_pool_free(p);
}

static int tx_status(struct db_conn *c, void *arg)
{
	*(PGTransactionStatusType *)arg = PQtransactionStatus(db_conn_pg(c));
	return db_execp(c, NULL, "SELECT $1::int", "1");
}

static void test_db__autocommit_runs_outside_a_transaction(void **state)
{
	struct fixture *f = *state;
	struct db_pool *p = NULL;
	PGTransactionStatusType st = PQTRANS_UNKNOWN;

	assert_int_equal(db_pool_new(&p, f->url, 1), FM_OK);
	assert_int_equal(db_tx(p, DB_AUTOCOMMIT, tx_status, NULL, &st), FM_OK);
	assert_int_equal(st, PQTRANS_IDLE);
	assert_int_equal(db_tx(p, DB_READ_COMMITTED, tx_status, NULL, &st), FM_OK);
	assert_int_equal(st, PQTRANS_INTRANS);
	db_pool_free(p);
}

static int select_all_fields(struct db_conn *c, void *arg)
{
	PGresult *r = NULL;
	int err = db_exec(c, &r, "SELECT * FROM shapes", 0, NULL);

	if (!err)
		*(int *)arg = PQnfields(r);
	PQclear(r);
	return err;
}

static void test_db__prepared_statements_follow_schema_changes(void **state)
{
	struct fixture *f = *state;
	struct db_pool *p = NULL;
	struct db_conn *c = NULL;
	PGresult *r = NULL;
	char sql[64], want[16];
	int fields = 0;

	assert_int_equal(db_pool_new(&p, f->url, 1), FM_OK);
	assert_int_equal(db_acquire(p, &c, 1000), FM_OK);
	assert_int_equal(db_exec(c, NULL, "CREATE TABLE shapes (a int)", 0,
				 NULL),
			 FM_OK);
	assert_int_equal(db_exec(c, NULL, "INSERT INTO shapes VALUES (1)", 0,
				 NULL),
			 FM_OK);
	assert_int_equal(db_exec(c, &r, "SELECT * FROM shapes", 0, NULL),
			 FM_OK);
	assert_int_equal(PQnfields(r), 1);
	PQclear(r);
	/* the statement was prepared on the server, not parsed per call */
	assert_int_equal(db_exec(c, &r, "SELECT count(*) FROM "
					"pg_prepared_statements WHERE "
					"statement = 'SELECT * FROM shapes'",
				 0, NULL),
			 FM_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
	/* a new column changes the cached statement's result type */
	assert_int_equal(db_exec(c, NULL, "ALTER TABLE shapes ADD COLUMN b "
					  "int DEFAULT 7",
				 0, NULL),
			 FM_OK);
	assert_int_equal(db_exec(c, &r, "SELECT * FROM shapes", 0, NULL),
			 FM_OK);
	assert_int_equal(PQnfields(r), 2);
	assert_string_equal(PQgetvalue(r, 0, 1), "7");
	PQclear(r);
	assert_int_equal(db_exec(c, NULL, "ALTER TABLE shapes ADD COLUMN c "
					  "int DEFAULT 8",
				 0, NULL),
			 FM_OK);
	db_release(p, c);
	/* inside a transaction the error aborts it: db_tx runs it again */
	assert_int_equal(db_tx(p, DB_READ_COMMITTED, select_all_fields,
			       NULL, &fields),
			 FM_OK);
	assert_int_equal(fields, 3);
	/* more distinct statements than the cache holds still run */
	assert_int_equal(db_acquire(p, &c, 1000), FM_OK);
	for (int i = 0; i < 150; i++) {
		snprintf(sql, sizeof(sql), "SELECT $1::int + %d", i);
		snprintf(want, sizeof(want), "%d", 5 + i);
		assert_int_equal(db_execp(c, &r, sql, "5"), FM_OK);
		assert_string_equal(PQgetvalue(r, 0, 0), want);
		PQclear(r);
	}
	/* a statement the server refuses reports the server's reason */
	assert_int_equal(db_exec(c, NULL, "SELEC 1", 0, NULL), FM_EINTERNAL);
	assert_non_null(strstr(fm_error_msg(), "syntax error"));
	assert_int_equal(db_exec(c, NULL, "SELECT nope FROM shapes", 0, NULL),
			 FM_EINTERNAL);
	assert_non_null(strstr(fm_error_msg(), "nope"));
	db_release(p, c);
	db_pool_free(p);
}

/* A callback that leaves a malloc'd result in its argument, counting
 * its attempts and the results db_tx dropped. */
struct made {
	char *result;
	int value;
	int attempts, drops;
};

static int make_row(struct db_conn *c, void *arg)
{
	struct made *a = arg;
	char v[16];
	int err;

	a->attempts++;
	snprintf(v, sizeof(v), "%d", a->value);
	err = db_execp(c, NULL, "INSERT INTO made (v) VALUES ($1::int)", v);
	if (err)
		return err;
	a->result = strdup("made");
	return a->result ? FM_OK : FM_ENOMEM;
}

static void drop_made(void *arg)
{
	struct made *a = arg;

	free(a->result);
	a->result = NULL;
	a->drops++;
}

/* COMMIT can fail after the callback succeeded. A deferred constraint
 * trigger fails it twice with a serialization failure for v = 1 (db_tx
 * runs it again) and for good for v < 0: every attempt that did not
 * commit has its result dropped, and an error leaves none behind. */
static void test_db__uncommitted_attempts_drop_their_result(void **state)
{
	struct fixture *f = *state;
	struct db_pool *p = NULL;
	struct db_conn *c = NULL;
	struct made retried = { NULL, 1, 0, 0 }, refused = { NULL, -1, 0, 0 };
	static const char *const setup_sql[] = {
		"CREATE TABLE made (v int)",
		"CREATE SEQUENCE conflicts",
		"CREATE FUNCTION check_made() RETURNS trigger LANGUAGE plpgsql"
		" AS $$ BEGIN"
		"  IF NEW.v < 0 THEN RAISE EXCEPTION 'negative' USING ERRCODE ="
		"   'check_violation'; END IF;"
		"  IF NEW.v = 1 AND nextval('conflicts') <= 2 THEN RAISE"
		"   EXCEPTION 'injected conflict' USING ERRCODE ="
		"   'serialization_failure'; END IF;"
		"  RETURN NULL; END $$",
		"CREATE CONSTRAINT TRIGGER check_made AFTER INSERT ON made"
		" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
		" EXECUTE FUNCTION check_made()",
	};

	assert_int_equal(db_pool_new(&p, f->url, 2), FM_OK);
	assert_int_equal(db_acquire(p, &c, 1000), FM_OK);
	for (size_t i = 0; i < sizeof(setup_sql) / sizeof(setup_sql[0]); i++)
		assert_int_equal(db_exec(c, NULL, setup_sql[i], 0, NULL),
				 FM_OK);
	db_release(p, c);

	assert_int_equal(db_tx(p, DB_READ_COMMITTED, make_row, drop_made,
			       &retried),
			 FM_OK);
	assert_int_equal(retried.attempts, 3);
	assert_int_equal(retried.drops, 2);
	assert_string_equal(retried.result, "made");
	free(retried.result);

	assert_int_equal(db_tx(p, DB_READ_COMMITTED, make_row, drop_made,
			       &refused),
			 FM_EINVAL);
	assert_int_equal(refused.attempts, 1);
	assert_int_equal(refused.drops, 1);
	assert_null(refused.result);
	db_pool_free(p);
	assert_int_equal(scalar(f->url, "SELECT count(*) FROM made"), 1);
}

static void test_db__unreachable_server_is_unavailable(void **state)
{
	struct db_pool *p = NULL;

	(void)state;
	assert_int_equal(db_pool_new(&p, "postgresql://postgres@127.0.0.1:1/x"
					 "?connect_timeout=2",
				     1),
			 FM_EUNAVAIL);
	assert_null(p);
	assert_non_null(strstr(fm_error_msg(), "database unreachable"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_migrate__applies_once_then_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate__failure_rolls_back_and_names_the_file,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate__changed_file_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate__bad_names_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate__concurrent_runners_apply_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_db__serializable_conflicts_are_retried, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_db__constraint_errors_map_to_codes, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_db__pool_survives_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_db__autocommit_runs_outside_a_transaction, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_db__prepared_statements_follow_schema_changes,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_db__uncommitted_attempts_drop_their_result, setup,
			teardown),
		cmocka_unit_test(test_db__unreachable_server_is_unavailable),
	};

	log_init("db_test", LOG_WARN, 0);
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
