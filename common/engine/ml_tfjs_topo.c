/* TensorFlow.js LayersModel files, reading the modelTopology: Keras'
 * JSON form of a Sequential or single-chain Functional model. Everything
 * read is checked; anything the engine would not compute exactly as
 * Keras does is refused by name, never approximated. */
#include "engine/ml_impl.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

	if (err)
		return err;
	if (strcmp(s, "channels_last") != 0)
		return bad(c, "data_format", "'%s' is not supported "
			   "(channels_last only)", s);
	return FM_OK;
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

	if (err)
		return err;
	for (const char *const *k = nulls; *k; k++) {
		err = must_be_null(c, cfg, *k);
		if (err)
			return err;
	}
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

	if (err)
		return err;
	err = get_int(c, cfg, "units", -1, &l->units);
	if (err)
		return err;
	return parse_common_weights(c, l, cfg);
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

	if (err)
		return err;
	err = get_int(c, cfg, "filters", -1, &l->filters);
	if (err)
		return err;
	err = get_pair(c, cfg, "kernel_size", -1, &l->kh, &l->kw);
	if (err)
		return err;
	err = get_pair(c, cfg, "strides", 1, &l->sh, &l->sw);
	if (err)
		return err;
	err = parse_padding(c, cfg, &l->same);
	if (err)
		return err;
	err = check_format(c, cfg);
	if (err)
		return err;
	err = get_pair(c, cfg, "dilation_rate", 1, &dh, &dw);
	if (err)
		return err;
	if (dh != 1 || dw != 1)
		return bad(c, "dilation_rate", "%s", "only 1 is supported");
	err = get_int(c, cfg, "groups", 1, &groups);
	if (err)
		return err;
	if (groups != 1)
		return bad(c, "groups", "%s", "only 1 is supported");
	return parse_common_weights(c, l, cfg);
}

static int parse_pool(const struct parse_ctx *c, struct ml_layer *l,
		      const json_t *cfg)
{
	static const char *const keys[] = {
		"pool_size", "strides", "padding", "data_format", NULL
	};
	json_t *s = json_object_get(cfg, "strides");
	int err = check_keys(c, cfg, keys);

	if (err)
		return err;
	err = get_pair(c, cfg, "pool_size", 2, &l->kh, &l->kw);
	if (err)
		return err;
	if (!s || json_is_null(s)) {
		l->sh = l->kh;
		l->sw = l->kw;
	} else {
		err = get_pair(c, cfg, "strides", -1, &l->sh, &l->sw);
		if (err)
			return err;
	}
	err = parse_padding(c, cfg, &l->same);
	if (err)
		return err;
	return check_format(c, cfg);
}

static int parse_dropout(const struct parse_ctx *c, struct ml_layer *l,
			 const json_t *cfg)
{
	static const char *const keys[] = { "rate", "noise_shape", "seed",
					    NULL };
	json_t *r = json_object_get(cfg, "rate");
	int err = check_keys(c, cfg, keys);

	if (err)
		return err;
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

	if (err)
		return err;
	err = check_dtype(c, cfg);
	if (err)
		return err;
	err = get_bool(c, cfg, "sparse", 0, &flag);
	if (err)
		return err;
	if (flag)
		return bad(c, "sparse", "%s", "sparse inputs are not supported");
	err = get_bool(c, cfg, "ragged", 0, &flag);
	if (err)
		return err;
	if (flag)
		return bad(c, "ragged", "%s", "ragged inputs are not supported");
	err = parse_input_shape(c, cfg, s, &found);
	if (err)
		return err;
	if (!found)
		return bad(c, "batch_input_shape", "%s",
			   "required field is missing");
	return FM_OK;
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

/* The layer list of a Sequential config (a list or {"layers": [...]})
 * or a Functional one; names m and sets *functional when entries name
 * their inputs. */
static int topology_layers(struct ml_model *m, const json_t *topo,
			   int *functional, const json_t **cfg_out,
			   const json_t **layers_out)
{
	static const char *const classes[] = { "Sequential", "Functional",
					       "Model", NULL };
	json_t *cfg, *layers;
	const char *name = "model";
	int cls, err;

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
	*functional = cls != 0;
	*cfg_out = cfg;
	*layers_out = layers;
	return FM_OK;
}

/* What the walk over a topology's entries carries from one to the next. */
struct chain {
	int functional;        /* entries name the layer feeding them */
	const char *prev;      /* the previous entry's name */
	int have_shape;        /* m->in_shape is known */
};

/* Entry i of the layer list: an InputLayer, or the next layer of m. */
static int parse_entry(struct ml_model *m, struct chain *ch,
		       const json_t *entry, int i)
{
	struct parse_ctx c = { "" };
	json_t *lc = json_object_get(entry, "config");
	json_t *lcls = json_object_get(entry, "class_name");
	json_t *lname = json_object_get(lc, "name");
	struct ml_layer *l;
	const char *in;
	int err, found;

	snprintf(c.where, sizeof(c.where), "layers[%d] (%s)", i,
		 json_is_string(lname) ? json_string_value(lname) : "?");
	if (!json_is_string(lcls) || !json_is_object(lc))
		return bad(&c, "class_name", "%s",
			   "each layer needs class_name and config");
	if (ch->functional) {
		err = inbound_name(&c, entry, &in);
		if (err)
			return err;
		if (strcmp(in, ch->prev) != 0)
			return bad(&c, "inbound_nodes", "input '%s' is not the "
				   "previous layer (only a single chain is "
				   "supported)", in);
		ch->prev = json_is_string(lname) ? json_string_value(lname) : "";
	}
	if (strcmp(json_string_value(lcls), "InputLayer") == 0) {
		if (i != 0)
			return bad(&c, "class_name", "%s",
				   "InputLayer must come first");
		err = parse_input_layer(&c, lc, &m->in_shape);
		if (err)
			return err;
		ch->have_shape = 1;
		return FM_OK;
	}
	if (m->n_layers == m->cap_layers)
		return fm_error_set(FM_EINVAL, "modelTopology: more than %d "
				    "layers", ML_MAX_LAYERS);
	l = &m->layers[m->n_layers];
	err = parse_layer(&c, l, json_string_value(lcls), lc);
	if (err)
		return err;
	if (!ch->have_shape) {
		err = parse_input_shape(&c, lc, &m->in_shape, &found);
		if (err)
			return err;
		if (!found)
			return bad(&c, "batch_input_shape", "%s",
				   "the first layer must give the input shape");
		ch->have_shape = 1;
	}
	m->n_layers++;
	return FM_OK;
}

/* A Functional model's one output must be its last layer. */
static int check_output(const json_t *cfg, const char *last)
{
	json_t *outs = json_object_get(cfg, "output_layers");
	json_t *o0 = json_array_get(outs, 0);

	/* [["name", 0, 0]] (Keras 2) or ["name", 0, 0] (Keras 3) */
	if (json_is_array(o0))
		o0 = json_array_get(o0, 0);
	if (!json_is_string(o0) || strcmp(json_string_value(o0), last))
		return fm_error_set(FM_EINVAL, "modelTopology.config."
				    "output_layers: expected the last layer "
				    "'%s' as the only output", last);
	return FM_OK;
}

int ml__tfjs_parse_topology(struct ml_model *m, const json_t *topo)
{
	struct chain ch = { 0, "", 0 };
	const json_t *cfg = NULL, *layers = NULL;
	int err;

	err = topology_layers(m, topo, &ch.functional, &cfg, &layers);
	if (err)
		return err;
	m->n_layers = 0;
	for (int i = 0; i < (int)json_array_size(layers); i++) {
		err = parse_entry(m, &ch, json_array_get(layers, (size_t)i), i);
		if (err)
			return err;
	}
	if (m->n_layers == 0)
		return fm_error_set(FM_EINVAL, "modelTopology: no layers");
	if (ch.functional)
		return check_output(cfg, ch.prev);
	return FM_OK;
}
