#include "service/checks.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "chain/sig.h"
#include "chain/u256.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/fjson.h"
#include "core/log.h"
#include "core/sha256.h"
#include "engine/ml.h"
#include "market/fit.h"
#include "market/market.h"
#include "service/fetch.h"
#include "storage/blob.h"
#include "storage/bundle.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What one pull may take: the bundle's declared bytes at most (limit,
 * named by limit_name in messages), and its distinct bytes reserved from
 * budget (NULL: none) into *reserved, which the caller releases. */
struct pull_limits {
	uint64_t limit;
	const char *limit_name;
	struct budget *budget;
	uint64_t *reserved;
};

/* Pulls bundle ref into a new temporary folder (dir, PATH_MAX bytes) and
 * checks its kind and total size. Storage failures other than
 * unavailability are the submitter's problem: 422. */
static int pull(struct svc *s, char *dir, size_t dir_n, const char *ref_text,
		enum store_kind want, const char *what, json_t **manifest,
		const struct pull_limits *lim)
{
	struct store *st = NULL;
	struct store_ref ref;
	json_t *m = NULL;
	uint64_t total = 0, distinct = 0;
	enum store_kind kind;
	int err;

	dir[0] = '\0';
	err = store_ref_parse(&ref, ref_text);
	if (err)
		return fm_error_prefix("%s", what);
	err = store_open(&st, s->cfg.storage_url, &s->cfg);
	if (err)
		return err;
	/* the manifest alone first: refuse a huge bundle before fetching */
	err = store_bundle_manifest(st, &ref, &m);
	if (err)
		goto done;
	fetch_declared(m, &total, &distinct);
	if (total > lim->limit) {
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "%s: the manifest declares %llu bytes, over "
				   "the limit of %llu (%s)",
				   what, (unsigned long long)total,
				   (unsigned long long)lim->limit,
				   lim->limit_name);
		goto done;
	}
	err = store_kind_parse(&kind, json_string_value(
						json_object_get(m, "kind")));
	if (err)
		goto done;
	if (kind != want) {
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "%s: bundle is of kind \"%s\", expected "
				   "\"%s\"",
				   what, store_kind_name(kind),
				   store_kind_name(want));
		goto done;
	}
	if (lim->budget) {
		/* what the fetch writes: each distinct blob once */
		err = budget_reserve(lim->budget, distinct, what);
		if (err)
			goto done;
		*lim->reserved += distinct;
	}
	err = tmpdir_make(&s->tmp, dir, dir_n, "check-");
	if (err)
		goto done;
	err = fetch_files(st, m, dir);
done:
	if (err && err != FM_EUNAVAIL && err != FM_ENOMEM && err != FM_EIO) {
		/* not found, tampered, malformed: the request's fault */
		const char *msg = fm_error_msg();

		if (!strncmp(msg, what, strlen(what)))
			err = fm_error_set(FM_EUNPROCESSABLE, "%s", msg);
		else
			err = fm_error_set(FM_EUNPROCESSABLE, "%s: %s", what,
					   msg);
	}
	if (!err && manifest)
		*manifest = m;
	else
		json_decref(m);
	store_free(st);
	return err;
}

static int load_model(struct ml_model **out, const char *dir,
		      const char *what)
{
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/model", dir);
	err = ml_model_load(out, path);
	if (err) {
		fetch_scrub(dir);
		return fm_error_set(FM_EUNPROCESSABLE, "%s: model/: %s", what,
				    fm_error_msg());
	}
	err = ml_model_check_finite(*out);
	if (err) {
		ml_model_free(*out);
		*out = NULL;
		fetch_scrub(dir);
		return fm_error_set(FM_EUNPROCESSABLE, "%s: %s", what,
				    fm_error_msg());
	}
	return FM_OK;
}

static int load_labels_file(json_t **out, const char *dir, const char *file,
			    const char *what)
{
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	err = fj_load_file(out, path, 64u << 20);
	if (err) {
		fetch_scrub(dir);
		return fm_error_set(FM_EUNPROCESSABLE, "%s: %s: %s", what, file,
				    fm_error_msg());
	}
	return FM_OK;
}

/* items.json of annotation assets: items to label, and the labels. */
static int check_items(const char *dir)
{
	json_t *items = NULL, *arr;
	int err;

	err = load_labels_file(&items, dir, "items.json", "task.assets");
	if (err)
		return err;
	arr = json_object_get(items, "items");
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "task.assets: items.json: expected "
				   "a non-empty \"items\" array");
	else if (!json_is_array(json_object_get(items, "labels")))
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "task.assets: items.json: expected "
				   "a \"labels\" array");
	json_decref(items);
	return err;
}

int checks_assets(struct svc *s, const struct task_spec *spec)
{
	char dir[4096];
	struct ml_model *m = NULL;
	int err;

	struct pull_limits lim = { CHECKS_BUNDLE_MAX, "the largest bundle a "
				   "service takes", NULL, NULL };

	err = pull(s, dir, sizeof(dir), spec->assets, STORE_KIND_TASK_ASSETS,
		   "task.assets", NULL, &lim);
	if (err)
		goto done;
	if (spec->kind == TASK_DATA_ANNOTATOR) {
		err = check_items(dir);
		goto done;
	}
	err = load_model(&m, dir, "task.assets");
	if (err)
		goto done;
	/* a model that cannot take the task's data is refused before
	 * anyone takes a slot */
	err = spec_model_fits(spec->doc, m);
done:
	ml_model_free(m);
	file_remove_tree(dir);
	return err;
}

static int check_labels(json_t *checks, const char *dir, const char *adir)
{
	json_t *labels = NULL, *items = NULL, *given, *allowed, *item, *v;
	const char *key;
	size_t i, n = 0;
	int err;

	err = load_labels_file(&labels, dir, "labels.json", "bundle");
	if (err)
		goto done;
	err = load_labels_file(&items, adir, "items.json", "task assets");
	if (err)
		goto done;
	given = json_object_get(labels, "labels");
	allowed = json_object_get(items, "labels");
	if (!json_is_object(given)) {
		err = fm_error_set(FM_EUNPROCESSABLE,
				   "bundle: labels.json: expected {\"labels\": "
				   "{item id: label}}");
		goto done;
	}
	json_object_foreach(given, key, v) {
		int known_item = 0, known_label = 0;

		json_array_foreach(json_object_get(items, "items"), i, item)
			known_item |= json_is_string(json_object_get(item, "id")) &&
				      !strcmp(json_string_value(json_object_get(
						      item, "id")),
					      key);
		json_array_foreach(allowed, i, item)
			known_label |= json_equal(item, v);
		if (!known_item || !known_label) {
			err = fm_error_set(FM_EUNPROCESSABLE,
					   "bundle: labels.json: labels.%s: %s",
					   key,
					   known_item ? "not one of the task's "
							"labels"
						      : "no such item");
			goto done;
		}
		n++;
	}
	json_object_set_new(checks, "labels", json_integer((json_int_t)n));
done:
	json_decref(labels);
	json_decref(items);
	return err;
}

/* A result's model against the task's: the same architecture for
 * model_contributor, the same inputs and outputs for model_engineer. */
static int check_model(json_t *checks, const char *dir, const char *adir,
		       const char *kind)
{
	struct ml_model *m = NULL, *base = NULL;
	int err;

	err = load_model(&m, dir, "bundle");
	if (err)
		goto done;
	err = load_model(&base, adir, "task assets");
	if (err)
		goto done;
	if (!strcmp(kind, "model_contributor")) {
		err = ml_model_same_arch(base, m);
		if (err) {
			err = fm_error_set(FM_EUNPROCESSABLE,
					   "bundle: not the task's "
					   "architecture: %s",
					   fm_error_msg());
			goto done;
		}
		json_object_set_new(checks, "architecture",
				    json_string("same as the task's model"));
	} else {
		/* a new architecture must still read and give what the task
		 * needs */
		struct ml_shape bi = ml_model_input_shape(base);
		struct ml_shape mi = ml_model_input_shape(m);

		if (ml_model_input_size(base) != ml_model_input_size(m) ||
		    ml_model_output_size(base) != ml_model_output_size(m) ||
		    bi.rank != mi.rank) {
			err = fm_error_set(FM_EUNPROCESSABLE,
					   "bundle: the model's input or output "
					   "shape differs from the task's");
			goto done;
		}
		json_object_set_new(checks, "architecture",
				    json_string("loadable; inputs and outputs "
						"match the task"));
	}
	json_object_set_new(checks, "parameters",
			    json_integer((json_int_t)ml_model_param_count(m)));
	json_object_set_new(checks, "finite", json_true());
done:
	ml_model_free(m);
	ml_model_free(base);
	return err;
}

/* The sha256 of the model's weights: of its one .bin file, or of the
 * concatenated hashes of its shards in manifest order; "" without any.
 * Two results with the same weights are copies. */
static int weights_sha256(char out[SHA256_HEX_LEN + 1], const json_t *manifest)
{
	const json_t *files = json_object_get(manifest, "files"), *f;
	struct buf b = BUF_INIT(1 << 20);
	const char *one = NULL;
	size_t i, n = 0;

	out[0] = '\0';
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		size_t len = path ? strlen(path) : 0;

		if (!sha || len < 10 || strncmp(path, "model/", 6) ||
		    strcmp(path + len - 4, ".bin"))
			continue;
		one = sha;
		n++;
		if (buf_append(&b, sha, strlen(sha))) {
			buf_cleanup(&b);
			return fm_error_set(FM_ENOMEM, "out of memory");
		}
	}
	if (n == 1)
		snprintf(out, SHA256_HEX_LEN + 1, "%s", one);
	else if (n > 1)
		fm_sha256_hex(out, b.data, b.len);
	buf_cleanup(&b);
	return FM_OK;
}

/* task.spec.max_result_bytes, or its default for tasks posted before
 * the field. */
static uint64_t max_result_bytes(const json_t *task)
{
	const json_t *v = json_object_get(json_object_get(task, "spec"),
					  "max_result_bytes");

	if (json_is_integer(v) && json_integer_value(v) > 0)
		return (uint64_t)json_integer_value(v);
	return (uint64_t)SPEC_RESULT_BYTES_DEFAULT;
}

int checks_result(json_t **out, struct svc *s, const json_t *task,
		  const char *bundle_ref, struct budget *budget)
{
	const char *kind = json_string_value(json_object_get(task, "kind"));
	const char *assets = json_string_value(json_object_get(task, "assets"));
	char dir[4096] = "", adir[4096] = "", wsha[SHA256_HEX_LEN + 1];
	json_t *checks = json_object(), *manifest = NULL;
	uint64_t reserved = 0;
	struct pull_limits lim = { max_result_bytes(task),
				   "task.max_result_bytes", budget,
				   &reserved };
	struct pull_limits alim = { CHECKS_BUNDLE_MAX, "the largest bundle a "
				    "service takes", budget, &reserved };
	int err;

	if (!checks)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = pull(s, dir, sizeof(dir), bundle_ref, STORE_KIND_RESULT,
		   "bundle", &manifest, &lim);
	if (err)
		goto done;
	json_object_set_new(checks, "files",
			    json_integer((json_int_t)json_array_size(
				    json_object_get(manifest, "files"))));
	json_object_set_new(checks, "hashes", json_string("sha256 verified"));
	err = weights_sha256(wsha, manifest);
	if (err)
		goto done;
	if (wsha[0])
		json_object_set_new(checks, "weights_sha256",
				    json_string(wsha));
	/* the task's own assets are trusted: checked when it was posted */
	err = pull(s, adir, sizeof(adir), assets, STORE_KIND_TASK_ASSETS,
		   "task assets", NULL, &alim);
	if (err)
		goto done;
	if (!strcmp(kind, "data_annotator"))
		err = check_labels(checks, dir, adir);
	else
		err = check_model(checks, dir, adir, kind);
done:
	json_decref(manifest);
	file_remove_tree(dir);
	file_remove_tree(adir);
	if (budget)
		budget_release(budget, reserved);
	if (err) {
		json_decref(checks);
		return err;
	}
	*out = checks;
	return FM_OK;
}

/* ---------------------------------------------------------------- funding */

static int addr_eq(const uint8_t a[CHAIN_ADDR_LEN], const char *hex)
{
	uint8_t b[CHAIN_ADDR_LEN];

	return chain_address_parse(b, hex, "address") == FM_OK &&
	       memcmp(a, b, CHAIN_ADDR_LEN) == 0;
}

/* The hash of the transaction that emitted Funded(taskId). */
static int funding_tx_hash(struct chain_rpc *r, char out[67],
			   const uint8_t escrow[CHAIN_ADDR_LEN],
			   const uint8_t task_id[32])
{
	uint8_t h[32];
	int err = escrow_find_event(r, h, NULL, escrow, ESCROW_EV_FUNDED,
				    task_id, NULL);

	if (err)
		return err;
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, h, 32);
	return FM_OK;
}

/* The escrow's record of the task agrees with the spec: open, funded by
 * its creator for this operator, the reward, the slots, a deadline not
 * before the expiry, and the whole of reward x slots (total) held. */
static int funding_agrees(const struct svc *s, const struct escrow_task *t,
			  const struct task_spec *spec, const char *creator,
			  const struct chain_u256 *reward,
			  const struct chain_u256 *total)
{
	char cap_dec[80], on_chain[CHAIN_U256_DEC_MAX];
	struct chain_u256 cap;
	int err;

	if (t->state != ESCROW_OPEN)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: task is %s on chain, not open",
				    escrow_state_name(t->state));
	if (!addr_eq(t->creator, creator))
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: the task was funded by another "
				    "account than its creator");
	if (!addr_eq(t->operator, s->operator_address))
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: operator on chain is not this "
				    "platform's operator %s",
				    s->operator_address);
	if (chain_u256_cmp(&t->reward, reward) != 0)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: reward on chain differs from "
				    "task.reward_wei");
	if ((long long)t->max_payouts != spec->max_payouts)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: %u payouts funded, the task pays "
				    "%lld (%lld rounds x %lld results)",
				    t->max_payouts, spec->max_payouts,
				    spec->rounds, spec->max_assignments);
	err = spec_result_cap(cap_dec, spec);
	if (err)
		return err;
	err = chain_u256_parse(&cap, cap_dec, "result cap");
	if (err)
		return err;
	chain_u256_to_dec(on_chain, sizeof(on_chain), &t->max_per_result);
	if (chain_u256_cmp(&t->max_per_result, &cap) != 0)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: a result may be paid up to %s wei "
				    "on chain, the task's cap is %s (%s)",
				    on_chain, cap_dec,
				    spec->scoring == SCORING_SHAPLEY
					    ? "fund it with fundScored"
					    : "fund it with fund");
	if ((long long)t->deadline < spec->expires_at)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: deadline %llu is before the task's "
				    "expiry %lld",
				    (unsigned long long)t->deadline,
				    spec->expires_at);
	if (t->paid_count != 0 || chain_u256_cmp(&t->balance, total))
		return fm_error_set(FM_EUNPROCESSABLE,
				    "escrow: the task's balance is not the full "
				    "reward x rounds x results_per_round");
	return FM_OK;
}

int checks_funding(struct svc *s, const struct task_spec *spec,
		   const char *creator, char *funding_tx, char *funded_wei,
		   int *funded)
{
	struct chain_rpc *r = NULL;
	struct escrow_task t;
	struct chain_u256 reward, total;
	uint8_t escrow[CHAIN_ADDR_LEN], task_id[32];
	int err;

	*funded = 0;
	err = chain_address_parse(escrow, s->cfg.escrow_address,
				  "escrow_address");
	if (err)
		goto done;
	err = hex_decode(task_id, 32, spec->task_id);
	if (err)
		goto done;
	err = chain_u256_parse(&reward, spec->reward_wei, "reward_wei");
	if (err)
		goto done;
	err = chain_rpc_new(&r, s->cfg.rpc_url, NULL);
	if (err)
		goto done;
	err = escrow_get_task(r, &t, escrow, task_id);
	if (err == FM_ENOTFOUND) {
		err = FM_OK; /* not funded yet: the task waits as a draft */
		goto done;
	}
	if (err)
		goto done;
	err = chain_u256_mul_u64(&total, &reward,
				 (uint64_t)spec->max_payouts);
	if (err)
		goto done;
	err = funding_agrees(s, &t, spec, creator, &reward, &total);
	if (err)
		goto done;
	err = funding_tx_hash(r, funding_tx, escrow, task_id);
	if (err == FM_ENOTFOUND)
		err = fm_error_set(FM_EUNAVAIL,
				   "escrow: funded, but its Funded event is "
				   "not visible yet");
	if (err)
		goto done;
	chain_u256_to_dec(funded_wei, 80, &total);
	*funded = 1;
done:
	chain_rpc_free(r);
	return err;
}

int checks_report(json_t **out, struct svc *s, const char *ref_text)
{
	struct buf b = BUF_INIT(CHECKS_REPORT_MAX);
	struct store *st = NULL;
	struct store_ref ref;
	int err;

	err = store_ref_parse(&ref, ref_text);
	if (err)
		return fm_error_prefix("scoring.report");
	err = store_open(&st, s->cfg.storage_url, &s->cfg);
	if (err)
		goto done;
	err = store_blob_get_mem(st, &ref, &b);
	if (err == FM_ENOTFOUND)
		err = fm_error_set(FM_EUNPROCESSABLE, "scoring.report: blob %s "
				   "is not in storage", ref.hex);
	if (err)
		goto done;
	err = fj_parse(out, b.data, b.len, "scoring report");
	if (err == FM_EINVAL)
		err = fm_error_set(FM_EUNPROCESSABLE, "%s", fm_error_msg());
done:
	store_free(st);
	buf_cleanup(&b);
	return err;
}
