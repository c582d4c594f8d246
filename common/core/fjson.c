#include "core/fjson.h"

#include "core/buf.h"
#include "core/err.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void fj_path(char *out, size_t n, const char *path, const char *key)
{
	if (path && path[0])
		snprintf(out, n, "%s.%s", path, key);
	else
		snprintf(out, n, "%s", key);
}

void fj_path_index(char *out, size_t n, const char *path, size_t i)
{
	snprintf(out, n, "%s[%zu]", path ? path : "", i);
}

int fj_parse(json_t **out, const char *text, size_t len, const char *what)
{
	json_error_t e;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);

	if (!j)
		return fm_error_set(FM_EINVAL,
				    "%s: invalid JSON at line %d column %d: %s",
				    what, e.line, e.column, e.text);
	*out = j;
	return FM_OK;
}

int fj_load_file(json_t **out, const char *path, size_t max_bytes)
{
	struct buf b = BUF_INIT(max_bytes);
	int err = buf_read_file(&b, path);

	if (err)
		goto done;
	err = fj_parse(out, b.data, b.len, path);
done:
	buf_cleanup(&b);
	return err;
}

/* Looks up key; *found is 0 when absent or null. */
static int member(const json_t *obj, const char *path, const char *key,
		  json_t **v, int required)
{
	char p[256];

	if (!json_is_object(obj)) {
		return fm_error_set(FM_EINVAL, "%s: expected an object",
				    path && path[0] ? path : "(root)");
	}
	*v = json_object_get(obj, key);
	if (*v && json_is_null(*v))
		*v = NULL;
	if (!*v && required) {
		fj_path(p, sizeof(p), path, key);
		return fm_error_set(FM_EINVAL, "%s: required field is missing",
				    p);
	}
	return FM_OK;
}

static int type_error(const char *path, const char *key, const char *what)
{
	char p[256];

	fj_path(p, sizeof(p), path, key);
	return fm_error_set(FM_EINVAL, "%s: expected %s", p, what);
}

static int get_int(const json_t *v, const char *path, const char *key,
		   long long min, long long max, long long *out)
{
	char what[96];
	long long x;

	if (min == LLONG_MIN && max == LLONG_MAX)
		snprintf(what, sizeof(what), "integer");
	else if (max == LLONG_MAX)
		snprintf(what, sizeof(what), "integer >= %lld", min);
	else
		snprintf(what, sizeof(what), "integer in [%lld, %lld]", min,
			 max);
	if (!json_is_integer(v))
		return type_error(path, key, what);
	x = json_integer_value(v);
	if (x < min || x > max)
		return type_error(path, key, what);
	*out = x;
	return FM_OK;
}

int fj_int(const json_t *obj, const char *path, const char *key,
	   long long min, long long max, long long *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	return err ? err : get_int(v, path, key, min, max, out);
}

int fj_int_opt(const json_t *obj, const char *path, const char *key,
	       long long min, long long max, long long def, long long *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 0);

	if (err)
		return err;
	if (!v) {
		*out = def;
		return FM_OK;
	}
	return get_int(v, path, key, min, max, out);
}

static int get_num(const json_t *v, const char *path, const char *key,
		   double min, double max, double *out)
{
	char what[96];
	double x;

	snprintf(what, sizeof(what), "number in [%g, %g]", min, max);
	if (!json_is_number(v))
		return type_error(path, key, what);
	x = json_number_value(v);
	if (!isfinite(x) || x < min || x > max)
		return type_error(path, key, what);
	*out = x;
	return FM_OK;
}

int fj_num(const json_t *obj, const char *path, const char *key, double min,
	   double max, double *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	return err ? err : get_num(v, path, key, min, max, out);
}

int fj_num_opt(const json_t *obj, const char *path, const char *key,
	       double min, double max, double def, double *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 0);

	if (err)
		return err;
	if (!v) {
		*out = def;
		return FM_OK;
	}
	return get_num(v, path, key, min, max, out);
}

static int get_str(const json_t *v, const char *path, const char *key,
		   size_t max_len, const char **out)
{
	char what[96];

	snprintf(what, sizeof(what), "string of at most %zu bytes", max_len);
	if (!json_is_string(v) || json_string_length(v) > max_len)
		return type_error(path, key, what);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return type_error(path, key, "string without NUL bytes");
	*out = json_string_value(v);
	return FM_OK;
}

int fj_str(const json_t *obj, const char *path, const char *key,
	   size_t max_len, const char **out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	return err ? err : get_str(v, path, key, max_len, out);
}

int fj_str_opt(const json_t *obj, const char *path, const char *key,
	       size_t max_len, const char *def, const char **out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 0);

	if (err)
		return err;
	if (!v) {
		*out = def;
		return FM_OK;
	}
	return get_str(v, path, key, max_len, out);
}

int fj_bool(const json_t *obj, const char *path, const char *key, int *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	if (err)
		return err;
	if (!json_is_boolean(v))
		return type_error(path, key, "true or false");
	*out = json_is_true(v);
	return FM_OK;
}

int fj_bool_opt(const json_t *obj, const char *path, const char *key,
		int def, int *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 0);

	if (err)
		return err;
	if (!v) {
		*out = def;
		return FM_OK;
	}
	if (!json_is_boolean(v))
		return type_error(path, key, "true or false");
	*out = json_is_true(v);
	return FM_OK;
}

int fj_obj(const json_t *obj, const char *path, const char *key,
	   json_t **out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	if (err)
		return err;
	if (!json_is_object(v))
		return type_error(path, key, "an object");
	*out = v;
	return FM_OK;
}

int fj_obj_opt(const json_t *obj, const char *path, const char *key,
	       json_t **out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 0);

	if (err)
		return err;
	if (v && !json_is_object(v))
		return type_error(path, key, "an object");
	*out = v;
	return FM_OK;
}

int fj_arr(const json_t *obj, const char *path, const char *key,
	   size_t max_items, json_t **out)
{
	char what[96];
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	if (err)
		return err;
	snprintf(what, sizeof(what), "an array of at most %zu items",
		 max_items);
	if (!json_is_array(v) || json_array_size(v) > max_items)
		return type_error(path, key, what);
	*out = v;
	return FM_OK;
}

static int get_enum(const json_t *v, const char *path, const char *key,
		    const char *const *choices, int *out)
{
	char what[256] = "one of";
	size_t used = strlen(what);

	if (json_is_string(v)) {
		for (int i = 0; choices[i]; i++) {
			if (strcmp(json_string_value(v), choices[i]) == 0) {
				*out = i;
				return FM_OK;
			}
		}
	}
	for (int i = 0; choices[i] && used < sizeof(what); i++)
		used += (size_t)snprintf(what + used, sizeof(what) - used,
					 "%s \"%s\"", i ? "," : "",
					 choices[i]);
	return type_error(path, key, what);
}

int fj_enum(const json_t *obj, const char *path, const char *key,
	    const char *const *choices, int *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 1);

	return err ? err : get_enum(v, path, key, choices, out);
}

int fj_enum_opt(const json_t *obj, const char *path, const char *key,
		const char *const *choices, int def, int *out)
{
	json_t *v;
	int err = member(obj, path, key, &v, 0);

	if (err)
		return err;
	if (!v) {
		*out = def;
		return FM_OK;
	}
	return get_enum(v, path, key, choices, out);
}

int fj_no_unknown(const json_t *obj, const char *path,
		  const char *const *allowed)
{
	const char *key;
	json_t *v;
	char p[256];

	if (!json_is_object(obj))
		return fm_error_set(FM_EINVAL, "%s: expected an object",
				    path && path[0] ? path : "(root)");
	json_object_foreach((json_t *)obj, key, v) {
		int known = 0;

		for (int i = 0; allowed[i] && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known) {
			fj_path(p, sizeof(p), path, key);
			return fm_error_set(FM_EINVAL, "%s: unknown field", p);
		}
	}
	return FM_OK;
}
