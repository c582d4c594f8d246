/* The TensorFlow.js LayersModel format: model.json (modelTopology in Keras'
 * JSON form, weightsManifest) and little-endian float32 weight files.
 * Everything read is checked; anything the engine would not compute
 * exactly as Keras does is refused by name, never approximated. */
#include "engine/ml_impl.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEIGHTS_FILE "weights.bin"
#define MAX_GROUPS 4096
#define MAX_PATH_LEN 255

struct parse_ctx {
	char where[ML_NAME_MAX + 64]; /* "layers[2] (dense_1)" */
};

static int bad(const struct parse_ctx *c, const char *field, const char *fmt,
	       ...) __attribute__((format(printf, 3, 4)));

static int bad(const struct parse_ctx *c, const char *field, const char *fmt,
	       ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fm_error_set(FM_EINVAL, "modelTopology: %s: %s: %s", c->where,
			    field, msg);
}

/* ---- small JSON readers ----------------------------------------------- */

static int get_int(const struct parse_ctx *c, const json_t *cfg,
		   const char *key, int def, int *out)
{
	json_t *v = json_object_get(cfg, key);

	if (!v || json_is_null(v)) {
		if (def < 0)
			return bad(c, key, "%s", "required field is missing");
		*out = def;
		return FM_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > ML_MAX_DIM)
		return bad(c, key, "expected an integer in [1, %s]", "16777216");
	*out = (int)json_integer_value(v);
	return FM_OK;
}

/* An integer or a list of two (kernel_size, strides, pool_size). */
static int get_pair(const struct parse_ctx *c, const json_t *cfg,
		    const char *key, int def, int *h, int *w)
{
	json_t *v = json_object_get(cfg, key);
	json_t *a, *b;

	if (!v || json_is_null(v)) {
		if (def < 0)
			return bad(c, key, "%s", "required field is missing");
		*h = *w = def;
		return FM_OK;
	}
	if (json_is_integer(v)) {
		a = b = v;
	} else if (json_is_array(v) && json_array_size(v) == 2) {
		a = json_array_get(v, 0);
		b = json_array_get(v, 1);
	} else {
		return bad(c, key, "%s", "expected an integer or [h, w]");
	}
	if (!json_is_integer(a) || !json_is_integer(b) ||
	    json_integer_value(a) < 1 || json_integer_value(b) < 1 ||
	    json_integer_value(a) > ML_MAX_DIM ||
	    json_integer_value(b) > ML_MAX_DIM)
		return bad(c, key, "%s", "expected positive integers");
	*h = (int)json_integer_value(a);
	*w = (int)json_integer_value(b);
	return FM_OK;
}

static int get_str(const struct parse_ctx *c, const json_t *cfg,
		   const char *key, const char *def, const char **out)
{
	json_t *v = json_object_get(cfg, key);

	if (!v || json_is_null(v)) {
		if (!def)
			return bad(c, key, "%s", "required field is missing");
		*out = def;
		return FM_OK;
	}
	if (!json_is_string(v))
		return bad(c, key, "%s", "expected a string");
	*out = json_string_value(v);
	return FM_OK;
}

static int get_bool(const struct parse_ctx *c, const json_t *cfg,
		    const char *key, int def, int *out)
{
	json_t *v = json_object_get(cfg, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return FM_OK;
	}
	if (!json_is_boolean(v))
		return bad(c, key, "%s", "expected true or false");
	*out = json_is_true(v);
	return FM_OK;
}

/* Fields that would change the computation must be absent or null. */
static int must_be_null(const struct parse_ctx *c, const json_t *cfg,
			const char *key)
{
	json_t *v = json_object_get(cfg, key);

	if (v && !json_is_null(v))
		return bad(c, key, "%s", "is not supported (must be null)");
	return FM_OK;
}

static int check_dtype(const struct parse_ctx *c, const json_t *cfg)
{
	json_t *v = json_object_get(cfg, "dtype");
	const char *s = NULL;

	if (!v || json_is_null(v))
		return FM_OK;
	if (json_is_string(v)) {
		s = json_string_value(v);
	} else if (json_is_object(v)) {
		/* Keras 3: {"class_name": "DTypePolicy", "config":
		 * {"name": "float32"}} */
		json_t *name = json_object_get(json_object_get(v, "config"),
					       "name");

		s = json_is_string(name) ? json_string_value(name) : NULL;
	}
	if (!s || strcmp(s, "float32") != 0)
		return bad(c, "dtype", "%s", "only float32 is supported");
	return FM_OK;
}

static int check_format(const struct parse_ctx *c, const json_t *cfg)
{
	const char *s = "";
	int err = get_str(c, cfg, "data_format", "channels_last", &s);

	if (!err && strcmp(s, "channels_last") != 0)
		return bad(c, "data_format", "'%s' is not supported "
			   "(channels_last only)", s);
	return err;
}

static int check_keys(const struct parse_ctx *c, const json_t *cfg,
		      const char *const *allowed)
{
	static const char *const common[] = {
		"name", "trainable", "dtype", "batch_input_shape",
		"batch_shape", "input_shape", "input_dim", "batch_size",
		NULL
	};
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)cfg, key, v) {
		int ok = 0;

		(void)v;
		for (const char *const *a = common; !ok && *a; a++)
			ok = strcmp(*a, key) == 0;
		for (const char *const *a = allowed; !ok && *a; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok)
			return bad(c, key, "%s", "field is not supported");
	}
	return FM_OK;
}

static int get_activation(const struct parse_ctx *c, const json_t *cfg,
			  enum ml_activation *out)
{
	const char *s = "";
	int err = get_str(c, cfg, "activation", "linear", &s);

	if (err)
		return err;
	if (ml_activation_parse(s, out))
		return bad(c, "activation", "'%s' is not supported (linear, "
			   "relu, sigmoid, tanh, softmax)", s);
	return FM_OK;
}

/* ---- initializers ----------------------------------------------------- */

static const struct {
	const char *name;
	enum ml_init_kind kind;
	double scale;
	enum ml_fan_mode mode;
	enum ml_distribution dist;
} init_names[] = {
	{ "GlorotUniform", ML_INIT_VARIANCE_SCALING, 1, ML_FAN_AVG,
	  ML_DIST_UNIFORM },
	{ "GlorotNormal", ML_INIT_VARIANCE_SCALING, 1, ML_FAN_AVG,
	  ML_DIST_TRUNCATED_NORMAL },
	{ "HeUniform", ML_INIT_VARIANCE_SCALING, 2, ML_FAN_IN,
	  ML_DIST_UNIFORM },
	{ "HeNormal", ML_INIT_VARIANCE_SCALING, 2, ML_FAN_IN,
	  ML_DIST_TRUNCATED_NORMAL },
	{ "LecunUniform", ML_INIT_VARIANCE_SCALING, 1, ML_FAN_IN,
	  ML_DIST_UNIFORM },
	{ "LecunNormal", ML_INIT_VARIANCE_SCALING, 1, ML_FAN_IN,
	  ML_DIST_TRUNCATED_NORMAL },
	{ "VarianceScaling", ML_INIT_VARIANCE_SCALING, 1, ML_FAN_IN,
	  ML_DIST_TRUNCATED_NORMAL },
	{ "Zeros", ML_INIT_ZEROS, 0, 0, 0 },
	{ "Ones", ML_INIT_ONES, 0, 0, 0 },
	{ "Constant", ML_INIT_CONSTANT, 0, 0, 0 },
	{ "RandomUniform", ML_INIT_RANDOM_UNIFORM, 0, 0, 0 },
	{ "RandomNormal", ML_INIT_RANDOM_NORMAL, 0, 0, 0 },
	{ "TruncatedNormal", ML_INIT_TRUNCATED_NORMAL, 0, 0, 0 },
};

/* "glorot_uniform" -> "GlorotUniform" */
static void camel(char *out, size_t n, const char *s)
{
	size_t j = 0;
	int up = 1;

	for (; *s && j + 1 < n; s++) {
		if (*s == '_') {
			up = 1;
			continue;
		}
		out[j++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
		up = 0;
	}
	out[j] = '\0';
}

static double num_or(const json_t *cfg, const char *key, double def)
{
	json_t *v = json_object_get(cfg, key);

	return json_is_number(v) ? json_number_value(v) : def;
}

/* Unknown initializers are kept (written back on save) and only refused
 * when fresh weights are asked for. */
static void parse_init(const json_t *v, struct ml_init *out)
{
	const json_t *cfg = NULL;
	const char *cls = NULL;
	char name[64];
	const char *s = "";

	if (json_is_string(v)) {
		cls = json_string_value(v);
	} else if (json_is_object(v)) {
		json_t *cn = json_object_get(v, "class_name");

		cls = json_is_string(cn) ? json_string_value(cn) : NULL;
		cfg = json_object_get(v, "config");
	}
	if (!cls)
		return; /* keep the default */
	camel(name, sizeof(name), cls);
	memset(out, 0, sizeof(*out));
	snprintf(out->class_name, sizeof(out->class_name), "%s", cls);
	out->kind = ML_INIT_UNSUPPORTED;
	for (size_t i = 0; i < sizeof(init_names) / sizeof(init_names[0]); i++) {
		if (strcmp(init_names[i].name, name) != 0)
			continue;
		out->kind = init_names[i].kind;
		out->scale = init_names[i].scale;
		out->mode = init_names[i].mode;
		out->distribution = init_names[i].dist;
	}
	out->value = num_or(cfg, "value", 0);
	out->minval = num_or(cfg, "minval", -0.05);
	out->maxval = num_or(cfg, "maxval", 0.05);
	out->mean = num_or(cfg, "mean", 0);
	out->stddev = num_or(cfg, "stddev", 0.05);
	if (strcmp(name, "VarianceScaling") != 0)
		return;
	out->scale = num_or(cfg, "scale", 1);
	s = json_string_value(json_object_get(cfg, "mode"));
	if (s && strcmp(s, "fan_out") == 0)
		out->mode = ML_FAN_OUT;
	else if (s && strcmp(s, "fan_avg") == 0)
		out->mode = ML_FAN_AVG;
	s = json_string_value(json_object_get(cfg, "distribution"));
	if (s && strcmp(s, "uniform") == 0)
		out->distribution = ML_DIST_UNIFORM;
	else if (s && strcmp(s, "untruncated_normal") == 0)
		out->distribution = ML_DIST_UNTRUNCATED_NORMAL;
	if (!(out->scale > 0))
		out->kind = ML_INIT_UNSUPPORTED;
}

json_t *ml__init_to_json(const struct ml_init *i)
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

/* ---- layers ----------------------------------------------------------- */

static int parse_common_weights(const struct parse_ctx *c, struct ml_layer *l,
				const json_t *cfg)
{
	static const char *const nulls[] = {
		"kernel_regularizer", "bias_regularizer", "activity_regularizer",
		"kernel_constraint", "bias_constraint", "lora_rank", NULL
	};
	json_t *ki = json_object_get(cfg, "kernel_initializer");
	json_t *bi = json_object_get(cfg, "bias_initializer");
	int err = get_activation(c, cfg, &l->act);

	for (const char *const *k = nulls; !err && *k; k++)
		err = must_be_null(c, cfg, *k);
	if (!err)
		err = get_bool(c, cfg, "use_bias", 1, &l->use_bias);
	if (err)
		return err;
	if (ki && !json_is_null(ki)) {
		parse_init(ki, &l->kinit);
		l->kinit_json = json_deep_copy(ki);
	}
	if (bi && !json_is_null(bi)) {
		parse_init(bi, &l->binit);
		l->binit_json = json_deep_copy(bi);
	}
	return FM_OK;
}

static int parse_padding(const struct parse_ctx *c, const json_t *cfg,
			 int *same)
{
	const char *s = "";
	int err = get_str(c, cfg, "padding", "valid", &s);

	if (err)
		return err;
	if (strcmp(s, "valid") != 0 && strcmp(s, "same") != 0)
		return bad(c, "padding", "'%s' is not supported (valid, same)",
			   s);
	*same = strcmp(s, "same") == 0;
	return FM_OK;
}

static int parse_dense(const struct parse_ctx *c, struct ml_layer *l,
		       const json_t *cfg)
{
	static const char *const keys[] = {
		"units", "activation", "use_bias", "kernel_initializer",
		"bias_initializer", "kernel_regularizer", "bias_regularizer",
		"activity_regularizer", "kernel_constraint", "bias_constraint",
		"lora_rank", NULL
	};
	int err = check_keys(c, cfg, keys);

	if (!err)
		err = get_int(c, cfg, "units", -1, &l->units);
	if (!err)
		err = parse_common_weights(c, l, cfg);
	return err;
}

static int parse_conv(const struct parse_ctx *c, struct ml_layer *l,
		      const json_t *cfg)
{
	static const char *const keys[] = {
		"filters", "kernel_size", "strides", "padding", "data_format",
		"dilation_rate", "groups", "activation", "use_bias",
		"kernel_initializer", "bias_initializer", "kernel_regularizer",
		"bias_regularizer", "activity_regularizer", "kernel_constraint",
		"bias_constraint", "lora_rank", NULL
	};
	int dh, dw, groups;
	int err = check_keys(c, cfg, keys);

	if (!err)
		err = get_int(c, cfg, "filters", -1, &l->filters);
	if (!err)
		err = get_pair(c, cfg, "kernel_size", -1, &l->kh, &l->kw);
	if (!err)
		err = get_pair(c, cfg, "strides", 1, &l->sh, &l->sw);
	if (!err)
		err = parse_padding(c, cfg, &l->same);
	if (!err)
		err = check_format(c, cfg);
	if (!err)
		err = get_pair(c, cfg, "dilation_rate", 1, &dh, &dw);
	if (!err && (dh != 1 || dw != 1))
		err = bad(c, "dilation_rate", "%s", "only 1 is supported");
	if (!err)
		err = get_int(c, cfg, "groups", 1, &groups);
	if (!err && groups != 1)
		err = bad(c, "groups", "%s", "only 1 is supported");
	if (!err)
		err = parse_common_weights(c, l, cfg);
	return err;
}

static int parse_pool(const struct parse_ctx *c, struct ml_layer *l,
		      const json_t *cfg)
{
	static const char *const keys[] = {
		"pool_size", "strides", "padding", "data_format", NULL
	};
	int err = check_keys(c, cfg, keys);

	if (!err)
		err = get_pair(c, cfg, "pool_size", 2, &l->kh, &l->kw);
	if (!err) {
		json_t *s = json_object_get(cfg, "strides");

		if (!s || json_is_null(s)) {
			l->sh = l->kh;
			l->sw = l->kw;
		} else {
			err = get_pair(c, cfg, "strides", -1, &l->sh, &l->sw);
		}
	}
	if (!err)
		err = parse_padding(c, cfg, &l->same);
	if (!err)
		err = check_format(c, cfg);
	return err;
}

static int parse_dropout(const struct parse_ctx *c, struct ml_layer *l,
			 const json_t *cfg)
{
	static const char *const keys[] = { "rate", "noise_shape", "seed",
					    NULL };
	json_t *r = json_object_get(cfg, "rate");
	int err = check_keys(c, cfg, keys);

	if (!err)
		err = must_be_null(c, cfg, "noise_shape");
	if (err)
		return err;
	if (!json_is_number(r) || !(json_number_value(r) >= 0) ||
	    !(json_number_value(r) < 1))
		return bad(c, "rate", "%s", "expected a number in [0, 1)");
	l->rate = json_number_value(r);
	return FM_OK;
}

static int parse_flatten(const struct parse_ctx *c, const json_t *cfg)
{
	static const char *const keys[] = { "data_format", NULL };
	int err = check_keys(c, cfg, keys);

	return err ? err : check_format(c, cfg);
}

static int parse_activation(const struct parse_ctx *c, struct ml_layer *l,
			    const json_t *cfg)
{
	static const char *const keys[] = { "activation", NULL };
	int err = check_keys(c, cfg, keys);

	return err ? err : get_activation(c, cfg, &l->act);
}

/* batch_input_shape [null, d...] (or batch_shape, or input_dim) into s;
 * *found is 0 when the layer has none. */
static int parse_input_shape(const struct parse_ctx *c, const json_t *cfg,
			     struct ml_shape *s, int *found)
{
	const char *key = "batch_input_shape";
	json_t *v = json_object_get(cfg, key);
	size_t n;

	*found = 0;
	if (!v || json_is_null(v)) {
		key = "batch_shape";
		v = json_object_get(cfg, key);
	}
	if (!v || json_is_null(v)) {
		int d;

		if (!json_object_get(cfg, "input_dim") ||
		    json_is_null(json_object_get(cfg, "input_dim")))
			return FM_OK;
		if (get_int(c, cfg, "input_dim", -1, &d))
			return fm_error_code();
		s->rank = 1;
		s->dim[0] = d;
		*found = 1;
		return FM_OK;
	}
	n = json_is_array(v) ? json_array_size(v) : 0;
	if (n < 2 || n > ML_MAX_RANK + 1)
		return bad(c, key, "expected [null, d1 .. d%s]", "3");
	s->rank = (int)n - 1;
	for (size_t i = 1; i < n; i++) {
		json_t *d = json_array_get(v, i);

		if (!json_is_integer(d) || json_integer_value(d) < 1 ||
		    json_integer_value(d) > ML_MAX_DIM)
			return bad(c, key, "%s", "dimensions must be known "
				   "integers in [1, 16777216]");
		s->dim[i - 1] = (int)json_integer_value(d);
	}
	*found = 1;
	return FM_OK;
}

static const struct {
	const char *cls;
	enum ml_layer_kind kind;
} layer_classes[] = {
	{ "Dense", ML_LAYER_DENSE },
	{ "Flatten", ML_LAYER_FLATTEN },
	{ "Conv2D", ML_LAYER_CONV2D },
	{ "MaxPooling2D", ML_LAYER_MAXPOOL2D },
	{ "MaxPool2D", ML_LAYER_MAXPOOL2D },
	{ "Dropout", ML_LAYER_DROPOUT },
	{ "Activation", ML_LAYER_ACTIVATION },
};

static int parse_layer(const struct parse_ctx *c, struct ml_layer *l,
		       const char *cls, const json_t *cfg)
{
	const char *name = "";
	int err, known = 0;

	err = get_str(c, cfg, "name", "", &name);
	if (err)
		return err;
	if (strlen(name) >= ML_NAME_MAX)
		return bad(c, "name", "%s", "too long");
	snprintf(l->name, sizeof(l->name), "%s", name);
	for (size_t i = 0; i < sizeof(layer_classes) / sizeof(layer_classes[0]);
	     i++) {
		if (strcmp(cls, layer_classes[i].cls) == 0) {
			l->kind = layer_classes[i].kind;
			known = 1;
		}
	}
	if (!known)
		return bad(c, "class_name", "layer '%s' is not supported "
			   "(Dense, Flatten, Conv2D, MaxPooling2D, Dropout, "
			   "Activation, InputLayer)", cls);
	err = check_dtype(c, cfg);
	if (err)
		return err;
	switch (l->kind) {
	case ML_LAYER_DENSE:
		return parse_dense(c, l, cfg);
	case ML_LAYER_CONV2D:
		return parse_conv(c, l, cfg);
	case ML_LAYER_MAXPOOL2D:
		return parse_pool(c, l, cfg);
	case ML_LAYER_DROPOUT:
		return parse_dropout(c, l, cfg);
	case ML_LAYER_FLATTEN:
		return parse_flatten(c, cfg);
	case ML_LAYER_ACTIVATION:
		return parse_activation(c, l, cfg);
	}
	return FM_OK;
}

static int parse_input_layer(const struct parse_ctx *c, const json_t *cfg,
			     struct ml_shape *s)
{
	static const char *const keys[] = { "sparse", "ragged", "input_dtype",
					    NULL };
	int found = 0, flag = 0, err = check_keys(c, cfg, keys);

	if (!err)
		err = check_dtype(c, cfg);
	if (!err)
		err = get_bool(c, cfg, "sparse", 0, &flag);
	if (!err && flag)
		err = bad(c, "sparse", "%s", "sparse inputs are not supported");
	if (!err)
		err = get_bool(c, cfg, "ragged", 0, &flag);
	if (!err && flag)
		err = bad(c, "ragged", "%s", "ragged inputs are not supported");
	if (!err)
		err = parse_input_shape(c, cfg, s, &found);
	if (!err && !found)
		err = bad(c, "batch_input_shape", "%s",
			  "required field is missing");
	return err;
}

/* The name of the one layer feeding a Functional layer ("" for none):
 * Keras 2 [[["prev", 0, 0, {}]]] or Keras 3 [{"args": [{"config":
 * {"keras_history": ["prev", 0, 0]}}]}]. */
static int inbound_name(const struct parse_ctx *c, const json_t *entry,
			const char **out)
{
	json_t *nodes = json_object_get(entry, "inbound_nodes");
	json_t *node, *first;

	*out = "";
	if (!nodes || json_array_size(nodes) == 0)
		return FM_OK;
	if (json_array_size(nodes) != 1)
		return bad(c, "inbound_nodes", "%s",
			   "shared layers are not supported");
	node = json_array_get(nodes, 0);
	if (json_is_object(node)) {
		json_t *args = json_object_get(node, "args");

		if (json_array_size(args) != 1)
			return bad(c, "inbound_nodes", "%s",
				   "only a single chain of layers is supported");
		first = json_object_get(json_object_get(
			json_array_get(args, 0), "config"), "keras_history");
	} else {
		if (json_array_size(node) != 1)
			return bad(c, "inbound_nodes", "%s",
				   "only a single chain of layers is supported");
		first = json_array_get(node, 0);
	}
	if (!json_is_string(json_array_get(first, 0)))
		return bad(c, "inbound_nodes", "%s", "malformed");
	*out = json_string_value(json_array_get(first, 0));
	return FM_OK;
}

/* Sequential config (list or {"layers": [...]}) or a single-chain
 * Functional config into m. */
static int parse_topology(struct ml_model *m, const json_t *topo)
{
	static const char *const classes[] = { "Sequential", "Functional",
					       "Model", NULL };
	struct parse_ctx c = { "" };
	json_t *cfg, *layers;
	const char *name = "model", *prev = "";
	int cls, err, n, have_shape = 0, found;

	if (json_object_get(topo, "model_config"))
		topo = json_object_get(topo, "model_config");
	err = fj_enum(topo, "modelTopology", "class_name", classes, &cls);
	if (err)
		return err;
	cfg = json_object_get(topo, "config");
	if (!json_is_object(cfg) && !(cls == 0 && json_is_array(cfg)))
		return fm_error_set(FM_EINVAL, "modelTopology.config: expected "
				    "an object");
	if (json_is_array(cfg)) {
		layers = cfg;
	} else {
		json_t *nm = json_object_get(cfg, "name");

		if (json_is_string(nm))
			name = json_string_value(nm);
		err = fj_arr(cfg, "modelTopology.config", "layers",
			     ML_MAX_LAYERS + 1, &layers);
		if (err)
			return err;
	}
	snprintf(m->name, sizeof(m->name), "%s", name);
	/* one more than the layer limit: an InputLayer is not a layer here */
	if (json_array_size(layers) > ML_MAX_LAYERS + 1)
		return fm_error_set(FM_EINVAL, "modelTopology: %zu layers (at "
				    "most %d)", json_array_size(layers),
				    ML_MAX_LAYERS);
	n = (int)json_array_size(layers);
	m->n_layers = 0;
	for (int i = 0; i < n; i++) {
		json_t *entry = json_array_get(layers, (size_t)i);
		json_t *lc = json_object_get(entry, "config");
		json_t *lcls = json_object_get(entry, "class_name");
		json_t *lname = json_object_get(lc, "name");
		const char *in;

		snprintf(c.where, sizeof(c.where), "layers[%d] (%s)", i,
			 json_is_string(lname) ? json_string_value(lname) : "?");
		if (!json_is_string(lcls) || !json_is_object(lc))
			return bad(&c, "class_name", "%s",
				   "each layer needs class_name and config");
		if (cls != 0) {
			err = inbound_name(&c, entry, &in);
			if (err)
				return err;
			if (strcmp(in, prev) != 0)
				return bad(&c, "inbound_nodes", "input '%s' is "
					   "not the previous layer (only a "
					   "single chain is supported)", in);
			prev = json_is_string(lname) ? json_string_value(lname)
						     : "";
		}
		if (strcmp(json_string_value(lcls), "InputLayer") == 0) {
			if (i != 0)
				return bad(&c, "class_name", "%s",
					   "InputLayer must come first");
			err = parse_input_layer(&c, lc, &m->in_shape);
			if (err)
				return err;
			have_shape = 1;
			continue;
		}
		if (m->n_layers == m->cap_layers)
			return fm_error_set(FM_EINVAL, "modelTopology: more than "
					    "%d layers", ML_MAX_LAYERS);
		struct ml_layer *l = &m->layers[m->n_layers];

		err = parse_layer(&c, l, json_string_value(lcls), lc);
		if (err)
			return err;
		if (!have_shape) {
			err = parse_input_shape(&c, lc, &m->in_shape, &found);
			if (err)
				return err;
			if (!found)
				return bad(&c, "batch_input_shape", "%s",
					   "the first layer must give the "
					   "input shape");
			have_shape = 1;
		}
		m->n_layers++;
	}
	if (m->n_layers == 0)
		return fm_error_set(FM_EINVAL, "modelTopology: no layers");
	if (cls != 0) {
		json_t *outs = json_object_get(cfg, "output_layers");
		json_t *o0 = json_array_get(outs, 0);

		/* [["name", 0, 0]] (Keras 2) or ["name", 0, 0] (Keras 3) */
		if (json_is_array(o0))
			o0 = json_array_get(o0, 0);
		if (!json_is_string(o0) || strcmp(json_string_value(o0), prev))
			return fm_error_set(FM_EINVAL, "modelTopology.config."
					    "output_layers: expected the last "
					    "layer '%s' as the only output",
					    prev);
	}
	return FM_OK;
}

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
		if (!err)
			err = fj_arr(w, p, "shape", 4, &shape);
		if (!err)
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

static int load_group(struct ml_model *m, const json_t *group, size_t gi,
		      const char *dir, unsigned char *seen)
{
	struct manifest_entry *ent = NULL;
	struct buf data = BUF_INIT(0);
	json_t *paths, *weights;
	char gpath[64], p[96], file[4096];
	size_t bytes, pos = 0;
	int err;

	snprintf(gpath, sizeof(gpath), "weightsManifest[%zu]", gi);
	err = fj_arr(group, gpath, "paths", 4096, &paths);
	if (!err)
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
	/* the group's files, concatenated, hold exactly its weights */
	buf_init(&data, bytes);
	err = buf_reserve(&data, bytes);
	for (size_t i = 0; !err && i < json_array_size(paths); i++) {
		json_t *pv = json_array_get(paths, i);
		struct buf one = BUF_INIT(bytes - data.len);

		if (!json_is_string(pv) || !path_safe(json_string_value(pv))) {
			err = fm_error_set(FM_EINVAL, "%s.paths[%zu]: expected "
					   "a relative path inside the model "
					   "folder", gpath, i);
			break;
		}
		snprintf(file, sizeof(file), "%s/%s", dir,
			 json_string_value(pv));
		err = buf_read_file(&one, file);
		if (err == FM_ETOOLARGE)
			err = fm_error_set(FM_EINVAL, "%s: larger than the "
					   "%zu bytes the manifest gives "
					   "its weights", file, bytes);
		if (!err)
			err = buf_append(&data, one.data, one.len);
		buf_cleanup(&one);
	}
	if (!err && data.len != bytes)
		err = fm_error_set(FM_EINVAL, "%s: weight files hold %zu bytes, "
				   "the manifest's shapes need %zu", gpath,
				   data.len, bytes);
	for (size_t i = 0; !err && i < json_array_size(weights); i++) {
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
	if (!json_is_array(manifest) || json_array_size(manifest) > MAX_GROUPS)
		err = fm_error_set(FM_EINVAL, "weightsManifest: expected a list "
				   "of at most %d groups", MAX_GROUPS);
	for (size_t g = 0; !err && g < json_array_size(manifest); g++)
		err = load_group(m, json_array_get(manifest, g), g, dir, seen);
	for (size_t t = 0; !err && t < m->n_tensors; t++)
		if (!seen[t])
			err = fm_error_set(FM_EINVAL, "weightsManifest: weight "
					   "%s is missing", m->tensor_names[t]);
	free(seen);
	return err;
}

static int load_json(struct ml_model **out, const char *text, size_t len,
		     const char *dir, size_t max_params)
{
	struct ml_model *m = NULL;
	json_t *root = NULL, *topo, *manifest;
	int err;

	if (len > ML_MAX_MODEL_JSON)
		return fm_error_set(FM_ETOOLARGE, "model.json: %zu bytes, limit "
				    "is %u", len, ML_MAX_MODEL_JSON);
	err = fj_parse(&root, text, len, "model.json");
	if (err)
		return err;
	err = fj_obj(root, "", "modelTopology", &topo);
	if (!err)
		err = fj_arr(root, "", "weightsManifest", MAX_GROUPS, &manifest);
	if (!err) {
		json_t *fmt = json_object_get(root, "format");

		if (fmt && json_is_string(fmt) &&
		    strcmp(json_string_value(fmt), "layers-model") != 0)
			err = fm_error_set(FM_EINVAL, "format: '%s' is not "
					   "supported (layers-model only)",
					   json_string_value(fmt));
	}
	if (!err)
		err = ml__model_alloc(&m, ML_MAX_LAYERS);
	if (!err) {
		m->max_params = max_params;
		err = parse_topology(m, topo);
	}
	if (!err)
		err = ml__model_build(m);
	if (!err)
		err = load_weights(m, manifest, dir);
	if (!err)
		err = ml_model_check_finite(m);
	json_decref(root);
	if (err) {
		ml_model_free(m);
		return err;
	}
	*out = m;
	return FM_OK;
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
	if (!err)
		err = load_json(out, b.data, b.len, dir, max_params);
	if (err && strncmp(fm_error_msg(), path, strlen(path)) != 0)
		fm_error_prefix("%s", path);
	buf_cleanup(&b);
	return err;
}

int ml_model_load(struct ml_model **out, const char *dir)
{
	return ml_model_load_max(out, dir, 0);
}

/* ---- saving ----------------------------------------------------------- */

static json_t *pair_json(int a, int b)
{
	return json_pack("[i, i]", a, b);
}

static json_t *init_json(const json_t *kept, const struct ml_init *i)
{
	return kept ? json_deep_copy(kept) : ml__init_to_json(i);
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
