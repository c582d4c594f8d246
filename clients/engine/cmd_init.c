/* init --spec layers.json --out DIR [--seed N]
 * init --model DIR --out DIR [--seed N] */
#include "cli.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>

#define CMD "init"
#define SPEC_MAX (1 << 20)

/* A model built from the layer spec in path. */
static int from_spec(struct ml_model **m, const char *path, uint64_t seed)
{
	json_t *spec = NULL;
	int err = fj_load_file(&spec, path, SPEC_MAX);

	if (err)
		return err;
	err = ml_model_from_spec(m, spec, seed);
	if (err)
		fm_error_prefix("%s", path);
	json_decref(spec);
	return err;
}

/* The architecture of the model in dir with fresh weights. */
static int reinit(struct ml_model **m, const char *dir, uint64_t seed)
{
	int err = ml_model_load(m, dir);

	if (err)
		return err;
	return ml_model_init_weights(*m, seed);
}

int cmd_init(int argc, char **argv)
{
	const char *spec_path = NULL, *model = NULL, *out = NULL;
	uint64_t seed = 0;
	const struct opt opts[] = {
		{ "--spec", OPT_STR, &spec_path, "F", "layer spec (JSON)", 0,
		  0 },
		{ "--model", OPT_STR, &model, "DIR", "copy this architecture",
		  0, 0 },
		{ "--out", OPT_STR, &out, "DIR", "where to write the model", 0,
		  0 },
		{ "--seed", OPT_U64, &seed, "N", "initializer seed (0)", 0, 0 },
		OPT_END,
	};
	struct opt_spec s = {
		.cmd = CMD, .opts = opts,
		.synopsis = "(--spec F | --model DIR) --out DIR [--seed N]",
	};
	struct ml_model *m = NULL;
	int code, err;

	if (!engine_parse(&s, argc, argv, &code))
		return code;
	if (!out || !spec_path == !model)
		return engine_usage(CMD, "give --out and one of --spec or "
				    "--model");
	err = spec_path ? from_spec(&m, spec_path, seed)
			: reinit(&m, model, seed);
	if (err)
		goto done;
	err = ml_model_save(m, out);
	if (err)
		goto done;
	printf("%s: %zu parameters, seed %llu\n", out, ml_model_param_count(m),
	       (unsigned long long)seed);
done:
	ml_model_free(m);
	return err ? engine_fail(CMD) : CLI_OK;
}
