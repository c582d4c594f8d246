/* Models: layer list, shape inference, the parameter arena, tensors,
 * initializers, comparison, summaries and the short layer spec. */
#include "engine/ml_impl.h"

#include "core/err.h"
#include "core/fjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t ml__mul(size_t a, size_t b, size_t limit)
{
	if (a && b > limit / a)
		return 0;
	return a * b;
}

size_t ml__shape_size(const struct ml_shape *s)
{
	size_t n = 1;

	for (int i = 0; i < s->rank; i++)
		n = ml__mul(n, (size_t)s->dim[i], ML_MAX_SAMPLE);
	return n;
}

void ml_shape_format(char *out, size_t n, const struct ml_shape *s)
{
	size_t len = (size_t)snprintf(out, n, "(None");

	for (int i = 0; i < s->rank && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, ", %d", s->dim[i]);
	if (len < n)
		snprintf(out + len, n - len, ")");
}

static const char *const kind_names[] = {
	[ML_LAYER_DENSE] = "Dense",
	[ML_LAYER_FLATTEN] = "Flatten",
	[ML_LAYER_CONV2D] = "Conv2D",
	[ML_LAYER_MAXPOOL2D] = "MaxPooling2D",
	[ML_LAYER_DROPOUT] = "Dropout",
	[ML_LAYER_ACTIVATION] = "Activation",
};

const char *ml_layer_kind_name(enum ml_layer_kind k)
{
	return kind_names[k];
}

static const char *const act_names[] = {
	[ML_ACT_LINEAR] = "linear",
	[ML_ACT_RELU] = "relu",
	[ML_ACT_SIGMOID] = "sigmoid",
	[ML_ACT_TANH] = "tanh",
	[ML_ACT_SOFTMAX] = "softmax",
};

const char *ml_activation_name(enum ml_activation a)
{
	return act_names[a];
}

int ml_activation_parse(const char *s, enum ml_activation *out)
{
	for (size_t i = 0; i < sizeof(act_names) / sizeof(act_names[0]); i++) {
		if (strcmp(s, act_names[i]) == 0) {
			*out = (enum ml_activation)i;
			return FM_OK;
		}
	}
	return fm_error_set(FM_EINVAL,
			    "activation '%s' is not supported (linear, relu, "
			    "sigmoid, tanh, softmax)", s);
}

void ml__init_default_kernel(struct ml_init *i)
{
	memset(i, 0, sizeof(*i));
	i->kind = ML_INIT_VARIANCE_SCALING;
	i->scale = 1.0;
	i->mode = ML_FAN_AVG;
	i->distribution = ML_DIST_UNIFORM;
	snprintf(i->class_name, sizeof(i->class_name), "GlorotUniform");
}

void ml__init_default_bias(struct ml_init *i)
{
	memset(i, 0, sizeof(*i));
	i->kind = ML_INIT_ZEROS;
	snprintf(i->class_name, sizeof(i->class_name), "Zeros");
}

int ml__model_alloc(struct ml_model **out, int n_layers)
{
	struct ml_model *m = calloc(1, sizeof(*m));

	if (!m)
		return fm_error_set(FM_ENOMEM, "model: out of memory");
	m->layers = calloc((size_t)(n_layers > 0 ? n_layers : 1),
			   sizeof(*m->layers));
	if (!m->layers) {
		free(m);
		return fm_error_set(FM_ENOMEM, "model: out of memory");
	}
	m->n_layers = n_layers;
	m->cap_layers = n_layers;
	for (int i = 0; i < n_layers; i++) {
		m->layers[i].kernel_t = -1;
		m->layers[i].bias_t = -1;
		ml__init_default_kernel(&m->layers[i].kinit);
		ml__init_default_bias(&m->layers[i].binit);
	}
	ml_rng_seed(&m->rng, 0);
	*out = m;
	return FM_OK;
}

void ml_model_free(struct ml_model *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->cap_layers; i++) {
		json_decref(m->layers[i].kinit_json);
		json_decref(m->layers[i].binit_json);
	}
	ml__ws_free(&m->ws);
	free(m->layers);
	free(m->params);
	free(m->grads);
	free(m->tensors);
	free(m->tensor_names);
	free(m);
}

static int layer_error(const struct ml_layer *l, int i, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));

static int layer_error(const struct ml_layer *l, int i, const char *fmt,
		       ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fm_error_set(FM_EINVAL, "layer %d (%s, %s): %s", i, l->name,
			    kind_names[l->kind], msg);
}

/* Output size of a window along one axis, and the "same" padding before. */
static int window_out(int in, int k, int s, int same, int *pad_before)
{
	int out;

	if (same) {
		int total;

		out = (in + s - 1) / s;
		total = (out - 1) * s + k - in;
		*pad_before = total > 0 ? total / 2 : 0;
		return out;
	}
	*pad_before = 0;
	if (in < k)
		return 0;
	return (in - k) / s + 1;
}

/* Fills l->out from l->in; adds the layer's tensors' sizes to *n_params. */
static int layer_shape(struct ml_layer *l, int i, size_t *kernel_size,
		       size_t *bias_size)
{
	const struct ml_shape *in = &l->in;
	struct ml_shape *o = &l->out;
	char buf[96];

	*kernel_size = *bias_size = 0;
	*o = *in;
	switch (l->kind) {
	case ML_LAYER_DENSE: {
		size_t fan_in = (size_t)in->dim[in->rank - 1];

		if (l->units < 1 || l->units > ML_MAX_DIM)
			return layer_error(l, i, "units must be in [1, %s]",
					   "16777216");
		o->dim[o->rank - 1] = l->units;
		*kernel_size = ml__mul(fan_in, (size_t)l->units, ML_MAX_PARAMS);
		if (!*kernel_size)
			return layer_error(l, i, "%s", "kernel too large");
		*bias_size = l->use_bias ? (size_t)l->units : 0;
		break;
	}
	case ML_LAYER_FLATTEN:
		o->rank = 1;
		o->dim[0] = (int)ml__shape_size(in);
		break;
	case ML_LAYER_CONV2D:
	case ML_LAYER_MAXPOOL2D: {
		int oh, ow, pw;
		size_t kk;

		if (in->rank != 3) {
			ml_shape_format(buf, sizeof(buf), in);
			return layer_error(l, i,
					   "expects input (None, h, w, c), "
					   "got %s", buf);
		}
		if (l->kh < 1 || l->kw < 1 || l->sh < 1 || l->sw < 1 ||
		    l->kh > ML_MAX_DIM || l->kw > ML_MAX_DIM ||
		    l->sh > ML_MAX_DIM || l->sw > ML_MAX_DIM)
			return layer_error(l, i, "%s",
					   "window and strides must be >= 1");
		oh = window_out(in->dim[0], l->kh, l->sh, l->same, &l->pad_top);
		ow = window_out(in->dim[1], l->kw, l->sw, l->same, &pw);
		l->pad_left = pw;
		if (oh < 1 || ow < 1) {
			ml_shape_format(buf, sizeof(buf), in);
			return layer_error(l, i,
					   "window larger than input %s", buf);
		}
		o->dim[0] = oh;
		o->dim[1] = ow;
		if (l->kind == ML_LAYER_MAXPOOL2D)
			break;
		if (l->filters < 1 || l->filters > ML_MAX_DIM)
			return layer_error(l, i, "filters must be in [1, %s]",
					   "16777216");
		o->dim[2] = l->filters;
		kk = ml__mul((size_t)l->kh, (size_t)l->kw, ML_MAX_PARAMS);
		kk = ml__mul(kk, (size_t)in->dim[2], ML_MAX_PARAMS);
		*kernel_size = ml__mul(kk, (size_t)l->filters, ML_MAX_PARAMS);
		if (!*kernel_size)
			return layer_error(l, i, "%s", "kernel too large");
		*bias_size = l->use_bias ? (size_t)l->filters : 0;
		break;
	}
	case ML_LAYER_DROPOUT:
		if (!(l->rate >= 0.0 && l->rate < 1.0))
			return layer_error(l, i, "%s", "rate must be in [0, 1)");
		break;
	case ML_LAYER_ACTIVATION:
		break;
	}
	l->in_size = ml__shape_size(in);
	l->out_size = ml__shape_size(o);
	if (!l->in_size || !l->out_size)
		return layer_error(l, i, "%s",
				   "activation too large for one sample");
	return FM_OK;
}

static void tensor_set(struct ml_model *m, size_t t, const struct ml_layer *l,
		       const char *what, size_t off, size_t size)
{
	struct ml_tensor_info *ti = &m->tensors[t];

	if (!m->tensor_names[t][0])
		snprintf(m->tensor_names[t], sizeof(m->tensor_names[t]),
			 "%s/%s", l->name, what);
	ti->name = m->tensor_names[t];
	ti->offset = off;
	ti->size = size;
	if (strcmp(what, "bias") == 0) {
		ti->rank = 1;
		ti->shape[0] = (int)size;
	} else if (l->kind == ML_LAYER_DENSE) {
		ti->rank = 2;
		ti->shape[0] = l->in.dim[l->in.rank - 1];
		ti->shape[1] = l->units;
	} else {
		ti->rank = 4;
		ti->shape[0] = l->kh;
		ti->shape[1] = l->kw;
		ti->shape[2] = l->in.dim[2];
		ti->shape[3] = l->filters;
	}
}

/* Counts tensors; keeps existing names (set by the loader) in place. */
int ml__model_build(struct ml_model *m)
{
	struct ml_shape cur = m->in_shape;
	size_t total = 0, nt = 0, t = 0;
	size_t ks[ML_MAX_LAYERS], bs[ML_MAX_LAYERS];
	int err;

	if (m->n_layers < 1 || m->n_layers > ML_MAX_LAYERS)
		return fm_error_set(FM_EINVAL,
				    "model: %d layers (1..%d allowed)",
				    m->n_layers, ML_MAX_LAYERS);
	if (cur.rank < 1 || cur.rank > ML_MAX_RANK)
		return fm_error_set(FM_EINVAL,
				    "model: input rank %d (1..%d allowed)",
				    cur.rank, ML_MAX_RANK);
	for (int i = 0; i < cur.rank; i++)
		if (cur.dim[i] < 1 || cur.dim[i] > ML_MAX_DIM)
			return fm_error_set(FM_EINVAL,
					    "model: input dimension %d is %d "
					    "(1..%d allowed)", i, cur.dim[i],
					    ML_MAX_DIM);
	m->in_size = ml__shape_size(&cur);
	if (!m->in_size)
		return fm_error_set(FM_EINVAL, "model: input too large");
	for (int i = 0; i < m->n_layers; i++) {
		struct ml_layer *l = &m->layers[i];

		l->in = cur;
		err = layer_shape(l, i, &ks[i], &bs[i]);
		if (err)
			return err;
		cur = l->out;
		if (ks[i] > ML_MAX_PARAMS - total ||
		    bs[i] > ML_MAX_PARAMS - total - ks[i])
			return fm_error_set(FM_EINVAL,
					    "model: more than %u parameters",
					    ML_MAX_PARAMS);
		total += ks[i] + bs[i];
		nt += (ks[i] > 0) + (bs[i] > 0);
	}
	m->out_size = m->layers[m->n_layers - 1].out_size;
	if (m->max_params && total > m->max_params)
		return fm_error_set(FM_ETOOLARGE, "model: %zu parameters, the "
				    "limit is %zu", total, m->max_params);
	if (!m->tensor_names) {
		m->tensor_names = calloc(nt ? nt : 1, sizeof(*m->tensor_names));
		if (!m->tensor_names)
			return fm_error_set(FM_ENOMEM, "model: out of memory");
	}
	m->tensors = calloc(nt ? nt : 1, sizeof(*m->tensors));
	m->params = calloc(total ? total : 1, sizeof(float));
	if (!m->tensors || !m->params)
		return fm_error_set(FM_ENOMEM,
				    "model: out of memory for %zu parameters",
				    total);
	m->n_params = total;
	m->n_tensors = nt;
	total = 0;
	for (int i = 0; i < m->n_layers; i++) {
		struct ml_layer *l = &m->layers[i];

		if (ks[i]) {
			l->kernel_t = (int)t;
			tensor_set(m, t++, l, "kernel", total, ks[i]);
			total += ks[i];
		}
		if (bs[i]) {
			l->bias_t = (int)t;
			tensor_set(m, t++, l, "bias", total, bs[i]);
			total += bs[i];
		}
	}
	return FM_OK;
}

/* ---- accessors -------------------------------------------------------- */

float *ml_model_params(struct ml_model *m, size_t *n)
{
	if (n)
		*n = m->n_params;
	return m->params;
}

const float *ml_model_params_const(const struct ml_model *m, size_t *n)
{
	if (n)
		*n = m->n_params;
	return m->params;
}

size_t ml_model_param_count(const struct ml_model *m)
{
	return m->n_params;
}

size_t ml_model_tensor_count(const struct ml_model *m)
{
	return m->n_tensors;
}

const struct ml_tensor_info *ml_model_tensor(const struct ml_model *m,
					     size_t i)
{
	FM_ASSERT(i < m->n_tensors);
	return &m->tensors[i];
}

const char *ml_model_name(const struct ml_model *m)
{
	return m->name;
}

struct ml_shape ml_model_input_shape(const struct ml_model *m)
{
	return m->in_shape;
}

struct ml_shape ml_model_output_shape(const struct ml_model *m)
{
	return m->layers[m->n_layers - 1].out;
}

size_t ml_model_input_size(const struct ml_model *m)
{
	return m->in_size;
}

size_t ml_model_output_size(const struct ml_model *m)
{
	return m->out_size;
}

int ml_model_layer_count(const struct ml_model *m)
{
	return m->n_layers;
}

enum ml_layer_kind ml_model_layer_kind(const struct ml_model *m, int i)
{
	FM_ASSERT(i >= 0 && i < m->n_layers);
	return m->layers[i].kind;
}

const char *ml_model_layer_name(const struct ml_model *m, int i)
{
	FM_ASSERT(i >= 0 && i < m->n_layers);
	return m->layers[i].name;
}

enum ml_activation ml_model_output_activation(const struct ml_model *m)
{
	for (int i = m->n_layers - 1; i >= 0; i--) {
		const struct ml_layer *l = &m->layers[i];

		if (l->kind == ML_LAYER_DENSE || l->kind == ML_LAYER_CONV2D ||
		    l->kind == ML_LAYER_ACTIVATION)
			return l->act;
	}
	return ML_ACT_LINEAR;
}

/* ---- copies and comparison -------------------------------------------- */

int ml_model_clone(struct ml_model **out, const struct ml_model *m)
{
	struct ml_model *c = NULL;
	int err = ml__model_alloc(&c, m->n_layers);

	if (err)
		return err;
	memcpy(c->name, m->name, sizeof(c->name));
	c->in_shape = m->in_shape;
	for (int i = 0; i < m->n_layers; i++) {
		c->layers[i] = m->layers[i];
		c->layers[i].kinit_json = json_deep_copy(m->layers[i].kinit_json);
		c->layers[i].binit_json = json_deep_copy(m->layers[i].binit_json);
	}
	c->tensor_names = calloc(m->n_tensors ? m->n_tensors : 1,
				 sizeof(*c->tensor_names));
	if (!c->tensor_names) {
		err = fm_error_set(FM_ENOMEM, "model: out of memory");
		goto done;
	}
	if (m->n_tensors)
		memcpy(c->tensor_names, m->tensor_names,
		       m->n_tensors * sizeof(*c->tensor_names));
	err = ml__model_build(c);
	if (err)
		goto done;
	memcpy(c->params, m->params, m->n_params * sizeof(float));
	c->rng = m->rng;
done:
	if (err) {
		ml_model_free(c);
		return err;
	}
	*out = c;
	return FM_OK;
}

static int shape_eq(const struct ml_shape *a, const struct ml_shape *b)
{
	if (a->rank != b->rank)
		return 0;
	for (int i = 0; i < a->rank; i++)
		if (a->dim[i] != b->dim[i])
			return 0;
	return 1;
}

int ml_model_same_arch(const struct ml_model *a, const struct ml_model *b)
{
	char sa[96], sb[96];

	if (!shape_eq(&a->in_shape, &b->in_shape)) {
		ml_shape_format(sa, sizeof(sa), &a->in_shape);
		ml_shape_format(sb, sizeof(sb), &b->in_shape);
		return fm_error_set(FM_EUNPROCESSABLE,
				    "input shape differs: %s vs %s", sa, sb);
	}
	for (int i = 0; i < a->n_layers && i < b->n_layers; i++) {
		const struct ml_layer *x = &a->layers[i], *y = &b->layers[i];

		if (x->kind != y->kind)
			return fm_error_set(FM_EUNPROCESSABLE,
					    "layer %d (%s): %s vs %s", i,
					    x->name, kind_names[x->kind],
					    kind_names[y->kind]);
		if (x->act != y->act || x->use_bias != y->use_bias ||
		    x->same != y->same || x->sh != y->sh || x->sw != y->sw ||
		    x->kh != y->kh || x->kw != y->kw || x->rate != y->rate)
			return fm_error_set(FM_EUNPROCESSABLE,
					    "layer %d (%s): options differ "
					    "(activation, bias, window, "
					    "strides, padding or rate)", i,
					    x->name);
		if (!shape_eq(&x->out, &y->out)) {
			ml_shape_format(sa, sizeof(sa), &x->out);
			ml_shape_format(sb, sizeof(sb), &y->out);
			return fm_error_set(FM_EUNPROCESSABLE,
					    "layer %d (%s): output shape %s "
					    "vs %s", i, x->name, sa, sb);
		}
	}
	if (a->n_layers != b->n_layers)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "layer count differs: %d vs %d",
				    a->n_layers, b->n_layers);
	for (size_t t = 0; t < a->n_tensors; t++) {
		const struct ml_tensor_info *x = &a->tensors[t];
		const struct ml_tensor_info *y = &b->tensors[t];

		if (x->size != y->size || x->rank != y->rank)
			return fm_error_set(FM_EUNPROCESSABLE,
					    "tensor %s: %zu vs %zu values",
					    x->name, x->size, y->size);
	}
	return FM_OK;
}

int ml_model_check_finite(const struct ml_model *m)
{
	for (size_t t = 0; t < m->n_tensors; t++) {
		const struct ml_tensor_info *ti = &m->tensors[t];
		const float *p = m->params + ti->offset;

		for (size_t i = 0; i < ti->size; i++)
			if (!isfinite(p[i]))
				return fm_error_set(FM_EUNPROCESSABLE,
						    "tensor %s: value %zu is "
						    "%s", ti->name, i,
						    isnan(p[i]) ? "NaN" :
						    "infinite");
	}
	return FM_OK;
}

/* ---- initializers ----------------------------------------------------- */

/* Keras' fan computation: the last axis is fan_out, the one before it
 * fan_in, the rest is the receptive field. */
static void fans(const struct ml_tensor_info *t, double *fan_in,
		 double *fan_out)
{
	double rf = 1;

	if (t->rank == 1) {
		*fan_in = *fan_out = t->shape[0];
		return;
	}
	for (int i = 0; i < t->rank - 2; i++)
		rf *= t->shape[i];
	*fan_in = t->shape[t->rank - 2] * rf;
	*fan_out = t->shape[t->rank - 1] * rf;
}

static double truncated(struct ml_rng *r, double mean, double sd)
{
	double x;

	do
		x = ml_rng_normal(r);
	while (x < -2.0 || x > 2.0);
	return mean + sd * x;
}

static int init_tensor(float *p, const struct ml_tensor_info *t,
		       const struct ml_init *in, struct ml_rng *r)
{
	double fi, fo, fan, s, lim;

	switch (in->kind) {
	case ML_INIT_ZEROS:
	case ML_INIT_ONES:
	case ML_INIT_CONSTANT:
		s = in->kind == ML_INIT_ZEROS ? 0 :
		    in->kind == ML_INIT_ONES ? 1 : in->value;
		for (size_t i = 0; i < t->size; i++)
			p[i] = (float)s;
		return FM_OK;
	case ML_INIT_RANDOM_UNIFORM:
		for (size_t i = 0; i < t->size; i++)
			p[i] = (float)(in->minval + (in->maxval - in->minval) *
				       ml_rng_uniform(r));
		return FM_OK;
	case ML_INIT_RANDOM_NORMAL:
		for (size_t i = 0; i < t->size; i++)
			p[i] = (float)(in->mean + in->stddev * ml_rng_normal(r));
		return FM_OK;
	case ML_INIT_TRUNCATED_NORMAL:
		for (size_t i = 0; i < t->size; i++)
			p[i] = (float)truncated(r, in->mean, in->stddev);
		return FM_OK;
	case ML_INIT_VARIANCE_SCALING:
		fans(t, &fi, &fo);
		fan = in->mode == ML_FAN_IN ? fi :
		      in->mode == ML_FAN_OUT ? fo : (fi + fo) / 2;
		s = in->scale / (fan > 1 ? fan : 1);
		if (in->distribution == ML_DIST_UNIFORM) {
			lim = sqrt(3.0 * s);
			for (size_t i = 0; i < t->size; i++)
				p[i] = (float)(lim * (2 * ml_rng_uniform(r) - 1));
		} else if (in->distribution == ML_DIST_UNTRUNCATED_NORMAL) {
			for (size_t i = 0; i < t->size; i++)
				p[i] = (float)(sqrt(s) * ml_rng_normal(r));
		} else {
			/* stddev of a unit normal truncated at +-2 */
			double sd = sqrt(s) / 0.87962566103423978;

			for (size_t i = 0; i < t->size; i++)
				p[i] = (float)truncated(r, 0, sd);
		}
		return FM_OK;
	case ML_INIT_UNSUPPORTED:
		break;
	}
	return fm_error_set(FM_EINVAL, "tensor %s: initializer '%s' is not "
			    "supported", t->name, in->class_name);
}

int ml_model_init_weights(struct ml_model *m, uint64_t seed)
{
	struct ml_rng r;
	int err;

	ml_rng_seed(&r, seed);
	for (int i = 0; i < m->n_layers; i++) {
		const struct ml_layer *l = &m->layers[i];

		if (l->kernel_t >= 0) {
			const struct ml_tensor_info *t = &m->tensors[l->kernel_t];

			err = init_tensor(m->params + t->offset, t, &l->kinit, &r);
			if (err)
				return err;
		}
		if (l->bias_t >= 0) {
			const struct ml_tensor_info *t = &m->tensors[l->bias_t];

			err = init_tensor(m->params + t->offset, t, &l->binit, &r);
			if (err)
				return err;
		}
	}
	return FM_OK;
}

/* ---- summaries -------------------------------------------------------- */

static size_t layer_params(const struct ml_model *m, const struct ml_layer *l)
{
	size_t n = 0;

	if (l->kernel_t >= 0)
		n += m->tensors[l->kernel_t].size;
	if (l->bias_t >= 0)
		n += m->tensors[l->bias_t].size;
	return n;
}

static json_t *shape_json(const struct ml_shape *s)
{
	json_t *a = json_array();

	json_array_append_new(a, json_null());
	for (int i = 0; i < s->rank; i++)
		json_array_append_new(a, json_integer(s->dim[i]));
	return a;
}

int ml_model_summary_json(const struct ml_model *m, json_t **out)
{
	json_t *o = json_object(), *layers = json_array();

	if (!o || !layers) {
		json_decref(o);
		json_decref(layers);
		return fm_error_set(FM_ENOMEM, "summary: out of memory");
	}
	json_object_set_new(o, "name", json_string(m->name));
	json_object_set_new(o, "params", json_integer((json_int_t)m->n_params));
	json_object_set_new(o, "input_shape", shape_json(&m->in_shape));
	json_object_set_new(o, "output_shape",
			    shape_json(&m->layers[m->n_layers - 1].out));
	for (int i = 0; i < m->n_layers; i++) {
		const struct ml_layer *l = &m->layers[i];

		json_array_append_new(layers, json_pack(
			"{s:s, s:s, s:o, s:I}", "name", l->name,
			"class_name", kind_names[l->kind],
			"output_shape", shape_json(&l->out),
			"params", (json_int_t)layer_params(m, l)));
	}
	json_object_set_new(o, "layers", layers);
	*out = o;
	return FM_OK;
}

int ml_model_summary_text(const struct ml_model *m, struct buf *out)
{
	char shape[96], name[ML_NAME_MAX + 32];
	int err;

	err = buf_appendf(out, "Model: \"%s\"\n%-48s %-22s %10s\n", m->name,
			  "Layer (type)", "Output Shape", "Param #");
	if (err)
		return err;
	for (int i = 0; i < m->n_layers; i++) {
		const struct ml_layer *l = &m->layers[i];

		snprintf(name, sizeof(name), "%s (%s)", l->name,
			 kind_names[l->kind]);
		ml_shape_format(shape, sizeof(shape), &l->out);
		err = buf_appendf(out, "%-48s %-22s %10zu\n", name, shape,
				  layer_params(m, l));
		if (err)
			return err;
	}
	return buf_appendf(out, "Total params: %zu\n", m->n_params);
}

/* ---- the short layer spec --------------------------------------------- */

static const char *const spec_types[] = {
	"dense", "flatten", "conv2d", "maxpool2d", "dropout", "activation",
	NULL
};

/* [h, w] of positive integers; p names it. */
static int spec_pair_list(const json_t *v, const char *p, int *h, int *w)
{
	json_t *pair = json_pack("{s:O,s:O}", "h", json_array_get(v, 0), "w",
				 json_array_get(v, 1));
	long long a, b;
	int err;

	if (!pair || json_array_size(v) != 2) {
		err = fm_error_set(FM_EINVAL, "%s: expected [h, w]", p);
		goto done;
	}
	err = fj_int(pair, p, "h", 1, ML_MAX_DIM, &a);
	if (err)
		goto done;
	err = fj_int(pair, p, "w", 1, ML_MAX_DIM, &b);
	if (err)
		goto done;
	*h = (int)a;
	*w = (int)b;
done:
	json_decref(pair);
	return err;
}

/* kernel_size / strides / pool_size: an integer or [h, w]. */
static int spec_pair(const json_t *o, const char *path, const char *key,
		     int def, int *h, int *w)
{
	json_t *v = json_object_get(o, key);
	long long a;
	int err;

	if (!v || json_is_null(v)) {
		*h = *w = def;
		return FM_OK;
	}
	if (json_is_array(v)) {
		char p[160];

		fj_path(p, sizeof(p), path, key);
		return spec_pair_list(v, p, h, w);
	}
	err = fj_int(o, path, key, 1, ML_MAX_DIM, &a);
	if (err)
		return err;
	*h = *w = (int)a;
	return FM_OK;
}

static const char *const spec_paddings[] = { "valid", "same", NULL };

static int spec_conv(struct ml_layer *l, const json_t *o, const char *path)
{
	long long v;
	int err;

	err = fj_int(o, path, "filters", 1, ML_MAX_DIM, &v);
	if (err)
		return err;
	l->filters = (int)v;
	err = spec_pair(o, path, "kernel_size", 3, &l->kh, &l->kw);
	if (err)
		return err;
	err = spec_pair(o, path, "strides", 1, &l->sh, &l->sw);
	if (err)
		return err;
	return fj_enum_opt(o, path, "padding", spec_paddings, 0, &l->same);
}

static int spec_pool(struct ml_layer *l, const json_t *o, const char *path)
{
	int err;

	err = spec_pair(o, path, "pool_size", 2, &l->kh, &l->kw);
	if (err)
		return err;
	err = spec_pair(o, path, "strides", l->kh, &l->sh, &l->sw);
	if (err)
		return err;
	if (!json_object_get(o, "strides"))
		l->sw = l->kw;
	return fj_enum_opt(o, path, "padding", spec_paddings, 0, &l->same);
}

/* The fields every layer may have: type, name, activation, use_bias. */
static int spec_common(struct ml_layer *l, const json_t *o, const char *path,
		       int counts[])
{
	static const char *const allowed[] = {
		"type", "name", "units", "activation", "use_bias", "filters",
		"kernel_size", "strides", "padding", "pool_size", "rate", NULL
	};
	const char *act = "linear", *name = NULL;
	int type, err, bias = 1;

	err = fj_no_unknown(o, path, allowed);
	if (err)
		return err;
	err = fj_enum(o, path, "type", spec_types, &type);
	if (err)
		return err;
	err = fj_str_opt(o, path, "name", ML_NAME_MAX - 1, NULL, &name);
	if (err)
		return err;
	err = fj_str_opt(o, path, "activation", 32, "linear", &act);
	if (err)
		return err;
	err = ml_activation_parse(act, &l->act);
	if (err)
		return err;
	err = fj_bool_opt(o, path, "use_bias", 1, &bias);
	if (err)
		return err;
	l->kind = (enum ml_layer_kind)type;
	/* only Dense and Conv2D have biases: keep the field canonical so
	 * models compare equal however they were made */
	l->use_bias = (l->kind == ML_LAYER_DENSE ||
		       l->kind == ML_LAYER_CONV2D) && bias;
	if (name)
		snprintf(l->name, sizeof(l->name), "%s", name);
	else if (counts[type]++ == 0)
		snprintf(l->name, sizeof(l->name), "%s", spec_types[type]);
	else
		snprintf(l->name, sizeof(l->name), "%s_%d", spec_types[type],
			 counts[type] - 1);
	return FM_OK;
}

static int spec_layer(struct ml_layer *l, const json_t *o, const char *path,
		      int counts[])
{
	long long v;
	double rate;
	int err;

	err = spec_common(l, o, path, counts);
	if (err)
		return err;
	switch (l->kind) {
	case ML_LAYER_DENSE:
		err = fj_int(o, path, "units", 1, ML_MAX_DIM, &v);
		if (err)
			return err;
		l->units = (int)v;
		break;
	case ML_LAYER_CONV2D:
		return spec_conv(l, o, path);
	case ML_LAYER_MAXPOOL2D:
		return spec_pool(l, o, path);
	case ML_LAYER_DROPOUT:
		err = fj_num(o, path, "rate", 0.0, 0.999999, &rate);
		if (err)
			return err;
		l->rate = rate;
		break;
	case ML_LAYER_FLATTEN:
	case ML_LAYER_ACTIVATION:
		break;
	}
	return FM_OK;
}

int ml_model_from_spec(struct ml_model **out, const json_t *spec,
		       uint64_t seed)
{
	static const char *const allowed[] = { "name", "input_shape", "layers",
					       NULL };
	struct ml_model *m = NULL;
	json_t *shape, *layers;
	const char *name;
	int counts[8] = { 0 };
	char p[64];
	int err;

	err = fj_no_unknown(spec, "", allowed);
	if (err)
		return err;
	err = fj_str_opt(spec, "", "name", ML_NAME_MAX - 1, "model", &name);
	if (err)
		return err;
	err = fj_arr(spec, "", "input_shape", ML_MAX_RANK, &shape);
	if (err)
		return err;
	err = fj_arr(spec, "", "layers", ML_MAX_LAYERS, &layers);
	if (err)
		return err;
	if (json_array_size(shape) < 1)
		return fm_error_set(FM_EINVAL, "input_shape: expected 1 to %d "
				    "dimensions", ML_MAX_RANK);
	err = ml__model_alloc(&m, (int)json_array_size(layers));
	if (err)
		return err;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->in_shape.rank = (int)json_array_size(shape);
	for (size_t i = 0; i < json_array_size(shape); i++) {
		json_t *d = json_array_get(shape, i);

		if (!json_is_integer(d) || json_integer_value(d) < 1 ||
		    json_integer_value(d) > ML_MAX_DIM) {
			err = fm_error_set(FM_EINVAL, "input_shape[%zu]: "
					   "expected integer in [1, %d]", i,
					   ML_MAX_DIM);
			goto done;
		}
		m->in_shape.dim[i] = (int)json_integer_value(d);
	}
	for (int i = 0; i < m->n_layers; i++) {
		fj_path_index(p, sizeof(p), "layers", (size_t)i);
		err = spec_layer(&m->layers[i], json_array_get(layers, (size_t)i),
				 p, counts);
		if (err)
			goto done;
	}
	err = ml__model_build(m);
	if (err)
		goto done;
	err = ml_model_init_weights(m, seed);
	if (err)
		goto done;
	*out = m;
	m = NULL;
done:
	ml_model_free(m);
	return err;
}
