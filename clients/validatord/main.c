/* fedmarket-validatord: the validator of one task or of every task that
 * names this key as its validator with the custom strategy. Each pass
 * pulls the submitted results, verifies and evaluates them on held-out
 * data, posts accept/reject decisions with their metrics and reasons, and
 * publishes the next model version once the task's current round is
 * ready (task.round.ready), round after round: a synchronous task's
 * version combines the accepted results of its round, an asynchronous
 * task's every accepted result not yet in a version, weighted by
 * staleness. All state lives in the marketplace, so a restart resumes
 * where it stopped (a decision already recorded is a 409, skipped; a
 * version is published once: a second publisher gets a 409). SIGTERM
 * finishes the decision in progress and exits. */
#include "policy.h"

#include "cli/round.h"
#include "cli/rounds.h"
#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"
#include "core/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_TASKS 64

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

struct opts {
	const char *tasks[MAX_TASKS];
	size_t ntasks;
	const char *data;
	const char *gold_file;
	long interval_s;
	long round_wait_s;
	int once;
	int publish_worse;
};

/* What the daemon keeps between passes. */
struct watch {
	struct ml_dataset holdout;
	int have;       /* holdout is loaded */
	json_t *gold;   /* --gold's labels, or NULL */
	json_t *refused; /* {task id: [version, results]}: rounds refused */
};

/* The tasks to watch: the ones named, else every task whose validator
 * is this key and whose strategy is custom. */
static int watched(struct cli *c, const struct opts *o, json_t **out)
{
	struct api *a = NULL;
	json_t *list = json_array(), *page = NULL, *t;
	size_t i;
	int err = cli_api(c, 0, &a);

	if (err)
		goto done;
	for (i = 0; i < o->ntasks; i++) {
		err = api_task(a, o->tasks[i], &t);
		if (err)
			goto done;
		json_array_append_new(list, t);
	}
	if (o->ntasks)
		goto done;
	err = api_get(a, API_TASKD, "/v1/tasks?limit=200", &page);
	if (err)
		goto done;
	json_array_foreach(json_object_get(page, "tasks"), i, t)
		if (!strcmp(cli_str(t, "validator"), c->addr) &&
		    !strcmp(cli_str(t, "validation_strategy"), "custom") &&
		    strcmp(cli_str(t, "state"), "draft"))
			json_array_append(list, t);
done:
	json_decref(page);
	if (err) {
		json_decref(list);
		return err;
	}
	*out = list;
	return FM_OK;
}

static int post_verdict(struct cli *c, const char *task_id,
			const struct verdict *v)
{
	char path[120];
	struct api *a = NULL;
	json_t *body = json_pack("{s:s, s:O}", "decision",
				 v->accept ? "accept" : "reject", "metrics",
				 v->metrics);
	json_t *out = NULL;
	int err = cli_api(c, 1, &a);

	if (err)
		goto done;
	if (!v->accept)
		json_object_set_new(body, "reason", json_string(v->reason));
	snprintf(path, sizeof(path), "/v1/results/%s/decision", v->result_id);
	err = api_post(a, API_VALIDATIOND, path, body, &out);
	if (err == FM_ECONFLICT) {
		log_info("task %.12s: result %s was already decided", task_id,
			 v->result_id);
		err = FM_OK;
	} else if (err) {
		goto done;
	} else if (v->accept) {
		log_info("task %.12s: accepted result %s of %s", task_id,
			 v->result_id, v->contributor);
	} else {
		log_info("task %.12s: rejected result %s of %s: %s", task_id,
			 v->result_id, v->contributor, v->reason);
	}
done:
	json_decref(body);
	json_decref(out);
	return err;
}

static void log_published(const json_t *task, const struct round_report *r)
{
	const json_t *ver = r->version;
	char line[1024] = "";

	if (r->scores)
		round_scores_line(line, sizeof(line), r->scores);
	log_info("task %.12s: published version %lld (%s of %zu results)%s%s",
		 cli_str(task, "id"),
		 (long long)json_integer_value(json_object_get(ver, "version")),
		 cli_str(ver, "rule"),
		 json_array_size(json_object_get(ver, "results")),
		 line[0] ? ": " : "", line);
	if (r->scoring) {
		size_t i, n = 0;
		json_t *x;

		line[0] = '\0';
		json_array_foreach(json_object_get(r->scoring, "results"), i,
				   x) {
			char eth[64];

			cli_format_wei(eth, sizeof(eth),
				       cli_str(x, "amount_wei"));
			if (n < sizeof(line))
				n += (size_t)snprintf(
					line + n, sizeof(line) - n,
					"%s %.8s phi %+.4f: %s", i ? "," : "",
					cli_str(x, "result_id"),
					json_number_value(json_object_get(
						x, "phi")),
					eth);
		}
		log_info("task %.12s: round %lld scored (%s Shapley, report "
			 "%s):%s", cli_str(task, "id"),
			 (long long)json_integer_value(json_object_get(
				 r->scoring, "round")),
			 cli_str(r->scoring, "method"), r->scoring_ref, line);
	}
}

/* A round whose new version measured worse: said once, with what to
 * do about it. */
static void log_refused(const json_t *task, const struct round_report *r)
{
	char line[1024];

	round_scores_line(line, sizeof(line), r->scores);
	log_warn("task %.12s: %s; %s", cli_str(task, "id"), r->reason, line);
	log_warn("task %.12s: the %zu accepted results wait for the next "
		 "round, to be combined again with those accepted next; to "
		 "publish this version anyway run 'fedmarket-creator aggregate "
		 "%s --force' as the creator, or restart validatord with "
		 "--publish-worse", cli_str(task, "id"), r->inputs,
		 cli_str(task, "id"));
}

/* A worse version replaced by the current one, so the rounds go on. */
static void log_kept(const json_t *task, const struct round_report *r)
{
	char line[1024];

	round_scores_line(line, sizeof(line), r->scores);
	log_warn("task %.12s: %s; %s", cli_str(task, "id"), r->reason, line);
	log_info("task %.12s: published version %lld as version %d's model "
		 "again (rule kept, %zu results spent), so the next round "
		 "opens", cli_str(task, "id"),
		 (long long)json_integer_value(json_object_get(r->version,
							      "version")),
		 r->base_version, r->inputs);
}

/* A ready round that was not published: another validator (or the
 * creator) was first, which is no failure, or something is wrong. */
static int conflict(struct cli *c, const json_t *task)
{
	char msg[FM_ERR_MSG_MAX];
	const char *id = cli_str(task, "id");
	struct api *a = NULL;
	json_t *now = NULL;
	int err, moved;

	snprintf(msg, sizeof(msg), "%s", fm_error_msg());
	err = cli_api(c, 0, &a);
	if (!err)
		err = api_task(a, id, &now);
	if (err)
		return err;
	moved = rounds_version(now) != rounds_version(task) ||
		rounds_ready(now) != 1;
	if (moved || strstr(msg, "already published"))
		log_info("task %.12s: round %d was published meanwhile (%s)",
			 id, rounds_current(task), msg);
	else
		log_warn("task %.12s: round %d is ready but was not "
			 "published: %s", id, rounds_current(task), msg);
	json_decref(now);
	return FM_OK;
}

/* Publishes the task's round once it is ready: when the task says so
 * (task.round.ready) where the marketplace keeps rounds, else once
 * min_results accepted results wait. A one-round task's version that
 * measures worse is refused, and that round is not measured again (the
 * same version and the same results: the pending results only grow
 * until a version holds them); in a task of several rounds it is
 * replaced by the current version (rule "kept"). */
static int publish(struct cli *c, const struct opts *o, struct watch *w,
		   const json_t *task)
{
	int ready = rounds_ready(task);
	struct round_opts ro = { w->have ? &w->holdout : NULL, ready == 1,
				 o->publish_worse, rounds_total(task) > 1 };
	const char *id = cli_str(task, "id");
	const json_t *seen = json_object_get(w->refused, id);
	struct round_report r = { 0 };
	struct round_state st;
	int err, same;

	if (ready == 0)
		return FM_OK;
	if (seen) {
		err = round_state_load(c, task, &st);
		if (err)
			return err;
		same = st.version == json_integer_value(json_array_get(seen, 0))
		       && (json_int_t)json_array_size(st.pending) ==
				  json_integer_value(json_array_get(seen, 1));
		round_state_cleanup(&st);
		if (same)
			return FM_OK;
	}
	err = round_publish(c, task, &ro, &r);
	if (err == FM_ECONFLICT && ready == 1)
		return conflict(c, task);
	if (err == FM_ECONFLICT)
		return FM_OK; /* the round is not full yet */
	if (err)
		return err;
	if (r.refused) {
		json_object_set_new(w->refused, id,
				    json_pack("[i, I]", r.base_version,
					      (json_int_t)r.inputs));
		log_refused(task, &r);
	} else if (r.kept) {
		json_object_del(w->refused, id);
		log_kept(task, &r);
	} else {
		json_object_del(w->refused, id);
		log_published(task, &r);
	}
	round_report_cleanup(&r);
	return FM_OK;
}

/* One task: decide what was submitted, then publish a ready round
 * (read again: the decisions may have made it ready). */
static int serve_task(struct cli *c, const struct opts *o, struct watch *w,
		      const json_t *task)
{
	struct policy_in in = { task, w->have ? &w->holdout : NULL, w->gold,
				o->round_wait_s };
	struct verdict *v = NULL;
	struct api *a = NULL;
	json_t *now = NULL;
	size_t n = 0;
	int err = policy_judge(c, &in, &v, &n);

	for (size_t i = 0; !err && i < n && !stopping; i++)
		err = post_verdict(c, cli_str(task, "id"), &v[i]);
	verdicts_free(v, n);
	if (err || stopping)
		return err;
	/* a task from a list may leave out its round: read it whole */
	if (n || (rounds_known(task) && rounds_ready(task) < 0)) {
		err = cli_api(c, 0, &a);
		if (!err)
			err = api_task(a, cli_str(task, "id"), &now);
		if (err)
			return err;
		task = now;
	}
	err = publish(c, o, w, task);
	json_decref(now);
	return err;
}

/* Loads the held-out data in the first watched model task's format. */
static int load_holdout(struct cli *c, const struct opts *o,
			const json_t *tasks, struct ml_dataset *d, int *have)
{
	size_t i;
	json_t *t;

	(void)c;
	if (*have || !o->data)
		return FM_OK;
	json_array_foreach(tasks, i, t) {
		if (!strcmp(cli_str(t, "kind"), "data_annotator"))
			continue;
		if (work_load_data(d, json_object_get(t, "spec"), o->data))
			return fm_error_prefix("--data");
		*have = 1;
		log_info("held-out data: %zu examples from %s", d->n, o->data);
		return FM_OK;
	}
	return FM_OK;
}

static void sleep_s(long s)
{
	for (long i = 0; i < s * 10 && !stopping; i++)
		nanosleep(&(struct timespec){ 0, 100000000L }, NULL);
}

/* The gold labels of --gold: {"labels": {id: label}} or {id: label}. */
static int load_gold(json_t **out, const char *file)
{
	json_t *doc = NULL;
	int err = fj_load_file(&doc, file, 64u << 20);

	if (err)
		return err;
	*out = json_incref(json_object_get(doc, "labels")
				   ? json_object_get(doc, "labels")
				   : doc);
	json_decref(doc);
	return FM_OK;
}

/* The marketplace, its storage or the chain behind it not answering:
 * worth another try. */
static int unreachable(int err)
{
	return err == FM_EUNAVAIL || err == FM_ETIMEOUT;
}

/* Serves every watched task once. Returns the error of a bad setup, or
 * the first sign that the marketplace is unreachable (the pass is then
 * repeated later: every decision lives in the marketplace); a task's
 * other failures are logged and the others go on. */
static int pass(struct cli *c, const struct opts *o, struct watch *w)
{
	json_t *tasks = NULL, *t;
	char why[512] = "";
	int down = FM_OK;
	size_t i;
	int err;

	err = watched(c, o, &tasks);
	if (err)
		goto done;
	err = load_holdout(c, o, tasks, &w->holdout, &w->have);
	if (err)
		goto done;
	json_array_foreach(tasks, i, t) {
		if (stopping)
			break;
		log_ctx_set(cli_str(t, "id"));
		err = serve_task(c, o, w, t);
		if (unreachable(err) && !down) {
			down = err;
			snprintf(why, sizeof(why), "task %.12s: %s",
				 cli_str(t, "id"), fm_error_msg());
		} else if (err) {
			log_warn("task %.12s: %s", cli_str(t, "id"),
				 fm_error_msg());
		}
		log_ctx_set(NULL);
	}
	err = FM_OK;
	if (down)
		err = fm_error_set(down, "%s", why);
done:
	json_decref(tasks);
	return err;
}

/* The setting whose address the message of an unreachable service
 * names, for the log and the hint. */
static const char *setting_in(const struct cli *c, const char *msg)
{
	const struct {
		const char *name, *url;
	} s[] = {
		{ "taskd_url", c->cfg.taskd_url },
		{ "assignd_url", c->cfg.assignd_url },
		{ "resultd_url", c->cfg.resultd_url },
		{ "validationd_url", c->cfg.validationd_url },
		{ "storage_url", c->cfg.storage_url },
		{ "s3_endpoint", c->cfg.s3_endpoint },
		{ "rpc_url", c->cfg.rpc_url },
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (s[i].url[0] && strstr(msg, s[i].url))
			return s[i].name;
	return "the FEDMARKET_*_URL settings";
}

/* Pauses between tries while the marketplace does not answer: doubling
 * from 1 s up to a minute; --once gives up after ONCE_TRIES tries
 * (1 + 2 + 4 + 8 = 15 s of pauses). */
#define RETRY_MAX_S 60
#define ONCE_TRIES 5

static int run(struct cli *c, const struct opts *o)
{
	struct watch w = { .refused = json_object() };
	long wait_s = 1, waited_s = 0;
	int tries = 0, err = FM_OK;

	if (!w.refused)
		return fm_error_set(FM_ENOMEM, "out of memory");
	if (o->gold_file) {
		err = load_gold(&w.gold, o->gold_file);
		if (err)
			goto done;
	}
	log_info("validator %s watching %s", c->addr,
		 o->ntasks ? "the given tasks" : "its custom-strategy tasks");
	while (!stopping) {
		err = pass(c, o, &w);
		if (err && !unreachable(err))
			break; /* bad setup: say so rather than loop */
		if (!err) {
			if (tries)
				log_info("the marketplace answers again");
			tries = 0;
			wait_s = 1;
			waited_s = 0;
			if (o->once)
				break;
			sleep_s(o->interval_s);
			continue;
		}
		tries++;
		if (o->once && tries >= ONCE_TRIES) {
			char why[600];

			snprintf(why, sizeof(why), "%s", fm_error_msg());
			fm_error_set(err, "%s: no answer after %d tries over "
				     "%ld s (check %s)", why, tries, waited_s,
				     setting_in(c, why));
			break;
		}
		log_warn("waiting for the marketplace (%s): %s; next try in "
			 "%ld s", setting_in(c, fm_error_msg()), fm_error_msg(),
			 wait_s);
		sleep_s(wait_s);
		waited_s += wait_s;
		wait_s = wait_s * 2 > RETRY_MAX_S ? RETRY_MAX_S : wait_s * 2;
	}
	if (stopping && unreachable(err))
		err = FM_OK; /* asked to stop while waiting */
	if (!err)
		log_info("stopped");
done:
	json_decref(w.gold);
	json_decref(w.refused);
	ml_dataset_cleanup(&w.holdout);
	return err;
}

/* The daemon logs at info level unless log_level says otherwise. */
static void start_logging(const struct cli *c)
{
	int level = log_level_parse(c->cfg.log_level);

	log_init("validatord", level < 0 ? LOG_INFO : (enum log_level)level,
		 c->cfg.log_json);
	log_set_stream(stderr);
}

int main(int argc, char **argv)
{
	static const char synopsis[] =
		"[TASK]... [--data PATH] [--gold FILE] [--once] "
		"[--publish-worse]";
	struct opts o = { .interval_s = 2, .round_wait_s = 120 };
	static char ids[MAX_TASKS][67];
	const char *pos[MAX_TASKS] = { NULL };
	const struct opt opts[] = {
		{ "--data", OPT_STR, &o.data, "PATH",
		  "held-out data in the tasks' format (IDX folder, "
		  "IMAGES,LABELS or CSV)", 0, 0 },
		{ "--gold", OPT_STR, &o.gold_file, "FILE",
		  "data annotation: {\"labels\": {item id: label}} of gold "
		  "items", 0, 0 },
		{ "--interval", OPT_LONG, &o.interval_s, "SECONDS",
		  "pause between passes (2)", 1, 3600 },
		{ "--round-wait", OPT_LONG, &o.round_wait_s, "SECONDS",
		  "decide a partial round after this long (120)", 0, 86400 },
		{ "--once", OPT_FLAG, &o.once, NULL, "one pass, then exit (a "
		  "marketplace that does not answer is tried 5 times over "
		  "15 s, then exit 1)", 0, 0 },
		{ "--publish-worse", OPT_FLAG, &o.publish_worse, NULL,
		  "publish a round's version even when it scores worse on "
		  "--data than the current one (without it, a task of one "
		  "round publishes nothing, a task of several rounds its "
		  "current model again, rule \"kept\")", 0, 0 },
		OPT_END,
	};
	struct sigaction sa;
	struct cli c;
	int code, err;

	ml_blas_setup(argc, argv);
	cli_init(&c, "fedmarket-validatord");
	/* TASK ids are positional: fedmarket-validatord [options] [TASK]... */
	if (!cli_parse(&c, opts, argc, argv, synopsis, pos, 0, MAX_TASKS,
		       &code))
		return code;
	start_logging(&c);
	for (size_t i = 0; i < MAX_TASKS && pos[i]; i++) {
		if (cli_task_id(ids[i], pos[i]))
			return cli_usage(&c, "%s", fm_error_msg());
		o.tasks[o.ntasks++] = ids[i];
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	err = cli_identity(&c);
	if (err)
		goto done;
	err = run(&c, &o);
done:
	if (err == FM_EUNAVAIL)
		code = cli_fail_hint(&c, "is the marketplace up? check %s",
				     setting_in(&c, fm_error_msg()));
	else
		code = err ? cli_fail(&c) : CLI_OK;
	cli_cleanup(&c);
	return code;
}
