/* Cancelling a task on a real PostgreSQL: results still waiting for a
 * decision are rejected in the same transaction ("task cancelled"), so
 * none stays submitted for ever; decided results keep their decision and
 * payout; every slot is given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sha256.h"
#include "core/err.h"
#include "db/db.h"
#include "market/market.h"
#include "marketfx.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* An open manual task of creator with slots slots; id gets its id. */
static void open_task(struct mdb *m, char id[67], const char *creator,
		      int slots)
{
	json_t *spec = mfx_spec(slots), *t = NULL;
	struct task_spec s;
	char funded[80];

	json_object_set_new(json_object_get(spec, "validation"), "strategy",
			    json_string("manual"));
	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	assert_int_equal(market_task_create(m->pool, &t, &s, creator,
					    &mfx_chain),
			 FM_OK);
	json_decref(t);
	assert_int_equal(spec_wei_mul(funded, s.reward_wei, slots), FM_OK);
	assert_int_equal(market_task_open(m->pool, &t, s.task_id,
					  "0x1111111111111111111111111111111"
					  "111111111111111111111111111111111",
					  funded),
			 FM_OK);
	strcpy(id, s.task_id);
	json_decref(t);
	task_spec_cleanup(&s);
	json_decref(spec);
}

/* who takes a slot of task id and submits; *res gets the result. */
static void take_and_submit(struct mdb *m, json_t **res, const char *id,
			    const char *who)
{
	json_t *a = NULL;
	struct market_result_in in = {
		.contributor = who,
		.num_examples = 10,
	};
	char ref[SHA256_HEX_LEN + 1];

	assert_int_equal(market_assign(m->pool, &a, id, who), FM_OK);
	in.assignment_id = str(a, "id");
	/* a bundle of its own: a task refuses a copy of another result */
	fm_sha256_hex(ref, in.assignment_id, strlen(in.assignment_id));
	in.bundle_ref = ref;
	assert_int_equal(market_result_submit(m->pool, res, &in), FM_OK);
	json_decref(a);
}

static void test_cancel__rejects_undecided_results(void **state)
{
	struct mdb *m = *state;
	char creator[43], w1[43], w2[43], w3[43], id[67];
	json_t *r1 = NULL, *r2 = NULL, *a3 = NULL, *d = NULL, *t = NULL;
	json_t *r = NULL;
	struct market_decision_in dec = { 0 };

	mfx_address(creator);
	mfx_address(w1);
	mfx_address(w2);
	mfx_address(w3);
	open_task(m, id, creator, 3);
	take_and_submit(m, &r1, id, w1);  /* accepted before the cancel */
	take_and_submit(m, &r2, id, w2);  /* still undecided */
	assert_int_equal(market_assign(m->pool, &a3, id, w3), FM_OK);
	dec.result_id = str(r1, "id");
	dec.validator = creator;
	dec.accept = 1;
	assert_int_equal(market_decide(m->pool, &d, &dec), FM_OK);
	json_decref(d);

	assert_int_equal(market_task_cancel(m->pool, &t, id, creator), FM_OK);
	assert_string_equal(str(t, "state"), "cancelled");
	/* the accepted result keeps its slot; the other two give theirs */
	assert_int_equal(json_integer_value(json_object_get(t, "slots_used")),
			 1);

	assert_int_equal(market_result_get(m->pool, &r, str(r2, "id")), FM_OK);
	assert_string_equal(str(r, "state"), "rejected");
	assert_string_equal(str(json_object_get(r, "decision"), "reason"),
			    "task cancelled");
	assert_string_equal(str(json_object_get(r, "decision"), "decision"),
			    "reject");
	json_decref(r);
	assert_int_equal(market_assignment_get(m->pool, &r,
					       str(r2, "assignment_id")),
			 FM_OK);
	assert_string_equal(str(r, "state"), "rejected");
	json_decref(r);
	assert_int_equal(market_assignment_get(m->pool, &r, str(a3, "id")),
			 FM_OK);
	assert_string_equal(str(r, "state"), "abandoned");
	json_decref(r);
	assert_int_equal(market_result_get(m->pool, &r, str(r1, "id")), FM_OK);
	assert_string_equal(str(r, "state"), "accepted");
	json_decref(r);
	/* decided once: a late decision on the rejected result conflicts */
	dec.result_id = str(r2, "id");
	assert_int_equal(market_decide(m->pool, &d, &dec), FM_ECONFLICT);

	json_decref(t);
	json_decref(r1);
	json_decref(r2);
	json_decref(a3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancel__rejects_undecided_results),
	};

	return cmocka_run_group_tests(tests, mfx_group_setup,
				      mfx_group_teardown);
}
