/* TensorFlow.js LayersModel files, reading: model.json (modelTopology,
 * weightsManifest) and the little-endian float32 weight files it names.
 * Weights must match the layers' tensors exactly, by name and shape. */
#include "engine/ml_impl.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 4096
#define MAX_PATH_LEN 255

/* ---- weights ---------------------------------------------------------- */

static int path_safe(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > MAX_PATH_LEN || p[0] == '/' || strchr(p, '\\'))
		return 0;
	for (const char *s = p; s; s = strchr(s, '/')) {
		if (*s == '/')
			s++;
		if (strncmp(s, "..", 2) == 0 && (s[2] == '/' || s[2] == '\0'))
			return 0;
		if (*s == '/' || *s == '\0')
			return 0; /* empty component */
	}
	return 1;
}

/* The tensor a manifest name refers to: exact name, or a scoped name
 * ending in "/<layer>/<kernel|bias>". */
static int find_tensor(const struct ml_model *m, const char *name)
{
	size_t n = strlen(name);

	for (size_t t = 0; t < m->n_tensors; t++)
		if (strcmp(m->tensor_names[t], name) == 0)
			return (int)t;
	for (size_t t = 0; t < m->n_tensors; t++) {
		size_t k = strlen(m->tensor_names[t]);

		if (k < n && name[n - k - 1] == '/' &&
		    strcmp(name + n - k, m->tensor_names[t]) == 0)
			return (int)t;
	}
	return -1;
}

static float le_float(const unsigned char *b)
{
	uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
		     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

struct manifest_entry {
	int tensor;
	size_t size;
};

/* Checks one group's weights against the model; fills entries and the
 * group's byte count. */
static int group_entries(struct ml_model *m, const json_t *weights,
			 const char *gpath, struct manifest_entry *ent,
			 unsigned char *seen, size_t *bytes)
{
	char p[96];

	*bytes = 0;
	for (size_t i = 0; i < json_array_size(weights); i++) {
		json_t *w = json_array_get(weights, i);
		json_t *shape, *q;
		const char *name, *dtype;
		size_t size = 1;
		int t, err;

		fj_path_index(p, sizeof(p), gpath, i);
		err = fj_str(w, p, "name", 2 * ML_NAME_MAX - 1, &name);
		if (err)
			return err;
		err = fj_arr(w, p, "shape", 4, &shape);
		if (err)
			return err;
		err = fj_str_opt(w, p, "dtype", 16, "float32", &dtype);
		if (err)
			return err;
		q = json_object_get(w, "quantization");
		if (q && !json_is_null(q))
			return fm_error_set(FM_EINVAL, "weightsManifest: %s: "
					    "quantized weights are not "
					    "supported", name);
		if (strcmp(dtype, "float32") != 0)
			return fm_error_set(FM_EINVAL, "weightsManifest: %s: "
					    "dtype '%s' is not supported "
					    "(float32 only)", name, dtype);
		t = find_tensor(m, name);
		if (t < 0)
			return fm_error_set(FM_EINVAL, "weightsManifest: %s: "
					    "no layer has this weight", name);
		if (seen[t])
			return fm_error_set(FM_EINVAL, "weightsManifest: %s: "
					    "given twice", name);
		seen[t] = 1;
		const struct ml_tensor_info *ti = &m->tensors[t];

		if (json_array_size(shape) != (size_t)ti->rank)
			goto shape_error;
		for (int d = 0; d < ti->rank; d++) {
			json_t *v = json_array_get(shape, (size_t)d);

			if (!json_is_integer(v) ||
			    json_integer_value(v) != ti->shape[d])
				goto shape_error;
			size *= (size_t)ti->shape[d];
		}
		ent[i].tensor = t;
		ent[i].size = size;
		*bytes += size * sizeof(float);
		snprintf(m->tensor_names[t], sizeof(m->tensor_names[t]), "%s",
			 name);
		m->tensors[t].name = m->tensor_names[t];
		continue;
shape_error:
		{
			char want[64];
			size_t len = 0;

			for (int d = 0; d < ti->rank; d++)
				len += (size_t)snprintf(want + len,
					sizeof(want) - len, "%s%d",
					d ? "," : "", ti->shape[d]);
			return fm_error_set(FM_EINVAL, "weightsManifest: %s: "
					    "shape disagrees with the layer "
					    "(expected [%s])", name, want);
		}
	}
	return FM_OK;
}

/* The group's files, concatenated, into data (set up here; the caller
 * cleans it up): they must hold exactly the group's bytes. */
static int read_group_files(struct buf *data, const json_t *paths,
			    const char *dir, const char *gpath, size_t bytes)
{
	struct buf one = BUF_INIT(0);
	char file[4096];
	int err;

	buf_init(data, bytes);
	err = buf_reserve(data, bytes);
	if (err)
		return err;
	for (size_t i = 0; i < json_array_size(paths); i++) {
		json_t *pv = json_array_get(paths, i);

		if (!json_is_string(pv) || !path_safe(json_string_value(pv)))
			return fm_error_set(FM_EINVAL, "%s.paths[%zu]: expected "
					    "a relative path inside the model "
					    "folder", gpath, i);
		snprintf(file, sizeof(file), "%s/%s", dir,
			 json_string_value(pv));
		buf_init(&one, bytes - data->len);
		err = buf_read_file(&one, file);
		if (err == FM_ETOOLARGE)
			err = fm_error_set(FM_EINVAL, "%s: larger than the "
					   "%zu bytes the manifest gives "
					   "its weights", file, bytes);
		if (err)
			goto done;
		err = buf_append(data, one.data, one.len);
		if (err)
			goto done;
		buf_cleanup(&one);
	}
	if (data->len != bytes)
		err = fm_error_set(FM_EINVAL, "%s: weight files hold %zu bytes, "
				   "the manifest's shapes need %zu", gpath,
				   data->len, bytes);
done:
	buf_cleanup(&one);
	return err;
}

static int load_group(struct ml_model *m, const json_t *group, size_t gi,
		      const char *dir, unsigned char *seen)
{
	struct manifest_entry *ent = NULL;
	struct buf data = BUF_INIT(0);
	json_t *paths, *weights;
	char gpath[64], p[96];
	size_t bytes, pos = 0;
	int err;

	snprintf(gpath, sizeof(gpath), "weightsManifest[%zu]", gi);
	err = fj_arr(group, gpath, "paths", 4096, &paths);
	if (err)
		return err;
	err = fj_arr(group, gpath, "weights", 65536, &weights);
	if (err)
		return err;
	ent = calloc(json_array_size(weights) + 1, sizeof(*ent));
	if (!ent)
		return fm_error_set(FM_ENOMEM, "weightsManifest: out of memory");
	snprintf(p, sizeof(p), "%s.weights", gpath);
	err = group_entries(m, weights, p, ent, seen, &bytes);
	if (err)
		goto done;
	err = read_group_files(&data, paths, dir, gpath, bytes);
	if (err)
		goto done;
	for (size_t i = 0; i < json_array_size(weights); i++) {
		float *dst = m->params + m->tensors[ent[i].tensor].offset;
		const unsigned char *src = (const unsigned char *)data.data + pos;

		for (size_t k = 0; k < ent[i].size; k++)
			dst[k] = le_float(src + 4 * k);
		pos += ent[i].size * 4;
	}
done:
	buf_cleanup(&data);
	free(ent);
	return err;
}

static int load_weights(struct ml_model *m, const json_t *manifest,
			const char *dir)
{
	unsigned char *seen = calloc(m->n_tensors + 1, 1);
	int err = FM_OK;

	if (!seen)
		return fm_error_set(FM_ENOMEM, "weightsManifest: out of memory");
	if (!json_is_array(manifest) || json_array_size(manifest) > MAX_GROUPS) {
		err = fm_error_set(FM_EINVAL, "weightsManifest: expected a list "
				   "of at most %d groups", MAX_GROUPS);
		goto done;
	}
	for (size_t g = 0; g < json_array_size(manifest); g++) {
		err = load_group(m, json_array_get(manifest, g), g, dir, seen);
		if (err)
			goto done;
	}
	for (size_t t = 0; t < m->n_tensors; t++) {
		if (!seen[t]) {
			err = fm_error_set(FM_EINVAL, "weightsManifest: weight "
					   "%s is missing", m->tensor_names[t]);
			goto done;
		}
	}
done:
	free(seen);
	return err;
}

static int load_json(struct ml_model **out, const char *text, size_t len,
		     const char *dir, size_t max_params)
{
	struct ml_model *m = NULL;
	json_t *root = NULL, *topo, *manifest, *fmt;
	int err;

	if (len > ML_MAX_MODEL_JSON)
		return fm_error_set(FM_ETOOLARGE, "model.json: %zu bytes, limit "
				    "is %u", len, ML_MAX_MODEL_JSON);
	err = fj_parse(&root, text, len, "model.json");
	if (err)
		return err;
	err = fj_obj(root, "", "modelTopology", &topo);
	if (err)
		goto done;
	err = fj_arr(root, "", "weightsManifest", MAX_GROUPS, &manifest);
	if (err)
		goto done;
	fmt = json_object_get(root, "format");
	if (fmt && json_is_string(fmt) &&
	    strcmp(json_string_value(fmt), "layers-model") != 0) {
		err = fm_error_set(FM_EINVAL, "format: '%s' is not supported "
				   "(layers-model only)",
				   json_string_value(fmt));
		goto done;
	}
	err = ml__model_alloc(&m, ML_MAX_LAYERS);
	if (err)
		goto done;
	m->max_params = max_params;
	err = ml__tfjs_parse_topology(m, topo);
	if (err)
		goto done;
	err = ml__model_build(m);
	if (err)
		goto done;
	err = load_weights(m, manifest, dir);
	if (err)
		goto done;
	err = ml_model_check_finite(m);
	if (err)
		goto done;
	*out = m;
	m = NULL;
done:
	json_decref(root);
	ml_model_free(m);
	return err;
}

int ml_model_load_json(struct ml_model **out, const char *text, size_t len,
		       const char *dir)
{
	return load_json(out, text, len, dir, 0);
}

int ml_model_load_max(struct ml_model **out, const char *dir,
		      size_t max_params)
{
	struct buf b = BUF_INIT(ML_MAX_MODEL_JSON);
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/model.json", dir);
	err = buf_read_file(&b, path);
	if (err)
		goto done;
	err = load_json(out, b.data, b.len, dir, max_params);
done:
	if (err && strncmp(fm_error_msg(), path, strlen(path)) != 0)
		fm_error_prefix("%s", path);
	buf_cleanup(&b);
	return err;
}

int ml_model_load(struct ml_model **out, const char *dir)
{
	return ml_model_load_max(out, dir, 0);
}
