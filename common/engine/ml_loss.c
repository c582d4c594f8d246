/* Losses and accuracy, as Keras computes them: cross-entropy from
 * probabilities normalizes and clips them to [eps, 1 - eps]; binary
 * cross-entropy and MSE average over the last axis. */
#include "engine/ml_impl.h"

#include "core/err.h"

#include <math.h>
#include <string.h>

static const struct {
	const char *name;
	enum ml_loss loss;
} loss_names[] = {
	{ "sparse_categorical_crossentropy", ML_LOSS_SPARSE_CE },
	{ "categorical_crossentropy", ML_LOSS_CATEGORICAL_CE },
	{ "binary_crossentropy", ML_LOSS_BINARY_CE },
	{ "mean_squared_error", ML_LOSS_MSE },
	{ "sparseCategoricalCrossentropy", ML_LOSS_SPARSE_CE },
	{ "categoricalCrossentropy", ML_LOSS_CATEGORICAL_CE },
	{ "binaryCrossentropy", ML_LOSS_BINARY_CE },
	{ "meanSquaredError", ML_LOSS_MSE },
	{ "mse", ML_LOSS_MSE },
};

int ml_loss_parse(const char *s, enum ml_loss *out)
{
	for (size_t i = 0; i < sizeof(loss_names) / sizeof(loss_names[0]); i++) {
		if (strcmp(s, loss_names[i].name) == 0) {
			*out = loss_names[i].loss;
			return FM_OK;
		}
	}
	return fm_error_set(FM_EINVAL, "loss '%s' is not supported "
			    "(sparse_categorical_crossentropy, "
			    "categorical_crossentropy, binary_crossentropy, "
			    "mean_squared_error)", s);
}

const char *ml_loss_name(enum ml_loss l)
{
	return loss_names[l].name;
}

int ml_optimizer_parse(const char *s, enum ml_optimizer *out)
{
	if (strcmp(s, "sgd") == 0)
		*out = ML_OPT_SGD;
	else if (strcmp(s, "adam") == 0)
		*out = ML_OPT_ADAM;
	else
		return fm_error_set(FM_EINVAL, "optimizer '%s' is not "
				    "supported (sgd, adam)", s);
	return FM_OK;
}

static size_t argmax(const float *v, size_t n)
{
	size_t best = 0;

	for (size_t j = 1; j < n; j++)
		if (v[j] > v[best])
			best = j;
	return best;
}

/* Cross-entropy of one row against target t (NULL: one-hot at label).
 * g (when not NULL) gets scale * dL/dout. */
static double ce_row(const float *o, const float *t, size_t label, size_t d,
		     int from_logits, float *g, float scale)
{
	double loss = 0;

	if (from_logits) {
		/* log softmax = o - (max + log sum exp(o - max)) */
		float mx = o[argmax(o, d)];
		double s = 0, lse, tsum = 0;

		for (size_t j = 0; j < d; j++)
			s += exp((double)(o[j] - mx));
		lse = mx + log(s);
		for (size_t j = 0; j < d; j++) {
			double tj = t ? t[j] : (j == label);

			loss -= tj * ((double)o[j] - lse);
			tsum += tj;
		}
		if (g)
			for (size_t j = 0; j < d; j++)
				g[j] = scale * (float)(tsum * exp(o[j] - lse) -
						       (t ? t[j] : (j == label)));
		return loss;
	}
	/* q = clip(o / sum(o)); dL/do_k = -t_k c_k / o_k + sum_j t_j c_j / S
	 * where c_j is 1 when q_j was not clipped */
	double S = 0, tc = 0;

	for (size_t j = 0; j < d; j++)
		S += o[j];
	for (size_t j = 0; j < d; j++) {
		double tj = t ? t[j] : (j == label);
		double q = o[j] / S;
		int clipped = !(q > ML_EPSILON && q < 1.0 - ML_EPSILON);

		if (!(q > ML_EPSILON))
			q = ML_EPSILON;
		if (q > 1.0 - ML_EPSILON)
			q = 1.0 - ML_EPSILON;
		loss -= tj * log(q);
		if (g)
			g[j] = clipped || tj == 0 ? 0.0f :
			       (float)(-tj / o[j]);
		if (!clipped)
			tc += tj;
	}
	if (g)
		for (size_t j = 0; j < d; j++)
			g[j] = scale * (g[j] + (float)(tc / S));
	return loss;
}

void ml__loss(enum ml_loss l, int from_logits, const float *out,
	      const float *y, size_t B, size_t d, size_t y_size, float *grad,
	      double grad_scale, double *loss_sum, size_t *correct)
{
	float scale = (float)grad_scale;
	double total = 0;
	size_t ok = 0;

	for (size_t r = 0; r < B; r++) {
		const float *o = out + r * d;
		const float *t = y + r * y_size;
		float *g = grad ? grad + r * d : NULL;

		switch (l) {
		case ML_LOSS_SPARSE_CE: {
			size_t label = (size_t)t[0];

			total += ce_row(o, NULL, label, d, from_logits, g, scale);
			ok += argmax(o, d) == label;
			break;
		}
		case ML_LOSS_CATEGORICAL_CE:
			total += ce_row(o, t, 0, d, from_logits, g, scale);
			ok += argmax(o, d) == argmax(t, d);
			break;
		case ML_LOSS_BINARY_CE: {
			double s = 0;
			size_t hit = 0;

			for (size_t j = 0; j < d; j++) {
				double z = o[j], tj = t[j];

				if (from_logits) {
					s += (z > 0 ? z : 0) - z * tj +
					     log1p(exp(-fabs(z)));
					if (g)
						g[j] = scale / (float)d *
						       (float)(1 / (1 + exp(-z)) - tj);
					hit += (z > 0) == (tj > 0.5);
					continue;
				}
				double p = z;
				int clipped = !(p > ML_EPSILON &&
						p < 1.0 - ML_EPSILON);

				if (!(p > ML_EPSILON))
					p = ML_EPSILON;
				if (p > 1.0 - ML_EPSILON)
					p = 1.0 - ML_EPSILON;
				s -= tj * log(p) + (1 - tj) * log(1 - p);
				if (g)
					g[j] = clipped ? 0.0f :
					       scale / (float)d *
					       (float)(-tj / p + (1 - tj) / (1 - p));
				hit += (p > 0.5) == (tj > 0.5);
			}
			total += s / (double)d;
			ok += hit == d;
			break;
		}
		case ML_LOSS_MSE: {
			double s = 0;

			for (size_t j = 0; j < d; j++) {
				double e = (double)o[j] - t[j];

				s += e * e;
				if (g)
					g[j] = scale * 2.0f / (float)d * (float)e;
			}
			total += s / (double)d;
			if (d == 1)
				ok += (o[0] > 0.5f) == (t[0] > 0.5f);
			else
				ok += argmax(o, d) == argmax(t, d);
			break;
		}
		}
	}
	*loss_sum += total;
	*correct += ok;
}
