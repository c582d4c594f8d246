/* schema/task.schema.json and the C parser (task_spec_parse) agree: a
 * corpus of good specs and mutated bad ones, the round settings above
 * all, gets the same verdict from both (the schema judged by Python's
 * jsonschema), and the normalized spec the marketplace stores is valid
 * too. The rules a JSON Schema cannot say are listed apart: the schema
 * lets them through, the parser refuses them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "market/spec.h"
#include "marketfx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum want { GOOD, BAD, PARSER_ONLY };

struct sample {
	const char *name;
	enum want want;
	json_t *spec;
};

static json_t *agg(json_t *spec)
{
	return json_object_get(spec, "aggregation");
}

/* A spec in the round form: results_per_round, rounds and the rest. */
static json_t *rounds_form(void)
{
	json_t *s = mfx_spec(4);

	json_object_del(s, "max_assignments");
	json_object_set_new(s, "results_per_round", json_integer(4));
	json_object_set_new(s, "rounds", json_integer(5));
	json_object_set_new(s, "round_duration_s", json_integer(120));
	json_object_set_new(s, "min_results_per_round", json_integer(1));
	json_object_set_new(s, "target_accuracy", json_real(0.8));
	return s;
}

static json_t *async_form(void)
{
	json_t *s = rounds_form();

	json_object_set_new(agg(s), "mode", json_string("async"));
	json_object_set_new(agg(s), "async",
			    json_pack("{s:i, s:i, s:f}", "buffer", 2,
				      "max_staleness", 3, "staleness_exponent",
				      0.5));
	return s;
}

static json_t *dp_form(void)
{
	json_t *s = rounds_form();

	json_object_set_new(agg(s), "dp",
			    json_pack("{s:f, s:f, s:f, s:f}", "clip", 1.0,
				      "noise", 2.0, "delta", 1e-6,
				      "max_epsilon", 10.0));
	return s;
}

/* Pay by contribution, both spellings of the reward given. */
static json_t *shapley_form(void)
{
	json_t *s = rounds_form();

	json_object_set_new(s, "reward",
			    json_pack("{s:s, s:s}", "per_result_wei",
				      json_string_value(json_object_get(
					      s, "reward_wei")),
				      "scoring", "shapley"));
	return s;
}

/* The stored form of a spec, as task_spec_parse normalizes it. */
static json_t *stored(json_t *spec)
{
	struct task_spec s;
	json_t *doc;

	assert_int_equal(task_spec_parse(&s, spec, (long long)time(NULL)),
			 FM_OK);
	doc = json_incref(s.doc);
	task_spec_cleanup(&s);
	json_decref(spec);
	return doc;
}

static size_t corpus(struct sample *out)
{
	size_t n = 0;
	json_t *s;

#define ADD(nm, w, expr) out[n++] = (struct sample){ nm, w, expr }
#define MUT(nm, w, base, stmt) \
	do {                    \
		s = base;       \
		stmt;           \
		ADD(nm, w, s);  \
	} while (0)

	ADD("good-one-shot", GOOD, mfx_spec(3));
	ADD("good-rounds", GOOD, rounds_form());
	ADD("good-async", GOOD, async_form());
	ADD("good-dp", GOOD, dp_form());
	ADD("good-stored-one-shot", GOOD, stored(mfx_spec(3)));
	ADD("good-stored-async", GOOD, stored(async_form()));
	ADD("good-stored-dp", GOOD, stored(dp_form()));
	MUT("good-both-names", GOOD, rounds_form(),
	    json_object_set_new(s, "max_assignments", json_integer(4)));
	MUT("good-sync-mode", GOOD, rounds_form(),
	    json_object_set_new(agg(s), "mode", json_string("sync")));
	MUT("good-async-defaults", GOOD, rounds_form(),
	    json_object_set_new(agg(s), "mode", json_string("async")));
	MUT("good-max-rounds", GOOD, mfx_spec(1),
	    json_object_set_new(s, "rounds", json_integer(10000)));
	MUT("good-target-one", GOOD, rounds_form(),
	    json_object_set_new(s, "target_accuracy", json_integer(1)));
	MUT("good-dp-null", GOOD, rounds_form(),
	    json_object_set_new(agg(s), "dp", json_null()));

	MUT("good-shapley", GOOD, rounds_form(), (json_object_del(s, "reward_wei"),
	    json_object_set_new(s, "reward", json_pack(
		"{s:s, s:s, s:f, s:s, s:i}", "per_result_wei", "1000",
		"scoring", "shapley", "floor_share", 0.3, "method", "gtg",
		"budget", 64))));
	ADD("good-stored-shapley", GOOD, stored(shapley_form()));
	MUT("good-max-examples", GOOD, rounds_form(),
	    json_object_set_new(s, "max_examples_per_result",
				json_integer(1)));
	MUT("bad-max-examples-zero", BAD, rounds_form(),
	    json_object_set_new(s, "max_examples_per_result",
				json_integer(0)));
	MUT("bad-max-examples-huge", BAD, rounds_form(),
	    json_object_set_new(s, "max_examples_per_result",
				json_integer((1LL << 40) + 1)));
	MUT("bad-max-examples-fraction", BAD, rounds_form(),
	    json_object_set_new(s, "max_examples_per_result",
				json_real(2.5)));
	MUT("bad-no-reward", BAD, rounds_form(),
	    json_object_del(s, "reward_wei"));
	MUT("bad-reward-without-amount", BAD, rounds_form(),
	    (json_object_del(s, "reward_wei"),
	     json_object_set_new(s, "reward",
				 json_pack("{s:s}", "scoring", "shapley"))));
	MUT("bad-scoring", BAD, rounds_form(),
	    json_object_set_new(s, "reward", json_pack("{s:s}", "scoring",
							"votes")));
	MUT("bad-floor-share", BAD, rounds_form(),
	    json_object_set_new(s, "reward",
				json_pack("{s:s, s:f}", "scoring", "shapley",
					  "floor_share", 1.5)));
	MUT("bad-no-slots", BAD, rounds_form(),
	    json_object_del(s, "results_per_round"));
	MUT("bad-rounds-zero", BAD, rounds_form(),
	    json_object_set_new(s, "rounds", json_integer(0)));
	MUT("bad-rounds-huge", BAD, mfx_spec(1),
	    json_object_set_new(s, "rounds", json_integer(10001)));
	MUT("bad-rounds-string", BAD, rounds_form(),
	    json_object_set_new(s, "rounds", json_string("5")));
	MUT("bad-rounds-fraction", BAD, rounds_form(),
	    json_object_set_new(s, "rounds", json_real(2.5)));
	MUT("bad-results-zero", BAD, rounds_form(),
	    json_object_set_new(s, "results_per_round", json_integer(0)));
	MUT("bad-round-short", BAD, rounds_form(),
	    json_object_set_new(s, "round_duration_s", json_integer(59)));
	MUT("bad-min-zero", BAD, rounds_form(),
	    json_object_set_new(s, "min_results_per_round",
				json_integer(0)));
	MUT("bad-target-zero", BAD, rounds_form(),
	    json_object_set_new(s, "target_accuracy", json_real(0)));
	MUT("bad-target-over", BAD, rounds_form(),
	    json_object_set_new(s, "target_accuracy", json_real(1.5)));
	MUT("bad-mode", BAD, rounds_form(),
	    json_object_set_new(agg(s), "mode", json_string("eventually")));
	MUT("bad-async-without-mode", BAD, rounds_form(),
	    json_object_set_new(agg(s), "async",
				json_pack("{s:i}", "buffer", 2)));
	MUT("bad-async-in-sync", BAD, async_form(),
	    json_object_set_new(agg(s), "mode", json_string("sync")));
	MUT("bad-buffer-zero", BAD, async_form(),
	    json_object_set_new(json_object_get(agg(s), "async"), "buffer",
				json_integer(0)));
	MUT("bad-staleness-negative", BAD, async_form(),
	    json_object_set_new(json_object_get(agg(s), "async"),
				"max_staleness", json_integer(-1)));
	MUT("bad-exponent-over", BAD, async_form(),
	    json_object_set_new(json_object_get(agg(s), "async"),
				"staleness_exponent", json_real(9)));
	MUT("bad-async-extra", BAD, async_form(),
	    json_object_set_new(json_object_get(agg(s), "async"), "window",
				json_integer(3)));
	MUT("bad-delta-over", BAD, dp_form(),
	    json_object_set_new(json_object_get(agg(s), "dp"), "delta",
				json_real(0.5)));
	MUT("bad-delta-zero", BAD, dp_form(),
	    json_object_set_new(json_object_get(agg(s), "dp"), "delta",
				json_real(0)));
	MUT("bad-max-epsilon-zero", BAD, dp_form(),
	    json_object_set_new(json_object_get(agg(s), "dp"),
				"max_epsilon", json_real(0)));
	MUT("bad-dp-extra", BAD, dp_form(),
	    json_object_set_new(json_object_get(agg(s), "dp"), "sigma",
				json_real(1)));

	/* what a JSON Schema cannot compare or compute */
	MUT("parser-only-names-differ", PARSER_ONLY, rounds_form(),
	    json_object_set_new(s, "max_assignments", json_integer(3)));
	MUT("parser-only-min-over-slots", PARSER_ONLY, rounds_form(),
	    (json_object_set_new(s, "min_results_per_round",
				 json_integer(5)),
	     json_object_set_new(agg(s), "min_results_per_round",
				 json_integer(5))));
	MUT("parser-only-buffer-over-slots", PARSER_ONLY, async_form(),
	    json_object_set_new(json_object_get(agg(s), "async"), "buffer",
				json_integer(5)));
	MUT("parser-only-payouts-over", PARSER_ONLY, mfx_spec(1000),
	    json_object_set_new(s, "rounds", json_integer(1001)));
	/* one round at noise 2 spends epsilon 2.4 at delta 1e-6 */
	MUT("parser-only-budget-spent-by-one-round", PARSER_ONLY, dp_form(),
	    json_object_set_new(json_object_get(agg(s), "dp"),
				"max_epsilon", json_real(1.0)));
	MUT("parser-only-budget-without-noise", PARSER_ONLY, dp_form(),
	    json_object_set_new(json_object_get(agg(s), "dp"), "noise",
				json_real(0)));
#undef MUT
#undef ADD
	return n;
}

/* The schema's verdicts, "NAME valid|invalid" per line, on the files
 * NAME.json in dir; returns the output (malloc'd). */
static char *schema_verdicts(const char *dir, const char *schema)
{
	char cmd[2048], *out = calloc(1, 1 << 16);
	size_t len = 0;
	FILE *p;

	assert_non_null(out);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json, os, sys\n"
		 "from jsonschema import Draft202012Validator as V\n"
		 "s = json.load(open(sys.argv[1]))\n"
		 "V.check_schema(s)\n"
		 "v = V(s)\n"
		 "for f in sorted(os.listdir(sys.argv[2])):\n"
		 "    d = json.load(open(os.path.join(sys.argv[2], f)))\n"
		 "    print(f[:-5], \"valid\" if v.is_valid(d) else "
		 "\"invalid\")\n' %s %s",
		 schema, dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (len < (1 << 16) - 1) {
		size_t k = fread(out + len, 1, (1 << 16) - 1 - len, p);

		if (k == 0)
			break;
		len += k;
	}
	assert_int_equal(pclose(p), 0);
	return out;
}

static int schema_says_valid(const char *verdicts, const char *name)
{
	char line[256];
	const char *at;

	snprintf(line, sizeof(line), "%s valid\n", name);
	at = strstr(verdicts, line);
	/* a whole line, not the tail of a longer name */
	while (at && at != verdicts && at[-1] != '\n')
		at = strstr(at + 1, line);
	return at != NULL;
}

static void test_task_schema__agrees_with_the_parser(void **state)
{
	struct sample samples[96];
	char dir[] = "/tmp/fm_task_schema_XXXXXX", path[512], schema[1024];
	const char *top = getenv("FM_TOP");
	char *verdicts;
	size_t n = corpus(samples);
	int failed = 0, verbose = getenv("FM_VERBOSE") != NULL;

	(void)state;
	assert_true(n <= sizeof(samples) / sizeof(samples[0]));
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s.json", dir,
			 samples[i].name);
		assert_int_equal(json_dump_file(samples[i].spec, path, 0), 0);
	}
	snprintf(schema, sizeof(schema), "%s/schema/task.schema.json",
		 top ? top : ".");
	verdicts = schema_verdicts(dir, schema);
	for (size_t i = 0; i < n; i++) {
		struct task_spec s;
		int parsed = task_spec_parse(&s, samples[i].spec,
					     (long long)time(NULL)) == FM_OK;
		int valid = schema_says_valid(verdicts, samples[i].name);
		int want_schema = samples[i].want != BAD;
		int want_parser = samples[i].want == GOOD;
		int bad;

		if (parsed)
			task_spec_cleanup(&s);
		bad = valid != want_schema || parsed != want_parser;
		if (bad || verbose)
			printf("# %s%s: schema says %s, parser says %s (%s)\n",
			       bad ? "WRONG " : "", samples[i].name,
			       valid ? "valid" : "invalid",
			       parsed ? "valid" : "invalid",
			       parsed ? "" : fm_error_msg());
		failed += bad;
		json_decref(samples[i].spec);
	}
	printf("# %zu specs judged\n", n);
	free(verdicts);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s.json", dir,
			 samples[i].name);
		unlink(path);
	}
	rmdir(dir);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_task_schema__agrees_with_the_parser),
	};

	return cmocka_run_group_tests_name("task_schema", tests, NULL, NULL);
}
