/* Bundle manifests: kinds, confined paths and the shape check that
 * schema/manifest.schema.json describes. */
#include "storage/bundle.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 128
#define VERSION_MAX_LEN 64
#define DESCRIPTION_MAX_LEN 4096
#define ENGINE_VERSION_MAX_LEN 32
#define TENSORS_MAX 64
#define DIMS_MAX 8
#define JSON_INT_MAX ((1LL << 53) - 1)

static const char *const kind_names[] = { "model", "result", "task-assets",
					  "dataset", NULL };

const char *store_kind_name(enum store_kind k)
{
	if ((unsigned)k >= sizeof(kind_names) / sizeof(kind_names[0]) - 1)
		return "?";
	return kind_names[k];
}

int store_kind_parse(enum store_kind *out, const char *name)
{
	for (int i = 0; kind_names[i]; i++) {
		if (strcmp(name, kind_names[i]) == 0) {
			*out = (enum store_kind)i;
			return FM_OK;
		}
	}
	return fm_error_set(FM_EINVAL, "bundle kind \"%.64s\": expected model, "
			    "result, task-assets or dataset", name);
}

int store_path_check(const char *path)
{
	const char *start = path;
	size_t len;

	if (!path || !path[0])
		return fm_error_set(FM_EINVAL, "bundle path is empty");
	len = strlen(path);
	if (len > STORE_PATH_MAX)
		return fm_error_set(FM_EINVAL, "bundle path \"%.64s...\" is over"
				    " %d bytes", path, STORE_PATH_MAX);
	if (path[0] == '/')
		return fm_error_set(FM_EINVAL, "bundle path \"%.200s\": absolute"
				    " paths are not allowed", path);
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c == '/' || c == '\0') {
			size_t n = (size_t)(path + i - start);

			if (n == 0)
				return fm_error_set(FM_EINVAL, "bundle path "
						    "\"%.200s\": empty component",
						    path);
			if ((n == 1 && start[0] == '.') ||
			    (n == 2 && start[0] == '.' && start[1] == '.'))
				return fm_error_set(FM_EINVAL, "bundle path "
						    "\"%.200s\": \".\" and \"..\""
						    " are not allowed", path);
			if (n > 255)
				return fm_error_set(FM_EINVAL, "bundle path "
						    "\"%.64s...\": a component is"
						    " over 255 bytes", path);
			start = path + i + 1;
			continue;
		}
		if (c < 0x20 || c == 0x7f || c == '\\')
			return fm_error_set(FM_EINVAL, "bundle path \"%.200s\": "
					    "byte 0x%02x at offset %zu is not "
					    "allowed", path, c, i);
	}
	return FM_OK;
}

/* A required string of 1..max bytes without control characters. */
static int text_field(const json_t *obj, const char *path, const char *key,
		      size_t max, int required, const char **out)
{
	char p[256];
	const char *s = NULL;
	int err;

	if (required)
		err = fj_str(obj, path, key, max, &s);
	else
		err = fj_str_opt(obj, path, key, max, NULL, &s);
	if (err || !s)
		return err;
	fj_path(p, sizeof(p), path, key);
	if (!s[0])
		return fm_error_set(FM_EINVAL, "%s: must not be empty", p);
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return fm_error_set(FM_EINVAL, "%s: control character at"
					    " offset %zu", p, (size_t)(c - s));
	if (out)
		*out = s;
	return FM_OK;
}

static int digits(const char *s, int n, int lo, int hi, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return v >= lo && v <= hi;
}

/* "YYYY-MM-DDTHH:MM:SSZ", UTC, with plausible fields. */
static int created_check(const json_t *m)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
				     30, 31 };
	const char *s;
	int y, mo, d, h, mi, se;
	int err = fj_str(m, "", "created", 32, &s);

	if (err)
		return err;
	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
	    !digits(s, 4, 1970, 9999, &y) || !digits(s + 5, 2, 1, 12, &mo) ||
	    !digits(s + 8, 2, 1, mdays[mo - 1], &d) ||
	    !digits(s + 11, 2, 0, 23, &h) || !digits(s + 14, 2, 0, 59, &mi) ||
	    !digits(s + 17, 2, 0, 60, &se))
		return fm_error_set(FM_EINVAL, "created: expected a UTC time "
				    "like 2024-05-01T12:00:00Z, got \"%.40s\"",
				    s);
	(void)y;
	(void)h;
	(void)mi;
	(void)se;
	return FM_OK;
}

static int sha_field(const json_t *obj, const char *path)
{
	char p[256];
	const char *s;
	int err = fj_str(obj, path, "sha256", SHA256_HEX_LEN, &s);

	if (err)
		return err;
	fj_path(p, sizeof(p), path, "sha256");
	if (strlen(s) != SHA256_HEX_LEN)
		return fm_error_set(FM_EINVAL, "%s: expected 64 hex digits, got"
				    " %zu characters", p, strlen(s));
	for (size_t i = 0; i < SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return fm_error_set(FM_EINVAL, "%s: '%c' at %zu is not "
					    "a lowercase hex digit", p, s[i],
					    i);
	return FM_OK;
}

/* Refuses duplicate paths and a path that is also another's directory:
 * files holds every file, dirs every directory above one. */
static int path_conflicts(json_t *files_set, json_t *dirs_set,
			  const char *path, const char *where)
{
	char d[STORE_PATH_MAX + 1];
	size_t n = strlen(path);

	if (json_object_get(files_set, path))
		return fm_error_set(FM_EINVAL, "%s: \"%.200s\" is listed twice",
				    where, path);
	if (json_object_get(dirs_set, path))
		return fm_error_set(FM_EINVAL, "%s: \"%.200s\" is both a file "
				    "and a directory", where, path);
	memcpy(d, path, n + 1);
	for (size_t i = n; i-- > 0;) {
		if (d[i] != '/')
			continue;
		d[i] = '\0';
		if (json_object_get(files_set, d))
			return fm_error_set(FM_EINVAL, "%s: \"%.200s\" is both "
					    "a file and a directory", where, d);
		if (json_object_set_new(dirs_set, d, json_true()))
			return fm_error_set(FM_ENOMEM, "out of memory");
	}
	if (json_object_set_new(files_set, path, json_true()))
		return fm_error_set(FM_ENOMEM, "out of memory");
	return FM_OK;
}

/* files[i] (at p); fset and dset hold the paths of the entries before. */
static int file_check(const json_t *f, const char *p, json_t *fset,
		      json_t *dset)
{
	static const char *const keys[] = { "path", "sha256", "size", NULL };
	const char *path;
	long long size;
	int err;

	if (!json_is_object(f))
		return fm_error_set(FM_EINVAL, "%s: expected an object", p);
	err = fj_no_unknown(f, p, keys);
	if (err)
		return err;
	err = fj_str(f, p, "path", STORE_PATH_MAX, &path);
	if (err)
		return err;
	err = store_path_check(path);
	if (err) {
		fm_error_prefix("%s.path", p);
		return err;
	}
	err = sha_field(f, p);
	if (err)
		return err;
	err = fj_int(f, p, "size", 0, (long long)STORE_OBJECT_MAX, &size);
	if (err)
		return err;
	return path_conflicts(fset, dset, path, p);
}

static int files_check(const json_t *m)
{
	json_t *files, *fset = NULL, *dset = NULL;
	char p[64];
	int err;

	err = fj_arr(m, "", "files", STORE_BUNDLE_FILES_MAX, &files);
	if (err)
		return err;
	if (json_array_size(files) == 0)
		return fm_error_set(FM_EINVAL, "files: a bundle needs at least "
				    "one file");
	fset = json_object();
	dset = json_object();
	if (!fset || !dset) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		fj_path_index(p, sizeof(p), "files", i);
		err = file_check(json_array_get(files, i), p, fset, dset);
		if (err)
			goto done;
	}
done:
	json_decref(fset);
	json_decref(dset);
	return err;
}

/* One tensor description (at p). */
static int tensor_check(const json_t *t, const char *p)
{
	static const char *const keys[] = { "name", "shape", "dtype", NULL };
	static const char *const dtypes[] = { "float32", "int32", "bool",
					      NULL };
	json_t *shape;
	int dtype, err;

	if (!json_is_object(t))
		return fm_error_set(FM_EINVAL, "%s: expected an object", p);
	err = fj_no_unknown(t, p, keys);
	if (err)
		return err;
	err = text_field(t, p, "name", NAME_MAX_LEN, 1, NULL);
	if (err)
		return err;
	err = fj_enum(t, p, "dtype", dtypes, &dtype);
	if (err)
		return err;
	err = fj_arr(t, p, "shape", DIMS_MAX, &shape);
	if (err)
		return err;
	if (json_array_size(shape) == 0)
		return fm_error_set(FM_EINVAL, "%s.shape: expected 1 to %d "
				    "dimensions", p, DIMS_MAX);
	for (size_t j = 0; j < json_array_size(shape); j++) {
		const json_t *d = json_array_get(shape, j);

		if (json_is_null(d))
			continue;
		if (!json_is_integer(d) || json_integer_value(d) < 1 ||
		    json_integer_value(d) > (1 << 30))
			return fm_error_set(FM_EINVAL, "%s.shape[%zu]: expected "
					    "a positive integer or null", p, j);
	}
	return FM_OK;
}

static int tensors_check(const json_t *model, const char *key)
{
	json_t *arr;
	char p[64], q[96];
	int err;

	err = fj_arr(model, "model", key, TENSORS_MAX, &arr);
	if (err)
		return err;
	if (json_array_size(arr) == 0)
		return fm_error_set(FM_EINVAL, "model.%s: expected at least one "
				    "entry", key);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		snprintf(q, sizeof(q), "model.%s", key);
		fj_path_index(p, sizeof(p), q, i);
		err = tensor_check(json_array_get(arr, i), p);
		if (err)
			return err;
	}
	return FM_OK;
}

static int model_check(const json_t *model)
{
	static const char *const keys[] = { "format", "inputs", "outputs",
					    "parameters", "engine_version",
					    NULL };
	static const char *const formats[] = { "tfjs-layers", NULL };
	const char *ev;
	long long params;
	int format, err;

	if (!json_is_object(model))
		return fm_error_set(FM_EINVAL, "model: expected an object");
	err = fj_no_unknown(model, "model", keys);
	if (err)
		return err;
	err = fj_enum(model, "model", "format", formats, &format);
	if (err)
		return err;
	err = tensors_check(model, "inputs");
	if (err)
		return err;
	err = tensors_check(model, "outputs");
	if (err)
		return err;
	err = fj_int(model, "model", "parameters", 0, JSON_INT_MAX, &params);
	if (err)
		return err;
	err = text_field(model, "model", "engine_version",
			 ENGINE_VERSION_MAX_LEN, 1, &ev);
	if (err)
		return err;
	for (const char *c = ev; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= 'A' && *c <= 'Z') || *c == '.' || *c == '-' ||
		      *c == '+'))
			return fm_error_set(FM_EINVAL, "model.engine_version: "
					    "'%c' is not allowed (0-9 A-Z a-z "
					    ". - +)", *c);
	return FM_OK;
}

int store_manifest_check(const json_t *m)
{
	static const char *const keys[] = { "manifest", "kind", "name",
					    "version", "created",
					    "description", "files", "model",
					    "meta", NULL };
	const json_t *model, *meta;
	long long version;
	int kind, err;

	if (!json_is_object(m))
		return fm_error_set(FM_EINVAL, "manifest: expected a JSON "
				    "object");
	err = fj_no_unknown(m, "", keys);
	if (err)
		return err;
	err = fj_int(m, "", "manifest", 1, 1, &version);
	if (err)
		return err;
	err = fj_enum(m, "", "kind", kind_names, &kind);
	if (err)
		return err;
	err = text_field(m, "", "name", NAME_MAX_LEN, 1, NULL);
	if (err)
		return err;
	err = text_field(m, "", "version", VERSION_MAX_LEN, 1, NULL);
	if (err)
		return err;
	err = created_check(m);
	if (err)
		return err;
	err = text_field(m, "", "description", DESCRIPTION_MAX_LEN, 0, NULL);
	if (err)
		return err;
	err = files_check(m);
	if (err)
		return err;
	model = json_object_get(m, "model");
	if (model) {
		err = model_check(model);
		if (err)
			return err;
	} else if (kind == STORE_KIND_MODEL) {
		return fm_error_set(FM_EINVAL, "model: required for a bundle of "
				    "kind model");
	}
	meta = json_object_get(m, "meta");
	if (meta && !json_is_object(meta))
		return fm_error_set(FM_EINVAL, "meta: expected an object");
	return FM_OK;
}
