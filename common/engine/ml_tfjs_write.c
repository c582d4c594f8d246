/* TensorFlow.js LayersModel files, writing: model.json (a Sequential
 * modelTopology and one weights group) and weights.bin, each through a
 * temporary file and rename. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEIGHTS_FILE "weights.bin"

/* An initializer the engine knows, in Keras' form. */
static json_t *init_to_json(const struct ml_init *i)
{
	static const char *const modes[] = { "fan_in", "fan_out", "fan_avg" };
	static const char *const dists[] = { "uniform", "normal",
					     "truncated_normal",
					     "untruncated_normal" };

	switch (i->kind) {
	case ML_INIT_ZEROS:
		return json_pack("{s:s, s:{}}", "class_name", "Zeros", "config");
	case ML_INIT_ONES:
		return json_pack("{s:s, s:{}}", "class_name", "Ones", "config");
	case ML_INIT_CONSTANT:
		return json_pack("{s:s, s:{s:f}}", "class_name", "Constant",
				 "config", "value", i->value);
	case ML_INIT_RANDOM_UNIFORM:
		return json_pack("{s:s, s:{s:f, s:f, s:n}}", "class_name",
				 "RandomUniform", "config", "minval", i->minval,
				 "maxval", i->maxval, "seed");
	case ML_INIT_RANDOM_NORMAL:
	case ML_INIT_TRUNCATED_NORMAL:
		return json_pack("{s:s, s:{s:f, s:f, s:n}}", "class_name",
				 i->kind == ML_INIT_RANDOM_NORMAL ?
				 "RandomNormal" : "TruncatedNormal", "config",
				 "mean", i->mean, "stddev", i->stddev, "seed");
	case ML_INIT_VARIANCE_SCALING:
		return json_pack("{s:s, s:{s:f, s:s, s:s, s:n}}", "class_name",
				 "VarianceScaling", "config", "scale", i->scale,
				 "mode", modes[i->mode], "distribution",
				 dists[i->distribution], "seed");
	case ML_INIT_UNSUPPORTED:
		break;
	}
	return json_null();
}

/* ---- saving ----------------------------------------------------------- */

static json_t *pair_json(int a, int b)
{
	return json_pack("[i, i]", a, b);
}

static json_t *init_json(const json_t *kept, const struct ml_init *i)
{
	return kept ? json_deep_copy(kept) : init_to_json(i);
}

static json_t *layer_json(const struct ml_model *m, int i)
{
	const struct ml_layer *l = &m->layers[i];
	json_t *cfg = json_pack("{s:s, s:b, s:s}", "name", l->name, "trainable",
				1, "dtype", "float32");

	if (!cfg)
		return NULL;
	if (i == 0) {
		json_t *s = json_array();

		json_array_append_new(s, json_null());
		for (int d = 0; d < m->in_shape.rank; d++)
			json_array_append_new(s, json_integer(m->in_shape.dim[d]));
		json_object_set_new(cfg, "batch_input_shape", s);
	}
	switch (l->kind) {
	case ML_LAYER_DENSE:
	case ML_LAYER_CONV2D:
		if (l->kind == ML_LAYER_DENSE) {
			json_object_set_new(cfg, "units", json_integer(l->units));
		} else {
			json_object_set_new(cfg, "filters",
					    json_integer(l->filters));
			json_object_set_new(cfg, "kernel_size",
					    pair_json(l->kh, l->kw));
			json_object_set_new(cfg, "strides",
					    pair_json(l->sh, l->sw));
			json_object_set_new(cfg, "padding",
					    json_string(l->same ? "same" : "valid"));
			json_object_set_new(cfg, "data_format",
					    json_string("channels_last"));
			json_object_set_new(cfg, "dilation_rate", pair_json(1, 1));
		}
		json_object_set_new(cfg, "activation",
				    json_string(ml_activation_name(l->act)));
		json_object_set_new(cfg, "use_bias", json_boolean(l->use_bias));
		json_object_set_new(cfg, "kernel_initializer",
				    init_json(l->kinit_json, &l->kinit));
		json_object_set_new(cfg, "bias_initializer",
				    init_json(l->binit_json, &l->binit));
		json_object_set_new(cfg, "kernel_regularizer", json_null());
		json_object_set_new(cfg, "bias_regularizer", json_null());
		json_object_set_new(cfg, "activity_regularizer", json_null());
		json_object_set_new(cfg, "kernel_constraint", json_null());
		json_object_set_new(cfg, "bias_constraint", json_null());
		break;
	case ML_LAYER_MAXPOOL2D:
		json_object_set_new(cfg, "pool_size", pair_json(l->kh, l->kw));
		json_object_set_new(cfg, "strides", pair_json(l->sh, l->sw));
		json_object_set_new(cfg, "padding",
				    json_string(l->same ? "same" : "valid"));
		json_object_set_new(cfg, "data_format",
				    json_string("channels_last"));
		break;
	case ML_LAYER_DROPOUT:
		json_object_set_new(cfg, "rate", json_real(l->rate));
		json_object_set_new(cfg, "noise_shape", json_null());
		json_object_set_new(cfg, "seed", json_null());
		break;
	case ML_LAYER_FLATTEN:
		json_object_set_new(cfg, "data_format",
				    json_string("channels_last"));
		break;
	case ML_LAYER_ACTIVATION:
		json_object_set_new(cfg, "activation",
				    json_string(ml_activation_name(l->act)));
		break;
	}
	return json_pack("{s:s, s:o}", "class_name", ml_layer_kind_name(l->kind),
			 "config", cfg);
}

static json_t *model_json(const struct ml_model *m)
{
	json_t *layers = json_array(), *weights = json_array(), *root;

	for (int i = 0; i < m->n_layers; i++)
		json_array_append_new(layers, layer_json(m, i));
	for (size_t t = 0; t < m->n_tensors; t++) {
		const struct ml_tensor_info *ti = &m->tensors[t];
		json_t *shape = json_array();

		for (int d = 0; d < ti->rank; d++)
			json_array_append_new(shape, json_integer(ti->shape[d]));
		json_array_append_new(weights, json_pack("{s:s, s:o, s:s}",
			"name", ti->name, "shape", shape, "dtype", "float32"));
	}
	root = json_pack("{s:s, s:s, s:n, s:{s:s, s:{s:s, s:o}, s:s, s:s}, "
			 "s:[{s:[s], s:o}]}",
			 "format", "layers-model",
			 "generatedBy", "fedmarket-engine " ML_VERSION,
			 "convertedBy",
			 "modelTopology", "class_name", "Sequential", "config",
			 "name", m->name, "layers", layers,
			 "keras_version", "fedmarket-engine " ML_VERSION,
			 "backend", "tensor_flow.js",
			 "weightsManifest", "paths", WEIGHTS_FILE, "weights",
			 weights);
	return root;
}

static int mkdirs(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p))
		return fm_error_set(FM_EINVAL, "model folder: bad path '%s'",
				    dir);
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return fm_error_set(FM_EIO, "%s: %s", p, strerror(errno));
		p[i] = i < n ? '/' : '\0';
	}
	return FM_OK;
}

/* Writes n bytes to path through path.tmp and rename. */
static int write_atomic(const char *path, const void *data, size_t n)
{
	char tmp[4200];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f)
		return fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
	ok = fwrite(data, 1, n, f) == n;
	ok = fflush(f) == 0 && ok;
	ok = fsync(fileno(f)) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;

		unlink(tmp);
		return fm_error_set(FM_EIO, "%s: %s", path, strerror(e));
	}
	return FM_OK;
}

int ml_model_save(const struct ml_model *m, const char *dir)
{
	unsigned char *bin = NULL;
	char *text = NULL;
	json_t *root = NULL;
	char path[4096];
	int err;

	err = mkdirs(dir);
	if (err)
		return err;
	bin = malloc(m->n_params * 4 + 1);
	root = model_json(m);
	if (!bin || !root) {
		err = fm_error_set(FM_ENOMEM, "%s: out of memory", dir);
		goto done;
	}
	for (size_t i = 0; i < m->n_params; i++) {
		uint32_t u;

		memcpy(&u, &m->params[i], 4);
		bin[4 * i] = (unsigned char)u;
		bin[4 * i + 1] = (unsigned char)(u >> 8);
		bin[4 * i + 2] = (unsigned char)(u >> 16);
		bin[4 * i + 3] = (unsigned char)(u >> 24);
	}
	text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
	if (!text) {
		err = fm_error_set(FM_ENOMEM, "%s: out of memory", dir);
		goto done;
	}
	/* the weights first: model.json is what makes a folder a model */
	snprintf(path, sizeof(path), "%s/" WEIGHTS_FILE, dir);
	err = write_atomic(path, bin, m->n_params * 4);
	if (err)
		goto done;
	snprintf(path, sizeof(path), "%s/model.json", dir);
	err = write_atomic(path, text, strlen(text));
done:
	free(bin);
	free(text);
	json_decref(root);
	return err;
}
