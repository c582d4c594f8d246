/* Model versions: publishing version N+1 from accepted results, and the
 * list of a task's versions. */
#include "market/market.h"
#include "market/market_int.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct publish_arg {
	json_t *result;
	const char *task_id, *caller, *bundle_ref, *rule, *metrics;
	const json_t *result_ids;
};

/* Locks the task, checks that caller may publish, and gives the next
 * version number (24 bytes). */
static int next_version(struct db_conn *c, char *version,
			const struct publish_arg *a)
{
	PGresult *r = NULL;
	int err;

	err = db_execp(c, &r,
		       "SELECT creator, validator, current_version FROM tasks"
		       " WHERE id = $1 FOR UPDATE",
		       a->task_id);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = fm_error_set(FM_ENOTFOUND, "task not found");
	else if (strcmp(db_str(r, 0, "validator", ""), a->caller) &&
		 strcmp(db_str(r, 0, "creator", ""), a->caller))
		err = fm_error_set(FM_EFORBIDDEN,
				   "only the task's validator or creator can "
				   "publish a model version");
	else
		snprintf(version, 24, "%lld",
			 db_int(r, 0, "current_version", 0) + 1);
	PQclear(r);
	return err;
}

/* Ties result i (an accepted result of the task, in no earlier version)
 * to the version. */
static int add_result(struct db_conn *c, const struct publish_arg *a,
		      const char *version, size_t i, const json_t *id)
{
	int err;

	if (!json_is_string(id) ||
	    mkt_check_uuid(json_string_value(id), "results[]"))
		return fm_error_set(FM_EINVAL,
				    "results[%zu]: expected a result id", i);
	err = db_execp(c, NULL,
		       "INSERT INTO model_version_results (task_id,"
		       " version, result_id) SELECT $1::text, $2::int,"
		       " r.id FROM results r WHERE r.id = $3::uuid AND"
		       " r.task_id = $1::text AND r.state = 'accepted'",
		       a->task_id, version, json_string_value(id));
	if (err == FM_ECONFLICT)
		return fm_error_set(FM_ECONFLICT,
				    "results[%zu]: %s is already part of an "
				    "earlier version",
				    i, json_string_value(id));
	if (err)
		return err;
	if (db_last_rows(c) != 1)
		return fm_error_set(FM_ECONFLICT,
				    "results[%zu]: %s is not an accepted "
				    "result of this task",
				    i, json_string_value(id));
	return FM_OK;
}

static int publish_fn(struct db_conn *c, void *arg)
{
	struct publish_arg *a = arg;
	char version[24];
	size_t i;
	json_t *id;
	int err;

	err = next_version(c, version, a);
	if (err)
		return err;
	err = db_execp(c, NULL,
		       "INSERT INTO model_versions (task_id, version,"
		       " bundle_ref, rule, metrics, created_by)"
		       " VALUES ($1, $2::int, $3, $4, $5::jsonb, $6)",
		       a->task_id, version, a->bundle_ref, a->rule, a->metrics,
		       a->caller);
	if (err)
		return err;
	json_array_foreach(a->result_ids, i, id) {
		err = add_result(c, a, version, i, id);
		if (err)
			return err;
	}
	err = db_execp(c, NULL,
		       "UPDATE tasks SET current_version = $2::int,"
		       " updated_at = now() WHERE id = $1",
		       a->task_id, version);
	if (err)
		return err;
	return mkt_row_json(c, &a->result, "model version",
			    "SELECT " MODEL_JSON " FROM model_versions m"
			    " WHERE m.task_id = $1 AND m.version = $2::int",
			    DB_ARGS(a->task_id, version));
}

int market_model_publish(struct db_pool *p, json_t **out, const char *task_id,
			 const char *caller, const char *bundle_ref,
			 const char *rule, const json_t *metrics,
			 const json_t *result_ids)
{
	char tid[67];
	char *m = NULL;
	struct publish_arg a = { NULL, tid, caller, bundle_ref, rule, NULL,
				 result_ids };
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	if (!mkt_bundle_ref_ok(bundle_ref))
		return fm_error_set(FM_EINVAL,
				    "bundle: expected a bundle reference (64 "
				    "lowercase hex digits)");
	if (!json_is_array(result_ids) || json_array_size(result_ids) == 0 ||
	    json_array_size(result_ids) > 100000)
		return fm_error_set(FM_EINVAL,
				    "results: expected a non-empty array of "
				    "result ids");
	m = mkt_dump_or_empty(metrics);
	if (!m)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a.metrics = m;
	err = mkt_tx_json(p, DB_READ_COMMITTED, publish_fn, &a, out);
	free(m);
	return err;
}

int market_model_list(struct db_pool *p, json_t **out, const char *task_id)
{
	char tid[67];
	int err = spec_hash32(tid, task_id, "task id");

	if (err)
		return err;
	return mkt_read_json(p, out, "models",
			     "SELECT json_build_object('models', coalesce("
			     "json_agg(" MODEL_JSON " ORDER BY m.version),"
			     " '[]'::json)) FROM model_versions m"
			     " WHERE m.task_id = $1",
			     DB_ARGS(tid));
}
