#include "market/fit.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

/* "[28, 28, 1]" */
static void shape_text(char *out, size_t n, const int *dim, int rank)
{
	size_t len = 0;

	len += (size_t)snprintf(out, n, "[");
	for (int i = 0; i < rank && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%d",
					i ? ", " : "", dim[i]);
	if (len < n)
		snprintf(out + len, n - len, "]");
}

static int column_is(const json_t *v, const char *name)
{
	return name && json_is_string(v) && !strcmp(json_string_value(v), name);
}

/* What one sample of the task's data is, as a shape; rank 0: unknown. */
static void data_shape(struct ml_shape *out, const json_t *data)
{
	const char *format = json_string_value(json_object_get(data, "format"));
	const json_t *shape = json_object_get(data, "shape");
	const json_t *resize = json_object_get(
		json_object_get(data, "preprocessing"), "resize");
	const char *label = json_string_value(
		json_object_get(data, "label_column"));
	const json_t *cols, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (format && !strcmp(format, "csv")) {
		cols = json_object_get(data, "inputs");
		if (!json_is_array(cols))
			cols = json_object_get(data, "columns");
		if (!json_is_array(cols))
			return;
		out->rank = 1;
		json_array_foreach(cols, i, v)
			out->dim[0] += !column_is(v, label);
		return;
	}
	if (!json_is_array(shape) || json_array_size(shape) == 0 ||
	    json_array_size(shape) > ML_MAX_RANK)
		return;
	out->rank = (int)json_array_size(shape);
	json_array_foreach(shape, i, v)
		out->dim[i] = (int)json_integer_value(v);
	/* resize [h, w] replaces the image's height and width */
	if (json_array_size(resize) == 2 && out->rank >= 2) {
		out->dim[0] = (int)json_integer_value(json_array_get(resize, 0));
		out->dim[1] = (int)json_integer_value(json_array_get(resize, 1));
	}
}

static size_t shape_size(const struct ml_shape *s)
{
	size_t n = 1;

	for (int i = 0; i < s->rank; i++)
		n *= (size_t)s->dim[i];
	return n;
}

static long long class_count(const json_t *data)
{
	const json_t *labels = json_object_get(data, "labels");

	if (json_is_integer(json_object_get(data, "num_classes")))
		return json_integer_value(json_object_get(data, "num_classes"));
	if (json_is_array(labels) && json_array_size(labels) > 0)
		return (long long)json_array_size(labels);
	return 0;
}

int spec_model_fits(const json_t *spec, const struct ml_model *m)
{
	const json_t *t = json_object_get(spec, "training");
	const json_t *data = json_object_get(t, "data");
	const char *loss = json_string_value(json_object_get(t, "loss"));
	struct ml_shape want, in = ml_model_input_shape(m);
	struct ml_shape out = ml_model_output_shape(m);
	char a[96], b[96];
	long long classes;

	if (!json_is_object(data))
		return FM_OK;
	data_shape(&want, data);
	shape_text(a, sizeof(a), in.dim, in.rank);
	if (want.rank && shape_size(&want) != ml_model_input_size(m)) {
		shape_text(b, sizeof(b), want.dim, want.rank);
		return fm_error_set(FM_EUNPROCESSABLE,
				    "task.assets: the model takes input %s "
				    "(%zu values per sample) but "
				    "task.training.data gives %s (%zu values)",
				    a, ml_model_input_size(m), b,
				    shape_size(&want));
	}
	classes = class_count(data);
	if (classes > 0 && loss && strstr(loss, "categorical_crossentropy") &&
	    (long long)ml_model_output_size(m) != classes) {
		shape_text(b, sizeof(b), out.dim, out.rank);
		return fm_error_set(FM_EUNPROCESSABLE,
				    "task.assets: the model gives output %s "
				    "(%zu values per sample) but "
				    "task.training.data has %lld classes, so "
				    "%s needs %lld",
				    b, ml_model_output_size(m), classes, loss,
				    classes);
	}
	return FM_OK;
}
