/* A task's model against its data: sizes per sample, resize, CSV inputs,
 * one output per class; the message names both shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "engine/ml.h"
#include "market/fit.h"

#include <string.h>

static struct ml_model *model(const char *layers_json)
{
	json_error_t e;
	json_t *spec = json_loads(layers_json, 0, &e);
	struct ml_model *m = NULL;

	assert_non_null(spec);
	assert_int_equal(ml_model_from_spec(&m, spec, 1), FM_OK);
	json_decref(spec);
	return m;
}

static json_t *task(const char *data_json, const char *loss)
{
	json_error_t e;
	json_t *data = json_loads(data_json, 0, &e);

	assert_non_null(data);
	return json_pack("{s:s, s:{s:s, s:o}}", "kind", "model_contributor",
			 "training", "loss", loss, "data", data);
}

static void expect(const char *layers, const char *data, const char *loss,
		   int want, const char *needle1, const char *needle2)
{
	struct ml_model *m = model(layers);
	json_t *t = task(data, loss);

	assert_int_equal(spec_model_fits(t, m), want);
	if (needle1 && !strstr(fm_error_msg(), needle1))
		fail_msg("\"%s\" does not name \"%s\"", fm_error_msg(), needle1);
	if (needle2 && !strstr(fm_error_msg(), needle2))
		fail_msg("\"%s\" does not name \"%s\"", fm_error_msg(), needle2);
	json_decref(t);
	ml_model_free(m);
}

#define MLP "{\"input_shape\": [28, 28], \"layers\": [{\"type\": \"flatten\"}," \
	"{\"type\": \"dense\", \"units\": 10}]}"
#define CNN "{\"input_shape\": [28, 28, 1], \"layers\": [{\"type\": " \
	"\"conv2d\", \"filters\": 2}, {\"type\": \"flatten\"}, " \
	"{\"type\": \"dense\", \"units\": 10}]}"
#define SMALL "{\"input_shape\": [4], \"layers\": [{\"type\": \"dense\", " \
	"\"units\": 3}]}"
#define IMAGES "{\"kind\": \"image\", \"format\": \"idx\", \"shape\": " \
	"[28, 28, 1], \"num_classes\": 10}"

static void test_fit__matching_models_fit(void **state)
{
	(void)state;
	expect(MLP, IMAGES, "sparse_categorical_crossentropy", FM_OK, NULL,
	       NULL);
	/* [28, 28] images feed a [28, 28, 1] convolution: same values */
	expect(CNN, "{\"format\": \"idx\", \"shape\": [28, 28], "
	       "\"labels\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\","
	       "\"i\",\"j\"]}", "categorical_crossentropy", FM_OK, NULL, NULL);
	/* a spec without shape or classes cannot tell */
	expect(SMALL, "{\"format\": \"idx\"}", "sparse_categorical_crossentropy",
	       FM_OK, NULL, NULL);
	/* regression: outputs need not match classes */
	expect(SMALL, "{\"format\": \"csv\", \"inputs\": [\"a\", \"b\", \"c\", "
	       "\"d\", \"y\"], \"label_column\": \"y\", \"num_classes\": 7}",
	       "mean_squared_error", FM_OK, NULL, NULL);
}

static void test_fit__wrong_input_names_both_shapes(void **state)
{
	(void)state;
	expect(SMALL, IMAGES, "sparse_categorical_crossentropy",
	       FM_EUNPROCESSABLE, "model takes input [4]", "[28, 28, 1] (784");
	/* resize changes what the model must take */
	expect(MLP, "{\"format\": \"idx\", \"shape\": [28, 28], "
	       "\"preprocessing\": {\"resize\": [14, 14]}}",
	       "sparse_categorical_crossentropy", FM_EUNPROCESSABLE,
	       "[28, 28] (784 values", "gives [14, 14] (196");
	/* CSV: the input columns, without the label column */
	expect(SMALL, "{\"format\": \"csv\", \"inputs\": [\"a\", \"b\", \"y\"],"
	       " \"label_column\": \"y\"}", "mean_squared_error",
	       FM_EUNPROCESSABLE, "input [4]", "gives [2] (2 values)");
}

static void test_fit__wrong_outputs_name_classes(void **state)
{
	(void)state;
	expect(SMALL, "{\"format\": \"csv\", \"inputs\": [\"a\", \"b\", \"c\","
	       " \"d\"], \"label_column\": \"y\", \"num_classes\": 10}",
	       "sparse_categorical_crossentropy", FM_EUNPROCESSABLE,
	       "output [3]", "10 classes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit__matching_models_fit),
		cmocka_unit_test(test_fit__wrong_input_names_both_shapes),
		cmocka_unit_test(test_fit__wrong_outputs_name_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
