/* validationd: the task's validator accepts or rejects results (an accept
 * writes its payout row in the same transaction), the auto strategy's
 * approvals, model version publishing, and the payout listing. */
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"
#include "http/server.h"
#include "market/market.h"
#include "chain/keystore.h"
#include "chain/sig.h"
#include "core/buf.h"
#include "payout/payout.h"
#include "service/checks.h"
#include "service/svc.h"

#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The operator key: only this process holds it. */
static struct chain_key operator_key;
static int have_key;

static int decide(struct http_req *req, void *arg)
{
	static const char *const keys[] = { "decision", "reason", "metrics",
					    NULL };
	static const char *const verdicts[] = { "accept", "reject", NULL };
	struct svc *s = arg;
	struct market_decision_in in = { 0 };
	json_t *body = NULL, *out = NULL, *metrics = NULL;
	int verdict, err;

	err = http_req_json(req, &body);
	if (err)
		goto done;
	err = fj_no_unknown(body, "", keys);
	if (err)
		goto done;
	err = fj_enum(body, "", "decision", verdicts, &verdict);
	if (err)
		goto done;
	err = fj_str_opt(body, "", "reason", 2000, NULL, &in.reason);
	if (err)
		goto done;
	err = fj_obj_opt(body, "", "metrics", &metrics);
	if (err)
		goto done;
	in.result_id = http_req_param(req, "id");
	in.validator = http_req_auth(req);
	in.accept = verdict == 0;
	in.metrics = metrics;
	err = market_decide(s->db, &out, &in);
	if (err)
		goto done;
	err = http_respond_json(req, 200, out);
done:
	json_decref(body);
	return err;
}

static int publish(struct http_req *req, void *arg)
{
	static const char *const keys[] = { "bundle", "rule", "metrics",
					    "results", "scoring", NULL };
	static const char *const scoring_keys[] = { "report", NULL };
	struct svc *s = arg;
	json_t *body = NULL, *results = NULL, *out = NULL, *metrics = NULL;
	json_t *scoring = NULL, *report = NULL;
	const char *bundle = NULL, *rule = NULL, *report_ref = NULL;
	int err;

	err = http_req_json(req, &body);
	if (err)
		goto done;
	err = fj_no_unknown(body, "", keys);
	if (err)
		goto done;
	err = fj_str(body, "", "bundle", 64, &bundle);
	if (err)
		goto done;
	err = fj_str_opt(body, "", "rule", 64, NULL, &rule);
	if (err)
		goto done;
	err = fj_arr(body, "", "results", 100000, &results);
	if (err)
		goto done;
	err = fj_obj_opt(body, "", "metrics", &metrics);
	if (err)
		goto done;
	err = fj_obj_opt(body, "", "scoring", &scoring);
	if (err)
		goto done;
	if (scoring) {
		err = fj_no_unknown(scoring, "scoring", scoring_keys);
		if (err)
			goto done;
		err = fj_str(scoring, "scoring", "report", 71, &report_ref);
		if (err)
			goto done;
		err = checks_report(&report, s, report_ref);
		if (err)
			goto done;
	}
	err = market_model_publish_scored(s->db, &out,
					  http_req_param(req, "id"),
					  http_req_auth(req), bundle, rule,
					  metrics, results, report,
					  report ? report_ref : NULL);
	if (err)
		goto done;
	err = http_respond_json(req, 201, out);
done:
	json_decref(report);
	json_decref(body);
	return err;
}

static int payouts(struct http_req *req, void *arg)
{
	static const char *const allowed[] = { "contributor", "task", NULL };
	struct svc *s = arg;
	const char *who = NULL, *task = NULL;
	json_t *out = NULL;
	int err;

	err = http_req_query_no_unknown(req, allowed);
	if (err)
		return err;
	err = http_req_query_str(req, "contributor", 42, NULL, &who);
	if (err)
		return err;
	err = http_req_query_str(req, "task", 66, NULL, &task);
	if (err)
		return err;
	err = market_payout_list(s->db, &out, who, task);
	return err ? err : http_respond_json(req, 200, out);
}

static int sweep(struct svc *s)
{
	int n = 0;
	int err = market_auto_accept(s->db, &n);

	if (err)
		return err;
	if (n)
		log_info("auto-accepted %d result(s)", n);
	return FM_OK;
}

/* Loads the operator keystore; its password comes from a file or the
 * environment, never from the command line. */
static int init(struct svc *s)
{
	char pw[KS_PASSWORD_MAX];
	const char *password = s->cfg.operator_password;
	int err;

	if (!s->cfg.operator_keystore[0]) {
		log_warn("no operator_keystore: decisions are recorded, "
			 "payouts wait until a key is configured");
		return FM_OK;
	}
	if (s->cfg.operator_password_file[0]) {
		err = ks_password_from_file(pw, s->cfg.operator_password_file);
		if (err)
			return err;
		password = pw;
	}
	err = ks_load(&operator_key, s->cfg.operator_keystore, password);
	sodium_memzero(pw, sizeof(pw));
	if (err)
		return fm_error_prefix("operator keystore %s",
				       s->cfg.operator_keystore);
	if (!s->cfg.escrow_address[0])
		return fm_error_set(FM_EINVAL,
				    "escrow_address is required to pay out");
	have_key = 1;
	s->operator_address[0] = '0';
	s->operator_address[1] = 'x';
	hex_encode(s->operator_address + 2, operator_key.addr,
		   CHAIN_ADDR_LEN);
	return FM_OK;
}

/* Payout states as gauges, read from the database each round. */
static void export_states(struct svc *s, struct http_metric *g)
{
	struct db_conn *c = NULL;
	PGresult *r = NULL;

	if (db_acquire(s->db, &c, 2000))
		return;
	if (db_exec(c, &r,
		    "SELECT s.state, count(p.id) FROM (SELECT unnest($1::text[])"
		    " AS state) s LEFT JOIN payouts p ON p.state = s.state"
		    " GROUP BY s.state",
		    DB_ARGS("{queued,signed,broadcast,confirmed,failed}")))
		goto done;
	for (int i = 0; i < PQntuples(r); i++)
		http_metric_set(g, PQgetvalue(r, i, 0),
				strtod(PQgetvalue(r, i, 1), NULL));
done:
	PQclear(r);
	db_release(s->db, c);
}

/* One round of the worker, its events counted in sent; the pause before
 * the next round, longer while the chain or the database is away. */
static long pay_round(struct svc *s, struct payout_worker *w,
		      struct http_metric *sent, struct http_metric *states,
		      long pause)
{
	struct payout_stats st = { 0 };
	int busy = 0;
	int err = payout_worker_step(w, &st, &busy);

	http_metric_add(sent, "broadcast", st.broadcast);
	http_metric_add(sent, "confirmed", st.confirmed);
	http_metric_add(sent, "requeued", st.requeued);
	http_metric_add(sent, "failed", st.failed);
	http_metric_add(sent, "replaced", st.replaced);
	http_metric_add(sent, "refund", st.refunds);
	export_states(s, states);
	if (st.confirmed || st.failed)
		log_info("payouts: %d confirmed, %d failed, %d requeued",
			 st.confirmed, st.failed, st.requeued);
	if (err) {
		/* chain or database away: keep the queue, back off */
		log_warn("payout round: %s", fm_error_msg());
		return pause * 2 > 30000 ? 30000 : pause * 2;
	}
	return s->cfg.payout_poll_ms;
}

static int pay(struct svc *s)
{
	struct payout_opts o = {
		s->cfg.rpc_url, s->cfg.escrow_address, &operator_key,
		(uint64_t)s->cfg.chain_id, (int)s->cfg.payout_batch_size,
		(int)s->cfg.confirmations, s->cfg.payout_stuck_timeout_s, 10
	};
	struct payout_worker *w = NULL;
	struct http_metric *states = NULL, *sent = NULL;
	long pause = s->cfg.payout_poll_ms;
	int err;

	if (!have_key)
		return FM_OK;
	err = payout_worker_new(&w, s->db, &o);
	if (err)
		goto done;
	err = http_metrics_gauge(http_server_metrics(s->http),
				 "fedmarket_payouts", "Payouts by state",
				 "state", &states);
	if (err)
		goto done;
	err = http_metrics_counter(http_server_metrics(s->http),
				   "fedmarket_payout_events_total",
				   "Payout worker events", "event", &sent);
	if (err)
		goto done;
	while (!svc_wait(s, pause))
		pause = pay_round(s, w, sent, states, pause);
	chain_key_wipe(&operator_key);
done:
	payout_worker_free(w);
	return err;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/info", svc_info, 0, 0 },
	{ "POST", "/v1/results/{id:uuid}/decision", decide, 65536,
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
	{ "POST", "/v1/tasks/{id:hash}/models", publish, 1 << 22,
	  HTTP_SIGNED | HTTP_IDEMPOTENT },
	{ "GET", "/v1/payouts", payouts, 0, 0 },
};

int main(int argc, char **argv)
{
	static const struct svc_def def = {
		"validationd", routes, sizeof(routes) / sizeof(routes[0]), init, sweep,
		pay, offsetof(struct fm_config, validationd_listen)
	};

	return svc_main(&def, argc, argv);
}
