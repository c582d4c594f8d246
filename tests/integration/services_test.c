/* The four services over HTTP on real PostgreSQL, anvil and storage: the
 * lifecycle of each task kind, a task over two rounds, a delayed auto
 * approval, every error class, signatures (forged, replayed, stale),
 * idempotency, a 50-for-10 slot race, a database restart and a database
 * outage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chain/reqsig.h"
#include "chain/sig.h"
#include "chainfx.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "engine/ml.h"
#include "http/client.h"
#include "market/spec.h"
#include "marketfx.h"
#include "storage/bundle.h"
#include "storage/store.h"
#include "blobsrv.h"
#include "svcfx.h"
#include "testenv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* RESULTD2 is a second resultd that reads the store through the test's
 * blob server (which can hold a download half-way), with its own
 * temporary folder and short leases. */
enum { TASKD, ASSIGND, RESULTD, VALIDATIOND, NSVC, RESULTD2 = NSVC, NPROC };
static const char *const svc_names[NSVC] = { "taskd", "assignd", "resultd",
					     "validationd" };

static struct {
	struct mdb db;
	struct svcproc svc[NPROC];
	struct blobsrv *blobs;
	char tmp2[256]; /* RESULTD2's TMPDIR */
	char store_dir[256];
	char store_url[300];
	char escrow[CHAIN_ADDR_HEX];
	char operator_addr[CHAIN_ADDR_HEX];
	struct chain_key operator_key, creator;
	char creator_addr[CHAIN_ADDR_HEX];
	char assets_mlp[65];   /* model assets: Dense 4 -> 3 softmax */
	char assets_items[65]; /* annotation assets */
	char env[8][700];
} G;

/* ---------------------------------------------------------------- setup */

static void push_bundle(char out[65], const char *dir, enum store_kind kind,
			const json_t *model)
{
	struct store *st = NULL;
	struct store_ref ref;
	struct store_bundle_info info = { kind, "test", "1", NULL, NULL, model,
					  NULL };

	assert_int_equal(store_open(&st, G.store_url, NULL), FM_OK);
	if (store_bundle_push(st, &ref, NULL, dir, &info, NULL))
		fail_msg("push: %s", fm_error_msg());
	memcpy(out, ref.hex, 65);
	store_free(st);
}

static json_t *model_meta(void)
{
	return json_pack("{s:s, s:[{s:s, s:[n,i], s:s}], s:[{s:s, s:[n,i],"
			 " s:s}], s:i, s:s}",
			 "format", "tfjs-layers", "inputs", "name", "x",
			 "shape", 4, "dtype", "float32", "outputs", "name", "y",
			 "shape", 3, "dtype", "float32", "parameters", 15,
			 "engine_version", ML_VERSION);
}

/* A bundle folder holding model/ made from spec and seed. */
static void model_dir(char *dir, size_t n, const char *spec_json,
		      uint64_t seed, int poison)
{
	struct ml_model *m = NULL;
	json_t *spec = json_loads(spec_json, 0, NULL);
	char path[512];

	snprintf(dir, n, "/tmp/fm_svc_model_XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_non_null(spec);
	assert_int_equal(ml_model_from_spec(&m, spec, seed), FM_OK);
	if (poison) {
		size_t k;
		float *p = ml_model_params(m, &k);

		p[0] = 1.0f / 0.0f; /* Inf: must be refused */
	}
	snprintf(path, sizeof(path), "%s/model", dir);
	if (poison) {
		/* the engine refuses to save non-finite weights, so write
		 * the Inf after saving a finite copy */
		float *p;
		size_t k;

		p = ml_model_params(m, &k);
		p[0] = 0.5f;
		assert_int_equal(ml_model_save(m, path), FM_OK);
		FILE *f;
		char w[600];
		float inf = 1.0f / 0.0f;

		snprintf(w, sizeof(w), "%s/weights.bin", path);
		f = fopen(w, "r+b");
		assert_non_null(f);
		fwrite(&inf, sizeof(inf), 1, f);
		fclose(f);
	} else {
		assert_int_equal(ml_model_save(m, path), FM_OK);
	}
	ml_model_free(m);
	json_decref(spec);
}

static const char mlp_spec[] =
	"{\"name\":\"t\",\"input_shape\":[4],\"layers\":[{\"type\":\"dense\","
	"\"units\":3,\"activation\":\"softmax\"}]}";
static const char other_spec[] =
	"{\"name\":\"t\",\"input_shape\":[4],\"layers\":[{\"type\":\"dense\","
	"\"units\":5,\"activation\":\"relu\"},{\"type\":\"dense\","
	"\"units\":3,\"activation\":\"softmax\"}]}";

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* (Re)starts RESULTD2; extra is NULL or more settings ("KEY=VALUE",
 * NULL-terminated). */
static int start_resultd2_with(const char *const *extra)
{
	static char e[3][700];
	const char *env[16];
	int n = 0;

	snprintf(e[0], sizeof(e[0]),
		 "FEDMARKET_STORAGE_URL=http://127.0.0.1:%d", svcfx_port(NPROC));
	snprintf(e[1], sizeof(e[1]), "TMPDIR=%s", G.tmp2);
	snprintf(e[2], sizeof(e[2]), "FEDMARKET_IDEMPOTENCY_LEASE_S=3");
	env[n++] = G.env[0];
	for (int i = 2; i < 6; i++)
		env[n++] = G.env[i];
	for (int i = 0; i < 3; i++)
		env[n++] = e[i];
	for (int i = 0; extra && extra[i] && n < 15; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	return svcfx_start(&G.svc[RESULTD2], "resultd", svcfx_port(RESULTD2),
			   env);
}

static int start_resultd2(void)
{
	return start_resultd2_with(NULL);
}

static int setup(void **state)
{
	char dir[256];
	json_t *meta;
	const char *const *envp;

	(void)state;
	if (mdb_open(&G.db, 4))
		return -1;
	snprintf(G.store_dir, sizeof(G.store_dir), "/tmp/fm_svc_store_XXXXXX");
	if (!mkdtemp(G.store_dir))
		return -1;
	snprintf(G.store_url, sizeof(G.store_url), "file://%s", G.store_dir);
	if (chain_key_from_hex(&G.operator_key, CHAINFX_KEY0) ||
	    chain_key_from_hex(&G.creator, CHAINFX_KEY1))
		return -1;
	chainfx_addr_hex(G.operator_addr, &G.operator_key);
	chainfx_addr_hex(G.creator_addr, &G.creator);
	if (chainfx_deploy_escrow(G.escrow, &G.operator_key)) {
		fprintf(stderr, "deploy: %s\n", fm_error_msg());
		return -1;
	}
	model_dir(dir, sizeof(dir), mlp_spec, 1, 0);
	meta = model_meta();
	push_bundle(G.assets_mlp, dir, STORE_KIND_TASK_ASSETS, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
	snprintf(dir, sizeof(dir), "/tmp/fm_svc_items_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	write_file(dir, "items.json",
		   "{\"labels\":[\"cat\",\"dog\"],\"items\":[{\"id\":\"i1\","
		   "\"text\":\"meow\"},{\"id\":\"i2\",\"text\":\"woof\"}]}");
	push_bundle(G.assets_items, dir, STORE_KIND_TASK_ASSETS, NULL);
	tenv_sh("rm -rf %s", dir);

	snprintf(G.env[0], sizeof(G.env[0]), "FEDMARKET_DATABASE_URL=%s",
		 G.db.url);
	snprintf(G.env[1], sizeof(G.env[1]), "FEDMARKET_STORAGE_URL=%s",
		 G.store_url);
	snprintf(G.env[2], sizeof(G.env[2]), "FEDMARKET_ESCROW_ADDRESS=%s",
		 G.escrow);
	snprintf(G.env[3], sizeof(G.env[3]), "FEDMARKET_OPERATOR_ADDRESS=%s",
		 G.operator_addr);
	snprintf(G.env[4], sizeof(G.env[4]), "FEDMARKET_SWEEP_INTERVAL_S=1");
	snprintf(G.env[5], sizeof(G.env[5]), "FEDMARKET_LOG_LEVEL=warn");
	static const char *env[7];
	for (int i = 0; i < 6; i++)
		env[i] = G.env[i];
	env[6] = NULL;
	envp = env;
	for (int i = 0; i < NSVC; i++)
		if (svcfx_start(&G.svc[i], svc_names[i], svcfx_port(i), envp))
			return -1;
	snprintf(G.tmp2, sizeof(G.tmp2), "/tmp/fm_svc_tmp2_XXXXXX");
	if (!mkdtemp(G.tmp2) ||
	    blobsrv_start(&G.blobs, G.store_dir, svcfx_port(NPROC)))
		return -1;
	return start_resultd2();
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NPROC; i++)
		svcfx_stop(&G.svc[i]);
	blobsrv_stop(G.blobs);
	tenv_sh("rm -rf %s", G.tmp2);
	mdb_close(&G.db);
	tenv_sh("rm -rf %s", G.store_dir);
	return 0;
}

/* -------------------------------------------------------------- helpers */

static struct httpc *client(int svc, const struct chain_key *key)
{
	struct httpc_opts o = HTTPC_OPTS_INIT;
	struct httpc *c = NULL;

	o.base_url = G.svc[svc].url;
	o.retries = 0;
	if (key) {
		o.sign = reqsig_httpc_sign;
		o.sign_arg = (void *)key;
	}
	assert_int_equal(httpc_new(&c, &o), FM_OK);
	return c;
}

/* POSTs body (may be NULL: "{}") and returns the status; *out the JSON. */
static long post(int svc, const struct chain_key *key, const char *path,
		 const json_t *body, const char *idem, json_t **out)
{
	struct httpc *c = client(svc, key);
	struct httpc_resp r;
	json_t *empty = json_object();
	struct httpc_req q = { "POST", path, body ? body : empty, NULL, 0,
			       NULL, idem, NULL };
	long status;

	httpc_resp_init(&r);
	httpc_send(c, &q, &r);
	status = r.status;
	if (out) {
		*out = r.json;
		r.json = NULL;
	}
	httpc_resp_cleanup(&r);
	httpc_free(c);
	json_decref(empty);
	return status;
}

static long get(int svc, const char *path, json_t **out)
{
	struct httpc *c = client(svc, NULL);
	struct httpc_resp r;
	struct httpc_req q = { "GET", path, NULL, NULL, 0, NULL, NULL, NULL };
	long status;

	httpc_resp_init(&r);
	httpc_send(c, &q, &r);
	status = r.status;
	if (out) {
		*out = r.json;
		r.json = NULL;
	}
	httpc_resp_cleanup(&r);
	httpc_free(c);
	return status;
}

static const char *err_msg(json_t *o)
{
	const char *m = json_string_value(
		json_object_get(json_object_get(o, "error"), "message"));

	return m ? m : "";
}

static const char *sv(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A spec for assets, funded on chain (unless fund is 0); returns the new
 * reference. */
static json_t *funded_spec(const char *kind, const char *assets, int slots,
			   const char *strategy, int fund)
{
	json_t *spec = mfx_spec(slots);

	json_object_set_new(spec, "kind", json_string(kind));
	json_object_set_new(spec, "assets", json_string(assets));
	json_object_set_new(json_object_get(spec, "validation"), "strategy",
			    json_string(strategy));
	if (!strcmp(kind, "data_annotator"))
		json_object_del(spec, "training");
	else /* what the test model (Dense 4 -> 3) takes */
		json_object_set_new(json_object_get(json_object_get(spec,
								    "training"),
						     "data"),
				    "shape", json_pack("[i]", 4));
	if (fund &&
	    chainfx_fund(&G.creator, G.escrow, sv(spec, "task_id"),
			 G.operator_addr, (uint64_t)time(NULL) + 2 * 86400,
			 sv(spec, "reward_wei"), (uint32_t)slots))
		fail_msg("fund: %s", fm_error_msg());
	return spec;
}

#define path_of(out, n, fmt, id) snprintf((out), (n), fmt, (id))

/* ----------------------------------------------------------------- tests */

static void test_services__model_task_lifecycle(void **state)
{
	struct chain_key worker;
	char dir[256], ref[65], p[256], waddr[CHAIN_ADDR_HEX];
	json_t *spec, *task = NULL, *a = NULL, *r = NULL, *d = NULL;
	json_t *list = NULL, *meta;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	chainfx_addr_hex(waddr, &worker);
	spec = funded_spec("model_contributor", G.assets_mlp, 3, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	assert_string_equal(sv(task, "state"), "open");
	assert_non_null(sv(task, "funding_tx"));
	assert_string_equal(sv(task, "funded_wei"), "3000000000000000");

	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	assert_string_equal(sv(a, "contributor"), waddr);

	/* a result of the task's architecture, trained elsewhere */
	model_dir(dir, sizeof(dir), mlp_spec, 7, 0);
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	json_t *body = json_pack("{s:s, s:i, s:{s:f}}", "bundle", ref,
				 "num_examples", 600, "metrics", "accuracy",
				 0.8);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &r), 201);
	json_decref(body);
	assert_string_equal(sv(r, "state"), "submitted");
	assert_string_equal(sv(json_object_get(r, "checks"), "architecture"),
			    "same as the task's model");

	/* only the validator (the creator here) decides */
	path_of(p, sizeof(p), "/v1/results/%s/decision", sv(r, "id"));
	body = json_pack("{s:s}", "decision", "accept");
	assert_int_equal(post(VALIDATIOND, &worker, p, body, NULL, &d), 403);
	json_decref(d);
	assert_int_equal(post(VALIDATIOND, &G.creator, p, body, NULL, &d),
			 200);
	assert_string_equal(sv(d, "state"), "accepted");
	json_decref(d);
	assert_int_equal(post(VALIDATIOND, &G.creator, p, body, NULL, &d),
			 409);
	json_decref(d);
	json_decref(body);

	path_of(p, sizeof(p), "/v1/payouts?contributor=%s", waddr);
	assert_int_equal(get(VALIDATIOND, p, &list), 200);
	assert_int_equal(json_array_size(json_object_get(list, "payouts")), 1);
	json_decref(list);

	/* version 1 aggregates the accepted result */
	path_of(p, sizeof(p), "/v1/tasks/%s/models", sv(task, "id"));
	body = json_pack("{s:s, s:s, s:[s]}", "bundle", ref, "rule", "fedavg",
			 "results", sv(r, "id"));
	assert_int_equal(post(VALIDATIOND, &G.creator, p, body, NULL, &d),
			 201);
	assert_int_equal(json_integer_value(json_object_get(d, "version")), 1);
	json_decref(d);
	json_decref(body);
	assert_int_equal(get(TASKD, p, &list), 200);
	assert_int_equal(json_array_size(json_object_get(list, "models")), 2);
	json_decref(list);

	path_of(p, sizeof(p), "/v1/tasks/%s/results?state=accepted",
		sv(task, "id"));
	assert_int_equal(get(RESULTD, p, &list), 200);
	assert_int_equal(json_array_size(json_object_get(list, "results")), 1);
	json_decref(list);
	json_decref(spec);
	json_decref(task);
	json_decref(a);
	json_decref(r);
}

static void test_services__engineer_and_annotator_tasks(void **state)
{
	struct chain_key worker;
	char dir[256], ref[65], p[256];
	json_t *spec, *task = NULL, *a = NULL, *r = NULL, *body, *meta;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	/* model_engineer: another architecture with the same inputs and
	 * outputs is welcome */
	spec = funded_spec("model_engineer", G.assets_mlp, 2, "auto", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	model_dir(dir, sizeof(dir), other_spec, 3, 0);
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &r), 201);
	json_decref(body);
	/* the auto strategy accepts it within a sweep */
	for (int i = 0; i < 60; i++) {
		json_t *x = NULL;

		path_of(p, sizeof(p), "/v1/results/%s", sv(r, "id"));
		assert_int_equal(get(RESULTD, p, &x), 200);
		int done = !strcmp(sv(x, "state"), "accepted");
		json_decref(x);
		if (done)
			break;
		assert_true(i < 59);
		usleep(100000);
	}
	json_decref(spec);
	json_decref(task);
	json_decref(a);
	json_decref(r);

	/* data_annotator: labels of known items from the task's label set */
	spec = funded_spec("data_annotator", G.assets_items, 2, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	snprintf(dir, sizeof(dir), "/tmp/fm_svc_labels_XXXXXX");
	assert_non_null(mkdtemp(dir));
	write_file(dir, "labels.json",
		   "{\"labels\":{\"i1\":\"cat\",\"i2\":\"horse\"}}");
	push_bundle(ref, dir, STORE_KIND_RESULT, NULL);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &r), 422);
	assert_non_null(strstr(err_msg(r), "labels.i2: not one of the task's"));
	json_decref(r);
	json_decref(body);
	write_file(dir, "labels.json",
		   "{\"labels\":{\"i1\":\"cat\",\"i2\":\"dog\"}}");
	push_bundle(ref, dir, STORE_KIND_RESULT, NULL);
	tenv_sh("rm -rf %s", dir);
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &r), 201);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(r, "checks"), "labels")),
			 2);
	json_decref(body);
	json_decref(spec);
	json_decref(task);
	json_decref(a);
	json_decref(r);
}

/* Milliseconds since the epoch of an API timestamp
 * ("2024-05-01T12:00:00.000Z"); -1 when it is not one. */
static long long ts_ms(const char *ts)
{
	struct tm tm = { 0 };
	int ms = 0;

	if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year,
			  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			  &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_services__auto_approval_waits_for_its_delay(void **state)
{
	enum { DELAY_S = 3 };
	struct chain_key worker;
	char dir[256], ref[65], p[256], waddr[CHAIN_ADDR_HEX];
	json_t *spec, *task = NULL, *a = NULL, *r = NULL, *x = NULL;
	json_t *list = NULL, *y, *body, *meta;
	double t0;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	chainfx_addr_hex(waddr, &worker);
	spec = funded_spec("model_contributor", G.assets_mlp, 1, "auto", 1);
	json_object_set_new(json_object_get(spec, "validation"),
			    "auto_approval_delay_s", json_integer(DELAY_S));
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	assert_string_equal(sv(task, "validation_strategy"), "auto");
	assert_int_equal(json_integer_value(json_object_get(
				 task, "auto_approval_delay_s")),
			 DELAY_S);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	model_dir(dir, sizeof(dir), mlp_spec, 11, 0);
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 600);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &r), 201);
	t0 = now_s();
	json_decref(body);
	assert_string_equal(sv(r, "state"), "submitted");
	/* the deadline is the submission plus the delay, both on the
	 * database's clock */
	assert_true(ts_ms(sv(r, "submitted_at")) > 0);
	assert_int_equal(ts_ms(sv(r, "auto_accept_at")) -
				 ts_ms(sv(r, "submitted_at")),
			 DELAY_S * 1000);

	/* a sweep runs every second: the ones before the deadline leave it
	 * alone, one soon after it accepts */
	path_of(p, sizeof(p), "/v1/results/%s", sv(r, "id"));
	for (;;) {
		assert_int_equal(get(RESULTD, p, &x), 200);
		if (!strcmp(sv(x, "state"), "accepted"))
			break;
		assert_string_equal(sv(x, "state"), "submitted");
		json_decref(x);
		x = NULL;
		if (now_s() - t0 > DELAY_S + 5)
			fail_msg("not accepted %d s after the deadline", 5);
		usleep(100000);
	}
	if (now_s() - t0 < DELAY_S - 0.5)
		fail_msg("accepted after %.1f s, before its %d s delay",
			 now_s() - t0, DELAY_S);
	assert_true(ts_ms(sv(x, "decided_at")) >=
		    ts_ms(sv(x, "auto_accept_at")));
	assert_true(json_is_true(
		json_object_get(json_object_get(x, "decision"), "automatic")));

	/* the accept wrote its payout in the same transaction */
	path_of(p, sizeof(p), "/v1/payouts?contributor=%s", waddr);
	assert_int_equal(get(VALIDATIOND, p, &list), 200);
	assert_int_equal(json_array_size(json_object_get(list, "payouts")), 1);
	y = json_array_get(json_object_get(list, "payouts"), 0);
	assert_string_equal(sv(y, "result_id"), sv(r, "id"));
	assert_string_equal(sv(y, "task_id"), sv(task, "id"));
	assert_string_equal(sv(y, "amount_wei"), sv(spec, "reward_wei"));
	json_decref(list);
	json_decref(x);
	json_decref(spec);
	json_decref(task);
	json_decref(a);
	json_decref(r);
}

static void test_services__bad_input_gets_the_right_status(void **state)
{
	struct chain_key worker;
	char p[256], dir[256], ref[65];
	json_t *spec, *o = NULL, *task = NULL, *a = NULL, *body, *meta;
	struct httpc *c;
	struct httpc_resp r;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	/* malformed JSON: 400 with the position */
	c = client(TASKD, &G.creator);
	httpc_resp_init(&r);
	struct httpc_req raw = { "POST", "/v1/tasks", NULL, "{\"title\":", 9,
				 "application/json", NULL, NULL };
	httpc_send(c, &raw, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(err_msg(r.json), "line 1"));
	httpc_resp_cleanup(&r);
	httpc_free(c);

	/* JSON that is not a valid task spec: 422 naming the field */
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	json_object_set_new(json_object_get(spec, "training"), "batch_size",
			    json_integer(0));
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 422);
	assert_non_null(strstr(err_msg(o), "task.training.batch_size"));
	json_decref(o);
	json_decref(spec);

	/* assets missing from storage: 422 */
	spec = funded_spec("model_contributor",
			   "0000000000000000000000000000000000000000000000000"
			   "000000000000000",
			   2, "manual", 0);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 422);
	assert_non_null(strstr(err_msg(o), "task.assets"));
	json_decref(o);
	json_decref(spec);

	/* a model that cannot take the task's data: 422 naming both
	 * shapes, and no task */
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	json_object_set_new(json_object_get(json_object_get(spec, "training"),
					    "data"),
			    "shape", json_pack("[i,i,i]", 28, 28, 1));
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 422);
	if (!strstr(err_msg(o), "model takes input [4]") ||
	    !strstr(err_msg(o), "gives [28, 28, 1]"))
		fail_msg("message \"%s\" names both shapes", err_msg(o));
	json_decref(o);
	path_of(p, sizeof(p), "/v1/tasks/%s", sv(spec, "task_id"));
	assert_int_equal(get(TASKD, p, &o), 404);
	json_decref(o);
	json_decref(spec);
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	json_object_set_new(json_object_get(json_object_get(spec, "training"),
					    "data"),
			    "num_classes", json_integer(10));
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 422);
	if (!strstr(err_msg(o), "output [3]") ||
	    !strstr(err_msg(o), "10 classes"))
		fail_msg("message \"%s\" names outputs and classes",
			 err_msg(o));
	json_decref(o);
	json_decref(spec);

	/* unsigned: 401 */
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	assert_int_equal(post(TASKD, NULL, "/v1/tasks", spec, NULL, &o), 401);
	json_decref(o);
	/* not funded yet: accepted as a draft, opened once funded */
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	assert_string_equal(sv(task, "state"), "draft");
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &o), 409);
	json_decref(o);
	assert_int_equal(chainfx_fund(&G.creator, G.escrow, sv(spec, "task_id"),
				      G.operator_addr,
				      (uint64_t)time(NULL) + 2 * 86400,
				      sv(spec, "reward_wei"), 2),
			 FM_OK);
	path_of(p, sizeof(p), "/v1/tasks/%s", sv(task, "id"));
	for (int i = 0;; i++) {
		assert_int_equal(get(TASKD, p, &o), 200);
		int open = !strcmp(sv(o, "state"), "open");
		json_decref(o);
		if (open)
			break;
		assert_true(i < 100);
		usleep(100000);
	}
	/* the same task id twice: 409 */
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 409);
	json_decref(o);

	/* the creator cannot take the task: 403; unknown task: 404 */
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &G.creator, p, NULL, NULL, &o), 403);
	json_decref(o);
	assert_int_equal(post(ASSIGND, &worker,
			      "/v1/tasks/0x000000000000000000000000000000000"
			      "0000000000000000000000000000001/assignments",
			      NULL, NULL, &o),
			 404);
	json_decref(o);
	assert_int_equal(get(TASKD, "/v1/tasks/0x12", &o), 400);
	json_decref(o);

	/* a result of another architecture: 422, and the slot stays */
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	model_dir(dir, sizeof(dir), other_spec, 3, 0);
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	tenv_sh("rm -rf %s", dir);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 422);
	assert_non_null(strstr(err_msg(o), "architecture"));
	json_decref(o);
	json_decref(body);
	/* non-finite weights: 422 */
	model_dir(dir, sizeof(dir), mlp_spec, 3, 1);
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	tenv_sh("rm -rf %s", dir);
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 422);
	json_decref(o);
	json_decref(body);
	json_decref(meta);
	/* someone else's assignment: 403 */
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &G.creator, p, body, NULL, &o), 403);
	json_decref(o);
	json_decref(body);
	/* a body over the route's limit: 413 */
	char *big = malloc(100000);
	memset(big, 'x', 99999);
	big[99999] = '\0';
	body = json_pack("{s:s, s:i}", "bundle", big, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 413);
	json_decref(o);
	json_decref(body);
	free(big);

	json_decref(spec);
	json_decref(task);
	json_decref(a);
}

/* No answer names the server's own folders, hosts or ports: a bundle's
 * problem is named by its path in the bundle, a reward too large for
 * the escrow by its fields. */
/* A task paying by contribution caps each result at its round's pool on
 * chain (fundScored): funded with fund() it is refused, naming the cap. */
static void test_services__scored_task_needs_its_cap_on_chain(void **state)
{
	json_t *spec, *task = NULL, *e;
	char cap[80];
	int code;

	(void)state;
	for (int scored_funding = 0; scored_funding < 2; scored_funding++) {
		spec = funded_spec("model_contributor", G.assets_mlp, 3,
				   "manual", 0);
		json_object_set_new(spec, "reward",
				    json_pack("{s:s, s:s}", "per_result_wei",
					      sv(spec, "reward_wei"),
					      "scoring", "shapley"));
		assert_int_equal(spec_wei_mul(cap, sv(spec, "reward_wei"), 3),
				 FM_OK);
		assert_int_equal(chainfx_fund_scored(
					 &G.creator, G.escrow,
					 sv(spec, "task_id"), G.operator_addr,
					 (uint64_t)time(NULL) + 2 * 86400,
					 sv(spec, "reward_wei"), 3,
					 scored_funding ? cap : NULL),
				 FM_OK);
		code = post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &task);
		if (scored_funding) {
			assert_int_equal(code, 201);
			assert_string_equal(sv(task, "state"), "open");
		} else {
			assert_int_equal(code, 422);
			e = json_object_get(task, "error");
			if (!strstr(sv(e, "message"), "fund it with fundScored"))
				fail_msg("message: %s", sv(e, "message"));
		}
		json_decref(task);
		json_decref(spec);
	}
}

static void test_services__messages_name_no_server_detail(void **state)
{
	struct chain_key worker;
	char p[256], dir[256], ref[65];
	json_t *spec, *o = NULL, *task = NULL, *a = NULL, *body, *meta;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	/* 10^73 x 100000 is over 2^256 */
	spec = funded_spec("model_contributor", G.assets_mlp, 100000,
			   "manual", 0);
	json_object_set_new(spec, "reward_wei",
			    json_string("1000000000000000000000000000000000000"
					"0000000000000000000000000000000000000"));
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 422);
	if (!strstr(err_msg(o), "task.reward_wei x rounds x results_per_round"))
		fail_msg("message \"%s\" names the three factors", err_msg(o));
	json_decref(o);
	path_of(p, sizeof(p), "/v1/tasks/%s", sv(spec, "task_id"));
	assert_int_equal(get(TASKD, p, &o), 404);
	json_decref(o);
	json_decref(spec);

	/* a result whose model.json is broken */
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	model_dir(dir, sizeof(dir), mlp_spec, 5, 0);
	char mdir[300];
	snprintf(mdir, sizeof(mdir), "%s/model", dir);
	write_file(mdir, "model.json", "{\"format\": \"layers-model\", ");
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 422);
	if (!strstr(err_msg(o), "model/model.json") ||
	    strstr(err_msg(o), "/tmp") || strstr(err_msg(o), "fedmarket-"))
		fail_msg("message \"%s\" names model/model.json and no "
			 "server folder", err_msg(o));
	json_decref(o);
	json_decref(body);
	json_decref(spec);
	json_decref(task);
	json_decref(a);
}

/* Sends a request with hand-made signature headers. */
static long send_signed(int svc, const char *path, const char *body,
			const struct reqsig_headers *h, json_t **out)
{
	char cmd[4096], resp[4096];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "curl -s -o - -w '\\n%%{http_code}' -X POST '%s%s' "
		 "-H 'Content-Type: application/json' "
		 "-H '" REQSIG_HDR_ADDRESS ": %s' "
		 "-H '" REQSIG_HDR_TIMESTAMP ": %s' "
		 "-H '" REQSIG_HDR_NONCE ": %s' "
		 "-H '" REQSIG_HDR_SIGNATURE ": %s' --data '%s'",
		 G.svc[svc].url, path, h->address, h->timestamp, h->nonce,
		 h->signature, body);
	rc = tenv_sh_out(resp, sizeof(resp), "%s", cmd);
	assert_int_equal(rc, 0);
	char *nl = strrchr(resp, '\n');
	assert_non_null(nl);
	*nl = '\0';
	if (out)
		*out = json_loads(resp, 0, NULL);
	return strtol(nl + 1, NULL, 10);
}

static void test_services__forged_replayed_stale_signatures(void **state)
{
	struct chain_key worker, other;
	struct reqsig_headers h;
	char p[256], wa[CHAIN_ADDR_HEX];
	json_t *spec, *task = NULL, *o = NULL;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	assert_int_equal(chain_key_generate(&other), FM_OK);
	chainfx_addr_hex(wa, &worker);
	spec = funded_spec("model_contributor", G.assets_mlp, 5, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	struct reqsig_msg m = { "POST", p, "{}", 2 };

	/* forged: signed by other, claiming to be worker */
	assert_int_equal(reqsig_sign(&h, &other, &m, (int64_t)time(NULL)),
			 FM_OK);
	memcpy(h.address, wa, sizeof(h.address));
	assert_int_equal(send_signed(ASSIGND, p, "{}", &h, &o), 401);
	json_decref(o);
	/* tampered body */
	assert_int_equal(reqsig_sign(&h, &worker, &m, (int64_t)time(NULL)),
			 FM_OK);
	assert_int_equal(send_signed(ASSIGND, p, "{ }", &h, &o), 401);
	json_decref(o);
	/* stale */
	assert_int_equal(reqsig_sign(&h, &worker, &m,
				     (int64_t)time(NULL) - 3600),
			 FM_OK);
	assert_int_equal(send_signed(ASSIGND, p, "{}", &h, &o), 401);
	assert_non_null(strstr(err_msg(o), "imestamp"));
	json_decref(o);
	/* good once, refused when replayed */
	assert_int_equal(reqsig_sign(&h, &worker, &m, (int64_t)time(NULL)),
			 FM_OK);
	assert_int_equal(send_signed(ASSIGND, p, "{}", &h, &o), 201);
	json_decref(o);
	assert_int_equal(send_signed(ASSIGND, p, "{}", &h, &o), 401);
	assert_non_null(strstr(err_msg(o), "replay"));
	json_decref(o);
	json_decref(spec);
	json_decref(task);
}

static void test_services__idempotency_key(void **state)
{
	json_t *spec, *t1 = NULL, *t2 = NULL, *o = NULL;

	(void)state;
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, "key-1",
			      &t1),
			 201);
	/* same key, same request: the same answer, not a 409 duplicate */
	long st = post(TASKD, &G.creator, "/v1/tasks", spec, "key-1", &t2);
	if (st != 201)
		fail_msg("replay answered %ld: %s", st, err_msg(t2));
	assert_true(json_equal(t1, t2));
	/* same key, another request: 409 */
	json_object_set_new(spec, "title", json_string("changed"));
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, "key-1",
			      &o),
			 409);
	assert_non_null(strstr(err_msg(o), "different request"));
	json_decref(o);
	json_decref(spec);
	json_decref(t1);
	json_decref(t2);
}

/* A result bundle for the test model with two extra files of pad_mib
 * MiB of random bytes each; its reference into ref, and into pad_key the
 * store path ("sha256/<hex>") of the extra blob a fetch takes last (in
 * sha256 order), so that holding it leaves the other one complete. */
static void padded_result(char ref[65], char pad_key[80], int pad_mib,
			  uint64_t seed)
{
	char dir[256], path[300];
	struct store_ref pref[2];
	json_t *meta;

	model_dir(dir, sizeof(dir), mlp_spec, seed, 0);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/pad%d.bin", dir, i);
		assert_int_equal(tenv_sh("head -c %dM /dev/urandom > %s",
					 pad_mib, path),
				 0);
		assert_int_equal(store_hash_file(&pref[i], NULL, path), FM_OK);
	}
	snprintf(pad_key, 80, "sha256/%s",
		 strcmp(pref[0].hex, pref[1].hex) > 0 ? pref[0].hex
						      : pref[1].hex);
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
}

/* An active assignment of a new worker on a new open task: its id into
 * id (37 bytes). */
static void new_assignment(char id[37], struct chain_key *worker)
{
	json_t *spec, *task = NULL, *a = NULL;
	char p[256];

	assert_int_equal(chain_key_generate(worker), FM_OK);
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, worker, p, NULL, NULL, &a), 201);
	snprintf(id, 37, "%s", sv(a, "id"));
	json_decref(spec);
	json_decref(task);
	json_decref(a);
}

struct poster {
	int svc;
	const struct chain_key *key;
	const char *path;
	const json_t *body;
	const char *idem;
	pthread_barrier_t *go;
	long status;
	json_t *out;
};

static void *poster_main(void *arg)
{
	struct poster *q = arg;

	if (q->go)
		pthread_barrier_wait(q->go);
	q->status = post(q->svc, q->key, q->path, q->body, q->idem, &q->out);
	return NULL;
}

/* Bytes under dir (du -sb); -1 when it cannot be read. */
static long long du(const char *dir)
{
	char out[64];

	if (tenv_sh_out(out, sizeof(out), "du -sb '%s' | cut -f1", dir))
		return -1;
	return atoll(out);
}

/* resultd is killed in the middle of a download made under an
 * Idempotency-Key. The restarted process removes what the killed one
 * left in its temporary folder, and the client's retry with the same key
 * runs once the key's lease (3 s here) has passed: a 409 "still being
 * processed" until then, never for ever. */
static void test_services__submit_retried_after_a_crash(void **state)
{
	struct chain_key worker;
	struct poster q = { 0 };
	pthread_t t;
	char id[37], p[256], ref[65], pad[80], found[512];
	json_t *body, *o = NULL;
	long long left;
	long st = 0;
	double t0;

	(void)state;
	new_assignment(id, &worker);
	padded_result(ref, pad, 8, 21);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", id);
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	blobsrv_hold(G.blobs, pad);
	q = (struct poster){ RESULTD2, &worker, p, body, "submit-1", NULL, 0,
			     NULL };
	assert_int_equal(pthread_create(&t, NULL, poster_main, &q), 0);
	for (int i = 0; i < 200 && blobsrv_held(G.blobs) < 1; i++)
		usleep(50000);
	assert_int_equal(blobsrv_held(G.blobs), 1);
	/* the other 8 MiB file arrived in the check's folder */
	for (int i = 0; i < 100 && du(G.tmp2) < (8 << 20); i++)
		usleep(20000);
	assert_true(du(G.tmp2) >= (8 << 20));
	svcfx_kill(&G.svc[RESULTD2]);
	pthread_join(t, NULL);
	json_decref(q.out);
	assert_int_equal(q.status, 0); /* no answer: the process died */
	blobsrv_release(G.blobs);

	assert_int_equal(start_resultd2(), 0);
	/* the new process's folder is all there is, and it is empty but for
	 * its lock */
	assert_int_equal(tenv_sh_out(found, sizeof(found),
				     "cd '%s' && ls -A | wc -l", G.tmp2),
			 0);
	assert_string_equal(found, "1");
	left = du(G.tmp2);
	if (left > 64 * 1024)
		fail_msg("%lld bytes left in the temporary folder", left);

	t0 = now_s();
	for (;;) {
		o = NULL;
		st = post(RESULTD2, &worker, p, body, "submit-1", &o);
		if (st != 409)
			break;
		/* the key's lease, then the assignment's claim, run out */
		if (!strstr(err_msg(o), "still being processed") &&
		    !strstr(err_msg(o), "is being checked"))
			fail_msg("the retry answered 409 \"%s\"", err_msg(o));
		json_decref(o);
		if (now_s() - t0 > 15)
			fail_msg("still 409 after %.0f s", now_s() - t0);
		usleep(250000);
	}
	if (st != 201)
		fail_msg("the retry answered %ld: %s", st, err_msg(o));
	assert_string_equal(sv(o, "state"), "submitted");
	json_decref(o);
	/* and the same key now replays the answer */
	assert_int_equal(post(RESULTD2, &worker, p, body, "submit-1", &o),
			 201);
	json_decref(o);
	json_decref(body);
}

/* POSTs body (JSON text) signed by key with curl, keeping the answer's
 * headers: the status, and the raw answer into out. */
static long post_raw(int svc, const struct chain_key *key, const char *path,
		     const char *body, const char *idem, char *out, size_t n)
{
	struct reqsig_headers h;
	struct reqsig_msg m = { "POST", path, body, strlen(body) };
	char idem_h[128] = "";
	int rc;

	assert_int_equal(reqsig_sign(&h, key, &m, (int64_t)time(NULL)),
			 FM_OK);
	if (idem)
		snprintf(idem_h, sizeof(idem_h), "-H 'Idempotency-Key: %s'",
			 idem);
	rc = tenv_sh_out(out, n,
			 "curl -s -i -X POST '%s%s' "
			 "-H 'Content-Type: application/json' %s "
			 "-H '" REQSIG_HDR_ADDRESS ": %s' "
			 "-H '" REQSIG_HDR_TIMESTAMP ": %s' "
			 "-H '" REQSIG_HDR_NONCE ": %s' "
			 "-H '" REQSIG_HDR_SIGNATURE ": %s' --data '%s'",
			 G.svc[svc].url, path, idem_h, h.address, h.timestamp,
			 h.nonce, h.signature, body);
	assert_int_equal(rc, 0);
	return strncmp(out, "HTTP/1.1 ", 9) ? -1 : strtol(out + 9, NULL, 10);
}

/* Eight submissions of one assignment at once (the attack wrote 7.2 GiB
 * of temporary files): the first claims it and downloads, the seven
 * others are refused with 409 at once, without downloading anything. */
static void test_services__concurrent_submits_download_once(void **state)
{
	enum { N = 8 };
	struct chain_key worker;
	struct poster q[N];
	pthread_t t[N];
	pthread_barrier_t go;
	char id[37], p[256], ref[65], pad[80], raw[4096];
	json_t *body;
	int refused = 0;
	double t0;

	(void)state;
	new_assignment(id, &worker);
	padded_result(ref, pad, 8, 31);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", id);
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	blobsrv_hold(G.blobs, pad);
	uint64_t sent0 = blobsrv_bytes(G.blobs);
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		q[i] = (struct poster){ RESULTD2, &worker, p, body, NULL, &go,
					0, NULL };
		assert_int_equal(pthread_create(&t[i], NULL, poster_main, &q[i]),
				 0);
	}
	t0 = now_s();
	for (int i = 0; i < 200 && blobsrv_held(G.blobs) < 1; i++)
		usleep(20000);
	assert_int_equal(blobsrv_held(G.blobs), 1);
	/* the others answer while the first still downloads */
	for (int i = 0; i < 100 && refused < N - 1; i++) {
		refused = 0;
		for (int k = 0; k < N; k++)
			refused += q[k].status == 409;
		usleep(20000);
	}
	printf("%d of %d concurrent submits refused within %.2f s, while "
	       "the first downloads; %d download(s) begun\n", refused, N,
	       now_s() - t0, blobsrv_gets(G.blobs, pad));
	assert_int_equal(refused, N - 1);
	/* and one more, to see its Retry-After */
	char *text = json_dumps(body, JSON_COMPACT);
	assert_int_equal(post_raw(RESULTD2, &worker, p, text, NULL, raw,
				  sizeof(raw)),
			 409);
	assert_non_null(strcasestr(raw, "\nRetry-After: "));
	assert_non_null(strstr(raw, "is being checked"));
	free(text);
	blobsrv_release(G.blobs);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		if (q[i].status == 201)
			ok++;
		else if (q[i].status != 409 ||
			 !strstr(err_msg(q[i].out), "is being checked"))
			fail_msg("submit %d answered %ld: %s", i, q[i].status,
				 err_msg(q[i].out));
		json_decref(q[i].out);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(ok, 1);
	assert_int_equal(blobsrv_gets(G.blobs, pad), 1);
	printf("bytes downloaded by %d concurrent submits: %llu (the bundle "
	       "once)\n", N,
	       (unsigned long long)(blobsrv_bytes(G.blobs) - sent0));
	json_decref(body);
}

/* A result bundle of one blob of kib KiB listed copies times: its
 * reference into ref, the blob's store path into key. */
static void repeated_result(char ref[65], char key[80], int kib, int copies)
{
	char dir[256], path[300];
	struct store_ref r;

	snprintf(dir, sizeof(dir), "/tmp/fm_svc_rep_XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/labels.json", dir);
	assert_int_equal(tenv_sh("echo '{\"labels\":{}}' > %s", path), 0);
	snprintf(path, sizeof(path), "%s/big0.bin", dir);
	assert_int_equal(tenv_sh("head -c %dK /dev/urandom > %s", kib, path),
			 0);
	assert_int_equal(store_hash_file(&r, NULL, path), FM_OK);
	snprintf(key, 80, "sha256/%s", r.hex);
	for (int i = 1; i < copies; i++)
		assert_int_equal(tenv_sh("cp %s/big0.bin %s/big%d.bin", dir,
					 dir, i),
				 0);
	push_bundle(ref, dir, STORE_KIND_RESULT, NULL);
	tenv_sh("rm -rf %s", dir);
}

/* task.max_result_bytes is weighed against the sizes the manifest
 * declares before anything is fetched: one 400 KiB blob listed three
 * times is 1.2 MiB, over a 1 MiB limit, and never downloaded; under a
 * 2 MiB limit it is downloaded once for its three paths. */
static void test_services__result_size_weighed_before_fetching(void **state)
{
	struct chain_key worker;
	char ref[65], key[80], p[256];
	json_t *spec, *task = NULL, *a = NULL, *o = NULL, *body;
	long long limits[2] = { 1 << 20, 2 << 20 };

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	repeated_result(ref, key, 400, 3);
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	for (int i = 0; i < 2; i++) {
		spec = funded_spec("data_annotator", G.assets_items, 2,
				   "manual", 1);
		json_object_set_new(spec, "max_result_bytes",
				    json_integer(limits[i]));
		assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec,
				      NULL, &task),
				 201);
		assert_int_equal(json_integer_value(json_object_get(
					 json_object_get(task, "spec"),
					 "max_result_bytes")),
				 limits[i]);
		path_of(p, sizeof(p), "/v1/tasks/%s/assignments",
			sv(task, "id"));
		assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a),
				 201);
		path_of(p, sizeof(p), "/v1/assignments/%s/result",
			sv(a, "id"));
		if (i == 0) {
			assert_int_equal(post(RESULTD2, &worker, p, body, NULL,
					      &o),
					 422);
			if (!strstr(err_msg(o), "over the limit of 1048576 "
					    "(task.max_result_bytes)"))
				fail_msg("message \"%s\"", err_msg(o));
			assert_int_equal(blobsrv_gets(G.blobs, key), 0);
		} else {
			assert_int_equal(post(RESULTD2, &worker, p, body, NULL,
					      &o),
					 201);
			assert_int_equal(blobsrv_gets(G.blobs, key), 1);
		}
		json_decref(o);
		json_decref(a);
		json_decref(task);
		json_decref(spec);
	}
	json_decref(body);
}

/* resultd checks result_checks_max results at once, within
 * result_tmp_max_bytes of temporary space reserved from the manifests'
 * sizes: a check that does not fit now is 503 with Retry-After, and runs
 * when retried later. */
static void test_services__resultd_bounds_its_checks(void **state)
{
	static const char *const one_slot[] = {
		"FEDMARKET_RESULT_CHECKS_MAX=1", NULL
	};
	static const char *const small_space[] = {
		"FEDMARKET_RESULT_TMP_MAX_BYTES=25165824", NULL /* 24 MiB */
	};
	const char *const *cases[2] = { one_slot, small_space };
	struct chain_key w1, w2;
	char id1[37], id2[37], p1[256], p2[256], ref1[65], ref2[65];
	char pad1[80], pad2[80], raw[4096];

	(void)state;
	padded_result(ref1, pad1, 8, 41);
	padded_result(ref2, pad2, 8, 42);
	for (int c = 0; c < 2; c++) {
		struct poster q = { 0 };
		pthread_t t;
		json_t *b1 = json_pack("{s:s, s:i}", "bundle", ref1,
				 "num_examples", 100);
		char *b2 = NULL;

		svcfx_stop(&G.svc[RESULTD2]);
		assert_int_equal(start_resultd2_with(cases[c]), 0);
		new_assignment(id1, &w1);
		new_assignment(id2, &w2);
		path_of(p1, sizeof(p1), "/v1/assignments/%s/result", id1);
		path_of(p2, sizeof(p2), "/v1/assignments/%s/result", id2);
		blobsrv_hold(G.blobs, pad1);
		q = (struct poster){ RESULTD2, &w1, p1, b1, NULL, NULL, 0,
				     NULL };
		assert_int_equal(pthread_create(&t, NULL, poster_main, &q), 0);
		for (int i = 0; i < 200 && blobsrv_held(G.blobs) < 1; i++)
			usleep(20000);
		assert_int_equal(blobsrv_held(G.blobs), 1);
		/* a second 16 MiB check: no slot, or no room */
		json_t *jb = json_pack("{s:s, s:i}", "bundle", ref2,
				 "num_examples", 100);
		b2 = json_dumps(jb, JSON_COMPACT);
		json_decref(jb);
		int gets2 = blobsrv_gets(G.blobs, pad2);
		assert_int_equal(post_raw(RESULTD2, &w2, p2, b2, "busy-1", raw,
					  sizeof(raw)),
				 503);
		assert_non_null(strcasestr(raw, "\nRetry-After: 5"));
		assert_non_null(strstr(raw, c ? "temporary space"
					       : "checks are running"));
		assert_int_equal(blobsrv_gets(G.blobs, pad2), gets2);
		blobsrv_release(G.blobs);
		pthread_join(t, NULL);
		assert_int_equal(q.status, 201);
		json_decref(q.out);
		/* later, with the same key: it runs */
		assert_int_equal(post_raw(RESULTD2, &w2, p2, b2, "busy-1", raw,
					  sizeof(raw)),
				 201);
		free(b2);
		json_decref(b1);
	}
	svcfx_stop(&G.svc[RESULTD2]);
	assert_int_equal(start_resultd2(), 0);
}

static void sql(const char *text);

/* Funds spec's task on chain as funded_spec does. */
static void fund_spec(json_t *spec)
{
	if (chainfx_fund(&G.creator, G.escrow, sv(spec, "task_id"),
			 G.operator_addr, (uint64_t)time(NULL) + 2 * 86400,
			 sv(spec, "reward_wei"),
			 (uint32_t)json_integer_value(json_object_get(
				 spec, "max_assignments"))))
		fail_msg("fund: %s", fm_error_msg());
}

/* The state of task id as taskd shows it, into out (16 bytes). */
static void task_state(char out[16], const char *id)
{
	char p[256];
	json_t *o = NULL;

	path_of(p, sizeof(p), "/v1/tasks/%s", id);
	assert_int_equal(get(TASKD, p, &o), 200);
	snprintf(out, 16, "%s", sv(o, "state"));
	json_decref(o);
}

/* Draft spam (105 drafts from a key without ETH kept a funded draft a
 * draft for 10 minutes): a creator holds 20 unfunded drafts at most, the
 * drafts are no longer scanned oldest first but opened from the
 * escrow's Funded logs, and drafts left unfunded expire. */
static void test_services__draft_spam_does_not_stall_funding(void **state)
{
	enum { SPAMMERS = 6, EACH = 20 };
	struct chain_key spam[SPAMMERS];
	json_t *spec, *o = NULL, *first = NULL;
	char st[16], q[512];
	double t0;

	(void)state;
	t0 = now_s();
	for (int k = 0; k < SPAMMERS; k++) {
		assert_int_equal(chain_key_generate(&spam[k]), FM_OK);
		for (int i = 0; i < EACH; i++) {
			spec = funded_spec("model_contributor", G.assets_mlp,
					   2, "manual", 0);
			assert_int_equal(post(TASKD, &spam[k], "/v1/tasks",
					      spec, NULL, &o),
					 201);
			if (k == 0 && i == 0)
				first = json_incref(o);
			json_decref(o);
			json_decref(spec);
		}
	}
	printf("%d unfunded drafts posted in %.1f s\n", SPAMMERS * EACH,
	       now_s() - t0);
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	assert_int_equal(post(TASKD, &spam[0], "/v1/tasks", spec, NULL, &o),
			 409);
	assert_non_null(strstr(err_msg(o), "max_drafts_per_creator"));
	json_decref(o);
	json_decref(spec);

	/* a draft funded after it was posted opens within a sweep or two */
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &o),
			 201);
	assert_string_equal(sv(o, "state"), "draft");
	json_decref(o);
	fund_spec(spec);
	t0 = now_s();
	for (;;) {
		task_state(st, sv(spec, "task_id"));
		if (!strcmp(st, "open"))
			break;
		assert_string_equal(st, "draft");
		if (now_s() - t0 > 15)
			fail_msg("still a draft %.0f s after its funding",
				 now_s() - t0);
		usleep(100000);
	}
	printf("a draft funded behind %d others opened %.2f s after its "
	       "funding\n", SPAMMERS * EACH, now_s() - t0);
	json_decref(spec);

	/* unfunded for longer than draft_ttl_s (a day), or past its expiry:
	 * expired, and the creator may post again */
	snprintf(q, sizeof(q),
		 "UPDATE tasks SET created_at = now() - interval '2 days'"
		 " WHERE id = '%s'", sv(first, "id"));
	sql(q);
	snprintf(q, sizeof(q),
		 "UPDATE tasks SET expires_at = now() - interval '1 minute'"
		 " WHERE id = (SELECT id FROM tasks WHERE creator = '%s' AND"
		 " state = 'draft' AND id <> '%s' LIMIT 1)",
		 sv(first, "creator"), sv(first, "id"));
	sql(q);
	t0 = now_s();
	for (;;) {
		json_t *page = NULL;
		char p[256];

		path_of(p, sizeof(p), "/v1/tasks?state=expired&creator=%s",
			sv(first, "creator"));
		assert_int_equal(get(TASKD, p, &page), 200);
		size_t n = json_array_size(json_object_get(page, "tasks"));
		json_decref(page);
		if (n == 2)
			break;
		if (now_s() - t0 > 10)
			fail_msg("%zu of 2 drafts expired", n);
		usleep(100000);
	}
	task_state(st, sv(first, "id"));
	assert_string_equal(st, "expired");
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);
	assert_int_equal(post(TASKD, &spam[0], "/v1/tasks", spec, NULL, &o),
			 201);
	json_decref(o);
	json_decref(spec);
	json_decref(first);
}

/* Milliseconds a GET /healthz on a new connection takes to answer 200;
 * -1 when it is not answered so within 5 s. */
static double probe_ms(int svc)
{
	struct sockaddr_in a = { 0 };
	struct timeval tv = { 5, 0 };
	const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n"
			   "Connection: close\r\n\r\n";
	char buf[256];
	double t0 = now_s(), ms = -1;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)G.svc[svc].port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) ==
		    (ssize_t)sizeof(req) - 1 &&
	    (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		if (strstr(buf, " 200 "))
			ms = (now_s() - t0) * 1000;
	}
	close(fd);
	return ms;
}

/* Slowloris against taskd with its default settings: 1,100 connections
 * from this host, each trickling one header line a second, more than
 * the 1,024 a process could hold before. A probe from the same host
 * answers within a second all along, and the server cuts the trickling
 * requests at their 10 s deadline. */
static void test_services__slowloris_leaves_room(void **state)
{
	enum { SOCKS = 1100 };
	static int fd[SOCKS];
	struct rlimit rl;
	struct sockaddr_in a = { 0 };
	const char head[] = "GET /v1/tasks HTTP/1.1\r\nHost: t\r\n";
	double t0, worst = 0, at[] = { 1, 3, 6, 9 };
	int open_n = 0, probes = 0, cut = 0;

	(void)state;
	/* this process holds the attacker's sockets */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < SOCKS + 200)
		skip();
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)G.svc[TASKD].port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < SOCKS; i++) {
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(fd[i] >= 0);
		connect(fd[i], (struct sockaddr *)&a, sizeof(a));
	}
	usleep(200000);
	for (int i = 0; i < SOCKS; i++)
		open_n += send(fd[i], head, sizeof(head) - 1, MSG_NOSIGNAL) > 0;
	assert_true(open_n > SOCKS - 10);
	t0 = now_s();
	for (int k = 0; now_s() - t0 < 12.5; k++) {
		/* a header line a second on each socket */
		for (int i = 0; i < SOCKS; i++)
			if (fd[i] >= 0 &&
			    send(fd[i], "X-Slow: y\r\n", 11, MSG_NOSIGNAL) < 0) {
				close(fd[i]);
				fd[i] = -1;
				cut++;
			}
		while (probes < (int)(sizeof(at) / sizeof(at[0])) &&
		       now_s() - t0 >= at[probes]) {
			double ms = probe_ms(TASKD);

			printf("probe at %.1f s under %d trickling connections: "
			       "%.1f ms\n", now_s() - t0, SOCKS - cut, ms);
			if (ms < 0 || ms > 1000)
				fail_msg("probe %d answered in %.0f ms", probes,
					 ms);
			worst = ms > worst ? ms : worst;
			probes++;
		}
		usleep(250000);
	}
	/* past the deadline the server closed them: reading shows the end */
	for (int i = 0; i < SOCKS; i++) {
		char c;

		if (fd[i] < 0)
			continue;
		if (recv(fd[i], &c, 1, MSG_DONTWAIT) == 0 || errno == ECONNRESET ||
		    errno == EPIPE)
			cut++;
		close(fd[i]);
	}
	printf("worst probe %.1f ms; %d of %d trickling connections cut "
	       "by the 10 s deadline\n", worst, cut, SOCKS);
	assert_int_equal(probes, 4);
	if (cut < SOCKS - 10)
		fail_msg("only %d of %d trickling connections were cut", cut,
			 SOCKS);
}

/* Runs sql on the test's database (triggers that stage a race). */
static void sql(const char *text)
{
	struct db_conn *c = NULL;

	assert_int_equal(db_acquire(G.db.pool, &c, 1000), FM_OK);
	if (db_exec(c, NULL, text, 0, NULL))
		fail_msg("%s: %s", text, fm_error_msg());
	db_release(G.db.pool, c);
}

/* taskd creates a funded task as a draft, then opens it; its sweeper
 * opens funded drafts too. When the sweeper comes first, the handler's
 * open finds no draft: the task was created all the same, so the answer
 * is 201 with the open task, read again. A trigger opens the draft as
 * the sweeper would, before the handler's open step. */
static void test_services__create_answers_201_when_the_sweeper_opened_first(
	void **state)
{
	json_t *spec, *task = NULL, *again = NULL;
	char p[256];
	long st;

	(void)state;
	sql("CREATE FUNCTION open_like_the_sweeper() RETURNS trigger"
	    " LANGUAGE plpgsql AS $$ BEGIN"
	    "  UPDATE tasks SET state = 'open', funding_tx = '0x' ||"
	    "   repeat('ab', 32), funded_wei = reward_wei * max_assignments,"
	    "   updated_at = now() WHERE id = NEW.id AND state = 'draft';"
	    "  RETURN NULL; END $$");
	sql("CREATE TRIGGER open_like_the_sweeper AFTER INSERT ON tasks"
	    " FOR EACH ROW WHEN (NEW.title = 'opened by the sweeper first')"
	    " EXECUTE FUNCTION open_like_the_sweeper()");
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 1);
	json_object_set_new(spec, "title",
			    json_string("opened by the sweeper first"));
	st = post(TASKD, &G.creator, "/v1/tasks", spec, NULL, &task);
	sql("DROP TRIGGER open_like_the_sweeper ON tasks");
	sql("DROP FUNCTION open_like_the_sweeper()");
	if (st != 201)
		fail_msg("create answered %ld: %s", st, err_msg(task));
	assert_string_equal(sv(task, "id"), sv(spec, "task_id"));
	assert_string_equal(sv(task, "state"), "open");
	assert_string_equal(sv(task, "funding_tx"),
			    "0xabababababababababababababababab"
			    "abababababababababababababababab");
	/* what taskd answered is what it stored */
	path_of(p, sizeof(p), "/v1/tasks/%s", sv(task, "id"));
	assert_int_equal(get(TASKD, p, &again), 200);
	assert_true(json_equal(task, again));
	json_decref(again);
	json_decref(spec);
	json_decref(task);
}

struct racer {
	const char *path;
	long status;
	pthread_barrier_t *go;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;
	struct chain_key k;
	json_t *o = NULL;

	chain_key_generate(&k);
	pthread_barrier_wait(r->go);
	r->status = post(ASSIGND, &k, r->path, NULL, NULL, &o);
	json_decref(o);
	return NULL;
}

static void test_services__fifty_racers_ten_slots_over_http(void **state)
{
	enum { RACERS = 50, SLOTS = 10 };

	(void)state;
	for (int round = 0; round < 3; round++) {
		struct racer r[RACERS];
		pthread_t t[RACERS];
		pthread_barrier_t go;
		json_t *spec, *task = NULL;
		char p[256];
		int ok = 0, full = 0;

		spec = funded_spec("model_contributor", G.assets_mlp, SLOTS,
				   "manual", 1);
		assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec,
				      NULL, &task),
				 201);
		path_of(p, sizeof(p), "/v1/tasks/%s/assignments",
			sv(task, "id"));
		pthread_barrier_init(&go, NULL, RACERS);
		for (int i = 0; i < RACERS; i++) {
			r[i] = (struct racer){ p, 0, &go };
			pthread_create(&t[i], NULL, race_main, &r[i]);
		}
		for (int i = 0; i < RACERS; i++) {
			pthread_join(t[i], NULL);
			ok += r[i].status == 201;
			full += r[i].status == 409;
		}
		pthread_barrier_destroy(&go);
		assert_int_equal(ok, SLOTS);
		assert_int_equal(full, RACERS - SLOTS);
		json_decref(spec);
		json_decref(task);
	}
}

static void test_services__serve_again_after_database_restart(void **state)
{
	json_t *o = NULL;

	(void)state;
	assert_int_equal(get(TASKD, "/v1/tasks?limit=1", &o), 200);
	json_decref(o);
	assert_int_equal(tenv_sh("%s/deploy/local/stack pg-restart >/dev/null"
				 " 2>&1",
				 tenv_require("FM_TOP")),
			 0);
	for (int i = 0; i < NSVC; i++) {
		long st = 0;

		/* the first request may meet the dead connection and retry */
		for (int k = 0; k < 20 && st != 200; k++) {
			st = get(i, i == TASKD	      ? "/v1/tasks?limit=1"
				    : i == VALIDATIOND ? "/v1/payouts"
						       : "/healthz",
				 &o);
			json_decref(o);
			o = NULL;
			if (st != 200)
				usleep(200000);
		}
		assert_int_equal(st, 200);
	}
}

/* pg_ctl on the stack's cluster, as its owner when we are root (pg_ctl
 * refuses to run as root); returns its exit status. */
static int pg_ctl(const char *args)
{
	return tenv_sh("as=; [ \"$(id -u)\" -ne 0 ] || as='runuser -u "
		       "postgres --'; $as '%s/pg_ctl' -D '%s' %s >/dev/null"
		       " 2>&1",
		       tenv_require("FM_PGBIN"), tenv_require("FM_PG_DATA"),
		       args);
}

static int pg_start(void)
{
	return tenv_sh("%s/deploy/local/stack pg-restart >/dev/null 2>&1",
		       tenv_require("FM_TOP"));
}

/* Runs even when the test failed: the suite's later tests need the
 * database. */
static int pg_running(void **state)
{
	(void)state;
	return pg_ctl("status") == 0 || pg_start() == 0 ? 0 : -1;
}

struct probe {
	int svc;
	const struct chain_key *key; /* signed POST; NULL: GET */
	char path[256];
	const json_t *body;
	const char *idem;
	long ok; /* the status once the database is back */
	long status;
	char code[32];
	char msg[256];
};

static struct probe *probe_add(struct probe *q, int *n, int svc, long ok,
			       const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static struct probe *probe_add(struct probe *q, int *n, int svc, long ok,
			       const char *fmt, ...)
{
	struct probe *e = &q[(*n)++];
	va_list ap;

	e->svc = svc;
	e->ok = ok;
	va_start(ap, fmt);
	vsnprintf(e->path, sizeof(e->path), fmt, ap);
	va_end(ap);
	return e;
}

static void probe_run(struct probe *q)
{
	json_t *o = NULL;
	const char *c;

	q->status = q->key ? post(q->svc, q->key, q->path, q->body, q->idem,
				  &o)
			   : get(q->svc, q->path, &o);
	c = json_string_value(
		json_object_get(json_object_get(o, "error"), "code"));
	snprintf(q->code, sizeof(q->code), "%s", c ? c : "");
	snprintf(q->msg, sizeof(q->msg), "%s", err_msg(o));
	json_decref(o);
}

static void test_services__database_down_is_503(void **state)
{
	enum { NPROBE = 6 + NSVC };
	struct chain_key worker, other;
	struct probe q[NPROBE], *e;
	char p[256], waddr[CHAIN_ADDR_HEX];
	json_t *spec, *draft, *task = NULL, *a = NULL;
	int n = 0, stopped, started;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	assert_int_equal(chain_key_generate(&other), FM_OK);
	chainfx_addr_hex(waddr, &worker);
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	draft = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 0);

	/* reads and signed writes of every service, and each /healthz */
	memset(q, 0, sizeof(q));
	e = probe_add(q, &n, ASSIGND, 201, "%s", p);
	e->key = &other;
	e = probe_add(q, &n, TASKD, 201, "/v1/tasks");
	e->key = &G.creator;
	e->body = draft;
	e->idem = "db-down-1";
	probe_add(q, &n, TASKD, 200, "/v1/tasks/%s", sv(task, "id"));
	probe_add(q, &n, ASSIGND, 200, "/v1/assignments/%s", sv(a, "id"));
	probe_add(q, &n, RESULTD, 200, "/v1/tasks/%s/results",
		  sv(task, "id"));
	probe_add(q, &n, VALIDATIOND, 200, "/v1/payouts?contributor=%s",
		  waddr);
	for (int i = 0; i < NSVC; i++)
		probe_add(q, &n, i, 200, "/healthz");
	assert_int_equal(n, NPROBE);

	/* nothing asserted until the database is back: later tests need
	 * it (and pg_running brings it back should this test die) */
	stopped = pg_ctl("-m fast -w -t 60 stop");
	for (int i = 0; i < n; i++)
		probe_run(&q[i]);
	started = pg_start();
	assert_int_equal(stopped, 0);
	assert_int_equal(started, 0);
	for (int i = 0; i < n; i++)
		if (q[i].status != 503 || strcmp(q[i].code, "unavailable"))
			fail_msg("database down: %s %s%s answered %ld \"%s\", "
				 "not 503 \"unavailable\"",
				 svc_names[q[i].svc], q[i].key ? "POST " : "",
				 q[i].path, q[i].status, q[i].code);
	/* libpq's text (the database's host and port) stays in the log */
	for (int i = 0; i < n; i++)
		if (strstr(q[i].msg, "port") ||
		    strstr(q[i].msg, tenv_require("FM_PORT_BASE")) ||
		    strstr(q[i].msg, "127.0.0.1"))
			fail_msg("database down: %s %s answered \"%s\"",
				 svc_names[q[i].svc], q[i].path, q[i].msg);

	/* back: the same requests (the signed ones with a fresh nonce, the
	 * idempotency key unused) go through at once */
	for (int i = 0; i < n; i++) {
		probe_run(&q[i]);
		if (q[i].status != q[i].ok)
			fail_msg("database back: %s %s%s answered %ld \"%s\", "
				 "not %ld",
				 svc_names[q[i].svc], q[i].key ? "POST " : "",
				 q[i].path, q[i].status, q[i].code, q[i].ok);
	}
	json_decref(spec);
	json_decref(draft);
	json_decref(task);
	json_decref(a);
}

static void test_services__info_and_metrics(void **state)
{
	json_t *o = NULL;
	char text[256];

	(void)state;
	assert_int_equal(get(VALIDATIOND, "/v1/info", &o), 200);
	assert_string_equal(sv(o, "escrow_address"), G.escrow);
	assert_string_equal(sv(o, "operator_address"), G.operator_addr);
	assert_int_equal(json_integer_value(json_object_get(o, "chain_id")),
			 31337);
	json_decref(o);
	assert_int_equal(tenv_sh_out(text, sizeof(text),
				     "curl -s %s/metrics | grep -c '^[a-z]'",
				     G.svc[TASKD].url),
			 0);
	assert_true(atoi(text) > 0);
}

/* A two-round task over HTTP: the task and its current round, a result
 * naming its base version (a stale one refused), the round list with
 * the version's figures, the same contributor in round 2, and taskd's
 * sweeper extending a round past its deadline. */
static void test_services__rounds_over_http(void **state)
{
	struct chain_key worker;
	char dir[256], ref[65], p[256], id[67];
	json_t *spec, *task = NULL, *a = NULL, *r = NULL, *d = NULL, *o = NULL;
	json_t *body, *meta, *rounds, *r1;

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	spec = funded_spec("model_contributor", G.assets_mlp, 1, "manual", 0);
	json_object_set_new(spec, "rounds", json_integer(2));
	json_object_set_new(spec, "round_duration_s", json_integer(300));
	if (chainfx_fund(&G.creator, G.escrow, sv(spec, "task_id"),
			 G.operator_addr, (uint64_t)time(NULL) + 2 * 86400,
			 sv(spec, "reward_wei"), 2))
		fail_msg("fund: %s", fm_error_msg());
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	snprintf(id, sizeof(id), "%s", sv(task, "id"));
	assert_string_equal(sv(task, "state"), "open");
	assert_string_equal(sv(task, "funded_wei"), "2000000000000000");
	assert_int_equal(json_integer_value(json_object_get(task, "rounds")),
			 2);
	assert_string_equal(sv(task, "aggregation_mode"), "sync");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(task, "round"), "round")),
			 1);
	assert_string_equal(sv(json_object_get(task, "round"), "state"),
			    "open");
	json_decref(task);

	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", id);
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	assert_int_equal(json_integer_value(json_object_get(a, "round")), 1);
	model_dir(dir, sizeof(dir), mlp_spec, 9, 0);
	meta = model_meta();
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i, s:i}", "bundle", ref,
			 "base_version", 1, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 409);
	if (!strstr(err_msg(o), "result trained from version 1; the current "
				"version is 0"))
		fail_msg("stale result told \"%s\"", err_msg(o));
	json_decref(o);
	json_decref(body);
	body = json_pack("{s:s, s:s, s:i}", "bundle", ref,
			 "base_version", "0", "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 400);
	if (!strstr(err_msg(o), "base_version"))
		fail_msg("bad base_version told \"%s\"", err_msg(o));
	json_decref(o);
	json_decref(body);
	body = json_pack("{s:s, s:i, s:i}", "bundle", ref,
			 "base_version", 0, "num_examples", 100);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &r), 201);
	json_decref(body);
	assert_int_equal(json_integer_value(json_object_get(r, "round")), 1);
	assert_int_equal(
		json_integer_value(json_object_get(r, "base_version")), 0);
	path_of(p, sizeof(p), "/v1/results/%s/decision", sv(r, "id"));
	body = json_pack("{s:s}", "decision", "accept");
	assert_int_equal(post(VALIDATIOND, &G.creator, p, body, NULL, &d),
			 200);
	json_decref(body);
	json_decref(d);
	path_of(p, sizeof(p), "/v1/tasks/%s", id);
	assert_int_equal(get(TASKD, p, &task), 200);
	assert_true(json_is_true(json_object_get(json_object_get(task,
								 "round"),
						 "ready")));
	json_decref(task);

	path_of(p, sizeof(p), "/v1/tasks/%s/models", id);
	body = json_pack("{s:s, s:s, s:{s:f, s:f}, s:[s]}", "bundle", ref,
			 "rule", "fedavg", "metrics", "accuracy", 0.625,
			 "loss", 0.75, "results", sv(r, "id"));
	assert_int_equal(post(VALIDATIOND, &G.creator, p, body, NULL, &d),
			 201);
	json_decref(d);
	/* the same round again: already published */
	assert_int_equal(post(VALIDATIOND, &G.creator, p, body, NULL, &d),
			 409);
	if (!strstr(err_msg(d), "version 1 was already published"))
		fail_msg("second publisher told \"%s\"", err_msg(d));
	json_decref(d);
	json_decref(body);

	path_of(p, sizeof(p), "/v1/tasks/%s/rounds", id);
	assert_int_equal(get(TASKD, p, &o), 200);
	rounds = json_object_get(o, "rounds");
	assert_int_equal(json_array_size(rounds), 2);
	r1 = json_array_get(rounds, 0);
	assert_string_equal(sv(r1, "state"), "published");
	assert_int_equal(json_integer_value(json_object_get(r1, "version")),
			 1);
	assert_true(json_real_value(json_object_get(r1, "accuracy")) == 0.625);
	assert_true(json_real_value(json_object_get(r1, "loss")) == 0.75);
	assert_string_equal(sv(r1, "owed_wei"), sv(spec, "reward_wei"));
	assert_string_equal(sv(json_array_get(rounds, 1), "state"), "open");
	json_decref(o);
	assert_int_equal(get(TASKD,
			     "/v1/tasks/0x00000000000000000000000000000000"
			     "00000000000000000000000000000000/rounds",
			     &o),
			 404);
	json_decref(o);

	/* round 2: the same contributor again */
	json_decref(a);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", id);
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	assert_int_equal(json_integer_value(json_object_get(a, "round")), 2);

	/* past its deadline with no result, taskd's sweeper gives round 2
	 * one more round_duration_s */
	{
		char q[400];

		snprintf(q, sizeof(q),
			 "UPDATE task_rounds SET deadline_at = now() -"
			 " interval '1 second' WHERE task_id = '%s' AND"
			 " round = 2",
			 id);
		sql(q);
	}
	path_of(p, sizeof(p), "/v1/tasks/%s", id);
	for (int i = 0; i < 100; i++) {
		int extended;

		assert_int_equal(get(TASKD, p, &task), 200);
		extended = json_is_true(json_object_get(
			json_object_get(task, "round"), "extended"));
		json_decref(task);
		if (extended)
			break;
		usleep(100000);
	}
	assert_int_equal(get(TASKD, p, &task), 200);
	assert_true(json_is_true(json_object_get(json_object_get(task,
								 "round"),
						 "extended")));
	assert_string_equal(sv(task, "state"), "open");
	json_decref(task);
	json_decref(a);
	json_decref(r);
	json_decref(spec);
}

/* A model result pushed from a folder made from seed; extra (a file name,
 * or NULL) is added beside model/ so the bundle differs but the weights
 * do not. */
static void seeded_result(char ref[65], uint64_t seed, const char *extra)
{
	char dir[256];
	json_t *meta = model_meta();

	model_dir(dir, sizeof(dir), mlp_spec, seed, 0);
	if (extra)
		write_file(dir, extra, "notes\n");
	push_bundle(ref, dir, STORE_KIND_RESULT, meta);
	json_decref(meta);
	tenv_sh("rm -rf %s", dir);
}

/* A fresh key takes a slot and submits another contributor's bundle, or
 * the same weights in a new bundle: 409 naming the first result, and
 * the slot stays free for real work. */
static void test_services__copies_are_refused(void **state)
{
	struct chain_key honest, copier;
	char ref[65], same_w[65], own[65], p[256], id[67];
	json_t *spec, *task = NULL, *a = NULL, *b = NULL, *r = NULL, *o = NULL;
	json_t *body, *checks;

	(void)state;
	assert_int_equal(chain_key_generate(&honest), FM_OK);
	assert_int_equal(chain_key_generate(&copier), FM_OK);
	spec = funded_spec("model_contributor", G.assets_mlp, 2, "manual", 1);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	snprintf(id, sizeof(id), "%s", sv(task, "id"));
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", id);
	assert_int_equal(post(ASSIGND, &honest, p, NULL, NULL, &a), 201);
	assert_int_equal(post(ASSIGND, &copier, p, NULL, NULL, &b), 201);

	seeded_result(ref, 21, NULL);
	seeded_result(same_w, 21, "NOTES.txt");
	seeded_result(own, 22, NULL);
	assert_string_not_equal(ref, same_w);

	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &honest, p, body, NULL, &r), 201);
	json_decref(body);
	checks = json_object_get(r, "checks");
	assert_int_equal(strlen(sv(checks, "weights_sha256")), 64);

	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(b, "id"));
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 100);
	assert_int_equal(post(RESULTD, &copier, p, body, NULL, &o), 409);
	if (!strstr(err_msg(o), sv(r, "id")) ||
	    !strstr(err_msg(o), "has the same bundle: copies are not paid"))
		fail_msg("copied bundle told \"%s\"", err_msg(o));
	json_decref(o);
	json_decref(body);

	body = json_pack("{s:s, s:i}", "bundle", same_w, "num_examples", 100);
	assert_int_equal(post(RESULTD, &copier, p, body, NULL, &o), 409);
	if (!strstr(err_msg(o), sv(r, "id")) ||
	    !strstr(err_msg(o), "has the same weights: copies are not paid"))
		fail_msg("copied weights told \"%s\"", err_msg(o));
	json_decref(o);
	json_decref(body);

	/* refused submissions change nothing: the copier's own work goes in */
	body = json_pack("{s:s, s:i}", "bundle", own, "num_examples", 100);
	assert_int_equal(post(RESULTD, &copier, p, body, NULL, &o), 201);
	assert_string_not_equal(sv(json_object_get(o, "checks"),
				   "weights_sha256"),
				sv(checks, "weights_sha256"));
	json_decref(o);
	json_decref(body);
	path_of(p, sizeof(p), "/v1/tasks/%s/results", id);
	assert_int_equal(get(RESULTD, p, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "results")), 2);
	json_decref(o);
	json_decref(spec);
	json_decref(task);
	json_decref(a);
	json_decref(b);
	json_decref(r);
}

/* num_examples is a FedAvg weight: required, at least 1 and at most the
 * task's max_examples_per_result (422 naming both), checked before
 * anything is downloaded; a refusal leaves the assignment to its owner. */
static void test_services__examples_are_capped(void **state)
{
	struct chain_key worker;
	char ref[65], p[256];
	json_t *spec, *task = NULL, *a = NULL, *o = NULL, *body;
	static const long long bad[] = { 501, 0, -3, 1LL << 40 };

	(void)state;
	assert_int_equal(chain_key_generate(&worker), FM_OK);
	spec = funded_spec("model_contributor", G.assets_mlp, 1, "manual", 0);
	json_object_set_new(spec, "max_examples_per_result",
			    json_integer(500));
	fund_spec(spec);
	assert_int_equal(post(TASKD, &G.creator, "/v1/tasks", spec, NULL,
			      &task),
			 201);
	path_of(p, sizeof(p), "/v1/tasks/%s/assignments", sv(task, "id"));
	assert_int_equal(post(ASSIGND, &worker, p, NULL, NULL, &a), 201);
	seeded_result(ref, 31, NULL);
	path_of(p, sizeof(p), "/v1/assignments/%s/result", sv(a, "id"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[120];

		body = json_pack("{s:s, s:I}", "bundle", ref, "num_examples",
				 (json_int_t)bad[i]);
		assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o),
				 422);
		snprintf(want, sizeof(want), "num_examples: %lld is not in 1 to "
			 "500 (task.max_examples_per_result)", bad[i]);
		if (strcmp(err_msg(o), want))
			fail_msg("num_examples %lld told \"%s\"", bad[i],
				 err_msg(o));
		json_decref(o);
		json_decref(body);
	}
	body = json_pack("{s:s}", "bundle", ref);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 422);
	if (!strstr(err_msg(o), "num_examples: required") ||
	    !strstr(err_msg(o), "1 to 500 (task.max_examples_per_result)"))
		fail_msg("no num_examples told \"%s\"", err_msg(o));
	json_decref(o);
	json_decref(body);
	body = json_pack("{s:s, s:s}", "bundle", ref, "num_examples", "9");
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 400);
	json_decref(o);
	json_decref(body);
	body = json_pack("{s:s, s:i}", "bundle", ref, "num_examples", 500);
	assert_int_equal(post(RESULTD, &worker, p, body, NULL, &o), 201);
	assert_int_equal(json_integer_value(json_object_get(o,
							    "num_examples")),
			 500);
	json_decref(o);
	json_decref(body);
	json_decref(spec);
	json_decref(task);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services__model_task_lifecycle),
		cmocka_unit_test(test_services__engineer_and_annotator_tasks),
		cmocka_unit_test(
			test_services__auto_approval_waits_for_its_delay),
		cmocka_unit_test(test_services__bad_input_gets_the_right_status),
		cmocka_unit_test(test_services__scored_task_needs_its_cap_on_chain),
		cmocka_unit_test(
			test_services__messages_name_no_server_detail),
		cmocka_unit_test(
			test_services__forged_replayed_stale_signatures),
		cmocka_unit_test(test_services__idempotency_key),
		cmocka_unit_test(test_services__submit_retried_after_a_crash),
		cmocka_unit_test(
			test_services__concurrent_submits_download_once),
		cmocka_unit_test(
			test_services__result_size_weighed_before_fetching),
		cmocka_unit_test(test_services__resultd_bounds_its_checks),
		cmocka_unit_test(
			test_services__create_answers_201_when_the_sweeper_opened_first),
		cmocka_unit_test(
			test_services__draft_spam_does_not_stall_funding),
		cmocka_unit_test(
			test_services__fifty_racers_ten_slots_over_http),
		cmocka_unit_test(test_services__info_and_metrics),
		cmocka_unit_test(test_services__rounds_over_http),
		cmocka_unit_test(test_services__copies_are_refused),
		cmocka_unit_test(test_services__examples_are_capped),
		cmocka_unit_test(test_services__slowloris_leaves_room),
		cmocka_unit_test(
			test_services__serve_again_after_database_restart),
		cmocka_unit_test_teardown(test_services__database_down_is_503,
					  pg_running),
	};

	log_init("services_test", LOG_WARN, 0);
	return cmocka_run_group_tests_name("services", tests, setup, teardown);
}
