/* Models that TensorFlow.js built and saved (tests/fixtures/tfjs, made by
 * tests/tfjs/make_fixtures.js) load in the engine and predict what
 * TensorFlow.js predicted, within 1e-5. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"
#include "engine/ml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fixture_dir(char *out, size_t n, const char *name)
{
	const char *top = getenv("FM_TOP");

	snprintf(out, n, "%s/tests/fixtures/tfjs/%s", top ? top : ".", name);
}

/* {"shape": [...], "data": [...]} -> floats; *count values. */
static float *load_tensor(const char *dir, const char *file, json_t **shape,
			  size_t *count)
{
	char path[512];
	json_t *root = NULL, *data;
	float *v;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (fj_load_file(&root, path, 1 << 26))
		fail_msg("%s", fm_error_msg());
	data = json_object_get(root, "data");
	*count = json_array_size(data);
	v = malloc(*count * sizeof(float) + 1);
	for (size_t i = 0; i < *count; i++)
		v[i] = (float)json_number_value(json_array_get(data, i));
	*shape = json_incref(json_object_get(root, "shape"));
	json_decref(root);
	return v;
}

static void check_fixture(const char *name, enum ml_layer_kind must_have)
{
	struct ml_model *m = NULL;
	json_t *xs, *ys;
	size_t nx, ny, n;
	float *x, *want, *got;
	char dir[400];
	int found = 0;

	fixture_dir(dir, sizeof(dir), name);
	if (ml_model_load(&m, dir) != FM_OK)
		fail_msg("%s: %s", name, fm_error_msg());
	for (int i = 0; i < ml_model_layer_count(m); i++)
		found |= ml_model_layer_kind(m, i) == must_have;
	assert_true(found);
	x = load_tensor(dir, "input.json", &xs, &nx);
	want = load_tensor(dir, "expected.json", &ys, &ny);
	n = (size_t)json_integer_value(json_array_get(xs, 0));
	assert_int_equal(nx, n * ml_model_input_size(m));
	assert_int_equal(ny, n * ml_model_output_size(m));
	got = malloc(ny * sizeof(float));
	assert_int_equal(ml_predict(m, x, n, got), FM_OK);
	for (size_t i = 0; i < ny; i++)
		if (fabsf(got[i] - want[i]) > 1e-5f)
			fail_msg("%s: output %zu is %.8g, TensorFlow.js gave "
				 "%.8g", name, i, (double)got[i],
				 (double)want[i]);
	free(x);
	free(want);
	free(got);
	json_decref(xs);
	json_decref(ys);
	ml_model_free(m);
}

static void test_engine__tfjs_mlp_two_groups(void **state)
{
	(void)state;
	check_fixture("mlp", ML_LAYER_FLATTEN);
}

static void test_engine__tfjs_cnn_three_files(void **state)
{
	(void)state;
	check_fixture("cnn", ML_LAYER_CONV2D);
	check_fixture("cnn", ML_LAYER_MAXPOOL2D);
	check_fixture("cnn", ML_LAYER_DROPOUT);
}

static void test_engine__tfjs_tabular_sigmoid(void **state)
{
	(void)state;
	check_fixture("tabular", ML_LAYER_DENSE);
}

static void test_engine__tfjs_functional_chain(void **state)
{
	(void)state;
	check_fixture("functional", ML_LAYER_ACTIVATION);
}

/* Saved by the engine and loaded back: same predictions, and the
 * TensorFlow.js weight names survive. */
static void test_engine__tfjs_resave_round_trip(void **state)
{
	char dir[400], out[] = "/tmp/engine_tfjs_test.XXXXXX";
	struct ml_model *a = NULL, *b = NULL;
	size_t n;

	(void)state;
	fixture_dir(dir, sizeof(dir), "cnn");
	assert_non_null(mkdtemp(out));
	assert_int_equal(ml_model_load(&a, dir), FM_OK);
	assert_int_equal(ml_model_save(a, out), FM_OK);
	assert_int_equal(ml_model_load(&b, out), FM_OK);
	assert_int_equal(ml_model_same_arch(a, b), FM_OK);
	n = ml_model_param_count(a);
	assert_memory_equal(ml_model_params(a, NULL), ml_model_params(b, NULL),
			    n * sizeof(float));
	assert_string_equal(ml_model_tensor(b, 0)->name,
			    "conv2d_Conv2D1/kernel");
	ml_model_free(a);
	ml_model_free(b);
	snprintf(dir, sizeof(dir), "rm -rf '%s'", out);
	assert_int_equal(system(dir), 0);
}

/* Fresh weights follow the initializers model.json names: TensorFlow.js'
 * default kernel initializer is VarianceScaling(fan_avg, normal), a
 * normal truncated at two standard deviations. */
static void test_engine__tfjs_initializers_reinit(void **state)
{
	struct ml_model *m = NULL;
	const struct ml_tensor_info *k, *b;
	double sd, sum = 0, sq = 0;
	const float *p;
	char dir[400];

	(void)state;
	fixture_dir(dir, sizeof(dir), "mlp");
	assert_int_equal(ml_model_load(&m, dir), FM_OK);
	assert_int_equal(ml_model_init_weights(m, 11), FM_OK);
	k = ml_model_tensor(m, 0); /* [784, 32] */
	b = ml_model_tensor(m, 1);
	assert_int_equal(k->shape[0], 784);
	sd = sqrt(1.0 / ((784 + 32) / 2.0)) / 0.87962566103423978;
	p = ml_model_params(m, NULL) + k->offset;
	for (size_t i = 0; i < k->size; i++) {
		assert_true(fabs(p[i]) <= 2 * sd + 1e-6);
		sum += p[i];
		sq += (double)p[i] * p[i];
	}
	/* the truncated normal's variance is the target variance */
	assert_float_equal(sqrt(sq / (double)k->size), sd * 0.87962566103423978,
			   0.05 * sd);
	assert_true(fabs(sum / (double)k->size) < 0.1 * sd);
	p = ml_model_params(m, NULL) + b->offset;
	for (size_t i = 0; i < b->size; i++)
		assert_true(p[i] == 0.0f);
	ml_model_free(m);
}

/* Thousands of corrupted copies of a real model.json (bytes flipped,
 * digits changed, text cut) load or fail with a message; never crash
 * (run under ASan by `make check`). */
static void test_engine__mutated_model_json_never_crashes(void **state)
{
	char dir[400], path[512];
	struct buf b = BUF_INIT(1 << 20);
	struct ml_rng r;
	int loaded = 0, refused = 0;

	(void)state;
	fixture_dir(dir, sizeof(dir), "cnn");
	snprintf(path, sizeof(path), "%s/model.json", dir);
	assert_int_equal(buf_read_file(&b, path), FM_OK);
	ml_rng_seed(&r, 1234);
	for (int i = 0; i < 3000; i++) {
		char *t = malloc(b.len + 1);
		size_t len = b.len;
		struct ml_model *m = NULL;

		memcpy(t, b.data, b.len + 1);
		for (int k = 0; k < 1 + (int)ml_rng_below(&r, 3); k++) {
			size_t at = (size_t)ml_rng_below(&r, len);
			const char *digits = "0123456789-";

			switch (ml_rng_below(&r, 4)) {
			case 0: /* a digit, as in shapes and sizes */
				if (t[at] >= '0' && t[at] <= '9')
					t[at] = digits[ml_rng_below(&r, 11)];
				break;
			case 1:
				t[at] = (char)ml_rng_below(&r, 256);
				break;
			case 2:
				len = at;
				break;
			default: /* drop one character */
				memmove(t + at, t + at + 1, len - at);
				len--;
				break;
			}
		}
		if (ml_model_load_json(&m, t, len, dir) == FM_OK) {
			loaded++;
			ml_model_free(m);
		} else {
			assert_null(m);
			assert_true(fm_error_msg()[0] != '\0');
			refused++;
		}
		free(t);
	}
	assert_true(refused > 1000);
	assert_true(loaded > 0);
	buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine__tfjs_mlp_two_groups),
		cmocka_unit_test(test_engine__tfjs_cnn_three_files),
		cmocka_unit_test(test_engine__tfjs_tabular_sigmoid),
		cmocka_unit_test(test_engine__tfjs_functional_chain),
		cmocka_unit_test(test_engine__tfjs_resave_round_trip),
		cmocka_unit_test(test_engine__tfjs_initializers_reinit),
		cmocka_unit_test(test_engine__mutated_model_json_never_crashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
