/* predict --model DIR --input in.json --output out.json
 * Tensors are {"shape": [n, ...], "data": [...]} in row-major order. */
#include "cli.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "predict"
#define INPUT_MAX (256u << 20)

/* x [n, model input] from the input tensor. */
static int read_input(const char *path, const struct ml_model *m,
		      float **x_out, size_t *n_out)
{
	json_t *root = NULL, *shape, *data;
	size_t n, per = 1, count;
	float *x = NULL;
	int err;

	err = fj_load_file(&root, path, INPUT_MAX);
	if (err)
		goto done;
	err = fj_arr(root, "", "shape", ML_MAX_RANK + 1, &shape);
	if (err)
		goto done;
	err = fj_arr(root, "", "data", ML_MAX_DATA_FLOATS, &data);
	if (err)
		goto done;
	if (json_array_size(shape) < 2) {
		err = fm_error_set(FM_EINVAL, "shape: expected [n, ...] with "
				   "the sample dimensions");
		goto done;
	}
	for (size_t i = 0; i < json_array_size(shape); i++) {
		json_t *d = json_array_get(shape, i);

		if (!json_is_integer(d) || json_integer_value(d) < (i ? 1 : 0) ||
		    json_integer_value(d) > ML_MAX_DIM) {
			err = fm_error_set(FM_EINVAL, "shape[%zu]: expected an "
					   "integer in [%d, %d]", i, i ? 1 : 0,
					   ML_MAX_DIM);
			goto done;
		}
		if (i)
			per *= (size_t)json_integer_value(d);
	}
	n = (size_t)json_integer_value(json_array_get(shape, 0));
	if (per != ml_model_input_size(m)) {
		char want[96];
		struct ml_shape s = ml_model_input_shape(m);

		ml_shape_format(want, sizeof(want), &s);
		err = fm_error_set(FM_EINVAL, "shape: samples have %zu values, "
				   "the model's input %s has %zu", per, want,
				   ml_model_input_size(m));
		goto done;
	}
	count = n * per;
	if (json_array_size(data) != count) {
		err = fm_error_set(FM_EINVAL, "data: %zu values, the shape "
				   "needs %zu", json_array_size(data), count);
		goto done;
	}
	x = malloc(count * sizeof(float) + 1);
	if (!x) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < count; i++) {
		json_t *v = json_array_get(data, i);
		double d = json_number_value(v);

		if (!json_is_number(v) || !isfinite((float)d)) {
			err = fm_error_set(FM_EINVAL, "data[%zu]: expected a "
					   "finite number", i);
			goto done;
		}
		x[i] = (float)d;
	}
	*x_out = x;
	*n_out = n;
	x = NULL;
done:
	if (err)
		fm_error_prefix("%s", path);
	free(x);
	json_decref(root);
	return err;
}

/* y [n, model output] as a tensor's JSON text. */
static int format_output(struct buf *b, const struct ml_model *m,
			 const float *y, size_t n)
{
	struct ml_shape s = ml_model_output_shape(m);
	size_t count = n * ml_model_output_size(m);
	int err;

	err = buf_appendf(b, "{\"shape\": [%zu", n);
	for (int i = 0; !err && i < s.rank; i++)
		err = buf_appendf(b, ", %d", s.dim[i]);
	if (err)
		return err;
	err = buf_appends(b, "], \"data\": [");
	for (size_t i = 0; !err && i < count; i++)
		err = buf_appendf(b, "%s%.9g", i ? ", " : "", (double)y[i]);
	if (err)
		return err;
	return buf_appends(b, "]}\n");
}

static int write_output(const char *path, const struct ml_model *m,
			const float *y, size_t n)
{
	struct buf b = BUF_INIT((size_t)-1 / 2);
	FILE *f = NULL;
	int err;

	err = format_output(&b, m, y, n);
	if (err)
		goto done;
	f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
	if (!f || fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0)
		err = fm_error_set(FM_EIO, "%s: cannot write", path);
done:
	if (f && f != stdout)
		fclose(f);
	buf_cleanup(&b);
	return err;
}

int cmd_predict(int argc, char **argv)
{
	const char *dir = NULL, *in = NULL, *out = NULL;
	int threads = 0, code;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &dir, "DIR", "model folder", 0, 0 },
		{ "--input", OPT_STR, &in, "F", "input tensor (JSON)", 0, 0 },
		{ "--output", OPT_STR, &out, "F", "output tensor (JSON, - for "
		  "stdout)", 0, 0 },
		{ "--threads", OPT_INT, &threads, "N", "BLAS threads", 1, 256 },
		OPT_END,
	};
	struct opt_spec s = { .cmd = CMD, .opts = opts,
			      .synopsis = "--model DIR --input F --output F" };
	struct ml_model *m = NULL;
	float *x = NULL, *y = NULL;
	size_t n = 0;
	int err;

	if (!engine_parse(&s, argc, argv, &code))
		return code;
	if (!dir || !in || !out)
		return engine_usage(CMD, "--model, --input and --output are "
				    "required");
	engine_threads(threads);
	err = ml_model_load(&m, dir);
	if (err)
		goto done;
	err = read_input(in, m, &x, &n);
	if (err)
		goto done;
	y = malloc(n * ml_model_output_size(m) * sizeof(float) + 1);
	if (!y) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = ml_predict(m, x, n, y);
	if (err)
		goto done;
	err = write_output(out, m, y, n);
done:
	free(x);
	free(y);
	ml_model_free(m);
	return err ? engine_fail(CMD) : CLI_OK;
}
