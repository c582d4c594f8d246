/* Layer kernels (forward and backward) and the activation workspace.
 * Kernels take raw pointers, outputs first, and never allocate; backward
 * accumulates into parameter gradients, so zeroing them is explicit. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- activations ------------------------------------------------------ */

/* y[rows, cols] = act(y + b) (b may be NULL); softmax is over cols. */
ML_VECTOR
static void bias_act(float *y, const float *b, size_t rows, size_t cols,
		     enum ml_activation act)
{
	for (size_t r = 0; r < rows; r++) {
		float *v = y + r * cols;

		if (b)
			for (size_t j = 0; j < cols; j++)
				v[j] += b[j];
		switch (act) {
		case ML_ACT_LINEAR:
			break;
		case ML_ACT_RELU:
			for (size_t j = 0; j < cols; j++)
				v[j] = v[j] > 0.0f ? v[j] : 0.0f;
			break;
		case ML_ACT_SIGMOID:
			for (size_t j = 0; j < cols; j++)
				v[j] = 1.0f / (1.0f + expf(-v[j]));
			break;
		case ML_ACT_TANH:
			for (size_t j = 0; j < cols; j++)
				v[j] = tanhf(v[j]);
			break;
		case ML_ACT_SOFTMAX: {
			float mx = v[0], s = 0.0f;

			for (size_t j = 1; j < cols; j++)
				mx = v[j] > mx ? v[j] : mx;
			for (size_t j = 0; j < cols; j++) {
				v[j] = expf(v[j] - mx);
				s += v[j];
			}
			for (size_t j = 0; j < cols; j++)
				v[j] /= s;
			break;
		}
		}
	}
}

/* dy[rows, cols] := dL/dz from dL/dy, given y = act(z); in place. */
ML_VECTOR
static void act_backward(float *dy, const float *y, size_t rows, size_t cols,
			 enum ml_activation act)
{
	size_t n = rows * cols;

	switch (act) {
	case ML_ACT_LINEAR:
		break;
	case ML_ACT_RELU:
		for (size_t i = 0; i < n; i++)
			dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
		break;
	case ML_ACT_SIGMOID:
		for (size_t i = 0; i < n; i++)
			dy[i] *= y[i] * (1.0f - y[i]);
		break;
	case ML_ACT_TANH:
		for (size_t i = 0; i < n; i++)
			dy[i] *= 1.0f - y[i] * y[i];
		break;
	case ML_ACT_SOFTMAX:
		for (size_t r = 0; r < rows; r++) {
			float *d = dy + r * cols;
			const float *v = y + r * cols;
			float dot = 0.0f;

			for (size_t j = 0; j < cols; j++)
				dot += d[j] * v[j];
			for (size_t j = 0; j < cols; j++)
				d[j] = v[j] * (d[j] - dot);
		}
		break;
	}
}

/* db[cols] += column sums of dz[rows, cols]. */
ML_VECTOR
static void bias_grad(float *db, const float *dz, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t j = 0; j < cols; j++)
			db[j] += dz[r * cols + j];
}

/* ---- convolution ------------------------------------------------------ */

/* col[oh*ow, kh*kw*c] from one sample x[h, w, c]; zero outside (padding).
 * The column order (kh, kw, c) is the Keras kernel's row order. */
static void im2col(float *col, const float *x, const struct ml_layer *l)
{
	int h = l->in.dim[0], w = l->in.dim[1], c = l->in.dim[2];
	int oh = l->out.dim[0], ow = l->out.dim[1];
	size_t kc = (size_t)l->kw * (size_t)c;

	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			float *dst = col + ((size_t)oy * ow + ox) * l->kh * kc;
			int x0 = ox * l->sw - l->pad_left;

			for (int ky = 0; ky < l->kh; ky++, dst += kc) {
				int iy = oy * l->sh - l->pad_top + ky;

				if (iy < 0 || iy >= h) {
					memset(dst, 0, kc * sizeof(float));
					continue;
				}
				if (x0 >= 0 && x0 + l->kw <= w) {
					memcpy(dst, x + ((size_t)iy * w + x0) * c,
					       kc * sizeof(float));
					continue;
				}
				for (int kx = 0; kx < l->kw; kx++) {
					int ix = x0 + kx;

					if (ix < 0 || ix >= w)
						memset(dst + (size_t)kx * c, 0,
						       (size_t)c * sizeof(float));
					else
						memcpy(dst + (size_t)kx * c,
						       x + ((size_t)iy * w + ix) * c,
						       (size_t)c * sizeof(float));
				}
			}
		}
	}
}

/* dx[h, w, c] += the columns of dcol scattered back (im2col's adjoint). */
static void col2im(float *dx, const float *dcol, const struct ml_layer *l)
{
	int h = l->in.dim[0], w = l->in.dim[1], c = l->in.dim[2];
	int oh = l->out.dim[0], ow = l->out.dim[1];

	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			const float *src = dcol + ((size_t)oy * ow + ox) *
					   l->kh * l->kw * c;

			for (int ky = 0; ky < l->kh; ky++) {
				int iy = oy * l->sh - l->pad_top + ky;

				for (int kx = 0; kx < l->kw; kx++, src += c) {
					int ix = ox * l->sw - l->pad_left + kx;
					float *d;

					if (iy < 0 || iy >= h || ix < 0 || ix >= w)
						continue;
					d = dx + ((size_t)iy * w + ix) * c;
					for (int k = 0; k < c; k++)
						d[k] += src[k];
				}
			}
		}
	}
}

static size_t conv_col_size(const struct ml_layer *l)
{
	return (size_t)l->out.dim[0] * l->out.dim[1] * l->kh * l->kw *
	       l->in.dim[2];
}

/* y[B, oh, ow, f] = conv(x[B, h, w, c], k[kh, kw, c, f]) + b */
static void conv_forward(float *y, float *col, const float *x, const float *k,
			 const float *b, const struct ml_layer *l, size_t B)
{
	int P = l->out.dim[0] * l->out.dim[1];
	int KC = l->kh * l->kw * l->in.dim[2];

	for (size_t s = 0; s < B; s++) {
		im2col(col, x + s * l->in_size, l);
		ml__sgemm(0, 0, P, l->filters, KC, col, KC, k, l->filters, 0.0f,
			  y + s * l->out_size, l->filters);
	}
	bias_act(y, b, B * (size_t)P, (size_t)l->filters, l->act);
}

/* dz (in: dL/dy, becomes dL/dz) -> dk, db (+=) and dx (=, when not NULL) */
static void conv_backward(float *dx, float *dk, float *db, float *col,
			  float *dcol, float *dz, const float *y,
			  const float *x, const float *k,
			  const struct ml_layer *l, size_t B)
{
	int P = l->out.dim[0] * l->out.dim[1];
	int KC = l->kh * l->kw * l->in.dim[2];

	act_backward(dz, y, B * (size_t)P, (size_t)l->filters, l->act);
	if (db)
		bias_grad(db, dz, B * (size_t)P, (size_t)l->filters);
	for (size_t s = 0; s < B; s++) {
		const float *dzs = dz + s * l->out_size;

		im2col(col, x + s * l->in_size, l);
		ml__sgemm(1, 0, KC, l->filters, P, col, KC, dzs, l->filters,
			  1.0f, dk, l->filters);
		if (!dx)
			continue;
		ml__sgemm(0, 1, P, KC, l->filters, dzs, l->filters, k,
			  l->filters, 0.0f, dcol, KC);
		memset(dx + s * l->in_size, 0, l->in_size * sizeof(float));
		col2im(dx + s * l->in_size, dcol, l);
	}
}

/* ---- max pooling ------------------------------------------------------ */

/* y[B, oh, ow, c] = max over windows of x[B, h, w, c]; arg (when not
 * NULL) records the winning input index within the sample. Padding
 * never wins (as in TensorFlow). */
static void pool_forward(float *y, int32_t *arg, const float *x,
			 const struct ml_layer *l, size_t B)
{
	int h = l->in.dim[0], w = l->in.dim[1], c = l->in.dim[2];
	int oh = l->out.dim[0], ow = l->out.dim[1];

	for (size_t s = 0; s < B; s++) {
		const float *xs = x + s * l->in_size;
		float *ys = y + s * l->out_size;
		int32_t *as = arg ? arg + s * l->out_size : NULL;

		for (int oy = 0; oy < oh; oy++) {
			for (int ox = 0; ox < ow; ox++) {
				for (int ch = 0; ch < c; ch++) {
					float best = -FLT_MAX;
					int32_t bi = -1;

					for (int ky = 0; ky < l->kh; ky++) {
						int iy = oy * l->sh - l->pad_top + ky;

						if (iy < 0 || iy >= h)
							continue;
						for (int kx = 0; kx < l->kw; kx++) {
							int ix = ox * l->sw - l->pad_left + kx;
							int32_t i;

							if (ix < 0 || ix >= w)
								continue;
							i = (iy * w + ix) * c + ch;
							if (bi < 0 || xs[i] > best) {
								best = xs[i];
								bi = i;
							}
						}
					}
					*ys++ = best;
					if (as)
						*as++ = bi;
				}
			}
		}
	}
}

static void pool_backward(float *dx, const float *dy, const int32_t *arg,
			  const struct ml_layer *l, size_t B)
{
	memset(dx, 0, B * l->in_size * sizeof(float));
	for (size_t s = 0; s < B; s++)
		for (size_t o = 0; o < l->out_size; o++)
			dx[s * l->in_size + (size_t)arg[s * l->out_size + o]] +=
				dy[s * l->out_size + o];
}

/* ---- the workspace ---------------------------------------------------- */

void ml__ws_free(struct ml_workspace *ws)
{
	free(ws->arena);
	free(ws->act);
	free(ws->argmax);
	memset(ws, 0, sizeof(*ws));
}

/* Layers whose backward can run in place on the gradient above them. */
static int grad_alias(const struct ml_layer *l)
{
	return l->kind == ML_LAYER_FLATTEN || l->kind == ML_LAYER_ACTIVATION ||
	       l->kind == ML_LAYER_DROPOUT;
}

int ml__ws_ensure(const struct ml_model *m, struct ml_workspace *ws,
		  size_t batch, int training)
{
	size_t total = 0, col = 0, n_arg = 0, n_mask = 0;
	int L = m->n_layers;
	float *p;

	if (ws->arena && ws->batch >= batch && (ws->training || !training))
		return FM_OK;
	if (ws->batch > batch)
		batch = ws->batch;
	training = training || ws->training;
	ml__ws_free(ws);
	for (int i = 0; i < L; i++) {
		const struct ml_layer *l = &m->layers[i];
		size_t o = l->out_size;

		if (l->kind != ML_LAYER_FLATTEN)
			total += o;  /* act[i + 1] */
		/* dact[i + 1] is owned unless layer i + 1 works in place */
		if (training && (i == L - 1 || !grad_alias(&m->layers[i + 1])))
			total += o;
		if (l->kind == ML_LAYER_CONV2D && conv_col_size(l) > col)
			col = conv_col_size(l);
		if (l->kind == ML_LAYER_MAXPOOL2D)
			n_arg += o;
		if (l->kind == ML_LAYER_DROPOUT)
			n_mask += o;
	}
	/* per-sample sizes are bounded, the batch is too: no overflow */
	total = total * batch + col * (training ? 2 : 1) +
		(training ? n_mask * batch : 0);
	if (total > ML_MAX_DATA_FLOATS)
		return fm_error_set(FM_ETOOLARGE, "batch of %zu needs %zu "
				    "floats of activations", batch, total);
	ws->arena = malloc((total ? total : 1) * sizeof(float));
	ws->act = calloc(2 * ((size_t)L + 1), sizeof(float *));
	ws->argmax = training && n_arg ?
		     malloc(n_arg * batch * sizeof(int32_t)) : NULL;
	if (!ws->arena || !ws->act || (training && n_arg && !ws->argmax)) {
		ml__ws_free(ws);
		return fm_error_set(FM_ENOMEM, "out of memory for a batch of "
				    "%zu", batch);
	}
	ws->dact = ws->act + L + 1;
	p = ws->arena;
	for (int i = 0; i < L; i++) {
		if (m->layers[i].kind == ML_LAYER_FLATTEN)
			continue;
		ws->act[i + 1] = p;
		p += m->layers[i].out_size * batch;
	}
	if (training) {
		ws->dact[L] = p;
		p += m->layers[L - 1].out_size * batch;
		for (int i = L - 1; i >= 1; i--) {
			if (grad_alias(&m->layers[i])) {
				ws->dact[i] = ws->dact[i + 1];
				continue;
			}
			ws->dact[i] = p;
			p += m->layers[i - 1].out_size * batch;
		}
		ws->mask = p;
		p += n_mask * batch;
	}
	ws->col = p;
	ws->dcol = training ? p + col : NULL;
	ws->col_size = col;
	ws->batch = batch;
	ws->training = training;
	return FM_OK;
}

/* ---- forward and backward --------------------------------------------- */

static void dropout_forward(float *y, float *mask, const float *x,
			    const struct ml_layer *l, size_t n,
			    struct ml_rng *rng)
{
	float keep = 1.0f / (1.0f - (float)l->rate);

	for (size_t i = 0; i < n; i++) {
		mask[i] = ml_rng_uniform(rng) >= l->rate ? keep : 0.0f;
		y[i] = x[i] * mask[i];
	}
}

const float *ml__forward(struct ml_model *m, struct ml_workspace *ws,
			 const float *x, size_t B, int training,
			 struct ml_rng *rng)
{
	size_t arg_off = 0, mask_off = 0;

	FM_ASSERT(ws->arena && B <= ws->batch && (!training || ws->training));
	ws->act[0] = (float *)x;
	for (int i = 0; i < m->n_layers; i++) {
		const struct ml_layer *l = &m->layers[i];
		const float *in = ws->act[i];
		float *out = ws->act[i + 1];
		const float *k = l->kernel_t >= 0 ?
				 m->params + m->tensors[l->kernel_t].offset : NULL;
		const float *b = l->bias_t >= 0 ?
				 m->params + m->tensors[l->bias_t].offset : NULL;

		switch (l->kind) {
		case ML_LAYER_DENSE: {
			int K = l->in.dim[l->in.rank - 1];
			size_t R = B * l->in_size / (size_t)K;

			ml__sgemm(0, 0, (int)R, l->units, K, in, K, k, l->units,
				  0.0f, out, l->units);
			bias_act(out, b, R, (size_t)l->units, l->act);
			break;
		}
		case ML_LAYER_CONV2D:
			conv_forward(out, ws->col, in, k, b, l, B);
			break;
		case ML_LAYER_MAXPOOL2D:
			pool_forward(out, training ? ws->argmax + arg_off : NULL,
				     in, l, B);
			arg_off += l->out_size * ws->batch;
			break;
		case ML_LAYER_DROPOUT:
			if (training && l->rate > 0)
				dropout_forward(out, ws->mask + mask_off, in, l,
						B * l->out_size,
						rng ? rng : &m->rng);
			else
				memcpy(out, in, B * l->out_size * sizeof(float));
			mask_off += l->out_size * ws->batch;
			break;
		case ML_LAYER_ACTIVATION:
			memcpy(out, in, B * l->out_size * sizeof(float));
			bias_act(out, NULL, B * l->out_size /
				 (size_t)l->out.dim[l->out.rank - 1],
				 (size_t)l->out.dim[l->out.rank - 1], l->act);
			break;
		case ML_LAYER_FLATTEN:
			ws->act[i + 1] = (float *)in;
			break;
		}
	}
	return ws->act[m->n_layers];
}

void ml__backward(const struct ml_model *m, struct ml_workspace *ws,
		  float *grads, size_t B)
{
	size_t arg_off = 0, mask_off = 0;

	memset(grads, 0, m->n_params * sizeof(float));
	for (int i = 0; i < m->n_layers; i++) {
		if (m->layers[i].kind == ML_LAYER_MAXPOOL2D)
			arg_off += m->layers[i].out_size * ws->batch;
		if (m->layers[i].kind == ML_LAYER_DROPOUT)
			mask_off += m->layers[i].out_size * ws->batch;
	}
	for (int i = m->n_layers - 1; i >= 0; i--) {
		const struct ml_layer *l = &m->layers[i];
		float *dy = ws->dact[i + 1];
		float *dx = i > 0 ? ws->dact[i] : NULL; /* no input gradient */
		const float *x = ws->act[i], *y = ws->act[i + 1];
		const float *k = NULL;
		float *dk = NULL, *db = NULL;
		size_t n = B * l->out_size;

		if (l->kernel_t >= 0) {
			k = m->params + m->tensors[l->kernel_t].offset;
			dk = grads + m->tensors[l->kernel_t].offset;
		}
		if (l->bias_t >= 0)
			db = grads + m->tensors[l->bias_t].offset;
		switch (l->kind) {
		case ML_LAYER_DENSE: {
			int K = l->in.dim[l->in.rank - 1];
			size_t R = B * l->in_size / (size_t)K;

			act_backward(dy, y, R, (size_t)l->units, l->act);
			if (db)
				bias_grad(db, dy, R, (size_t)l->units);
			ml__sgemm(1, 0, K, l->units, (int)R, x, K, dy, l->units,
				  1.0f, dk, l->units);
			if (dx)
				ml__sgemm(0, 1, (int)R, K, l->units, dy,
					  l->units, k, l->units, 0.0f, dx,
					  K);
			break;
		}
		case ML_LAYER_CONV2D:
			conv_backward(dx, dk, db, ws->col, ws->dcol, dy, y, x, k,
				      l, B);
			break;
		case ML_LAYER_MAXPOOL2D:
			arg_off -= l->out_size * ws->batch;
			if (dx)
				pool_backward(dx, dy, ws->argmax + arg_off, l, B);
			break;
		case ML_LAYER_DROPOUT:
			/* in place: dact[i] aliases dact[i + 1] */
			mask_off -= l->out_size * ws->batch;
			if (l->rate > 0)
				for (size_t j = 0; j < n; j++)
					dy[j] *= ws->mask[mask_off + j];
			break;
		case ML_LAYER_ACTIVATION: {
			size_t c = (size_t)l->out.dim[l->out.rank - 1];

			act_backward(dy, y, n / c, c, l->act);
			break;
		}
		case ML_LAYER_FLATTEN:
			break;
		}
	}
}
