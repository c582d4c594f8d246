/* Rounds on a real PostgreSQL: a task trains over rounds, version by
 * version; one live assignment per contributor and round; results from
 * the wrong version are refused (sync) or too stale (async); racing
 * publishers leave one version; rounds past their deadline close,
 * extend once or fail the task; epsilon per round is the engine
 * accountant's; the task ends at its last round, its target accuracy or
 * its privacy budget, with the unspent funding queued for refund. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sha256.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "engine/dp.h"
#include "market/market.h"
#include "market/score_report.h"
#include "marketfx.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUNDLE "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define MODEL "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

/* ------------------------------------------------------------- helpers */

static const char *str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

static long long num(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* A manual task of slots results per round over rounds rounds; mode is
 * "sync" or "async". Returns a new reference; tests modify it. */
static json_t *rounds_spec(int slots, int rounds, const char *mode,
			   int min_results)
{
	json_t *spec = mfx_spec(slots), *a;

	json_object_del(spec, "max_assignments");
	json_object_set_new(spec, "results_per_round", json_integer(slots));
	json_object_set_new(spec, "rounds", json_integer(rounds));
	json_object_set_new(spec, "round_duration_s", json_integer(600));
	a = json_object_get(spec, "aggregation");
	json_object_set_new(a, "min_results_per_round",
			    json_integer(min_results));
	json_object_set_new(a, "mode", json_string(mode));
	return spec;
}

/* Opens spec (consumed) for creator; its id into id. */
static void open_spec(struct mdb *m, char id[67], const char *creator,
		      json_t *spec)
{
	if (mfx_task_open(m->pool, id, creator, spec))
		fail_msg("open task: %s", fm_error_msg());
	json_decref(spec);
}

static void sql(struct mdb *m, const char *text, const char *arg)
{
	struct db_conn *c = NULL;

	assert_int_equal(db_acquire(m->pool, &c, 1000), FM_OK);
	if (db_execp(c, NULL, text, arg))
		fail_msg("%s: %s", text, fm_error_msg());
	db_release(m->pool, c);
}

/* Column 0 of row 0 of sql with $1 = arg, as text (static buffer). */
static const char *scalar(struct mdb *m, const char *text, const char *arg)
{
	static char out[512];
	struct db_conn *c = NULL;
	PGresult *r = NULL;

	assert_int_equal(db_acquire(m->pool, &c, 1000), FM_OK);
	if (db_execp(c, &r, text, arg))
		fail_msg("%s: %s", text, fm_error_msg());
	snprintf(out, sizeof(out), "%s",
		 PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	db_release(m->pool, c);
	return out;
}

static long long count(struct mdb *m, const char *text, const char *arg)
{
	return strtoll(scalar(m, text, arg), NULL, 10);
}

static json_t *task(struct mdb *m, const char *id)
{
	json_t *t = NULL;

	assert_int_equal(market_task_get(m->pool, &t, id), FM_OK);
	return t;
}

/* The task's current round object, as the API shows it (a new
 * reference). */
static json_t *round_now(struct mdb *m, const char *id)
{
	json_t *t = task(m, id), *r = json_incref(json_object_get(t, "round"));

	json_decref(t);
	return r;
}

/* who takes a slot: the assignment id into aid (37 bytes). */
static void take(struct mdb *m, char aid[37], const char *id, const char *who)
{
	json_t *a = NULL;

	if (market_assign(m->pool, &a, id, who))
		fail_msg("assign: %s", fm_error_msg());
	snprintf(aid, 37, "%s", str(a, "id"));
	json_decref(a);
}

/* Submits for assignment aid; base < 0: no base_version given. The
 * result id into rid (37 bytes) on success. */
static int submit(struct mdb *m, char rid[37], const char *aid,
		  const char *who, long long base)
{
	char ref[SHA256_HEX_LEN + 1];
	struct market_result_in in = {
		.assignment_id = aid,
		.contributor = who,
		.bundle_ref = ref,
		.num_examples = 100,
		.has_base_version = base >= 0,
		.base_version = base,
	};
	json_t *r = NULL;
	int err;

	/* a bundle of its own: a task refuses a copy of another result */
	fm_sha256_hex(ref, aid, strlen(aid));
	err = market_result_submit(m->pool, &r, &in);

	if (!err)
		snprintf(rid, 37, "%s", str(r, "id"));
	json_decref(r);
	return err;
}

static int decide(struct mdb *m, const char *rid, const char *validator,
		  int accept)
{
	struct market_decision_in d = { 0 };
	json_t *out = NULL;
	int err;

	d.result_id = rid;
	d.validator = validator;
	d.accept = accept;
	d.reason = accept ? NULL : "worse than the current version";
	err = market_decide(m->pool, &out, &d);
	json_decref(out);
	return err;
}

/* who takes a slot, submits from the current version and is accepted:
 * the result id into rid. */
static void accepted(struct mdb *m, char rid[37], const char *id,
		     const char *who, const char *creator)
{
	char aid[37];

	take(m, aid, id, who);
	if (submit(m, rid, aid, who, -1))
		fail_msg("submit: %s", fm_error_msg());
	if (decide(m, rid, creator, 1))
		fail_msg("accept: %s", fm_error_msg());
}

/* Publishes the next version from the n results rids, with metrics
 * (borrowed, may be NULL). */
static int publish(struct mdb *m, const char *id, const char *caller,
		   char (*rids)[37], int n, const json_t *metrics)
{
	json_t *ids = json_array(), *out = NULL;
	int err;

	for (int i = 0; i < n; i++)
		json_array_append_new(ids, json_string(rids[i]));
	err = market_model_publish(m->pool, &out, id, caller, MODEL, "fedavg",
				   metrics, ids);
	json_decref(ids);
	json_decref(out);
	return err;
}

static void expect_msg(const char *needle)
{
	if (!strstr(fm_error_msg(), needle))
		fail_msg("message \"%s\" lacks \"%s\"", fm_error_msg(), needle);
}

/* The accountant's epsilon after steps rounds at noise, delta. */
static double acct_eps(double noise, double delta, long steps)
{
	struct ml_dp_acct a;
	double eps;

	ml_dp_acct_init(&a);
	assert_int_equal(ml_dp_acct_add(&a, 1.0, noise, steps), FM_OK);
	assert_int_equal(ml_dp_acct_epsilon(&a, delta, &eps, NULL), FM_OK);
	return eps;
}

static void assert_close(double got, double want)
{
	if (!(fabs(got - want) <= 1e-12 * fabs(want)))
		fail_msg("epsilon %.17g, the accountant says %.17g", got,
			 want);
}

/* --------------------------------------------------------------- tests */

static void test_rounds__task_stores_its_rounds_and_opens_round_1(
	void **state)
{
	struct mdb *m = *state;
	char creator[43], id[67];
	json_t *spec = rounds_spec(4, 5, "async", 2), *t = NULL, *r;
	struct task_spec s;

	mfx_address(creator);
	json_object_set_new(spec, "target_accuracy", json_real(0.85));
	json_object_set_new(json_object_get(spec, "aggregation"), "async",
			    json_pack("{s:i, s:i}", "buffer", 3,
				      "max_staleness", 2));
	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	assert_int_equal(market_task_create(m->pool, &t, &s, creator,
					    &mfx_chain),
			 FM_OK);
	/* a draft has no round yet */
	assert_string_equal(str(t, "state"), "draft");
	assert_true(json_is_null(json_object_get(t, "round")));
	assert_int_equal(num(t, "rounds"), 5);
	assert_int_equal(num(t, "results_per_round"), 4);
	assert_int_equal(num(t, "max_assignments"), 4);
	assert_int_equal(num(t, "round_duration_s"), 600);
	assert_int_equal(num(t, "min_results_per_round"), 2);
	assert_int_equal(num(t, "current_round"), 1);
	assert_string_equal(str(t, "aggregation_mode"), "async");
	assert_true(json_real_value(json_object_get(t, "target_accuracy")) ==
		    0.85);
	assert_true(json_is_null(json_object_get(t, "end_reason")));
	assert_true(json_is_null(json_object_get(t, "epsilon")));
	json_decref(t);
	assert_string_equal(scalar(m,
				   "SELECT rounds || ' ' || round_duration_s ||"
				   " ' ' || min_results || ' ' || agg_mode ||"
				   " ' ' || async_buffer || ' ' ||"
				   " max_staleness || ' ' || target_accuracy"
				   " FROM tasks WHERE id = $1",
				   s.task_id),
			    "5 600 2 async 3 2 0.85");
	/* funded for every round: 5 x 4 rewards */
	assert_int_equal(market_task_open(m->pool, &t, s.task_id,
					  "0x1111111111111111111111111111111"
					  "111111111111111111111111111111111",
					  "4000000000000000"),
			 FM_EINVAL);
	expect_msg("tasks_funded_rounds");
	assert_int_equal(market_task_open(m->pool, &t, s.task_id,
					  "0x1111111111111111111111111111111"
					  "111111111111111111111111111111111",
					  "20000000000000000"),
			 FM_OK);
	r = json_object_get(t, "round");
	assert_int_equal(num(r, "round"), 1);
	assert_string_equal(str(r, "state"), "open");
	assert_false(json_is_true(json_object_get(r, "extended")));
	assert_false(json_is_true(json_object_get(r, "ready")));
	assert_int_equal(num(r, "active") + num(r, "accepted") +
				 num(r, "pending"),
			 0);
	memcpy(id, s.task_id, 67);
	/* round 1's deadline: round_duration_s after it opened */
	assert_int_equal(count(m,
			       "SELECT extract(epoch FROM deadline_at -"
			       " opened_at)::int FROM task_rounds WHERE"
			       " task_id = $1 AND round = 1",
			       id),
			 600);
	json_decref(t);
	task_spec_cleanup(&s);
	json_decref(spec);

	/* opened by hand (as an operator would), round 1 opens too */
	spec = rounds_spec(2, 2, "sync", 1);
	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	assert_int_equal(market_task_create(m->pool, &t, &s, creator,
					    &mfx_chain),
			 FM_OK);
	json_decref(t);
	sql(m,
	    "UPDATE tasks SET state = 'open', funded_wei = reward_wei *"
	    " max_assignments * rounds WHERE id = $1",
	    s.task_id);
	r = round_now(m, s.task_id);
	assert_string_equal(str(r, "state"), "open");
	json_decref(r);
	task_spec_cleanup(&s);
	json_decref(spec);
}

/* Three sync rounds of two results: version by version, with what a
 * contributor may and may not do in each. */
static void test_rounds__sync_task_goes_round_by_round(void **state)
{
	struct mdb *m = *state;
	char creator[43], w1[43], w2[43], w3[43], id[67];
	char aid[37], aid2[37], rids[2][37], late[37];
	json_t *t, *r, *x = NULL, *list = NULL;

	mfx_address(creator);
	mfx_address(w1);
	mfx_address(w2);
	mfx_address(w3);
	open_spec(m, id, creator, rounds_spec(2, 3, "sync", 1));

	/* round 1: w1 and w2 */
	take(m, aid, id, w1);
	assert_int_equal(market_assign(m->pool, &x, id, w1), FM_ECONFLICT);
	expect_msg("you already hold an assignment of round 1 of this task");
	take(m, aid2, id, w2);
	assert_int_equal(market_assign(m->pool, &x, id, w3), FM_ECONFLICT);
	expect_msg("no slot left: all 2 slots of round 1 of this task are "
		   "taken");
	/* a result from a version that does not exist yet (sync) */
	assert_int_equal(submit(m, rids[0], aid, w1, 1), FM_ECONFLICT);
	expect_msg("result trained from version 1; the current version is 0 "
		   "(pull it and train again)");
	assert_int_equal(submit(m, rids[0], aid, w1, 0), FM_OK);
	assert_int_equal(market_result_get(m->pool, &x, rids[0]), FM_OK);
	assert_int_equal(num(x, "round"), 1);
	assert_int_equal(num(x, "base_version"), 0);
	json_decref(x);
	assert_int_equal(market_assignment_get(m->pool, &x, aid), FM_OK);
	assert_int_equal(num(x, "round"), 1);
	json_decref(x);
	assert_int_equal(decide(m, rids[0], creator, 1), FM_OK);
	r = round_now(m, id);
	assert_int_equal(num(r, "accepted"), 1);
	assert_int_equal(num(r, "active"), 1);
	assert_int_equal(num(r, "pending"), 1);
	/* one of two results decided: not ready yet */
	assert_false(json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	assert_int_equal(submit(m, rids[1], aid2, w2, -1), FM_OK);
	assert_int_equal(decide(m, rids[1], creator, 1), FM_OK);
	r = round_now(m, id);
	assert_true(json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	/* publishing needs the round's accepted results */
	assert_int_equal(publish(m, id, w3, rids, 2, NULL), FM_EFORBIDDEN);
	assert_int_equal(publish(m, id, creator, rids, 2, NULL), FM_OK);

	/* round 2: the same contributors again */
	t = task(m, id);
	assert_int_equal(num(t, "current_version"), 1);
	assert_int_equal(num(t, "current_round"), 2);
	assert_int_equal(num(t, "slots_used"), 0);
	assert_string_equal(str(t, "state"), "open");
	r = json_object_get(t, "round");
	assert_int_equal(num(r, "round"), 2);
	assert_string_equal(str(r, "state"), "open");
	json_decref(t);
	assert_string_equal(scalar(m,
				   "SELECT state || ' ' || version || ' ' ||"
				   " (closed_at IS NOT NULL) FROM task_rounds"
				   " WHERE task_id = $1 AND round = 1",
				   id),
			    "published 1 true");
	take(m, aid, id, w1);
	assert_int_equal(market_assign(m->pool, &x, id, w1), FM_ECONFLICT);
	expect_msg("you already hold an assignment of round 2 of this task");
	/* trained from version 0 in round 2: stale */
	assert_int_equal(submit(m, rids[0], aid, w1, 0), FM_ECONFLICT);
	expect_msg("result trained from version 0; the current version is 1 "
		   "(pull it and train again)");
	assert_int_equal(submit(m, rids[0], aid, w1, -1), FM_OK);
	assert_int_equal(market_result_get(m->pool, &x, rids[0]), FM_OK);
	assert_int_equal(num(x, "round"), 2);
	assert_int_equal(num(x, "base_version"), 1);
	json_decref(x);
	/* round 1's results cannot make version 2 */
	take(m, late, id, w2); /* never submitted */
	assert_int_equal(decide(m, rids[0], creator, 1), FM_OK);
	{
		char old[1][37];

		snprintf(old[0], 37, "%s",
			 scalar(m,
				"SELECT id FROM results WHERE task_id = $1 AND"
				" round = 1 LIMIT 1",
				id));
		assert_int_equal(publish(m, id, creator, old, 1, NULL),
				 FM_ECONFLICT);
		expect_msg("version 1 was already published");
	}
	/* version 2 from one result; w2's active slot closes with the
	 * round */
	assert_int_equal(publish(m, id, creator, rids, 1, NULL), FM_OK);
	assert_int_equal(market_assignment_get(m->pool, &x, late), FM_OK);
	assert_string_equal(str(x, "state"), "expired");
	json_decref(x);
	/* w2's late submission says the round is over */
	assert_int_equal(submit(m, rids[1], late, w2, -1), FM_ECONFLICT);
	expect_msg("round 2 is over and the current version is 2");

	/* round 3, the last: both slots accepted end the task at once */
	accepted(m, rids[0], id, w1, creator);
	accepted(m, rids[1], id, w2, creator);
	t = task(m, id);
	assert_string_equal(str(t, "state"), "closed");
	assert_string_equal(str(t, "end_reason"), "rounds_done");
	/* 5 of 6 payouts: one reward goes back */
	assert_string_equal(str(t, "refund_state"), "queued");
	r = json_object_get(t, "round");
	assert_string_equal(str(r, "state"), "closing");
	assert_true(json_is_true(json_object_get(r, "ready")));
	json_decref(t);
	assert_int_equal(market_assign(m->pool, &x, id, w3), FM_ECONFLICT);
	expect_msg("task is closed (rounds_done), not open");
	/* ... and waits for its last version */
	assert_int_equal(publish(m, id, creator, rids, 2, NULL), FM_OK);
	assert_int_equal(publish(m, id, creator, rids, 2, NULL), FM_ECONFLICT);
	expect_msg("version 3 was already published");
	t = task(m, id);
	assert_int_equal(num(t, "current_version"), 3);
	assert_int_equal(num(t, "current_round"), 3);
	assert_string_equal(str(json_object_get(t, "round"), "state"),
			    "published");
	json_decref(t);
	assert_int_equal(count(m,
			       "SELECT count(*) FROM payouts WHERE task_id ="
			       " $1",
			       id),
			 5);

	assert_int_equal(market_round_list(m->pool, &list, id), FM_OK);
	assert_int_equal(json_array_size(json_object_get(list, "rounds")), 3);
	r = json_array_get(json_object_get(list, "rounds"), 1);
	assert_int_equal(num(r, "round"), 2);
	assert_int_equal(num(r, "version"), 2);
	assert_int_equal(num(r, "accepted"), 1);
	assert_int_equal(num(r, "rejected"), 0);
	assert_string_equal(str(r, "owed_wei"), "1000000000000000");
	assert_string_equal(str(r, "paid_wei"), "0");
	json_decref(list);
}

/* The accept that would pay more than rounds x results_per_round is
 * refused, whatever let the results in. */
static void test_rounds__accepts_stop_at_the_funded_payouts(void **state)
{
	struct mdb *m = *state;
	char creator[43], w[3][43], id[67], aid[3][37], rid[3][37];

	mfx_address(creator);
	open_spec(m, id, creator, rounds_spec(2, 1, "sync", 1));
	for (int i = 0; i < 2; i++) {
		mfx_address(w[i]);
		take(m, aid[i], id, w[i]);
		assert_int_equal(submit(m, rid[i], aid[i], w[i], -1), FM_OK);
	}
	/* w1's rejection frees a slot for w2 */
	assert_int_equal(decide(m, rid[1], creator, 0), FM_OK);
	mfx_address(w[2]);
	take(m, aid[2], id, w[2]);
	assert_int_equal(submit(m, rid[2], aid[2], w[2], -1), FM_OK);
	assert_int_equal(decide(m, rid[0], creator, 1), FM_OK);
	/* a bug (or a hand) accepts the rejected result behind the
	 * market's back */
	sql(m, "UPDATE results SET state = 'accepted' WHERE id = $1::uuid",
	    rid[1]);
	assert_int_equal(decide(m, rid[2], creator, 1), FM_ECONFLICT);
	expect_msg("all 2 payouts of this task (rounds x results_per_round) "
		   "are taken");
	assert_int_equal(count(m,
			       "SELECT count(*) FROM payouts WHERE task_id ="
			       " $1",
			       id),
			 1);
}

struct publisher {
	struct mdb *m;
	const char *id, *caller;
	char (*rids)[37];
	int n, err;
	char msg[256];
	pthread_barrier_t *go;
};

static void *publish_main(void *arg)
{
	struct publisher *p = arg;

	pthread_barrier_wait(p->go);
	p->err = publish(p->m, p->id, p->caller, p->rids, p->n, NULL);
	snprintf(p->msg, sizeof(p->msg), "%s", fm_error_msg());
	return NULL;
}

/* Two validators (here, creator and validator, many times over) race to
 * publish the same round: one version, the other publisher told. */
static void test_rounds__racing_publishers_leave_one_version(void **state)
{
	struct mdb *m = *state;
	enum { RACERS = 6, TASKS = 8 };

	for (int k = 0; k < TASKS; k++) {
		char creator[43], w1[43], w2[43], id[67], rids[2][37];
		struct publisher p[RACERS];
		pthread_t th[RACERS];
		pthread_barrier_t go;
		int ok = 0;

		mfx_address(creator);
		mfx_address(w1);
		mfx_address(w2);
		/* sync and async alike */
		open_spec(m, id, creator,
			  rounds_spec(2, 3, k % 2 ? "async" : "sync", 1));
		accepted(m, rids[0], id, w1, creator);
		accepted(m, rids[1], id, w2, creator);
		pthread_barrier_init(&go, NULL, RACERS);
		for (int i = 0; i < RACERS; i++) {
			p[i] = (struct publisher){ m, id, creator, rids,
						   i % 2 ? 2 : 1, 0, "", &go };
			pthread_create(&th[i], NULL, publish_main, &p[i]);
		}
		for (int i = 0; i < RACERS; i++) {
			pthread_join(th[i], NULL);
			if (p[i].err == FM_OK) {
				ok++;
				continue;
			}
			assert_int_equal(p[i].err, FM_ECONFLICT);
			if (!strstr(p[i].msg, "version 1 was already "
					      "published"))
				fail_msg("loser told \"%s\"", p[i].msg);
		}
		pthread_barrier_destroy(&go);
		assert_int_equal(ok, 1);
		assert_int_equal(count(m,
				       "SELECT count(*) FROM model_versions"
				       " WHERE task_id = $1",
				       id),
				 2);
		assert_int_equal(count(m,
				       "SELECT current_round FROM tasks WHERE"
				       " id = $1",
				       id),
				 2);
		assert_int_equal(count(m,
				       "SELECT count(*) FROM task_rounds WHERE"
				       " task_id = $1",
				       id),
				 2);
	}
}

/* async: no barrier; a result may trail the current version by
 * max_staleness versions, and slots of a new round count the
 * assignments still at work. */
static void test_rounds__async_takes_results_up_to_max_staleness(
	void **state)
{
	struct mdb *m = *state;
	char creator[43], slow[43], w[4][43], id[67], slow_aid[37];
	char rid[1][37], r2[37];
	json_t *spec = rounds_spec(3, 5, "async", 1), *r, *x = NULL;

	mfx_address(creator);
	mfx_address(slow);
	json_object_set_new(json_object_get(spec, "aggregation"), "async",
			    json_pack("{s:i, s:i}", "buffer", 2,
				      "max_staleness", 1));
	open_spec(m, id, creator, spec);
	take(m, slow_aid, id, slow); /* trains from version 0, slowly */
	for (int v = 1; v <= 2; v++) {
		mfx_address(w[v]);
		accepted(m, rid[0], id, w[v], creator);
		r = round_now(m, id);
		/* one pending result of a buffer of two */
		assert_int_equal(num(r, "pending"), 1);
		assert_false(json_is_true(json_object_get(r, "ready")));
		json_decref(r);
		assert_int_equal(publish(m, id, creator, rid, 1, NULL), FM_OK);
		/* the slow assignment still holds a slot of the new round */
		assert_int_equal(count(m,
				       "SELECT slots_used FROM tasks WHERE"
				       " id = $1",
				       id),
				 1);
	}
	assert_int_equal(submit(m, r2, slow_aid, slow, 3), FM_ECONFLICT);
	expect_msg("version 3 does not exist yet");
	assert_int_equal(submit(m, r2, slow_aid, slow, 0), FM_ECONFLICT);
	expect_msg("result trained from version 0 is 2 versions old; this "
		   "task accepts at most 1 (current version 2)");
	/* refused before anything is downloaded, too */
	{
		struct market_result_in in = { .assignment_id = slow_aid,
					       .contributor = slow,
					       .has_base_version = 1,
					       .base_version = 0 };

		assert_int_equal(market_submit_claim(m->pool, &x, &in, 60,
						     NULL),
				 FM_ECONFLICT);
		expect_msg("2 versions old");
		in.base_version = 1;
		assert_int_equal(market_submit_claim(m->pool, &x, &in, 60,
						     NULL),
				 FM_OK);
		json_decref(x);
		market_submit_release(m->pool, slow_aid);
	}
	assert_int_equal(submit(m, r2, slow_aid, slow, 1), FM_OK);
	assert_int_equal(market_result_get(m->pool, &x, r2), FM_OK);
	assert_int_equal(num(x, "round"), 3);
	assert_int_equal(num(x, "base_version"), 1);
	json_decref(x);
	assert_int_equal(decide(m, r2, creator, 1), FM_OK);
	/* async: the next version takes any accepted result in no version */
	mfx_address(w[3]);
	accepted(m, rid[0], id, w[3], creator);
	r = round_now(m, id);
	assert_int_equal(num(r, "pending"), 2);
	assert_true(json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	{
		char both[2][37];

		snprintf(both[0], 37, "%s", r2);
		snprintf(both[1], 37, "%s", rid[0]);
		assert_int_equal(publish(m, id, creator, both, 2, NULL),
				 FM_OK);
	}
	assert_int_equal(count(m, "SELECT current_version FROM tasks WHERE"
				  " id = $1",
			       id),
			 3);
}

/* A round short of results at its deadline waits once more, then fails
 * and ends its task; one with enough closes for its version. */
static void test_rounds__short_round_extends_once_then_fails(void **state)
{
	struct mdb *m = *state;
	char creator[43], w1[43], w2[43], w3[43], id[67], rid[1][37];
	char aid[37], undecided[37];
	json_t *t, *r, *x = NULL;
	int n;

	mfx_address(creator);
	mfx_address(w1);
	mfx_address(w2);
	mfx_address(w3);
	open_spec(m, id, creator, rounds_spec(3, 3, "sync", 2));
	accepted(m, rid[0], id, w1, creator);
	take(m, aid, id, w2);
	assert_int_equal(submit(m, undecided, aid, w2, -1), FM_OK);
	take(m, aid, id, w3); /* still at work */

	/* before its deadline, nothing happens */
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	assert_int_equal(n, 0);
	sql(m,
	    "UPDATE task_rounds SET deadline_at = now() - interval '1 second'"
	    " WHERE task_id = $1",
	    id);
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	assert_true(n >= 1);
	r = round_now(m, id);
	assert_string_equal(str(r, "state"), "open");
	assert_true(json_is_true(json_object_get(r, "extended")));
	json_decref(r);
	/* moved by round_duration_s from where it was */
	assert_int_equal(count(m,
			       "SELECT round(extract(epoch FROM deadline_at -"
			       " now())) FROM task_rounds WHERE task_id = $1",
			       id),
			 599);

	sql(m,
	    "UPDATE task_rounds SET deadline_at = now() - interval '1 second'"
	    " WHERE task_id = $1",
	    id);
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	t = task(m, id);
	assert_string_equal(str(t, "state"), "closed");
	assert_string_equal(str(t, "end_reason"), "short_round");
	/* 1 of 9 payouts: the rest goes back */
	assert_string_equal(str(t, "refund_state"), "queued");
	assert_string_equal(str(json_object_get(t, "round"), "state"),
			    "failed");
	json_decref(t);
	assert_int_equal(market_result_get(m->pool, &x, undecided), FM_OK);
	assert_string_equal(str(x, "state"), "rejected");
	assert_string_equal(str(json_object_get(x, "decision"), "reason"),
			    "the task ended (short_round)");
	json_decref(x);
	assert_int_equal(market_assignment_get(m->pool, &x, aid), FM_OK);
	assert_string_equal(str(x, "state"), "expired");
	json_decref(x);
	assert_int_equal(submit(m, undecided, aid, w3, -1), FM_ECONFLICT);
	expect_msg("assignment is expired, not active: the task ended "
		   "(short_round)");
	assert_int_equal(publish(m, id, creator, rid, 1, NULL), FM_ECONFLICT);
	expect_msg("task is closed (short_round)");
	/* swept again: nothing more */
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	assert_string_equal(scalar(m,
				   "SELECT state FROM tasks WHERE id = $1",
				   id),
			    "closed");
}

static void test_rounds__round_with_enough_closes_for_its_version(
	void **state)
{
	struct mdb *m = *state;
	char creator[43], w[3][43], id[67], rid[2][37], id2[67];
	json_t *r, *x = NULL;
	int n;

	mfx_address(creator);
	for (int i = 0; i < 3; i++)
		mfx_address(w[i]);
	open_spec(m, id, creator, rounds_spec(3, 2, "sync", 2));
	accepted(m, rid[0], id, w[0], creator);
	accepted(m, rid[1], id, w[1], creator);
	r = round_now(m, id);
	/* 2 of 3 accepted, one slot open: not ready before the deadline */
	assert_false(json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	sql(m,
	    "UPDATE task_rounds SET deadline_at = now() - interval '1 second'"
	    " WHERE task_id = $1",
	    id);
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	r = round_now(m, id);
	assert_string_equal(str(r, "state"), "closing");
	assert_true(json_is_true(json_object_get(r, "ready")));
	json_decref(r);
	assert_int_equal(market_assign(m->pool, &x, id, w[2]), FM_ECONFLICT);
	expect_msg("round 1 is closing: wait for version 1");
	/* published while closing: round 2 opens */
	assert_int_equal(publish(m, id, creator, rid, 2, NULL), FM_OK);
	r = round_now(m, id);
	assert_int_equal(num(r, "round"), 2);
	assert_string_equal(str(r, "state"), "open");
	json_decref(r);
	assert_int_equal(market_assign(m->pool, &x, id, w[2]), FM_OK);
	json_decref(x);

	/* a closing round never published fails its task */
	open_spec(m, id2, creator, rounds_spec(3, 2, "sync", 1));
	accepted(m, rid[0], id2, w[0], creator);
	sql(m,
	    "UPDATE task_rounds SET deadline_at = now() - interval '1 second'"
	    " WHERE task_id = $1",
	    id2);
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	assert_string_equal(scalar(m,
				   "SELECT state FROM task_rounds WHERE"
				   " task_id = $1",
				   id2),
			    "closing");
	sql(m,
	    "UPDATE task_rounds SET deadline_at = now() - interval '1 second'"
	    " WHERE task_id = $1",
	    id2);
	assert_int_equal(market_sweep_rounds(m->pool, &n), FM_OK);
	assert_string_equal(scalar(m,
				   "SELECT state || ' ' || end_reason FROM"
				   " tasks WHERE id = $1",
				   id2),
			    "closed short_round");
	assert_string_equal(scalar(m,
				   "SELECT state FROM task_rounds WHERE"
				   " task_id = $1",
				   id2),
			    "failed");
}

/* dp tasks: each round's epsilon is the RDP accountant's over the
 * rounds published, delta from the spec; the task ends before a round
 * would pass max_epsilon. */
static void test_rounds__epsilon_per_round_and_privacy_budget(void **state)
{
	struct mdb *m = *state;
	const double noise = 2.0, delta = 1e-6;
	char creator[43], w[43], id[67], rid[1][37];
	json_t *spec = rounds_spec(1, 6, "sync", 1), *t, *list = NULL, *rs;
	double budget;

	mfx_address(creator);
	/* room for 3 rounds, not 4 */
	budget = (acct_eps(noise, delta, 3) + acct_eps(noise, delta, 4)) / 2;
	json_object_set_new(json_object_get(spec, "aggregation"), "dp",
			    json_pack("{s:f, s:f, s:f, s:f}", "clip", 1.0,
				      "noise", noise, "delta", delta,
				      "max_epsilon", budget));
	open_spec(m, id, creator, spec);
	for (int v = 1; v <= 3; v++) {
		mfx_address(w);
		accepted(m, rid[0], id, w, creator);
		assert_int_equal(publish(m, id, creator, rid, 1, NULL), FM_OK);
		t = task(m, id);
		assert_close(json_number_value(json_object_get(t, "epsilon")),
			     acct_eps(noise, delta, v));
		assert_string_equal(str(t, "state"),
				    v < 3 ? "open" : "closed");
		json_decref(t);
	}
	t = task(m, id);
	assert_string_equal(str(t, "end_reason"), "privacy_budget");
	assert_string_equal(str(t, "refund_state"), "queued");
	json_decref(t);
	assert_int_equal(market_round_list(m->pool, &list, id), FM_OK);
	rs = json_object_get(list, "rounds");
	assert_int_equal(json_array_size(rs), 3);
	for (int v = 1; v <= 3; v++)
		assert_close(json_number_value(json_object_get(
				     json_array_get(rs, (size_t)v - 1),
				     "epsilon")),
			     acct_eps(noise, delta, v));
	json_decref(list);
}

/* The published version's held-out accuracy reaching target_accuracy
 * ends the task; what was not paid is queued for refund. */
static void test_rounds__target_accuracy_ends_the_task(void **state)
{
	struct mdb *m = *state;
	char creator[43], w[3][43], id[67], rid[1][37], aid[37], r2[37];
	json_t *spec = rounds_spec(2, 4, "sync", 1), *t, *met, *x = NULL;
	json_t *list = NULL, *r0;

	mfx_address(creator);
	json_object_set_new(spec, "target_accuracy", json_real(0.8));
	open_spec(m, id, creator, spec);
	for (int i = 0; i < 3; i++)
		mfx_address(w[i]);
	accepted(m, rid[0], id, w[0], creator);
	met = json_pack("{s:f, s:f}", "accuracy", 0.7, "loss", 0.9);
	assert_int_equal(publish(m, id, creator, rid, 1, met), FM_OK);
	json_decref(met);
	assert_string_equal(scalar(m, "SELECT state FROM tasks WHERE id = $1",
				   id),
			    "open");
	accepted(m, rid[0], id, w[1], creator);
	take(m, aid, id, w[2]);
	assert_int_equal(submit(m, r2, aid, w[2], -1), FM_OK);
	met = json_pack("{s:f, s:f}", "accuracy", 0.85, "loss", 0.4);
	assert_int_equal(publish(m, id, creator, rid, 1, met), FM_OK);
	json_decref(met);
	t = task(m, id);
	assert_string_equal(str(t, "state"), "closed");
	assert_string_equal(str(t, "end_reason"), "target_reached");
	assert_string_equal(str(t, "refund_state"), "queued");
	json_decref(t);
	/* w2's undecided result went with its round */
	assert_int_equal(market_result_get(m->pool, &x, r2), FM_OK);
	assert_string_equal(str(x, "state"), "rejected");
	json_decref(x);
	assert_int_equal(market_round_list(m->pool, &list, id), FM_OK);
	r0 = json_array_get(json_object_get(list, "rounds"), 0);
	assert_true(json_number_value(json_object_get(r0, "accuracy")) ==
		    0.7);
	assert_true(json_number_value(json_object_get(r0, "loss")) == 0.9);
	assert_true(json_is_null(json_object_get(r0, "epsilon")));
	json_decref(list);
	assert_int_equal(market_round_list(m->pool, &list,
					   "0x0000000000000000000000000000000"
					   "000000000000000000000000000000000"),
			 FM_ENOTFOUND);
}

/* The report a validator would publish for results rids (scores phi). */
static json_t *report_of(const char *id, int round, char (*rids)[37],
			 const double *phi, int n)
{
	json_t *r = json_pack("{s:s, s:s, s:i, s:s, s:f, s:[]}", "format",
			      SCORE_REPORT_FORMAT, "task_id", id, "round",
			      round, "pool_wei", "3000000000000000",
			      "floor_share", 0.2, "results");

	for (int i = 0; i < n; i++)
		json_array_append_new(json_object_get(r, "results"),
				      json_pack("{s:s, s:f}", "result_id",
						rids[i], "phi", phi[i]));
	assert_int_equal(score_report_amounts(r), FM_OK);
	return r;
}

static int publish_scored(struct mdb *m, const char *id, const char *caller,
			  char (*rids)[37], int n, const json_t *report)
{
	json_t *ids = json_array(), *out = NULL;
	int err;

	for (int i = 0; i < n; i++)
		json_array_append_new(ids, json_string(rids[i]));
	err = market_model_publish_scored(m->pool, &out, id, caller, MODEL,
					  "fedavg", NULL, ids, report,
					  report ? BUNDLE : NULL);
	json_decref(ids);
	json_decref(out);
	return err;
}

/* Pay by contribution: no payout at accept; the version's scoring
 * report, checked against the round, writes every amount at once. */
static void test_rounds__scored_round_pays_its_report(void **state)
{
	static const double phi[] = { 0.05, 0.01, -0.02 };
	struct mdb *m = *state;
	char creator[43], w[3][43], id[67], rid[3][37], flat[67];
	json_t *spec = rounds_spec(3, 2, "sync", 1), *rep, *x;

	mfx_address(creator);
	json_object_del(spec, "reward_wei");
	json_object_set_new(spec, "reward",
			    json_pack("{s:s, s:s, s:f}", "per_result_wei",
				      "1000000000000000", "scoring", "shapley",
				      "floor_share", 0.2));
	open_spec(m, id, creator, spec);
	for (int i = 0; i < 3; i++) {
		mfx_address(w[i]);
		accepted(m, rid[i], id, w[i], creator);
	}
	assert_int_equal(count(m, "SELECT count(*) FROM payouts WHERE"
				  " task_id = $1", id), 0);
	/* a scored task publishes with its report, naming every result */
	assert_int_equal(publish(m, id, creator, rid, 3, NULL),
			 FM_EUNPROCESSABLE);
	expect_msg("pays by contribution");
	rep = report_of(id, 1, rid, phi, 2);
	assert_int_equal(publish_scored(m, id, creator, rid, 2, rep),
			 FM_ECONFLICT);
	expect_msg("round 1 accepted 3 results");
	json_decref(rep);
	rep = report_of(id, 1, rid, phi, 3);
	x = json_array_get(json_object_get(rep, "results"), 0);
	json_object_set_new(x, "amount_wei", json_string("2000000000000000"));
	assert_int_equal(publish_scored(m, id, creator, rid, 3, rep),
			 FM_EUNPROCESSABLE);
	expect_msg("results[0].amount_wei: its scores give");
	json_decref(rep);
	rep = report_of(id, 2, rid, phi, 3);
	assert_int_equal(publish_scored(m, id, creator, rid, 3, rep),
			 FM_EUNPROCESSABLE);
	expect_msg("round: expected 1");
	json_decref(rep);
	/* nothing was published by the refused attempts */
	assert_int_equal(count(m, "SELECT current_version FROM tasks WHERE"
				  " id = $1", id), 0);
	rep = report_of(id, 1, rid, phi, 3);
	assert_int_equal(publish_scored(m, id, creator, rid, 3, rep), FM_OK);
	json_decref(rep);
	/* floor 0.2 x 0.003 / 3 = 0.0002 each; the rest 0.0024 by weights
	 * 833333:166667:0 (5:1:0 in parts per million) */
	assert_string_equal(scalar(m, "SELECT string_agg(amount_wei::text ||"
				      " '@' || round || '@' || (score > 0),"
				      " ',' ORDER BY amount_wei DESC) FROM"
				      " payouts WHERE task_id = $1", id),
			    "2199999200000000@1@true,600000800000000@1@true,"
			    "200000000000000@1@false");
	assert_int_equal(count(m, "SELECT count(DISTINCT report_hash) FROM"
				  " payouts WHERE task_id = $1 AND report_hash"
				  " = '0x" BUNDLE "'", id), 1);
	/* a flat task takes no report */
	spec = rounds_spec(1, 1, "sync", 1);
	open_spec(m, flat, creator, spec);
	accepted(m, rid[0], flat, w[0], creator);
	rep = report_of(flat, 1, rid, phi, 1);
	assert_int_equal(publish_scored(m, flat, creator, rid, 1, rep),
			 FM_EUNPROCESSABLE);
	expect_msg("pays a flat reward");
	json_decref(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_rounds__task_stores_its_rounds_and_opens_round_1),
		cmocka_unit_test(test_rounds__sync_task_goes_round_by_round),
		cmocka_unit_test(
			test_rounds__accepts_stop_at_the_funded_payouts),
		cmocka_unit_test(
			test_rounds__racing_publishers_leave_one_version),
		cmocka_unit_test(
			test_rounds__async_takes_results_up_to_max_staleness),
		cmocka_unit_test(
			test_rounds__short_round_extends_once_then_fails),
		cmocka_unit_test(
			test_rounds__round_with_enough_closes_for_its_version),
		cmocka_unit_test(
			test_rounds__epsilon_per_round_and_privacy_budget),
		cmocka_unit_test(test_rounds__target_accuracy_ends_the_task),
		cmocka_unit_test(test_rounds__scored_round_pays_its_report),
	};

	log_init("market_rounds_test", LOG_WARN, 0);
	return cmocka_run_group_tests_name("market_rounds", tests,
					   mfx_group_setup, mfx_group_teardown);
}
