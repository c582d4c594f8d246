/* The lifecycle state machine on a real PostgreSQL: transitions, guards,
 * races for slots, concurrent decisions, expiry, pagination, replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sha256.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "market/market.h"
#include "marketfx.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Creates and opens a task; returns its id in id (67 bytes). */
static void open_task(struct mdb *m, char *id, const char *creator,
		      int slots, const char *strategy)
{
	json_t *spec = mfx_spec(slots), *t = NULL;
	struct task_spec s;
	char funded[80];

	json_object_set_new(json_object_get(spec, "validation"), "strategy",
			    json_string(strategy));
	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	assert_int_equal(market_task_create(m->pool, &t, &s, creator,
					    &mfx_chain),
			 FM_OK);
	assert_string_equal(json_string_value(json_object_get(t, "state")),
			    "draft");
	json_decref(t);
	assert_int_equal(spec_wei_mul(funded, s.reward_wei, slots), FM_OK);
	assert_int_equal(market_task_open(m->pool, &t, s.task_id,
					  "0x1111111111111111111111111111111"
					  "111111111111111111111111111111111",
					  funded),
			 FM_OK);
	assert_string_equal(json_string_value(json_object_get(t, "state")),
			    "open");
	strcpy(id, s.task_id);
	json_decref(t);
	task_spec_cleanup(&s);
	json_decref(spec);
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long count(struct mdb *m, const char *sql, const char *arg)
{
	struct db_conn *c = NULL;
	PGresult *r = NULL;
	long long v;

	assert_int_equal(db_acquire(m->pool, &c, 1000), FM_OK);
	assert_int_equal(db_execp(c, &r, sql, arg), FM_OK);
	v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	db_release(m->pool, c);
	return v;
}

static void submit(struct mdb *m, json_t **res, const char *assignment,
		   const char *who)
{
	char ref[SHA256_HEX_LEN + 1];
	struct market_result_in in = {
		.assignment_id = assignment,
		.contributor = who,
		.bundle_ref = ref,
		.num_examples = 600,
	};

	/* a bundle of its own: a task refuses a copy of another result */
	fm_sha256_hex(ref, assignment, strlen(assignment));
	assert_int_equal(market_result_submit(m->pool, res, &in), FM_OK);
}

static void test_market__lifecycle_accept_writes_one_payout(void **state)
{
	struct mdb *m = *state;
	char creator[43], worker[43], other[43], id[67];
	json_t *a = NULL, *r = NULL, *d = NULL, *list = NULL;
	struct market_decision_in dec = { 0 };

	mfx_address(creator);
	mfx_address(worker);
	mfx_address(other);
	open_task(m, id, creator, 2, "manual");

	/* the creator cannot take their own task */
	assert_int_equal(market_assign(m->pool, &a, id, creator),
			 FM_EFORBIDDEN);
	assert_int_equal(market_assign(m->pool, &a, id, worker), FM_OK);
	assert_string_equal(str(a, "state"), "active");
	/* one live assignment per contributor */
	assert_int_equal(market_assign(m->pool, &r, id, worker), FM_ECONFLICT);
	assert_non_null(strstr(fm_error_msg(), "already hold"));

	/* only the assignee submits */
	struct market_result_in bad = { .assignment_id = str(a, "id"),
					.contributor = other,
					.bundle_ref = "cccccccccccccccccccccccc"
						      "cccccccccccccccccccccccc"
						      "cccccccccccccccc" };
	assert_int_equal(market_result_submit(m->pool, &r, &bad),
			 FM_EFORBIDDEN);
	submit(m, &r, str(a, "id"), worker);
	assert_string_equal(str(r, "state"), "submitted");
	/* a second submission finds the assignment no longer active */
	bad.contributor = worker;
	assert_int_equal(market_result_submit(m->pool, &d, &bad), FM_ECONFLICT);

	dec.result_id = str(r, "id");
	dec.validator = other;
	dec.accept = 1;
	assert_int_equal(market_decide(m->pool, &d, &dec), FM_EFORBIDDEN);
	dec.validator = creator; /* validator defaults to the creator */
	dec.accept = 0;
	assert_int_equal(market_decide(m->pool, &d, &dec), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "reason"));
	dec.accept = 1;
	assert_int_equal(market_decide(m->pool, &d, &dec), FM_OK);
	assert_string_equal(str(d, "state"), "accepted");
	json_decref(d);
	assert_int_equal(market_decide(m->pool, &d, &dec), FM_ECONFLICT);

	assert_int_equal(market_payout_list(m->pool, &list, worker, NULL),
			 FM_OK);
	json_t *ps = json_object_get(list, "payouts");
	assert_int_equal(json_array_size(ps), 1);
	assert_string_equal(str(json_array_get(ps, 0), "amount_wei"),
			    "1000000000000000");
	assert_string_equal(str(json_array_get(ps, 0), "state"), "queued");
	json_decref(list);

	assert_int_equal(market_assignment_get(m->pool, &d, str(a, "id")),
			 FM_OK);
	assert_string_equal(str(d, "state"), "accepted");
	json_decref(d);

	/* the assets are version 0; publishing makes version 1 */
	json_t *ids = json_pack("[s]", str(r, "id"));
	int perr = market_model_publish(m->pool, &d, id, creator,
					"dddddddddddddddddddddddddddddd"
					"dddddddddddddddddddddddddddddd"
					"dddd",
					"fedavg", NULL, ids);
	if (perr)
		fail_msg("publish: %s", fm_error_msg());
	assert_int_equal(json_integer_value(json_object_get(d, "version")), 1);
	json_decref(d);
	/* a result goes into one version only */
	assert_int_equal(market_model_publish(m->pool, &d, id, creator,
					      "eeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
					      "eeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
					      "eeee",
					      "fedavg", NULL, ids),
			 FM_ECONFLICT);
	json_decref(ids);
	assert_int_equal(market_model_list(m->pool, &list, id), FM_OK);
	assert_int_equal(json_array_size(json_object_get(list, "models")), 2);
	json_decref(list);
	json_decref(a);
	json_decref(r);
}

struct racer {
	struct mdb *m;
	const char *task;
	int ok, conflict, other;
	pthread_barrier_t *go;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	char who[43];
	json_t *a = NULL;
	int err;

	mfx_address(who);
	pthread_barrier_wait(r->go);
	err = market_assign(r->m->pool, &a, r->task, who);
	if (err == FM_OK)
		r->ok = 1;
	else if (err == FM_ECONFLICT)
		r->conflict = 1;
	else
		r->other = 1;
	json_decref(a);
	return NULL;
}

static void test_market__fifty_racers_get_exactly_ten_slots(void **state)
{
	struct mdb *m = *state;
	enum { RACERS = 50, SLOTS = 10, ROUNDS = 10 };

	for (int round = 0; round < ROUNDS; round++) {
		struct racer r[RACERS];
		pthread_t t[RACERS];
		pthread_barrier_t go;
		char creator[43], id[67];
		int ok = 0, conflict = 0;

		mfx_address(creator);
		open_task(m, id, creator, SLOTS, "manual");
		pthread_barrier_init(&go, NULL, RACERS);
		for (int i = 0; i < RACERS; i++) {
			r[i] = (struct racer){ m, id, 0, 0, 0, &go };
			pthread_create(&t[i], NULL, race_main, &r[i]);
		}
		for (int i = 0; i < RACERS; i++) {
			pthread_join(t[i], NULL);
			ok += r[i].ok;
			conflict += r[i].conflict;
			assert_int_equal(r[i].other, 0);
		}
		pthread_barrier_destroy(&go);
		assert_int_equal(ok, SLOTS);
		assert_int_equal(conflict, RACERS - SLOTS);
		assert_int_equal(count(m,
				       "SELECT count(*) FROM assignments WHERE "
				       "task_id = $1",
				       id),
				 SLOTS);
		assert_int_equal(count(m,
				       "SELECT slots_used FROM tasks WHERE "
				       "id = $1",
				       id),
				 SLOTS);
	}
}

struct decider {
	struct mdb *m;
	struct market_decision_in in;
	int err;
	pthread_barrier_t *go;
};

static void *decide_main(void *arg)
{
	struct decider *d = arg;
	json_t *out = NULL;

	pthread_barrier_wait(d->go);
	d->err = market_decide(d->m->pool, &out, &d->in);
	json_decref(out);
	return NULL;
}

static void test_market__concurrent_accepts_give_one_payout(void **state)
{
	struct mdb *m = *state;

	for (int round = 0; round < 10; round++) {
		char creator[43], worker[43], id[67];
		json_t *a = NULL, *r = NULL;
		struct decider d[4];
		pthread_t t[4];
		pthread_barrier_t go;
		int ok = 0, accepted = 0;

		mfx_address(creator);
		mfx_address(worker);
		open_task(m, id, creator, 1, "manual");
		assert_int_equal(market_assign(m->pool, &a, id, worker), FM_OK);
		submit(m, &r, str(a, "id"), worker);
		pthread_barrier_init(&go, NULL, 4);
		for (int i = 0; i < 4; i++) {
			d[i] = (struct decider){ m, { 0 }, 0, &go };
			d[i].in.result_id = str(r, "id");
			d[i].in.validator = creator;
			/* even rounds: four accepts race, one payout; odd
			 * rounds: half accept, half reject, one decision */
			d[i].in.accept = round % 2 == 0 || i % 2 == 0;
			d[i].in.reason = "duplicate";
			pthread_create(&t[i], NULL, decide_main, &d[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			if (d[i].err == FM_OK) {
				ok++;
				accepted = d[i].in.accept;
			} else
				assert_int_equal(d[i].err, FM_ECONFLICT);
		}
		pthread_barrier_destroy(&go);
		assert_int_equal(ok, 1);
		assert_int_equal(count(m,
				       "SELECT count(*) FROM decisions WHERE "
				       "result_id = $1::uuid",
				       str(r, "id")),
				 1);
		/* the one decision that landed decides the payout: exactly one
		 * for an accept, none for a reject */
		assert_int_equal(count(m,
				       "SELECT count(*) FROM payouts WHERE "
				       "result_id = $1::uuid",
				       str(r, "id")),
				 accepted);
		assert_int_equal(count(m,
				       accepted ? "SELECT count(*) FROM decisions"
						  " WHERE result_id = $1::uuid"
						  " AND decision = 'accept'"
						: "SELECT count(*) FROM decisions"
						  " WHERE result_id = $1::uuid"
						  " AND decision = 'reject'",
				       str(r, "id")),
				 1);
		json_decref(a);
		json_decref(r);
	}
}

static void test_market__expiry_and_abandon_free_slots(void **state)
{
	struct mdb *m = *state;
	char creator[43], w1[43], w2[43], w3[43], id[67];
	json_t *a1 = NULL, *a2 = NULL, *x = NULL;
	struct db_conn *c = NULL;
	int n;

	mfx_address(creator);
	mfx_address(w1);
	mfx_address(w2);
	mfx_address(w3);
	open_task(m, id, creator, 1, "manual");
	assert_int_equal(market_assign(m->pool, &a1, id, w1), FM_OK);
	assert_int_equal(market_assign(m->pool, &x, id, w2), FM_ECONFLICT);
	assert_non_null(strstr(fm_error_msg(), "no slot left"));

	/* abandoning frees the slot */
	assert_int_equal(market_abandon(m->pool, &x, str(a1, "id"), w2),
			 FM_EFORBIDDEN);
	assert_int_equal(market_abandon(m->pool, &x, str(a1, "id"), w1),
			 FM_OK);
	assert_string_equal(str(x, "state"), "abandoned");
	json_decref(x);
	assert_int_equal(market_assign(m->pool, &a2, id, w2), FM_OK);

	/* so does passing the deadline, once swept */
	assert_int_equal(db_acquire(m->pool, &c, 1000), FM_OK);
	assert_int_equal(db_execp(c, NULL,
				  "UPDATE assignments SET created_at = now() -"
				  " interval '2 hours', deadline_at = now() -"
				  " interval '1 second' WHERE id = $1::uuid",
				  str(a2, "id")),
			 FM_OK);
	db_release(m->pool, c);
	assert_int_equal(market_heartbeat(m->pool, &x, str(a2, "id"), w2),
			 FM_ECONFLICT);
	struct market_result_in late = {
		.assignment_id = str(a2, "id"),
		.contributor = w2,
		.bundle_ref = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
			      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	};
	assert_int_equal(market_result_submit(m->pool, &x, &late),
			 FM_ECONFLICT);
	assert_non_null(strstr(fm_error_msg(), "deadline"));
	assert_int_equal(market_expire_assignments(m->pool, &n), FM_OK);
	assert_true(n >= 1);
	assert_int_equal(market_assign(m->pool, &x, id, w3), FM_OK);
	json_decref(x);
	assert_int_equal(count(m, "SELECT slots_used FROM tasks WHERE id = $1",
			       id),
			 1);
	json_decref(a1);
	json_decref(a2);
}

static void test_market__auto_strategy_accepts_after_delay(void **state)
{
	struct mdb *m = *state;
	char creator[43], worker[43], id[67];
	json_t *a = NULL, *r = NULL, *x = NULL;
	int n;

	mfx_address(creator);
	mfx_address(worker);
	open_task(m, id, creator, 3, "auto");
	assert_int_equal(market_assign(m->pool, &a, id, worker), FM_OK);
	submit(m, &r, str(a, "id"), worker);
	assert_int_equal(market_auto_accept(m->pool, &n), FM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(market_result_get(m->pool, &x, str(r, "id")), FM_OK);
	assert_string_equal(str(x, "state"), "accepted");
	assert_true(json_is_true(json_object_get(
		json_object_get(x, "decision"), "automatic")));
	json_decref(x);
	assert_int_equal(market_auto_accept(m->pool, &n), FM_OK);
	assert_int_equal(n, 0);
	json_decref(a);
	json_decref(r);
}

static void test_market__list_filters_and_cursor_pages(void **state)
{
	struct mdb *m = *state;
	char creator[43], id[67];
	struct market_task_filter f = { 0 };
	json_t *page = NULL;
	int seen = 0;
	char cursor[200] = "";

	mfx_address(creator);
	for (int i = 0; i < 7; i++)
		open_task(m, id, creator, 2, "manual");
	f.creator = creator;
	f.limit = 3;
	for (int pages = 0; pages < 5; pages++) {
		f.cursor = cursor[0] ? cursor : NULL;
		assert_int_equal(market_task_list(m->pool, &page, &f), FM_OK);
		seen += (int)json_array_size(json_object_get(page, "tasks"));
		json_t *next = json_object_get(page, "next_cursor");
		if (json_is_null(next)) {
			json_decref(page);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
		json_decref(page);
	}
	assert_int_equal(seen, 7);
	f.cursor = "garbage";
	assert_int_equal(market_task_list(m->pool, &page, &f), FM_EINVAL);
	f.cursor = NULL;
	f.min_reward = "1000000000000001";
	assert_int_equal(market_task_list(m->pool, &page, &f), FM_OK);
	assert_int_equal(json_array_size(json_object_get(page, "tasks")), 0);
	json_decref(page);
	assert_int_equal(market_task_get(m->pool, &page, "0x12"), FM_EINVAL);
	assert_int_equal(market_task_get(m->pool, &page,
					 "0x0000000000000000000000000000000000"
					 "000000000000000000000000000000"),
			 FM_ENOTFOUND);
}

static void test_market__cancel_by_creator_only(void **state)
{
	struct mdb *m = *state;
	char creator[43], worker[43], id[67];
	json_t *a = NULL, *x = NULL;

	mfx_address(creator);
	mfx_address(worker);
	open_task(m, id, creator, 2, "manual");
	assert_int_equal(market_assign(m->pool, &a, id, worker), FM_OK);
	assert_int_equal(market_task_cancel(m->pool, &x, id, worker),
			 FM_EFORBIDDEN);
	assert_int_equal(market_task_cancel(m->pool, &x, id, creator), FM_OK);
	assert_string_equal(str(x, "state"), "cancelled");
	assert_string_equal(str(x, "refund_state"), "queued");
	assert_int_equal(json_integer_value(json_object_get(x, "slots_used")),
			 0);
	json_decref(x);
	assert_int_equal(market_task_cancel(m->pool, &x, id, creator),
			 FM_ECONFLICT);
	assert_int_equal(market_assign(m->pool, &x, id, worker), FM_ECONFLICT);
	json_decref(a);
}

static void test_market__nonce_replay_is_refused(void **state)
{
	struct mdb *m = *state;
	char who[43];

	mfx_address(who);
	assert_int_equal(market_nonce_use(m->pool, who,
					  "0123456789abcdef0123", 300),
			 FM_OK);
	assert_int_equal(market_nonce_use(m->pool, who,
					  "0123456789abcdef0123", 300),
			 FM_EAUTH);
	assert_int_equal(market_nonce_use(m->pool, who, "short", 300),
			 FM_EAUTH);
}

/* jansson's allocations minus its frees, while a test counts them. */
static long json_allocs;

static void *counting_malloc(size_t n)
{
	void *p = malloc(n);

	if (p)
		json_allocs++;
	return p;
}

static void counting_free(void *p)
{
	if (p)
		json_allocs--;
	free(p);
}

static void sql(struct mdb *m, const char *text)
{
	struct db_conn *c = NULL;

	assert_int_equal(db_acquire(m->pool, &c, 1000), FM_OK);
	if (db_exec(c, NULL, text, 0, NULL))
		fail_msg("%s: %s", text, fm_error_msg());
	db_release(m->pool, c);
}

/* market_task_create of a new task titled title, jansson's allocations
 * counted: *left is what the call left behind once its answer (if any)
 * was freed, *answered whether it wrote *out. */
static int create_counted(struct mdb *m, const char *title, long *left,
			  int *answered)
{
	json_t *spec = mfx_spec(1), *out = NULL;
	struct task_spec s;
	char creator[43];
	int err;

	mfx_address(creator);
	json_object_set_new(spec, "title", json_string(title));
	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	json_allocs = 0;
	json_set_alloc_funcs(counting_malloc, counting_free);
	err = market_task_create(m->pool, &out, &s, creator, &mfx_chain);
	*answered = out != NULL;
	json_decref(out);
	json_set_alloc_funcs(malloc, free);
	*left = json_allocs;
	task_spec_cleanup(&s);
	json_decref(spec);
	return err;
}

/* A transaction can fail after its work succeeded: at COMMIT. A
 * deferred constraint trigger fails the COMMIT of chosen tasks, once
 * with a serialization failure (retried) or for good with a check
 * violation. The task reaches the caller only once committed: the
 * retried attempt's answer is dropped, not leaked, and a failed COMMIT
 * leaves *out untouched. */
static void test_market__results_are_handed_out_only_once_committed(
	void **state)
{
	struct mdb *m = *state;
	long clean = 0, left = 0;
	int answered = 0;

	sql(m, "CREATE SEQUENCE injected_conflicts");
	sql(m, "CREATE FUNCTION fail_at_commit() RETURNS trigger"
	       " LANGUAGE plpgsql AS $$ BEGIN"
	       "  IF NEW.title = 'refused at commit' THEN RAISE EXCEPTION"
	       "   'refused at commit' USING ERRCODE = 'check_violation';"
	       "  END IF;"
	       "  IF NEW.title = 'conflict at commit' AND"
	       "   nextval('injected_conflicts') = 1 THEN RAISE EXCEPTION"
	       "   'injected conflict' USING ERRCODE = 'serialization_failure';"
	       "  END IF;"
	       "  RETURN NULL; END $$");
	sql(m, "CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON tasks"
	       " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
	       " EXECUTE FUNCTION fail_at_commit()");

	assert_int_equal(create_counted(m, "committed at once", &clean,
					&answered),
			 FM_OK);
	assert_true(answered);

	/* retried after its COMMIT failed: committed once, nothing leaked */
	assert_int_equal(create_counted(m, "conflict at commit", &left,
					&answered),
			 FM_OK);
	assert_true(answered);
	assert_int_equal(left, clean);
	assert_int_equal(count(m, "SELECT count(*) FROM tasks WHERE title = $1",
			       "conflict at commit"),
			 1);

	/* COMMIT refused: the error, no answer, nothing leaked */
	assert_int_equal(create_counted(m, "refused at commit", &left,
					&answered),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "refused at commit"));
	assert_false(answered);
	assert_int_equal(left, clean);
	assert_int_equal(count(m, "SELECT count(*) FROM tasks WHERE title = $1",
			       "refused at commit"),
			 0);

	sql(m, "DROP TRIGGER fail_at_commit ON tasks");
	sql(m, "DROP FUNCTION fail_at_commit()");
	sql(m, "DROP SEQUENCE injected_conflicts");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_market__lifecycle_accept_writes_one_payout),
		cmocka_unit_test(
			test_market__fifty_racers_get_exactly_ten_slots),
		cmocka_unit_test(
			test_market__concurrent_accepts_give_one_payout),
		cmocka_unit_test(test_market__expiry_and_abandon_free_slots),
		cmocka_unit_test(
			test_market__auto_strategy_accepts_after_delay),
		cmocka_unit_test(test_market__list_filters_and_cursor_pages),
		cmocka_unit_test(test_market__cancel_by_creator_only),
		cmocka_unit_test(test_market__nonce_replay_is_refused),
		cmocka_unit_test(
			test_market__results_are_handed_out_only_once_committed),
	};

	log_init("market_test", LOG_WARN, 0);
	return cmocka_run_group_tests_name("market", tests, mfx_group_setup,
					   mfx_group_teardown);
}
