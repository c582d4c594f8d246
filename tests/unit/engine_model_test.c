/* Models: spec, shapes, parameter vector, save/load round trip, clone,
 * architecture comparison, and model.json / weight files that must be
 * refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "engine/ml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[] = "/tmp/engine_model_test.XXXXXX";

static const char *const mlp_spec =
	"{\"name\": \"mlp\", \"input_shape\": [28, 28], \"layers\": ["
	"{\"type\": \"flatten\"},"
	"{\"type\": \"dense\", \"units\": 128, \"activation\": \"relu\"},"
	"{\"type\": \"dense\", \"units\": 10}]}";

static const char *const cnn_spec =
	"{\"name\": \"cnn\", \"input_shape\": [12, 12, 2], \"layers\": ["
	"{\"type\": \"conv2d\", \"filters\": 4, \"kernel_size\": 3,"
	" \"padding\": \"same\", \"activation\": \"relu\"},"
	"{\"type\": \"maxpool2d\", \"pool_size\": 2},"
	"{\"type\": \"conv2d\", \"filters\": 3, \"kernel_size\": [2, 3],"
	" \"strides\": [2, 1]},"
	"{\"type\": \"dropout\", \"rate\": 0.25},"
	"{\"type\": \"flatten\"},"
	"{\"type\": \"dense\", \"units\": 5, \"activation\": \"softmax\"}]}";

static struct ml_model *from_spec(const char *text, uint64_t seed)
{
	json_error_t je;
	json_t *spec = json_loads(text, 0, &je);
	struct ml_model *m = NULL;

	assert_non_null(spec);
	if (ml_model_from_spec(&m, spec, seed) != FM_OK)
		fail_msg("spec: %s", fm_error_msg());
	json_decref(spec);
	return m;
}

static void write_file(const char *dir, const char *name, const void *p,
		       size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static char *read_text(const char *dir, const char *name)
{
	struct buf b = BUF_INIT(1 << 24);
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(buf_read_file(&b, path), FM_OK);
	return buf_detach(&b, NULL);
}

static void subdir(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp_root, name);
}

static void test_engine__spec_shapes_and_params(void **state)
{
	struct ml_model *m = from_spec(mlp_spec, 1);
	struct ml_shape in = ml_model_input_shape(m);
	struct ml_shape out = ml_model_output_shape(m);
	const struct ml_tensor_info *t;
	size_t n;
	float *p;

	(void)state;
	assert_int_equal(ml_model_param_count(m), 784 * 128 + 128 + 128 * 10 + 10);
	assert_int_equal(in.rank, 2);
	assert_int_equal(in.dim[0], 28);
	assert_int_equal(out.rank, 1);
	assert_int_equal(out.dim[0], 10);
	assert_int_equal(ml_model_tensor_count(m), 4);
	t = ml_model_tensor(m, 0);
	assert_string_equal(t->name, "dense/kernel");
	assert_int_equal(t->shape[0], 784);
	assert_int_equal(t->shape[1], 128);
	assert_int_equal(t->offset, 0);
	t = ml_model_tensor(m, 3);
	assert_string_equal(t->name, "dense_1/bias");
	assert_int_equal(t->offset, 784 * 128 + 128 + 1280);
	/* glorot uniform: within the limit and not all equal; biases zero */
	p = ml_model_params(m, &n);
	float lim = sqrtf(6.0f / (784 + 128));
	int differ = 0;

	for (size_t i = 0; i < 784 * 128; i++) {
		assert_true(fabsf(p[i]) <= lim);
		differ |= p[i] != p[0];
	}
	assert_true(differ);
	for (size_t i = 784 * 128; i < 784 * 128 + 128; i++)
		assert_true(p[i] == 0.0f);
	ml_model_free(m);
}

static void test_engine__cnn_shapes(void **state)
{
	struct ml_model *m = from_spec(cnn_spec, 1);
	json_t *sum = NULL;

	(void)state;
	/* conv same 12x12x4, pool 6x6x4, conv 2x3 stride (2,1): 3x4x3 */
	assert_int_equal(ml_model_param_count(m),
			 (3 * 3 * 2 * 4 + 4) + (2 * 3 * 4 * 3 + 3) +
			 (36 * 5 + 5));
	assert_int_equal(ml_model_summary_json(m, &sum), FM_OK);
	json_t *l2 = json_array_get(json_object_get(sum, "layers"), 2);
	json_t *shape = json_object_get(l2, "output_shape");

	assert_int_equal(json_integer_value(json_array_get(shape, 1)), 3);
	assert_int_equal(json_integer_value(json_array_get(shape, 2)), 4);
	assert_int_equal(json_integer_value(json_array_get(shape, 3)), 3);
	json_decref(sum);
	ml_model_free(m);
}

static void test_engine__seed_is_deterministic(void **state)
{
	struct ml_model *a = from_spec(cnn_spec, 7), *b = from_spec(cnn_spec, 7);
	struct ml_model *c = from_spec(cnn_spec, 8);
	size_t n;

	(void)state;
	n = ml_model_param_count(a);
	assert_memory_equal(ml_model_params(a, NULL), ml_model_params(b, NULL),
			    n * sizeof(float));
	assert_memory_not_equal(ml_model_params(a, NULL),
				ml_model_params(c, NULL), n * sizeof(float));
	ml_model_free(a);
	ml_model_free(b);
	ml_model_free(c);
}

static void test_engine__save_load_round_trip(void **state)
{
	struct ml_model *m = from_spec(cnn_spec, 3), *back = NULL;
	char dir[256];
	size_t n;

	(void)state;
	subdir(dir, sizeof(dir), "rt/nested");
	if (ml_model_save(m, dir) != FM_OK)
		fail_msg("save: %s", fm_error_msg());
	if (ml_model_load(&back, dir) != FM_OK)
		fail_msg("load: %s", fm_error_msg());
	if (ml_model_same_arch(m, back) != FM_OK)
		fail_msg("%s", fm_error_msg());
	n = ml_model_param_count(m);
	assert_memory_equal(ml_model_params(m, NULL), ml_model_params(back, NULL),
			    n * sizeof(float));
	assert_string_equal(ml_model_name(back), "cnn");
	ml_model_free(back);
	back = NULL;
	assert_int_equal(ml_model_load_max(&back, dir, n - 1), FM_ETOOLARGE);
	assert_non_null(strstr(fm_error_msg(), "parameters, the limit is"));
	assert_null(back);
	assert_int_equal(ml_model_load_max(&back, dir, n), FM_OK);
	assert_int_equal(ml_model_layer_count(back), 6);
	assert_int_equal(ml_model_layer_kind(back, 3), ML_LAYER_DROPOUT);
	ml_model_free(back);
	ml_model_free(m);
}

static void test_engine__clone_is_deep(void **state)
{
	struct ml_model *m = from_spec(mlp_spec, 3), *c = NULL;
	size_t n;

	(void)state;
	assert_int_equal(ml_model_clone(&c, m), FM_OK);
	assert_int_equal(ml_model_same_arch(m, c), FM_OK);
	float *pc = ml_model_params(c, &n);

	assert_int_equal(n, ml_model_param_count(m));

	assert_memory_equal(ml_model_params(m, NULL), pc, n * sizeof(float));
	pc[5] += 1.0f;
	assert_true(ml_model_params(m, NULL)[5] != pc[5]);
	ml_model_free(m);
	assert_string_equal(ml_model_tensor(c, 1)->name, "dense/bias");
	ml_model_free(c);
}

static void test_engine__same_arch_names_difference(void **state)
{
	struct ml_model *a = from_spec(mlp_spec, 1);
	struct ml_model *b = from_spec(
		"{\"input_shape\": [28, 28], \"layers\": [{\"type\": "
		"\"flatten\"}, {\"type\": \"dense\", \"units\": 64, "
		"\"activation\": \"relu\"}, {\"type\": \"dense\", \"units\": "
		"10}]}", 1);

	(void)state;
	assert_int_equal(ml_model_same_arch(a, b), FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "layer 1 (dense)"));
	ml_model_free(a);
	ml_model_free(b);
}

static void test_engine__check_finite(void **state)
{
	struct ml_model *m = from_spec(mlp_spec, 1);

	(void)state;
	assert_int_equal(ml_model_check_finite(m), FM_OK);
	ml_model_params(m, NULL)[784 * 128 + 3] = NAN;
	assert_int_equal(ml_model_check_finite(m), FM_EUNPROCESSABLE);
	assert_non_null(strstr(fm_error_msg(), "dense/bias"));
	ml_model_free(m);
}

/* A valid tiny model dir: Dense 3 -> 2, weights 1..8; units and
 * activation replaced by core when not NULL. */
static void tiny_model_core(const char *dir, const char *core,
			    const char *layer_extra, const char *manifest_extra,
			    size_t bin_floats)
{
	char json[2048];
	float w[64];

	assert_true(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
	snprintf(json, sizeof(json),
		 "{\"format\": \"layers-model\", \"modelTopology\": {"
		 "\"class_name\": \"Sequential\", \"config\": {\"name\": \"t\","
		 " \"layers\": [{\"class_name\": \"Dense\", \"config\": {"
		 "%s, \"use_bias\": true,"
		 " \"name\": \"d\", \"batch_input_shape\": [null, 3]%s}}]}},"
		 " \"weightsManifest\": [{\"paths\": [\"w.bin\"], \"weights\": ["
		 "{\"name\": \"d/kernel\", \"shape\": [3, 2], \"dtype\": "
		 "\"float32\"%s}, {\"name\": \"d/bias\", \"shape\": [2],"
		 " \"dtype\": \"float32\"}]}]}",
		 core ? core : "\"units\": 2, \"activation\": \"linear\"",
		 layer_extra, manifest_extra);
	write_file(dir, "model.json", json, strlen(json));
	for (size_t i = 0; i < 64; i++)
		w[i] = (float)(i + 1);
	write_file(dir, "w.bin", w, bin_floats * sizeof(float));
}

static void tiny_model(const char *dir, const char *layer_extra,
		       const char *manifest_extra, size_t bin_floats)
{
	tiny_model_core(dir, NULL, layer_extra, manifest_extra, bin_floats);
}

static void expect_load_error(const char *dir, const char *needle)
{
	struct ml_model *m = NULL;
	int err = ml_model_load(&m, dir);

	assert_int_equal(err, FM_EINVAL);
	assert_null(m);
	if (!strstr(fm_error_msg(), needle))
		fail_msg("expected '%s' in: %s", needle, fm_error_msg());
}

static void test_engine__load_tiny_and_predict(void **state)
{
	struct ml_model *m = NULL;
	float x[3] = { 1, 2, 3 }, y[2];
	char dir[256];

	(void)state;
	subdir(dir, sizeof(dir), "tiny");
	tiny_model(dir, "", "", 8);
	if (ml_model_load(&m, dir) != FM_OK)
		fail_msg("%s", fm_error_msg());
	assert_int_equal(ml_predict(m, x, 1, y), FM_OK);
	/* kernel [[1,2],[3,4],[5,6]], bias [7,8] */
	assert_true(y[0] == 1 * 1 + 2 * 3 + 3 * 5 + 7);
	assert_true(y[1] == 1 * 2 + 2 * 4 + 3 * 6 + 8);
	ml_model_free(m);
}

static void test_engine__load_refuses_bad_weights(void **state)
{
	char dir[256];

	(void)state;
	subdir(dir, sizeof(dir), "short");
	tiny_model(dir, "", "", 7);
	expect_load_error(dir, "hold 28 bytes, the manifest's shapes need 32");
	subdir(dir, sizeof(dir), "long");
	tiny_model(dir, "", "", 9);
	expect_load_error(dir, "larger than the 32 bytes");
	subdir(dir, sizeof(dir), "nan");
	tiny_model(dir, "", "", 8);
	float bad[8] = { 1, 2, 3, NAN, 5, 6, 7, 8 };

	write_file(dir, "w.bin", bad, sizeof(bad));
	{
		struct ml_model *m = NULL;

		assert_int_equal(ml_model_load(&m, dir), FM_EUNPROCESSABLE);
		if (!strstr(fm_error_msg(), "d/kernel: value 3 is NaN"))
			fail_msg("%s", fm_error_msg());
	}
	subdir(dir, sizeof(dir), "quant");
	tiny_model(dir, "", ", \"quantization\": {\"dtype\": \"uint8\"}", 8);
	expect_load_error(dir, "quantized weights are not supported");
}

static void test_engine__load_refuses_unsupported(void **state)
{
	char dir[256];

	(void)state;
	subdir(dir, sizeof(dir), "act");
	tiny_model_core(dir, "\"units\": 2, \"activation\": \"elu\"", "",
			"", 8);
	expect_load_error(dir, "layers[0] (d): activation: 'elu' is not "
			  "supported");
	subdir(dir, sizeof(dir), "reg");
	tiny_model(dir, ", \"kernel_regularizer\": {\"class_name\": \"L2\"}",
		   "", 8);
	expect_load_error(dir, "layers[0] (d): kernel_regularizer: is not "
			  "supported");
	subdir(dir, sizeof(dir), "field");
	tiny_model(dir, ", \"unknown_option\": 1", "", 8);
	expect_load_error(dir, "unknown_option: field is not supported");
	subdir(dir, sizeof(dir), "huge");
	tiny_model_core(dir, "\"units\": 2000000000", "", "", 8);
	expect_load_error(dir, "units: expected an integer in [1, 16777216]");
	subdir(dir, sizeof(dir), "shape");
	tiny_model_core(dir, "\"units\": 3", "", "", 8);
	expect_load_error(dir, "d/kernel: shape disagrees with the layer "
			  "(expected [3,3])");
}

static void test_engine__load_bounds_dimensions(void **state)
{
	const char *json =
		"{\"modelTopology\": {\"class_name\": \"Sequential\", "
		"\"config\": {\"layers\": [{\"class_name\": \"Dense\", "
		"\"config\": {\"units\": 16000000, \"name\": \"d\", "
		"\"batch_input_shape\": [null, 16000000]}}]}}, "
		"\"weightsManifest\": []}";
	const char *bad_layer =
		"{\"modelTopology\": {\"class_name\": \"Sequential\", "
		"\"config\": {\"layers\": [{\"class_name\": \"LSTM\", "
		"\"config\": {\"units\": 4, \"name\": \"rnn\", "
		"\"batch_input_shape\": [null, 3, 4]}}]}}, "
		"\"weightsManifest\": []}";
	struct ml_model *m = NULL;

	(void)state;
	assert_int_equal(ml_model_load_json(&m, json, strlen(json), tmp_root),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "kernel too large"));
	assert_int_equal(ml_model_load_json(&m, bad_layer, strlen(bad_layer),
					    tmp_root), FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "layers[0] (rnn): class_name: "
			       "layer 'LSTM' is not supported"));
	assert_null(m);
}

/* An old-style Sequential config (a bare list) with too many layers. */
static void test_engine__load_bounds_layer_count(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	struct ml_model *m = NULL;

	(void)state;
	assert_int_equal(buf_appends(&b, "{\"modelTopology\": {\"class_name\": "
				     "\"Sequential\", \"config\": ["), FM_OK);
	for (int i = 0; i < 300; i++)
		assert_int_equal(buf_appendf(&b, "%s{\"class_name\": \"Dense\", "
					     "\"config\": {\"units\": 1, \"name\": "
					     "\"d%d\"%s}}", i ? ", " : "", i,
					     i ? "" : ", \"batch_input_shape\": "
					     "[null, 1]"), FM_OK);
	assert_int_equal(buf_appends(&b, "]}, \"weightsManifest\": []}"), FM_OK);
	assert_int_equal(ml_model_load_json(&m, b.data, b.len, tmp_root),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "300 layers (at most 256)"));
	assert_null(m);
	buf_cleanup(&b);
}

static void test_engine__load_refuses_escaping_paths(void **state)
{
	const char *json =
		"{\"modelTopology\": {\"class_name\": \"Sequential\", "
		"\"config\": {\"layers\": [{\"class_name\": \"Dense\", "
		"\"config\": {\"units\": 1, \"name\": \"d\", \"use_bias\": "
		"false, \"batch_input_shape\": [null, 1]}}]}}, "
		"\"weightsManifest\": [{\"paths\": [\"../w.bin\"], \"weights\": "
		"[{\"name\": \"d/kernel\", \"shape\": [1, 1]}]}]}";
	struct ml_model *m = NULL;

	(void)state;
	assert_int_equal(ml_model_load_json(&m, json, strlen(json), tmp_root),
			 FM_EINVAL);
	assert_non_null(strstr(fm_error_msg(), "paths[0]: expected a relative "
			       "path inside the model folder"));
}

static void test_engine__saved_json_is_tfjs_shaped(void **state)
{
	struct ml_model *m = from_spec(mlp_spec, 1);
	char dir[256], *text;
	json_t *root;
	json_error_t je;

	(void)state;
	subdir(dir, sizeof(dir), "shape");
	assert_int_equal(ml_model_save(m, dir), FM_OK);
	text = read_text(dir, "model.json");
	root = json_loads(text, 0, &je);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "format")),
			    "layers-model");
	json_t *topo = json_object_get(root, "modelTopology");
	json_t *l0 = json_array_get(json_object_get(json_object_get(topo,
		"config"), "layers"), 0);

	assert_string_equal(json_string_value(json_object_get(topo,
		"class_name")), "Sequential");
	assert_string_equal(json_string_value(json_object_get(l0,
		"class_name")), "Flatten");
	assert_int_equal(json_array_size(json_object_get(json_object_get(l0,
		"config"), "batch_input_shape")), 3);
	json_t *w = json_object_get(json_array_get(json_object_get(root,
		"weightsManifest"), 0), "weights");

	assert_int_equal(json_array_size(w), 4);
	json_decref(root);
	free(text);
	ml_model_free(m);
}

/* What tensorflowjs_converter writes for Keras 2 (a model_config wrapper,
 * an InputLayer, Keras class names, scoped weight names) and for Keras 3
 * (a Functional chain with keras_history nodes, DTypePolicy objects,
 * batch_shape). Both hold Dense 3 -> 2 with weights 1..8. */
static void test_engine__load_converter_formats(void **state)
{
	const char *keras2 =
		"{\"format\": \"layers-model\", \"generatedBy\": \"keras v2.15.0\","
		" \"convertedBy\": \"TensorFlow.js Converter v4.22.0\","
		" \"modelTopology\": {\"keras_version\": \"2.15.0\", \"backend\":"
		" \"tensorflow\", \"model_config\": {\"class_name\": \"Sequential\","
		" \"config\": {\"name\": \"sequential\", \"layers\": ["
		"{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\":"
		" [null, 3], \"dtype\": \"float32\", \"sparse\": false, \"ragged\":"
		" false, \"name\": \"dense_input\"}},"
		"{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\","
		" \"trainable\": true, \"dtype\": \"float32\", \"units\": 2,"
		" \"activation\": \"linear\", \"use_bias\": true,"
		" \"kernel_initializer\": {\"class_name\": \"GlorotUniform\","
		" \"config\": {\"seed\": null}}, \"bias_initializer\":"
		" {\"class_name\": \"Zeros\", \"config\": {}},"
		" \"kernel_regularizer\": null, \"bias_regularizer\": null,"
		" \"activity_regularizer\": null, \"kernel_constraint\": null,"
		" \"bias_constraint\": null}}]}}, \"training_config\": {\"loss\":"
		" \"mse\"}}, \"weightsManifest\": [{\"paths\": [\"w.bin\"],"
		" \"weights\": [{\"name\": \"sequential/dense/kernel\", \"shape\":"
		" [3, 2], \"dtype\": \"float32\"}, {\"name\": \"sequential/dense/bias\","
		" \"shape\": [2], \"dtype\": \"float32\"}]}]}";
	const char *keras3 =
		"{\"format\": \"layers-model\", \"modelTopology\": {"
		"\"class_name\": \"Functional\", \"config\": {\"name\": \"f\","
		" \"layers\": [{\"module\": \"keras.layers\", \"class_name\":"
		" \"InputLayer\", \"config\": {\"batch_shape\": [null, 3],"
		" \"dtype\": \"float32\", \"sparse\": false, \"name\": \"input_layer\"},"
		" \"registered_name\": null, \"name\": \"input_layer\","
		" \"inbound_nodes\": []}, {\"module\": \"keras.layers\","
		" \"class_name\": \"Dense\", \"config\": {\"name\": \"dense\","
		" \"trainable\": true, \"dtype\": {\"module\": \"keras\","
		" \"class_name\": \"DTypePolicy\", \"config\": {\"name\":"
		" \"float32\"}, \"registered_name\": null}, \"units\": 2,"
		" \"activation\": \"linear\", \"use_bias\": true,"
		" \"kernel_initializer\": {\"module\": \"keras.initializers\","
		" \"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null},"
		" \"registered_name\": null}, \"kernel_regularizer\": null,"
		" \"lora_rank\": null}, \"registered_name\": null, \"build_config\":"
		" {\"input_shape\": [null, 3]}, \"name\": \"dense\", \"inbound_nodes\":"
		" [{\"args\": [{\"class_name\": \"__keras_tensor__\", \"config\":"
		" {\"shape\": [null, 3], \"dtype\": \"float32\", \"keras_history\":"
		" [\"input_layer\", 0, 0]}}], \"kwargs\": {}}]}],"
		" \"input_layers\": [[\"input_layer\", 0, 0]], \"output_layers\":"
		" [[\"dense\", 0, 0]]}}, \"weightsManifest\": [{\"paths\":"
		" [\"w.bin\"], \"weights\": [{\"name\": \"dense/kernel\", \"shape\":"
		" [3, 2], \"dtype\": \"float32\"}, {\"name\": \"dense/bias\","
		" \"shape\": [2], \"dtype\": \"float32\"}]}]}";
	const char *const texts[] = { keras2, keras3 };
	float x[3] = { 1, 2, 3 }, y[2];
	char dir[256];

	(void)state;
	subdir(dir, sizeof(dir), "conv");
	tiny_model(dir, "", "", 8); /* for its w.bin */
	for (int i = 0; i < 2; i++) {
		struct ml_model *m = NULL;

		if (ml_model_load_json(&m, texts[i], strlen(texts[i]), dir))
			fail_msg("format %d: %s", i, fm_error_msg());
		assert_int_equal(ml_model_layer_count(m), 1);
		assert_int_equal(ml_predict(m, x, 1, y), FM_OK);
		assert_true(y[0] == 1 + 2 * 3 + 3 * 5 + 7);
		assert_true(y[1] == 2 + 2 * 4 + 3 * 6 + 8);
		ml_model_free(m);
	}
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine__spec_shapes_and_params),
		cmocka_unit_test(test_engine__cnn_shapes),
		cmocka_unit_test(test_engine__seed_is_deterministic),
		cmocka_unit_test(test_engine__save_load_round_trip),
		cmocka_unit_test(test_engine__clone_is_deep),
		cmocka_unit_test(test_engine__same_arch_names_difference),
		cmocka_unit_test(test_engine__check_finite),
		cmocka_unit_test(test_engine__load_tiny_and_predict),
		cmocka_unit_test(test_engine__load_refuses_bad_weights),
		cmocka_unit_test(test_engine__load_refuses_unsupported),
		cmocka_unit_test(test_engine__load_bounds_dimensions),
		cmocka_unit_test(test_engine__load_bounds_layer_count),
		cmocka_unit_test(test_engine__load_refuses_escaping_paths),
		cmocka_unit_test(test_engine__saved_json_is_tfjs_shaped),
		cmocka_unit_test(test_engine__load_converter_formats),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
