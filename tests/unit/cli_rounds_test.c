/* clients/lib/cli/rounds.c: a task's rounds as the clients read them
 * (and read from a marketplace without rounds: one round), what
 * `fedmarket-contributor run` does next from the task and its own
 * assignments, its pauses while waiting, --rounds, and when a task is
 * over for `fedmarket-creator watch`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/rounds.h"
#include "cli/view.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (!j)
		print_error("%s: %s\n", text, e.text);
	assert_non_null(j);
	return j;
}

static void test_rounds__fields_and_their_defaults(void **state)
{
	json_t *t = parse("{\"state\": \"open\", \"rounds\": 5, "
			  "\"current_version\": 2, \"current_round\": 3, "
			  "\"aggregation_mode\": \"async\", \"end_reason\": null, "
			  "\"round\": {\"round\": 3, \"ready\": true}}");
	json_t *old = parse("{\"state\": \"closed\", \"current_version\": 1, "
			    "\"spec\": {\"aggregation\": {\"rule\": \"fedavg\"}}}");
	json_t *r = parse("{\"round\": 4, \"base_version\": 1}");
	json_t *r0 = parse("{\"id\": \"x\"}");
	json_t *spec_async = parse("{\"spec\": {\"aggregation\": "
				   "{\"mode\": \"async\"}}}");

	(void)state;
	assert_int_equal(rounds_total(t), 5);
	assert_int_equal(rounds_version(t), 2);
	assert_int_equal(rounds_current(t), 3);
	assert_int_equal(rounds_async(t), 1);
	assert_int_equal(rounds_known(t), 1);
	assert_int_equal(rounds_ready(t), 1);
	assert_string_equal(rounds_end_reason(t), "open");
	/* a task from before rounds: one round, the next after its version */
	assert_int_equal(rounds_total(old), 1);
	assert_int_equal(rounds_current(old), 2);
	assert_int_equal(rounds_async(old), 0);
	assert_int_equal(rounds_known(old), 0);
	assert_int_equal(rounds_ready(old), -1);
	assert_string_equal(rounds_end_reason(old), "closed");
	assert_int_equal(rounds_async(spec_async), 1);
	assert_int_equal(rounds_of(r), 4);
	assert_int_equal(rounds_base_version(r), 1);
	/* a result without round fields: round 1, from version 0 */
	assert_int_equal(rounds_of(r0), 1);
	assert_int_equal(rounds_base_version(r0), 0);
	json_object_set_new(t, "end_reason", json_string("target_reached"));
	assert_string_equal(rounds_end_reason(t), "target_reached");
	json_object_set_new(t, "round", json_pack("{s:b}", "ready", 0));
	assert_int_equal(rounds_ready(t), 0);
	json_decref(t);
	json_decref(old);
	json_decref(r);
	json_decref(r0);
	json_decref(spec_async);
}

static json_t *task_in(const char *state, int round, int slots_free,
		       const char *round_state)
{
	json_t *t = json_pack("{s:s, s:i, s:i, s:i, s:i, s:{s:i, s:s}}",
			      "state", state, "rounds", 3, "current_round",
			      round, "current_version", round - 1,
			      "slots_free", slots_free, "round", "round",
			      round, "state", round_state);

	assert_non_null(t);
	return t;
}

static void test_rounds__plan_of_a_contributor(void **state)
{
	json_t *t = task_in("open", 2, 1, "open");
	json_t *mine = parse("[{\"id\": \"a1\", \"round\": 1, \"state\": \"accepted\"}]");
	struct rounds_plan p;

	(void)state;
	/* round 1 done: round 2 has a slot to take */
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_TAKE);
	assert_int_equal(p.round, 2);
	assert_null(p.assignment);
	/* its own active assignment of round 2 is resumed */
	json_array_append_new(mine, json_pack("{s:s, s:i, s:s}", "id", "a2",
					      "round", 2, "state", "active"));
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_RESUME);
	assert_string_equal(json_string_value(json_object_get(p.assignment,
							      "id")), "a2");
	/* sent: the round is done for it, whatever the decision */
	json_object_set_new(json_array_get(mine, 1), "state",
			    json_string("rejected"));
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_SENT);
	assert_string_equal(json_string_value(json_object_get(p.assignment,
							      "id")), "a2");
	/* expired or given back: a slot may be taken again */
	json_object_set_new(json_array_get(mine, 1), "state",
			    json_string("abandoned"));
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_TAKE);
	json_object_set_new(json_array_get(mine, 1), "state",
			    json_string("expired"));
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_TAKE);
	json_decref(t);
	/* no slot free, or the round closing: wait for its version */
	t = task_in("open", 2, 0, "open");
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_FULL);
	json_decref(t);
	t = task_in("open", 2, 3, "closing");
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_FULL);
	json_decref(t);
	/* a task that is not open: stop, even holding an assignment */
	json_object_set_new(json_array_get(mine, 1), "state",
			    json_string("active"));
	t = task_in("closed", 2, 1, "open");
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_STOP);
	json_decref(t);
	/* a marketplace without rounds: everything is round 1 */
	t = parse("{\"state\": \"open\", \"current_version\": 0, "
		  "\"slots_free\": 2}");
	json_decref(mine);
	mine = parse("[{\"id\": \"b\", \"state\": \"submitted\"}]");
	rounds_plan(&p, t, mine);
	assert_int_equal(p.step, ROUNDS_SENT);
	assert_int_equal(p.round, 1);
	json_decref(t);
	json_decref(mine);
}

static void test_rounds__backoff_doubles_to_five_seconds(void **state)
{
	double want[] = { 1, 2, 4, 5, 5, 5 }, p = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		p = rounds_backoff(p);
		assert_true(p == want[i]);
	}
}

static void test_rounds__parse_count(void **state)
{
	int n = -1;

	(void)state;
	assert_int_equal(rounds_parse_count(&n, "all"), FM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(rounds_parse_count(&n, "3"), FM_OK);
	assert_int_equal(n, 3);
	n = 7;
	assert_int_equal(rounds_parse_count(&n, "0"), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "--rounds 0"));
	assert_int_equal(rounds_parse_count(&n, "3x"), FM_EINVAL);
	assert_int_equal(rounds_parse_count(&n, "-1"), FM_EINVAL);
	assert_int_equal(rounds_parse_count(&n, ""), FM_EINVAL);
	assert_int_equal(rounds_parse_count(&n, "10001"), FM_EINVAL);
	assert_int_equal(n, 7); /* untouched on failure */
}

static void test_rounds__when_a_task_is_over(void **state)
{
	json_t *t = parse("{\"state\": \"open\", \"rounds\": 3, "
			  "\"current_version\": 2, \"end_reason\": null}");

	(void)state;
	assert_int_equal(rounds_task_over(t), 0);
	/* closed by its last round's last accept: version 3 is to come */
	json_object_set_new(t, "state", json_string("closed"));
	json_object_set_new(t, "end_reason", json_string("rounds_done"));
	assert_int_equal(rounds_task_over(t), 0);
	json_object_set_new(t, "current_version", json_integer(3));
	assert_int_equal(rounds_task_over(t), 1);
	json_object_set_new(t, "current_version", json_integer(1));
	json_object_set_new(t, "end_reason", json_string("target_reached"));
	assert_int_equal(rounds_task_over(t), 1);
	json_object_set_new(t, "state", json_string("cancelled"));
	json_object_set_new(t, "end_reason", json_string("cancelled"));
	assert_int_equal(rounds_task_over(t), 1);
	json_object_set_new(t, "state", json_string("funded"));
	assert_int_equal(rounds_task_over(t), 0);
	json_decref(t);
}

/* funded minus every payout of the rounds, never below zero */
static void test_rounds__refund_is_funding_minus_payouts(void **state)
{
	json_t *t = parse("{\"funded_wei\": \"1000\"}");
	json_t *rounds = parse("[{\"round\": 1, \"owed_wei\": \"300\"},"
			       " {\"round\": 2, \"owed_wei\": \"200\"},"
			       " {\"round\": 3}]");
	char left[80];

	(void)state;
	assert_int_equal(view_refund_wei(left, t, rounds), FM_OK);
	assert_string_equal(left, "500");
	json_object_set_new(json_array_get(rounds, 2), "owed_wei",
			    json_string("900"));
	assert_int_equal(view_refund_wei(left, t, rounds), FM_OK);
	assert_string_equal(left, "0");
	json_object_del(t, "funded_wei");
	assert_int_equal(view_refund_wei(left, t, rounds), FM_EINVAL);
	json_decref(t);
	json_decref(rounds);
}

/* What status prints of a task's rounds (stdout caught in a file). */
static char *printed(struct cli *c, const json_t *task, const json_t *rounds)
{
	char path[] = "/tmp/cli_rounds_test.XXXXXX", *out;
	int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
	long n;
	FILE *f;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stdout);
	dup2(fd, STDOUT_FILENO);
	view_rounds_print(c, task, rounds);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	f = fdopen(fd, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(path);
	return out;
}

static void test_rounds__status_table(void **state)
{
	json_t *t = parse(
		"{\"id\": \"0xab\", \"state\": \"closed\", \"rounds\": 3, "
		"\"current_round\": 2, \"current_version\": 2, "
		"\"results_per_round\": 3, \"min_results_per_round\": 2, "
		"\"target_accuracy\": 0.7, \"epsilon\": 1.5, "
		"\"end_reason\": \"target_reached\", \"funded_wei\": "
		"\"900000000000000000\", \"refund_state\": \"queued\", "
		"\"refund_tx\": null, \"spec\": {\"aggregation\": {\"mode\": "
		"\"sync\", \"dp\": {\"max_epsilon\": 4}}}}");
	json_t *rounds = parse(
		"[{\"round\": 1, \"state\": \"published\", \"version\": 1, "
		"\"accepted\": 3, \"rejected\": 1, \"accuracy\": 0.61234, "
		"\"epsilon\": 1.0, \"paid_wei\": \"300000000000000000\", "
		"\"owed_wei\": \"300000000000000000\"},"
		" {\"round\": 2, \"state\": \"published\", \"version\": 2, "
		"\"accepted\": 2, \"rejected\": 0, \"accuracy\": 0.7, "
		"\"epsilon\": 1.5, \"paid_wei\": \"100000000000000000\", "
		"\"owed_wei\": \"200000000000000000\"}]");
	struct cli c;
	char *out;

	(void)state;
	cli_init(&c, "fedmarket-creator");
	c.color = 0;
	out = printed(&c, t, rounds);
	assert_non_null(strstr(out, "rounds: 3, current round 2, version 2 "
			       "(sync, 3 result(s) a round (at least 2), "
			       "target accuracy 0.7000, epsilon 1.5000 so "
			       "far, epsilon budget 4)\n"));
	assert_non_null(strstr(out, "  round  state      version  accepted  "
			       "rejected  accuracy  epsilon  paid\n"));
	assert_non_null(strstr(out, "      1  published  v1              3   "
			       "      1    0.6123    1.000  0.3 ETH\n"));
	assert_non_null(strstr(out, "      2  published  v2              2   "
			       "      0    0.7000    1.500  0.1 ETH (of 0.2 "
			       "ETH owed)\n"));
	assert_non_null(strstr(out, "  ended: target_reached\n"));
	/* 0.9 funded, 0.5 owed */
	assert_non_null(strstr(out, "  refund: 0.4 ETH queued\n"));
	free(out);
	/* a task from before rounds shows nothing */
	out = printed(&c, json_object_get(rounds, "none"), rounds);
	assert_string_equal(out, "");
	free(out);
	json_decref(t);
	json_decref(rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rounds__fields_and_their_defaults),
		cmocka_unit_test(test_rounds__plan_of_a_contributor),
		cmocka_unit_test(test_rounds__backoff_doubles_to_five_seconds),
		cmocka_unit_test(test_rounds__parse_count),
		cmocka_unit_test(test_rounds__when_a_task_is_over),
		cmocka_unit_test(test_rounds__refund_is_funding_minus_payouts),
		cmocka_unit_test(test_rounds__status_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
