/* Kernels against naive references, and every layer's and loss's
 * gradients against central finite differences. Uses the engine's
 * internal header to drive forward/backward directly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/ml_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ml_model *from_spec(const char *text, uint64_t seed)
{
	json_error_t je;
	json_t *spec = json_loads(text, 0, &je);
	struct ml_model *m = NULL;

	if (!spec)
		fail_msg("spec JSON: %s", je.text);
	if (ml_model_from_spec(&m, spec, seed) != FM_OK)
		fail_msg("spec: %s", fm_error_msg());
	json_decref(spec);
	return m;
}

static void fill(float *p, size_t n, uint64_t seed, float lo, float hi)
{
	struct ml_rng r;

	ml_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		p[i] = lo + (hi - lo) * (float)ml_rng_uniform(&r);
}

/* ---- naive references ------------------------------------------------- */

static void naive_conv(float *y, const float *x, const float *k,
		       const float *b, const struct ml_layer *l)
{
	int H = l->in.dim[0], W = l->in.dim[1], C = l->in.dim[2];
	int OH = l->out.dim[0], OW = l->out.dim[1], F = l->filters;

	for (int oy = 0; oy < OH; oy++)
		for (int ox = 0; ox < OW; ox++)
			for (int f = 0; f < F; f++) {
				double s = b ? b[f] : 0;

				for (int ky = 0; ky < l->kh; ky++)
					for (int kx = 0; kx < l->kw; kx++)
						for (int c = 0; c < C; c++) {
							int iy = oy * l->sh - l->pad_top + ky;
							int ix = ox * l->sw - l->pad_left + kx;

							if (iy < 0 || iy >= H || ix < 0 || ix >= W)
								continue;
							s += (double)x[(iy * W + ix) * C + c] *
							     k[((ky * l->kw + kx) * C + c) * F + f];
						}
				y[(oy * OW + ox) * F + f] = (float)s;
			}
}

static void test_engine__dense_matches_naive(void **state)
{
	struct ml_model *m = from_spec(
		"{\"input_shape\": [37], \"layers\": [{\"type\": \"dense\", "
		"\"units\": 19}]}", 3);
	float x[5 * 37], y[5 * 19];
	const float *k = m->params, *b = m->params + 37 * 19;

	(void)state;
	fill(m->params, m->n_params, 9, -1, 1);
	fill(x, sizeof(x) / sizeof(x[0]), 4, -1, 1);
	assert_int_equal(ml_predict(m, x, 5, y), FM_OK);
	for (int r = 0; r < 5; r++)
		for (int j = 0; j < 19; j++) {
			double s = b[j];

			for (int i = 0; i < 37; i++)
				s += (double)x[r * 37 + i] * k[i * 19 + j];
			assert_float_equal(y[r * 19 + j], s, 1e-4);
		}
	ml_model_free(m);
}

static void check_conv(const char *spec)
{
	struct ml_model *m = from_spec(spec, 5);
	const struct ml_layer *l = &m->layers[0];
	float *x, *y, *ref;
	size_t B = 3;

	fill(m->params, m->n_params, 11, -1, 1);
	x = malloc(B * m->in_size * sizeof(float));
	y = malloc(B * m->out_size * sizeof(float));
	ref = malloc(m->out_size * sizeof(float));
	fill(x, B * m->in_size, 12, -1, 1);
	assert_int_equal(ml_predict(m, x, B, y), FM_OK);
	for (size_t s = 0; s < B; s++) {
		naive_conv(ref, x + s * m->in_size, m->params,
			   l->use_bias ? m->params + m->tensors[0].size : NULL, l);
		for (size_t i = 0; i < m->out_size; i++)
			assert_float_equal(y[s * m->out_size + i], ref[i], 1e-4);
	}
	free(x);
	free(y);
	free(ref);
	ml_model_free(m);
}

static void test_engine__conv2d_matches_naive(void **state)
{
	(void)state;
	check_conv("{\"input_shape\": [7, 9, 3], \"layers\": [{\"type\": "
		   "\"conv2d\", \"filters\": 4, \"kernel_size\": 3}]}");
	check_conv("{\"input_shape\": [7, 9, 3], \"layers\": [{\"type\": "
		   "\"conv2d\", \"filters\": 5, \"kernel_size\": [3, 2], "
		   "\"strides\": [2, 3], \"padding\": \"same\"}]}");
	check_conv("{\"input_shape\": [8, 8, 1], \"layers\": [{\"type\": "
		   "\"conv2d\", \"filters\": 2, \"kernel_size\": 4, "
		   "\"strides\": 2, \"padding\": \"same\", \"use_bias\": "
		   "false}]}");
}

static void test_engine__maxpool_matches_naive(void **state)
{
	struct ml_model *m = from_spec(
		"{\"input_shape\": [7, 5, 2], \"layers\": [{\"type\": "
		"\"maxpool2d\", \"pool_size\": 3, \"strides\": 2, "
		"\"padding\": \"same\"}]}", 1);
	float x[70], y[4 * 3 * 2];

	(void)state;
	/* same padding: out ceil(7/2)=4, ceil(5/2)=3; pads 1 before rows
	 * ((4-1)*2+3-7=2 -> 1) and 1 before columns ((3-1)*2+3-5=2 -> 1) */
	assert_int_equal(m->out_size, 24);
	fill(x, 70, 2, -5, 5);
	assert_int_equal(ml_predict(m, x, 1, y), FM_OK);
	for (int oy = 0; oy < 4; oy++)
		for (int ox = 0; ox < 3; ox++)
			for (int c = 0; c < 2; c++) {
				float best = -INFINITY;

				for (int iy = oy * 2 - 1; iy < oy * 2 + 2; iy++)
					for (int ix = ox * 2 - 1; ix < ox * 2 + 2; ix++)
						if (iy >= 0 && iy < 7 && ix >= 0 && ix < 5 &&
						    x[(iy * 5 + ix) * 2 + c] > best)
							best = x[(iy * 5 + ix) * 2 + c];
				assert_true(y[(oy * 3 + ox) * 2 + c] == best);
			}
	ml_model_free(m);
}

/* ---- finite differences ----------------------------------------------- */

struct case_data {
	size_t B;
	float *x, *y;
	size_t y_size;
	enum ml_loss loss;
	int from_logits;
};

static double batch_loss(struct ml_model *m, const struct case_data *c,
			 const struct ml_rng *rng, float *grad_out)
{
	double sum = 0;
	size_t correct = 0;
	const float *out;

	m->rng = *rng; /* the same dropout mask every time */
	out = ml__forward(m, &m->ws, c->x, c->B, 1, NULL);
	ml__loss(c->loss, c->from_logits, out, c->y, c->B, m->out_size,
		 c->y_size, grad_out, 1.0 / (double)c->B, &sum, &correct);
	return sum / (double)c->B;
}

static void grad_check(const char *spec, enum ml_loss loss, int from_logits,
		       size_t y_size, int labels)
{
	struct ml_model *m = from_spec(spec, 21);
	struct case_data c = { 4, NULL, NULL, y_size, loss, from_logits };
	struct ml_rng rng;
	float *analytic;
	size_t nonzero = 0;
	int bad = 0;

	c.x = malloc(c.B * m->in_size * sizeof(float));
	c.y = malloc(c.B * y_size * sizeof(float));
	fill(c.x, c.B * m->in_size, 31, -1, 1);
	fill(m->params, m->n_params, 32, -0.5f, 0.5f);
	if (labels) {
		for (size_t i = 0; i < c.B; i++)
			c.y[i] = (float)((i * 7 + 3) % m->out_size);
	} else if (loss == ML_LOSS_CATEGORICAL_CE) {
		fill(c.y, c.B * y_size, 33, 0.1f, 1);
		for (size_t i = 0; i < c.B; i++) { /* soft targets sum to 1 */
			float s = 0;

			for (size_t j = 0; j < y_size; j++)
				s += c.y[i * y_size + j];
			for (size_t j = 0; j < y_size; j++)
				c.y[i * y_size + j] /= s;
		}
	} else {
		fill(c.y, c.B * y_size, 33, 0, 1);
	}
	ml_rng_seed(&rng, 99);
	m->grads = malloc(m->n_params * sizeof(float));
	analytic = malloc(m->n_params * sizeof(float));
	assert_int_equal(ml__ws_ensure(m, &m->ws, c.B, 1), FM_OK);
	batch_loss(m, &c, &rng, m->ws.dact[m->n_layers]);
	ml__backward(m, &m->ws, m->grads, c.B);
	memcpy(analytic, m->grads, m->n_params * sizeof(float));
	for (size_t i = 0; i < m->n_params; i++) {
		float keep = m->params[i], h = 5e-3f;
		double lp, lm, fd, tol;

		m->params[i] = keep + h;
		lp = batch_loss(m, &c, &rng, NULL);
		m->params[i] = keep - h;
		lm = batch_loss(m, &c, &rng, NULL);
		m->params[i] = keep;
		fd = (lp - lm) / (2.0 * h);
		nonzero += analytic[i] != 0.0f;
		tol = 1e-4 + 1e-2 * fabs(fd);
		if (fabs(fd - analytic[i]) > tol && bad++ < 5)
			print_error("%s: param %zu: analytic %g, numeric %g\n",
				    spec, i, (double)analytic[i], fd);
	}
	/* a kink (relu, max) crossed by the step may disagree once */
	assert_true(bad <= (int)(m->n_params / 200));
	/* and the check was not vacuous: most gradients are not zero */
	assert_true(nonzero > m->n_params / 2);
	free(analytic);
	free(c.x);
	free(c.y);
	ml_model_free(m);
}

static void test_engine__grad_dense_activations(void **state)
{
	(void)state;
	grad_check("{\"input_shape\": [6], \"layers\": ["
		   "{\"type\": \"dense\", \"units\": 5, \"activation\": \"tanh\"},"
		   "{\"type\": \"dense\", \"units\": 4, \"activation\": \"sigmoid\"},"
		   "{\"type\": \"dense\", \"units\": 5, \"activation\": \"relu\"},"
		   "{\"type\": \"dense\", \"units\": 3, \"activation\": \"softmax\"}"
		   "]}", ML_LOSS_SPARSE_CE, 0, 1, 1);
}

static void test_engine__grad_activation_layers(void **state)
{
	(void)state;
	grad_check("{\"input_shape\": [2, 5], \"layers\": ["
		   "{\"type\": \"dense\", \"units\": 4},"
		   "{\"type\": \"activation\", \"activation\": \"tanh\"},"
		   "{\"type\": \"flatten\"},"
		   "{\"type\": \"dense\", \"units\": 6},"
		   "{\"type\": \"activation\", \"activation\": \"sigmoid\"},"
		   "{\"type\": \"dense\", \"units\": 3},"
		   "{\"type\": \"activation\", \"activation\": \"softmax\"}"
		   "]}", ML_LOSS_CATEGORICAL_CE, 0, 3, 0);
}

static void test_engine__grad_conv_pool_dropout(void **state)
{
	(void)state;
	grad_check("{\"input_shape\": [7, 6, 2], \"layers\": ["
		   "{\"type\": \"conv2d\", \"filters\": 3, \"kernel_size\": 3,"
		   " \"padding\": \"same\", \"activation\": \"relu\"},"
		   "{\"type\": \"maxpool2d\", \"pool_size\": 2, \"padding\": "
		   "\"same\"},"
		   "{\"type\": \"conv2d\", \"filters\": 2, \"kernel_size\": [2, 1],"
		   " \"strides\": [1, 2], \"activation\": \"tanh\"},"
		   "{\"type\": \"dropout\", \"rate\": 0.3},"
		   "{\"type\": \"flatten\"},"
		   "{\"type\": \"dense\", \"units\": 4}"
		   "]}", ML_LOSS_SPARSE_CE, 1, 1, 1);
}

static void test_engine__grad_losses(void **state)
{
	const char *one = "{\"input_shape\": [5], \"layers\": [{\"type\": "
			  "\"dense\", \"units\": 3, \"activation\": "
			  "\"sigmoid\"}]}";
	const char *lin = "{\"input_shape\": [5], \"layers\": [{\"type\": "
			  "\"dense\", \"units\": 3}]}";

	(void)state;
	grad_check(one, ML_LOSS_BINARY_CE, 0, 3, 0);
	grad_check(lin, ML_LOSS_BINARY_CE, 1, 3, 0);
	grad_check(lin, ML_LOSS_MSE, 0, 3, 0);
	grad_check(lin, ML_LOSS_CATEGORICAL_CE, 1, 3, 0);
	grad_check(lin, ML_LOSS_SPARSE_CE, 1, 1, 1);
}

static void test_engine__loss_values(void **state)
{
	float logits[3] = { 1.0f, 2.0f, 0.5f }, probs[3], y = 1.0f;
	float onehot[3] = { 0, 1, 0 };
	double a = 0, b = 0, c = 0, e = 0;
	size_t ok = 0;
	double s = exp(1.0) + exp(2.0) + exp(0.5);

	(void)state;
	for (int i = 0; i < 3; i++)
		probs[i] = (float)(exp(logits[i]) / s);
	ml__loss(ML_LOSS_SPARSE_CE, 1, logits, &y, 1, 3, 1, NULL, 0, &a, &ok);
	ml__loss(ML_LOSS_SPARSE_CE, 0, probs, &y, 1, 3, 1, NULL, 0, &b, &ok);
	ml__loss(ML_LOSS_CATEGORICAL_CE, 0, probs, onehot, 1, 3, 3, NULL, 0,
		 &c, &ok);
	assert_float_equal(a, -log(exp(2.0) / s), 1e-6);
	assert_float_equal(b, a, 1e-6);
	assert_float_equal(c, a, 1e-6);
	assert_int_equal(ok, 3); /* argmax 1 == label 1, three times */
	/* mse averages over the last axis: ((1-0)^2 + (2-1)^2 + (0.5)^2)/3 */
	ml__loss(ML_LOSS_MSE, 0, logits, onehot, 1, 3, 3, NULL, 0, &e, &ok);
	assert_float_equal(e, (1.0 + 1.0 + 0.25) / 3.0, 1e-6);
}

static void test_engine__adam_follows_keras(void **state)
{
	struct ml_model *m = from_spec(
		"{\"input_shape\": [1], \"layers\": [{\"type\": \"dense\", "
		"\"units\": 1, \"use_bias\": false}]}", 1);
	struct ml_dataset d = { 0 };
	struct ml_train_opts o;
	float x = 2.0f, y = 1.0f;
	double w, m1 = 0, m2 = 0;

	(void)state;
	m->params[0] = 0.5f;
	d.n = 1;
	d.x_size = d.y_size = 1;
	d.x_shape.rank = 1;
	d.x_shape.dim[0] = 1;
	d.x = &x;
	d.y = &y;
	ml_train_opts_init(&o);
	o.loss = ML_LOSS_MSE;
	o.lr = 0.1;
	o.epochs = 3;
	assert_int_equal(ml_train(m, &d, &o), FM_OK);
	w = 0.5;
	for (int t = 1; t <= 3; t++) {
		double g = 2 * (w * 2 - 1) * 2;
		double alpha = 0.1 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t));

		m1 += (g - m1) * 0.1;
		m2 += (g * g - m2) * 0.001;
		w -= alpha * m1 / (sqrt(m2) + 1e-7);
	}
	assert_float_equal(m->params[0], w, 1e-6);
	ml_model_free(m);
}

static void test_engine__sgd_momentum_follows_keras(void **state)
{
	struct ml_model *m = from_spec(
		"{\"input_shape\": [1], \"layers\": [{\"type\": \"dense\", "
		"\"units\": 1, \"use_bias\": false}]}", 1);
	struct ml_dataset d = { 0 };
	struct ml_train_opts o;
	float x = 1.0f, y = 3.0f;
	double w = 0.25, v = 0;

	(void)state;
	m->params[0] = 0.25f;
	d.n = 1;
	d.x_size = d.y_size = 1;
	d.x_shape.rank = 1;
	d.x_shape.dim[0] = 1;
	d.x = &x;
	d.y = &y;
	ml_train_opts_init(&o);
	o.optimizer = ML_OPT_SGD;
	o.momentum = 0.9;
	o.loss = ML_LOSS_MSE;
	o.lr = 0.05;
	o.epochs = 4;
	assert_int_equal(ml_train(m, &d, &o), FM_OK);
	for (int t = 0; t < 4; t++) {
		double g = 2 * (w - 3);

		v = 0.9 * v - 0.05 * g;
		w += v;
	}
	assert_float_equal(m->params[0], w, 1e-6);
	ml_model_free(m);
}

/* n rows of f features uniform in [-1, 1] and room for one label each. */
static void random_rows(struct ml_dataset *d, size_t n, size_t f,
			uint64_t seed)
{
	d->n = n;
	d->x_size = f;
	d->y_size = 1;
	d->x_shape.rank = 1;
	d->x_shape.dim[0] = (int)f;
	d->x = malloc(n * f * sizeof(float));
	d->y = malloc(n * sizeof(float));
	assert_non_null(d->x);
	assert_non_null(d->y);
	fill(d->x, n * f, seed, -1, 1);
}

/* Inference split across threads gives what one thread gives. */
static void test_engine__parallel_inference_matches_serial(void **state)
{
	struct ml_model *m = from_spec(
		"{\"input_shape\": [20], \"layers\": [{\"type\": \"dense\", "
		"\"units\": 16, \"activation\": \"relu\"}, {\"type\": "
		"\"dense\", \"units\": 4}]}", 2);
	struct ml_dataset d = { 0 };
	struct ml_eval one, two;
	size_t n = 5000;
	float *y1, *y2;

	(void)state;
	random_rows(&d, n, 20, 5);
	for (size_t i = 0; i < n; i++)
		d.y[i] = (float)(i % 4);
	y1 = malloc(n * 4 * sizeof(float));
	y2 = malloc(n * 4 * sizeof(float));
	ml_blas_threads(1);
	assert_int_equal(ml_evaluate(m, &d, ML_LOSS_SPARSE_CE, 1, 300, &one),
			 FM_OK);
	assert_int_equal(ml_predict(m, d.x, n, y1), FM_OK);
	ml_blas_threads(4); /* capped at the CPUs; 2 on the project machine */
	assert_int_equal(ml_evaluate(m, &d, ML_LOSS_SPARSE_CE, 1, 300, &two),
			 FM_OK);
	assert_int_equal(ml_predict(m, d.x, n, y2), FM_OK);
	assert_int_equal(one.n, two.n);
	assert_true(one.accuracy == two.accuracy);
	assert_float_equal(one.loss, two.loss, 1e-6);
	for (size_t i = 0; i < n * 4; i++)
		assert_float_equal(y1[i], y2[i], 1e-6);
	free(y1);
	free(y2);
	ml_dataset_cleanup(&d);
	ml_model_free(m);
}

/* Trains a copy of m for three epochs with the given thread budget. */
static struct ml_model *train_copy(const struct ml_model *m,
				   const struct ml_dataset *d, int threads,
				   int batch, double *loss)
{
	struct ml_model *c = NULL;
	struct ml_train_opts o;

	assert_int_equal(ml_model_clone(&c, m), FM_OK);
	ml_train_opts_init(&o);
	o.epochs = 3;
	o.lr = 0.01;
	o.batch_size = batch;
	o.from_logits = 1;
	o.seed = 11;
	ml_blas_threads(threads);
	assert_int_equal(ml_train(c, d, &o), FM_OK);
	if (loss) {
		struct ml_eval ev;

		assert_int_equal(ml_evaluate(c, d, ML_LOSS_SPARSE_CE, 1, 256,
					     &ev),
				 FM_OK);
		*loss = ev.loss;
	}
	return c;
}

/* A batch shared by two threads trains what one thread trains (up to
 * float summation order), and the same seed gives the same weights. The
 * last batch of 1 sample leaves the second thread nothing to do; 1100
 * steps an epoch take the caller through its solo probes too. */
static void test_engine__two_thread_training_matches_one(void **state)
{
	struct ml_model *m = from_spec(
		"{\"input_shape\": [12], \"layers\": [{\"type\": \"dense\", "
		"\"units\": 24, \"activation\": \"relu\"}, {\"type\": "
		"\"dense\", \"units\": 3}]}", 7);
	struct ml_model *drop = from_spec(
		"{\"input_shape\": [12], \"layers\": [{\"type\": \"dense\", "
		"\"units\": 24, \"activation\": \"relu\"}, {\"type\": "
		"\"dropout\", \"rate\": 0.3}, {\"type\": \"dense\", "
		"\"units\": 3}]}", 7);
	struct ml_model *one, *two, *again;
	struct ml_dataset d = { 0 };
	struct ml_eval start;
	size_t n = 16 * 1100 + 1;
	double l1, l2;

	(void)state;
	random_rows(&d, n, 12, 9);
	for (size_t i = 0; i < n; i++)
		d.y[i] = d.x[i * 12] > 0 ? (d.x[i * 12 + 1] > 0 ? 2.0f : 1.0f)
					 : 0.0f;
	assert_int_equal(ml_evaluate(m, &d, ML_LOSS_SPARSE_CE, 1, 256, &start),
			 FM_OK);
	for (int batch = 16; batch <= 33; batch += 17) {
		one = train_copy(m, &d, 1, batch, &l1);
		two = train_copy(m, &d, 2, batch, &l2);
		assert_true(l2 < 0.7 * start.loss); /* it learned */
		assert_float_equal(l1, l2, 1e-4);
		for (size_t i = 0; i < m->n_params; i++)
			assert_float_equal(one->params[i], two->params[i],
					   1e-4);
		ml_model_free(one);
		ml_model_free(two);
	}
	two = train_copy(drop, &d, 2, 32, NULL);
	again = train_copy(drop, &d, 2, 32, NULL);
	assert_memory_equal(two->params, again->params,
			    drop->n_params * sizeof(float));
	ml_model_free(two);
	ml_model_free(again);
	ml_blas_threads(2);
	ml_dataset_cleanup(&d);
	ml_model_free(m);
	ml_model_free(drop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine__dense_matches_naive),
		cmocka_unit_test(test_engine__two_thread_training_matches_one),
		cmocka_unit_test(test_engine__conv2d_matches_naive),
		cmocka_unit_test(test_engine__maxpool_matches_naive),
		cmocka_unit_test(test_engine__grad_dense_activations),
		cmocka_unit_test(test_engine__grad_activation_layers),
		cmocka_unit_test(test_engine__grad_conv_pool_dropout),
		cmocka_unit_test(test_engine__grad_losses),
		cmocka_unit_test(test_engine__loss_values),
		cmocka_unit_test(test_engine__adam_follows_keras),
		cmocka_unit_test(test_engine__sgd_momentum_follows_keras),
		cmocka_unit_test(test_engine__parallel_inference_matches_serial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
