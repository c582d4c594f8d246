/* create-task --spec FILE --assets DIR: checks the assets locally, pushes
 * them as a task-assets bundle, funds the escrow with reward x
 * max_assignments (signed by the creator's key), posts the spec to taskd
 * and waits until the task is open. Nothing is funded before every local
 * check passed; a task whose id is already funded by this creator is not
 * funded twice, so a failed post can be retried with the same task_id. */
#include "creator.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "cli/work.h"
#include "core/err.h"
#include "core/fjson.h"
#include "market/fit.h"
#include "market/spec.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPEC_MAX (1u << 20)
/* a placeholder reference lets the spec be checked before the upload */
#define NO_ASSETS \
	"0000000000000000000000000000000000000000000000000000000000000000"

/* A data-annotation task's dir/items.json: items and labels. */
static int check_items(const char *dir)
{
	char path[WORK_PATH_MAX];
	json_t *items = NULL, *arr;
	int err;

	snprintf(path, sizeof(path), "%s/items.json", dir);
	err = fj_load_file(&items, path, 64u << 20);
	if (err)
		return err;
	arr = json_object_get(items, "items");
	if (!json_is_array(arr) || !json_array_size(arr))
		err = fm_error_set(FM_EINVAL, "%s: expected a non-empty "
				   "\"items\" array", path);
	else if (!json_is_array(json_object_get(items, "labels")))
		err = fm_error_set(FM_EINVAL, "%s: expected a \"labels\" "
				   "array", path);
	json_decref(items);
	return err;
}

/* The assets folder holds what the task kind needs, and the engine loads
 * the model: checked before anything is spent. A model folder itself
 * (model.json at its top) is taken as the bundle's model/; *model gets
 * it then, loaded. */
static int check_assets(const char *dir, const char *kind,
			struct ml_model **model)
{
	char path[WORK_PATH_MAX];
	struct stat sb;
	int err;

	if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
		return fm_error_set(FM_EINVAL, "assets %s: not a folder", dir);
	if (!strcmp(kind, "data_annotator"))
		return check_items(dir);
	snprintf(path, sizeof(path), "%s/model.json", dir);
	if (access(path, F_OK) == 0)
		snprintf(path, sizeof(path), "%s", dir);
	else
		snprintf(path, sizeof(path), "%s/model", dir);
	err = ml_model_load(model, path);
	if (err)
		goto done;
	err = ml_model_check_finite(*model);
done:
	if (err) {
		ml_model_free(*model);
		*model = NULL;
		return fm_error_prefix("assets %s", path);
	}
	return FM_OK;
}

static int push_assets(struct cli *c, struct store_ref *ref, const char *dir,
		       const struct ml_model *m, const char *title)
{
	struct store_bundle_info info = { STORE_KIND_TASK_ASSETS, title, "0",
					  NULL, NULL, NULL, NULL };
	char top[WORK_PATH_MAX];
	struct store *st = NULL;
	json_t *meta = NULL;
	int err;

	snprintf(top, sizeof(top), "%s/model.json", dir);
	if (m && access(top, F_OK) == 0)
		return work_push_model(c, ref, m, STORE_KIND_TASK_ASSETS, title,
				       NULL);
	if (m) {
		err = work_model_meta(&meta, m);
		if (err)
			return err;
	}
	info.model = meta;
	err = work_store_for_push(c, &st);
	if (err)
		goto done;
	err = store_bundle_push(st, ref, NULL, dir, &info, NULL);
done:
	store_free(st);
	json_decref(meta);
	return err;
}

/* lifetime_s becomes a fixed expires_at, so the escrow's deadline can be
 * set from the same instant taskd will record. */
static int fix_expiry(json_t *spec)
{
	json_t *life = json_object_get(spec, "lifetime_s");
	char when[32];
	time_t t;
	struct tm tm;

	if (!life)
		return FM_OK;
	if (!json_is_integer(life) || json_integer_value(life) < 60)
		return fm_error_set(FM_EINVAL, "task.lifetime_s: expected an "
				    "integer >= 60");
	t = time(NULL) + (time_t)json_integer_value(life);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_del(spec, "lifetime_s");
	json_object_set_new(spec, "expires_at", json_string(when));
	return FM_OK;
}

/* The escrow's funding of a task, prepared before anything is pushed
 * or spent. */
struct funding {
	struct chain_rpc *r;
	struct chain_tx tx;
	int due; /* 0: this creator funded this task id before */
};

static void funding_cleanup(struct funding *f)
{
	chain_rpc_free(f->r);
	chain_tx_cleanup(&f->tx);
}

/* Gas a fund() transaction takes at most, for the shortfall message
 * when the node cannot estimate it (it refuses to estimate for an
 * account that cannot pay the deposit). */
#define FUND_GAS_BOUND 200000

/* FM_EUNPROCESSABLE saying what the task needs and what the account
 * holds, in ether. gas is what the transaction may burn; guessed says
 * whether it is the bound rather than the node's estimate. */
static int short_of_funds(const struct cli *c, const struct task_spec *s,
			  const struct chain_u256 *value,
			  const struct chain_u256 *gas,
			  const struct chain_u256 *held, int guessed)
{
	char v[CHAIN_U256_DEC_MAX], g[CHAIN_U256_DEC_MAX], t[CHAIN_U256_DEC_MAX];
	char h[CHAIN_U256_DEC_MAX], ve[96], ge[96], te[96], he[96], re[96];
	struct chain_u256 total;

	chain_u256_add(&total, value, gas);
	chain_u256_to_dec(v, sizeof(v), value);
	chain_u256_to_dec(g, sizeof(g), gas);
	chain_u256_to_dec(t, sizeof(t), &total);
	chain_u256_to_dec(h, sizeof(h), held);
	cli_format_wei(ve, sizeof(ve), v);
	cli_format_wei(ge, sizeof(ge), g);
	cli_format_wei(te, sizeof(te), t);
	cli_format_wei(he, sizeof(he), h);
	cli_format_wei(re, sizeof(re), s->reward_wei);
	return fm_error_set(FM_EUNPROCESSABLE, "not enough ETH: the task needs "
			    "%s (reward %s x %lld results = %s, plus %s%s of "
			    "gas) and %s holds %s", te, re,
			    s->max_payouts, ve, guessed ? "up to " : "",
			    ge, c->addr, he);
}

/* The account pays the deposit and the gas, or nothing is sent: the
 * node's own refusal ("insufficient funds for gas * price + value")
 * says neither how much is needed nor how much there is. */
static int check_funds(struct cli *c, const struct task_spec *s,
		       struct funding *f)
{
	struct chain_u256 held, gas, need;
	struct chain_fees fees;
	int err;

	err = chain_rpc_balance(f->r, &held, c->key.addr);
	if (err)
		return err;
	if (chain_u256_cmp(&held, &f->tx.value) < 0) {
		err = chain_rpc_fees(f->r, &fees);
		if (err)
			return err;
		chain_u256_mul_u64(&gas, &fees.max_fee, FUND_GAS_BOUND);
		return short_of_funds(c, s, &f->tx.value, &gas, &held, 1);
	}
	/* nonce, fees and the gas estimate (plus its margin) */
	err = chain_rpc_prepare_tx(f->r, &f->tx, c->key.addr);
	if (err)
		return err;
	if (chain_u256_mul_u64(&gas, &f->tx.max_fee, f->tx.gas_limit) ||
	    chain_u256_add(&need, &f->tx.value, &gas))
		return fm_error_set(FM_EINVAL, "reward_wei: the deposit and "
				    "its gas overflow 256 bits");
	if (chain_u256_cmp(&held, &need) < 0)
		return short_of_funds(c, s, &f->tx.value, &gas, &held, 0);
	return FM_OK;
}

/* Everything the funding needs, checked before anything is pushed:
 * the marketplace's escrow, whether this creator funded this task id
 * before (then nothing is due), the transaction and the account's
 * ether. */
static int funding_prepare(struct cli *c, const struct task_spec *s,
			   long long deadline, struct funding *f)
{
	uint8_t escrow[CHAIN_ADDR_LEN], op[CHAIN_ADDR_LEN], tid[32];
	char op_hex[CHAIN_ADDR_HEX];
	struct escrow_task et;
	struct chain_u256 reward, cap;
	char cap_dec[80];
	int err;

	err = work_market_chain(c, escrow, op_hex);
	if (err)
		return err;
	err = chain_address_parse(op, op_hex, "operator");
	if (err)
		return err;
	err = hex_decode(tid, 32, s->task_id);
	if (err)
		return err;
	err = chain_u256_parse(&reward, s->reward_wei, "reward_wei");
	if (err)
		return err;
	cli_on(c, CLI_ON_CHAIN);
	err = chain_rpc_new(&f->r, c->cfg.rpc_url, NULL);
	if (err)
		return err;
	err = escrow_get_task(f->r, &et, escrow, tid);
	if (err == FM_OK) {
		if (memcmp(et.creator, c->key.addr, CHAIN_ADDR_LEN) ||
		    et.state != ESCROW_OPEN)
			return fm_error_set(FM_ECONFLICT, "task id %s is already "
					    "used on the escrow (state %s); "
					    "choose another task_id",
					    s->task_id,
					    escrow_state_name(et.state));
		return FM_OK; /* funded by us before: post without paying */
	}
	if (err != FM_ENOTFOUND)
		return err;
	err = spec_result_cap(cap_dec, s);
	if (err)
		return err;
	err = chain_u256_parse(&cap, cap_dec, "result cap");
	if (err)
		return err;
	/* a task paying by contribution caps each result at the round's
	 * pool instead of the reward */
	err = s->scoring == SCORING_SHAPLEY
		      ? escrow_fund_scored_tx(&f->tx, escrow, tid, op,
					      (uint64_t)deadline, &reward,
					      (uint32_t)s->max_payouts, &cap)
		      : escrow_fund_tx(&f->tx, escrow, tid, op,
				       (uint64_t)deadline, &reward,
				       (uint32_t)s->max_payouts);
	if (err)
		return err;
	f->due = 1;
	return check_funds(c, s, f);
}

/* Sends the prepared funding, if any is due; tx_out gets its hash (""
 * when the task was funded before). */
static int fund(struct cli *c, struct funding *f, long timeout_s,
		char tx_out[67])
{
	struct chain_receipt rc = { 0 };
	int err;

	tx_out[0] = '\0';
	if (!f->due)
		return FM_OK;
	cli_on(c, CLI_ON_CHAIN);
	err = chain_rpc_send_tx(f->r, &rc, &f->tx, &c->key, timeout_s * 1000);
	if (!err) {
		tx_out[0] = '0';
		tx_out[1] = 'x';
		hex_encode(tx_out + 2, rc.tx_hash, 32);
	}
	chain_receipt_cleanup(&rc);
	return err;
}

/* Polls the task until it is open (drafts open when taskd sees the
 * funding). */
static int wait_open(struct cli *c, const char *id, long timeout_s,
		     json_t **task)
{
	struct api *a = NULL;
	time_t end = time(NULL) + timeout_s;
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	for (;;) {
		const char *st = json_string_value(json_object_get(*task,
								   "state"));

		if (st && strcmp(st, "draft"))
			return strcmp(st, "open")
				       ? fm_error_set(FM_ECONFLICT, "task %s is "
						      "%s, not open", id, st)
				       : FM_OK;
		if (time(NULL) >= end)
			return fm_error_set(FM_ETIMEOUT, "task %s is still a "
					    "draft after %ld s: taskd has not "
					    "seen the escrow funding yet",
					    id, timeout_s);
		sleep(1);
		json_decref(*task);
		*task = NULL;
		err = api_task(a, id, task);
		if (err)
			return err;
	}
}

static void print_task(struct cli *c, const json_t *t, const char *tx)
{
	char reward[96];

	if (c->json) {
		cli_print_json(t);
		return;
	}
	cli_format_wei(reward, sizeof(reward),
		       json_string_value(json_object_get(t, "reward_wei")));
	printf("%stask %s is %s%s\n  %s\n  reward %s per accepted result, "
	       "%lld slots\n  assets %s\n  expires %s\n",
	       cli_c(c, CLI_GREEN),
	       json_string_value(json_object_get(t, "id")),
	       json_string_value(json_object_get(t, "state")),
	       cli_c(c, CLI_RESET),
	       json_string_value(json_object_get(t, "title")), reward,
	       (long long)json_integer_value(json_object_get(t,
							    "max_assignments")),
	       json_string_value(json_object_get(t, "assets")),
	       json_string_value(json_object_get(t, "expires_at")));
	if (tx[0])
		printf("  escrow funded in transaction %s\n", tx);
}

/* What create-task was told, besides the common options. */
struct create_args {
	const char *spec_file, *assets, *task_id, *validator;
	long timeout, grace;
	int no_wait;
};

/* The spec file with the task id (--task-id, the spec's, else random)
 * and --validator filled in. */
static int load_spec(json_t **out, const struct create_args *a)
{
	json_t *spec = NULL;
	char tid[67];
	uint8_t rnd[32];
	int err;

	err = fj_load_file(&spec, a->spec_file, SPEC_MAX);
	if (err)
		return err;
	if (!json_is_object(spec)) {
		err = fm_error_set(FM_EINVAL, "%s: expected a JSON object",
				   a->spec_file);
		goto done;
	}
	if (a->task_id) {
		err = cli_task_id(tid, a->task_id);
		if (err)
			goto done;
		json_object_set_new(spec, "task_id", json_string(tid));
	} else if (!json_object_get(spec, "task_id")) {
		randombytes_buf(rnd, sizeof(rnd));
		tid[0] = '0';
		tid[1] = 'x';
		hex_encode(tid + 2, rnd, sizeof(rnd));
		json_object_set_new(spec, "task_id", json_string(tid));
	}
	if (a->validator)
		json_object_set_new(spec, "validator",
				    json_string(a->validator));
	*out = json_incref(spec);
done:
	json_decref(spec);
	return err;
}

/* Every local check before anything is spent: the assets, the expiry,
 * the spec itself (with a placeholder for the assets' reference), the
 * signing key. */
static int check_task(struct cli *c, json_t *spec, const char *assets,
		      struct ml_model **model, struct task_spec *s)
{
	const char *kind = json_string_value(json_object_get(spec, "kind"));
	int err;

	err = check_assets(assets, kind ? kind : "", model);
	if (err)
		return err;
	err = fix_expiry(spec);
	if (err)
		return err;
	json_object_set_new(spec, "assets", json_string(NO_ASSETS));
	err = task_spec_parse(s, spec, (long long)time(NULL));
	if (err)
		return err;
	/* taskd would refuse a model that cannot take the data: say so
	 * before any money moves */
	if (*model) {
		err = spec_model_fits(s->doc, *model);
		if (err)
			return err;
	}
	return cli_identity(c);
}

/* Pushes the assets, funds the escrow (as f prepared it) and posts the
 * task; *task gets it as taskd answered, tx the funding transaction (""
 * when it was funded before). */
static int post_task(struct cli *c, const struct create_args *a,
		     json_t *spec, const struct ml_model *model,
		     const struct task_spec *s, struct funding *f,
		     json_t **task, char tx[67])
{
	struct store_ref ref;
	struct api *api = NULL;
	int err;

	err = push_assets(c, &ref, a->assets, model, s->title);
	if (err)
		return err;
	json_object_set_new(spec, "assets", json_string(ref.hex));
	err = fund(c, f, a->timeout, tx);
	if (err)
		return err;
	err = cli_api(c, 1, &api);
	if (err)
		return err;
	cli_on(c, CLI_ON_NONE);
	err = api_post(api, API_TASKD, "/v1/tasks", spec, task);
	if (err)
		fm_error_prefix("the escrow holds the funding of task %s but "
				"posting it failed (run create-task again with "
				"--task-id %s: it will not fund twice)",
				s->task_id, s->task_id);
	return err;
}

int cmd_create_task(struct cli *c, int argc, char **argv)
{
	struct create_args a = { .timeout = 120, .grace = 3600 };
	const struct opt opts[] = {
		{ "--spec", OPT_STR, &a.spec_file, "FILE",
		  "task spec (schema/task.schema.json; task_id and assets are "
		  "filled in)", 0, 0 },
		{ "--assets", OPT_STR, &a.assets, "DIR",
		  "a model folder, or a folder with model/ (model tasks) or "
		  "items.json (data_annotator)", 0, 0 },
		{ "--task-id", OPT_STR, &a.task_id, "0x..",
		  "use this task id (default: the spec's, else random)", 0, 0 },
		{ "--validator", OPT_STR, &a.validator, "ADDR",
		  "who decides on results (default: the spec's, else you)", 0,
		  0 },
		{ "--grace", OPT_LONG, &a.grace, "SECONDS",
		  "escrow deadline after the task's expiry (3600)", 0, 31536000 },
		{ "--timeout", OPT_LONG, &a.timeout, "SECONDS",
		  "wait this long for the funding and the task to open (120)",
		  1, 86400 },
		{ "--no-wait", OPT_FLAG, &a.no_wait, NULL,
		  "do not wait for the task to open", 0, 0 },
		OPT_END,
	};
	struct task_spec s = { 0 };
	struct funding f = { 0 };
	json_t *spec = NULL, *task = NULL;
	struct ml_model *model = NULL;
	char tx[67] = "";
	int code, err;

	if (!cli_parse(c, opts, argc, argv, "--spec FILE --assets DIR",
		       NULL, 0, 0, &code))
		return code;
	if (!a.spec_file || !a.assets)
		return cli_usage(c, "--spec and --assets are required");
	chain_tx_init(&f.tx);
	cli_on(c, CLI_ON_FILE);
	err = load_spec(&spec, &a);
	if (err)
		goto done;
	err = check_task(c, spec, a.assets, &model, &s);
	if (err)
		goto done;
	err = funding_prepare(c, &s, s.expires_at + s.assignment_duration_s +
				     a.grace, &f);
	if (err)
		goto done;
	err = post_task(c, &a, spec, model, &s, &f, &task, tx);
	if (err)
		goto done;
	if (!a.no_wait) {
		err = wait_open(c, s.task_id, a.timeout, &task);
		if (err)
			goto done;
	}
	print_task(c, task, tx);
done:
	funding_cleanup(&f);
	task_spec_cleanup(&s);
	json_decref(spec);
	ml_model_free(model);
	json_decref(task);
	return err ? cli_fail(c) : CLI_OK;
}
