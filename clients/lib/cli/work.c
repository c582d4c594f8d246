#include "cli/work.h"

#include "core/err.h"
#include "core/file.h"
#include "core/fjson.h"
#include "storage/store.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdirs(const char *path)
{
	char tmp[WORK_PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return fm_error_set(FM_EINVAL, "path too long: %s", path);
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return fm_error_set(FM_EIO, "cannot create %s: %s", tmp,
					    strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return fm_error_set(FM_EIO, "cannot create %s: %s", tmp,
				    strerror(errno));
	return FM_OK;
}

int work_dir(struct cli *c, char *out, size_t n, const char *sub)
{
	char base[WORK_PATH_MAX];
	int err = cfg_expand_path(base, sizeof(base), c->cfg.work_dir);

	if (err)
		return err;
	if ((size_t)snprintf(out, n, "%s/%s", base, sub) >= n)
		return fm_error_set(FM_EINVAL, "work_dir is too long");
	return mkdirs(out);
}

int work_pull(struct cli *c, char *out, size_t n, const char *ref_text)
{
	struct store *st = NULL;
	struct store_ref ref;
	char dir[WORK_PATH_MAX];
	struct stat sb;
	enum cli_on prev;
	int err;

	err = store_ref_parse(&ref, ref_text);
	if (err)
		return fm_error_prefix("bundle");
	err = work_dir(c, dir, sizeof(dir), "bundles");
	if (err)
		return err;
	if ((size_t)snprintf(out, n, "%s/%s", dir, ref.hex) >= n)
		return fm_error_set(FM_EINVAL, "work_dir is too long");
	/* a pull appears whole or not at all, so a folder here is complete */
	if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode))
		return FM_OK;
	prev = cli_on(c, CLI_ON_STORAGE);
	err = store_open(&st, NULL, &c->cfg);
	if (err)
		return err;
	err = store_bundle_pull(st, &ref, out, NULL, NULL);
	store_free(st);
	if (!err)
		c->on = prev;
	return err;
}

int work_model_dir(char *out, size_t n, const char *bundle_dir)
{
	struct stat sb;

	snprintf(out, n, "%s/model", bundle_dir);
	if (stat(out, &sb) || !S_ISDIR(sb.st_mode))
		return fm_error_set(FM_EUNPROCESSABLE,
				    "the bundle holds no model/ folder");
	return FM_OK;
}

int work_load_bundle_model(struct cli *c, const char *ref,
			   struct ml_model **out)
{
	char dir[WORK_PATH_MAX], mdir[WORK_PATH_MAX + 8];
	int err = work_pull(c, dir, sizeof(dir), ref);

	if (err)
		goto done;
	err = work_model_dir(mdir, sizeof(mdir), dir);
	if (err)
		goto done;
	err = ml_model_load(out, mdir);
done:
	if (err)
		return fm_error_prefix("bundle %.12s", ref);
	return FM_OK;
}

static json_t *shape_json(struct ml_shape s)
{
	json_t *a = json_array();

	json_array_append_new(a, json_null());
	for (int i = 0; i < s.rank; i++)
		json_array_append_new(a, json_integer(s.dim[i]));
	return a;
}

int work_model_meta(json_t **out, const struct ml_model *m)
{
	json_t *j = json_pack("{s:s, s:[{s:s, s:o, s:s}], s:[{s:s, s:o, s:s}],"
			      " s:I, s:s}",
			      "format", "tfjs-layers", "inputs", "name", "input",
			      "shape", shape_json(ml_model_input_shape(m)),
			      "dtype", "float32", "outputs", "name", "output",
			      "shape", shape_json(ml_model_output_shape(m)),
			      "dtype", "float32", "parameters",
			      (json_int_t)ml_model_param_count(m),
			      "engine_version", ML_VERSION);

	if (!j)
		return fm_error_set(FM_ENOMEM, "out of memory");
	*out = j;
	return FM_OK;
}

static int stage_dir(char *out, size_t n)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, n, "%s/fedmarket-stage-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(out))
		return fm_error_set(FM_EIO, "cannot create a temporary folder: "
				    "%s", strerror(errno));
	return FM_OK;
}

int work_store_for_push(struct cli *c, struct store **out)
{
	struct store *st = NULL;
	int err;

	cli_on(c, CLI_ON_STORAGE);
	err = store_open(&st, NULL, &c->cfg);
	if (err)
		return err;
	err = store_ensure(st);
	if (err) {
		store_free(st);
		return err;
	}
	*out = st;
	return FM_OK;
}

static int push_dir(struct cli *c, struct store_ref *out, const char *dir,
		    enum store_kind kind, const char *name, const json_t *model,
		    const json_t *meta)
{
	struct store_bundle_info info = { kind, name, "1", NULL, NULL, model,
					  meta };
	struct store *st = NULL;
	enum cli_on prev = c->on;
	int err = work_store_for_push(c, &st);

	if (err)
		return err;
	err = store_bundle_push(st, out, NULL, dir, &info, NULL);
	store_free(st);
	if (!err)
		c->on = prev;
	return err;
}

int work_push_model(struct cli *c, struct store_ref *out,
		    const struct ml_model *m, enum store_kind kind,
		    const char *name, const json_t *meta)
{
	char dir[WORK_PATH_MAX], mdir[WORK_PATH_MAX + 8];
	json_t *model = NULL;
	int err = stage_dir(dir, sizeof(dir));

	if (err)
		return err;
	snprintf(mdir, sizeof(mdir), "%s/model", dir);
	err = ml_model_save(m, mdir);
	if (err)
		goto done;
	err = work_model_meta(&model, m);
	if (err)
		goto done;
	err = push_dir(c, out, dir, kind, name, model, meta);
done:
	json_decref(model);
	file_remove_tree(dir);
	return err;
}

int work_push_json(struct cli *c, struct store_ref *out, const json_t *doc,
		   const char *file, enum store_kind kind, const char *name)
{
	char dir[WORK_PATH_MAX], path[WORK_PATH_MAX + 64];
	int err = stage_dir(dir, sizeof(dir));

	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (json_dump_file(doc, path, JSON_INDENT(1) | JSON_SORT_KEYS))
		err = fm_error_set(FM_EIO, "cannot write %s", path);
	else
		err = push_dir(c, out, dir, kind, name, NULL, NULL);
	file_remove_tree(dir);
	return err;
}

int work_push_blob_json(struct cli *c, struct store_ref *out,
			const json_t *doc)
{
	struct store *st = NULL;
	enum cli_on prev = c->on;
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS |
					     JSON_REAL_PRECISION(17));
	int err;

	if (!text)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = work_store_for_push(c, &st);
	if (err)
		goto done;
	err = store_blob_put_mem(st, out, text, strlen(text));
done:
	store_free(st);
	free(text);
	if (!err)
		c->on = prev;
	return err;
}

int work_market_chain(struct cli *c, uint8_t escrow[CHAIN_ADDR_LEN],
		      char operator_hex[CHAIN_ADDR_HEX])
{
	struct api *a = NULL;
	json_t *info = NULL;
	const char *e, *op;
	uint8_t cfg_escrow[CHAIN_ADDR_LEN], opb[CHAIN_ADDR_LEN];
	enum cli_on prev = cli_on(c, CLI_ON_NONE);
	int err = cli_api(c, 0, &a);

	if (err)
		return err;
	err = api_get(a, API_TASKD, "/v1/info", &info);
	if (err)
		return err;
	e = json_string_value(json_object_get(info, "escrow_address"));
	op = json_string_value(json_object_get(info, "operator_address"));
	if (!e || !e[0] || !op || !op[0]) {
		err = fm_error_set(FM_EUNAVAIL, "taskd has no escrow or "
				   "operator configured (GET /v1/info)");
		goto done;
	}
	err = chain_address_parse(escrow, e, "escrow_address");
	if (err)
		goto done;
	err = chain_address_parse(opb, op, "operator_address");
	if (err)
		goto done;
	/* a configured escrow must be the marketplace's */
	if (c->cfg.escrow_address[0] &&
	    (chain_address_parse(cfg_escrow, c->cfg.escrow_address,
				 "escrow_address") ||
	     memcmp(cfg_escrow, escrow, CHAIN_ADDR_LEN))) {
		err = fm_error_set(FM_EINVAL, "escrow_address %s is not the "
				   "marketplace's escrow %s",
				   c->cfg.escrow_address, e);
		goto done;
	}
	operator_hex[0] = '0';
	operator_hex[1] = 'x';
	hex_encode(operator_hex + 2, opb, CHAIN_ADDR_LEN);
	c->on = prev;
done:
	json_decref(info);
	return err;
}

/* ---------------------------------------------------------------- training */

int work_train_opts(struct ml_train_opts *o, const json_t *spec)
{
	const json_t *t = json_object_get(spec, "training");
	const char *opt = NULL, *loss = NULL;
	long long epochs = 1, batch = 32, seed = 0;
	double lr = 0.001, momentum = 0;
	int from_logits = 0, err;

	ml_train_opts_init(o);
	if (!json_is_object(t))
		return fm_error_set(FM_EINVAL, "task.training: the task has no "
				    "training information");
	err = fj_int(t, "task.training", "epochs", 1, 1000, &epochs);
	if (err)
		return err;
	err = fj_int(t, "task.training", "batch_size", 1, 65536, &batch);
	if (err)
		return err;
	err = fj_num(t, "task.training", "learning_rate", 1e-12, 10, &lr);
	if (err)
		return err;
	err = fj_str(t, "task.training", "optimizer", 16, &opt);
	if (err)
		return err;
	err = fj_num_opt(t, "task.training", "momentum", 0, 1, 0, &momentum);
	if (err)
		return err;
	err = fj_str(t, "task.training", "loss", 64, &loss);
	if (err)
		return err;
	err = fj_bool_opt(t, "task.training", "from_logits", 0, &from_logits);
	if (err)
		return err;
	err = fj_int_opt(t, "task.training", "seed", 0, INT64_MAX, 0, &seed);
	if (err)
		return err;
	if (ml_optimizer_parse(opt, &o->optimizer))
		return fm_error_prefix("task.training.optimizer");
	if (ml_loss_parse(loss, &o->loss))
		return fm_error_prefix("task.training.loss");
	o->epochs = (int)epochs;
	o->batch_size = (int)batch;
	o->lr = lr;
	o->momentum = momentum;
	o->from_logits = from_logits;
	o->seed = (uint64_t)seed;
	return FM_OK;
}

int work_evaluate(struct ml_model *m, const json_t *spec,
		  const struct ml_dataset *d, struct ml_eval *out)
{
	struct ml_train_opts o;
	int err = work_train_opts(&o, spec);

	if (err)
		return err;
	return ml_evaluate(m, d, o.loss, o.from_logits, 0, out);
}

/* ------------------------------------------------------------------- data */

/* The single entry of dir whose name contains word. */
static int find_one(char *out, size_t n, const char *dir, const char *word)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return fm_error_set(FM_EINVAL, "data %s: %s", dir,
				    strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strstr(e->d_name, word))
			continue;
		if (found++ == 0)
			snprintf(out, n, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (found != 1)
		return fm_error_set(FM_EINVAL, "data %s: expected exactly one "
				    "file named *%s*, found %d (or give "
				    "--data IMAGES,LABELS)",
				    dir, word, found);
	return FM_OK;
}

/* IDX data: a folder with one *images* and one *labels* file, or
 * "IMAGES,LABELS"; labels gets the labels file's path. */
static int load_idx(struct ml_dataset *out, char labels[WORK_PATH_MAX],
		    const char *path)
{
	char images[WORK_PATH_MAX];
	const char *comma = strchr(path, ',');
	struct stat sb;
	int err;

	if (comma) {
		snprintf(images, sizeof(images), "%.*s", (int)(comma - path),
			 path);
		snprintf(labels, WORK_PATH_MAX, "%s", comma + 1);
	} else if (stat(path, &sb) != 0) {
		/* not FM_ENOTFOUND: the CLIs' hint for that is about tasks */
		return fm_error_set(FM_EINVAL, "data %s: %s", path,
				    strerror(errno));
	} else if (S_ISDIR(sb.st_mode)) {
		err = find_one(images, sizeof(images), path, "images");
		if (err)
			return err;
		err = find_one(labels, WORK_PATH_MAX, path, "labels");
		if (err)
			return err;
	} else {
		return fm_error_set(FM_EINVAL, "data %s: a file where a folder "
				    "with one *images* and one *labels* IDX "
				    "file, or IMAGES,LABELS, was expected "
				    "(this task's data is IDX)", path);
	}
	return ml_dataset_load_idx(out, images, labels);
}

#define MAX_COLUMNS 4096

static int load_csv(struct ml_dataset *out, const json_t *data,
		    const char *path)
{
	const char *in[MAX_COLUMNS], *label = NULL;
	json_t *cols = json_object_get(data, "inputs"), *v;
	struct stat sb;
	size_t i, n = 0;
	int err = fj_str(data, "task.training.data", "label_column", 256,
			 &label);

	if (err)
		return err;
	if (!json_is_array(cols))
		cols = json_object_get(data, "columns");
	if (!json_is_array(cols))
		return fm_error_set(FM_EINVAL, "task.training.data: CSV data "
				    "needs \"inputs\" (or \"columns\")");
	json_array_foreach(cols, i, v) {
		if (!json_is_string(v) || n == MAX_COLUMNS)
			return fm_error_set(FM_EINVAL, "task.training.data."
					    "inputs[%zu]: expected a column "
					    "name",
					    i);
		if (strcmp(json_string_value(v), label))
			in[n++] = json_string_value(v);
	}
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return fm_error_set(FM_EINVAL, "%s: a folder where a CSV file "
				    "was expected (this task's data is CSV)",
				    path);
	return ml_dataset_load_csv(out, path, in, n, &label, 1);
}

/* How many classes the task's data names (num_classes, else its list of
 * labels); 0 when it does not say. */
static long long task_classes(const json_t *data)
{
	const json_t *labels = json_object_get(data, "labels");

	if (json_is_integer(json_object_get(data, "num_classes")))
		return json_integer_value(json_object_get(data, "num_classes"));
	return (long long)json_array_size(labels);
}

/* Class labels that the task does not have, named where a person finds
 * them: the sample's number in the IDX label file (from 1) or its line
 * in the CSV file. */
static int check_classes(const struct ml_dataset *d, const json_t *t,
			 const char *file, int csv)
{
	const json_t *data = json_object_get(t, "data");
	const char *loss = json_string_value(json_object_get(t, "loss"));
	const char *column = json_string_value(json_object_get(data,
							       "label_column"));
	long long classes = task_classes(data);
	enum ml_loss l;
	size_t i, line = 0;

	if (classes < 1 || !loss || ml_loss_parse(loss, &l) ||
	    l != ML_LOSS_SPARSE_CE)
		return FM_OK;
	if (d->y_size != 1)
		return fm_error_set(FM_EINVAL, "%s: %zu values per sample where "
				    "one class label was expected (this "
				    "task's loss is %s)", file, d->y_size,
				    loss);
	for (i = 0; i < d->n; i++) {
		float v = d->y[i];

		if (!(v >= 0 && v < (float)classes) || v != floorf(v))
			break;
	}
	if (i == d->n)
		return FM_OK;
	if (!csv)
		return fm_error_set(FM_EINVAL, "%s: sample %zu: label %g is not "
				    "a class of this task (0..%lld)", file,
				    i + 1, (double)d->y[i], classes - 1);
	if (ml_dataset_csv_line(&line, file, i))
		return fm_error_set(FM_EINVAL, "%s: sample %zu: label %g is not "
				    "a class of this task (0..%lld)", file,
				    i + 1, (double)d->y[i], classes - 1);
	return fm_error_set(FM_EINVAL, "%s:%zu: label %g in column '%s' is "
			    "not a class of this task (0..%lld)", file, line,
			    (double)d->y[i], column ? column : "?",
			    classes - 1);
}

int work_load_data(struct ml_dataset *out, const json_t *spec,
		   const char *path)
{
	const json_t *t = json_object_get(spec, "training");
	const json_t *data = json_object_get(t, "data"), *pre, *rs;
	const char *format = json_string_value(json_object_get(data, "format"));
	const char *norm;
	struct ml_dataset d = { 0 };
	char labels[WORK_PATH_MAX];
	int csv = format && !strcmp(format, "csv");
	double scale;
	int err;

	if (!format)
		return fm_error_set(FM_EINVAL, "task.training.data.format: the "
				    "task does not say how its data is stored");
	if (csv)
		err = load_csv(&d, data, path);
	else
		err = load_idx(&d, labels, path);
	if (err)
		goto done;
	err = check_classes(&d, t, csv ? path : labels, csv);
	if (err)
		goto done;
	pre = json_object_get(data, "preprocessing");
	rs = json_object_get(pre, "resize");
	if (json_array_size(rs) == 2) {
		err = ml_dataset_resize(
			&d, (int)json_integer_value(json_array_get(rs, 0)),
			(int)json_integer_value(json_array_get(rs, 1)));
		if (err)
			goto done;
	}
	scale = json_number_value(json_object_get(pre, "scale"));
	norm = json_string_value(json_object_get(pre, "normalize"));
	if (scale <= 0 && norm && !strcmp(norm, "scale"))
		scale = 255;
	if (scale > 0)
		ml_dataset_scale(&d, (float)scale);
	*out = d;
	d = (struct ml_dataset){ 0 };
done:
	ml_dataset_cleanup(&d);
	return err;
}
