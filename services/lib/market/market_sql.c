/* The statement helpers the market files share (market_int.h). */
#include "market/market_int.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdlib.h>
#include <string.h>

static void drop_result(void *arg)
{
	json_t **result = arg;

	json_decref(*result);
	*result = NULL;
}

int mkt_tx_json(struct db_pool *p, enum db_isolation iso, db_tx_fn fn,
		void *arg, json_t **out)
{
	json_t **result = arg;
	int err = db_tx(p, iso, fn, drop_result, arg);

	if (err)
		return err;
	*out = *result;
	*result = NULL;
	return FM_OK;
}

int mkt_row_first(struct db_conn *c, PGresult **r, const char *what,
		  const char *sql, int n, const char *const *params)
{
	int err = db_exec(c, r, sql, n, params);

	if (err)
		return err;
	if (PQntuples(*r) == 0) {
		PQclear(*r);
		*r = NULL;
		return fm_error_set(FM_ENOTFOUND, "%s not found", what);
	}
	return FM_OK;
}

int mkt_row_json(struct db_conn *c, json_t **out, const char *what,
		 const char *sql, int n, const char *const *params)
{
	PGresult *r = NULL;
	int err = mkt_row_first(c, &r, what, sql, n, params);

	if (err)
		return err;
	err = fj_parse(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0),
		       "database row");
	PQclear(r);
	return err;
}

/* A read: the statement, and where its answer goes until it is handed
 * on (json with want_text 0, else text and len). */
struct read_arg {
	json_t *result;
	char *text;
	size_t len;
	int want_text;
	const char *what;
	const char *sql;
	int n;
	const char *const *params;
};

static void read_drop(void *arg)
{
	struct read_arg *a = arg;

	json_decref(a->result);
	a->result = NULL;
	free(a->text);
	a->text = NULL;
}

static int read_text_fn(struct db_conn *c, struct read_arg *a)
{
	PGresult *r = NULL;
	size_t n;
	int err;

	err = mkt_row_first(c, &r, a->what, a->sql, a->n, a->params);
	if (err)
		return err;
	if (PQgetisnull(r, 0, 0)) {
		err = fm_error_set(FM_ENOTFOUND, "%s not found", a->what);
		goto done;
	}
	n = (size_t)PQgetlength(r, 0, 0);
	a->text = malloc(n + 1);
	if (!a->text) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(a->text, PQgetvalue(r, 0, 0), n + 1);
	a->len = n;
done:
	PQclear(r);
	return err;
}

static int read_fn(struct db_conn *c, void *arg)
{
	struct read_arg *a = arg;

	if (a->want_text)
		return read_text_fn(c, a);
	return mkt_row_json(c, &a->result, a->what, a->sql, a->n, a->params);
}

int mkt_read_text(struct db_pool *p, char **out, size_t *len,
		  const char *what, const char *sql, int n,
		  const char *const *params)
{
	struct read_arg a = { NULL, NULL, 0, 1, what, sql, n, params };
	int err;

	*out = NULL;
	err = db_tx(p, DB_AUTOCOMMIT, read_fn, read_drop, &a);
	if (err)
		return err;
	*out = a.text;
	*len = a.len;
	return FM_OK;
}

int mkt_read_json(struct db_pool *p, json_t **out, const char *what,
		  const char *sql, int n, const char *const *params)
{
	struct read_arg a = { NULL, NULL, 0, 0, what, sql, n, params };

	return mkt_tx_json(p, DB_AUTOCOMMIT, read_fn, &a, out);
}

int mkt_text_to_json(int err, char *text, size_t len, json_t **out)
{
	if (err)
		goto done;
	err = fj_parse(out, text, len, "database row");
done:
	free(text);
	return err;
}

char *mkt_dump_or_empty(const json_t *o)
{
	return o ? json_dumps(o, JSON_COMPACT) : strdup("{}");
}

int mkt_ensure_account(struct db_conn *c, const char *address)
{
	return db_execp(c, NULL,
			"INSERT INTO accounts (address) VALUES ($1)"
			" ON CONFLICT DO NOTHING",
			address);
}

int mkt_check_uuid(const char *id, const char *what)
{
	static const int dash[] = { 8, 13, 18, 23 };
	size_t n = id ? strlen(id) : 0;

	if (n != 36)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		int want_dash = 0;

		for (size_t k = 0; k < 4; k++)
			want_dash |= (int)i == dash[k];
		if (want_dash ? id[i] != '-'
			      : !((id[i] >= '0' && id[i] <= '9') ||
				  (id[i] >= 'a' && id[i] <= 'f') ||
				  (id[i] >= 'A' && id[i] <= 'F')))
			goto bad;
	}
	return FM_OK;
bad:
	return fm_error_set(FM_EINVAL, "%s: expected a UUID", what);
}

int mkt_bundle_ref_ok(const char *ref)
{
	return ref && strlen(ref) == 64 &&
	       strspn(ref, "0123456789abcdef") == 64;
}
