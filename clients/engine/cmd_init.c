/* init --spec layers.json --out DIR [--seed N]
 * init --model DIR --out DIR [--seed N] */
#include "cli.h"

#include "core/err.h"
#include "core/fjson.h"

#include <stdio.h>

#define SPEC_MAX (1 << 20)

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
		{ NULL, 0, NULL, NULL, NULL, 0, 0 },
	};
	struct ml_model *m = NULL;
	json_t *spec = NULL;
	int rc;

	rc = opts_parse(opts, argc, argv, "init",
			"(--spec F | --model DIR) --out DIR [--seed N]");
	if (rc)
		return rc;
	if (!out || !spec_path == !model)
		return cli_usage_error("init", "give --out and one of --spec "
				       "or --model");
	if (spec_path) {
		if (fj_load_file(&spec, spec_path, SPEC_MAX) ||
		    ml_model_from_spec(&m, spec, seed)) {
			if (spec)
				fm_error_prefix("%s", spec_path);
			rc = cli_fail();
			goto done;
		}
	} else if (ml_model_load(&m, model) || ml_model_init_weights(m, seed)) {
		rc = cli_fail();
		goto done;
	}
	if (ml_model_save(m, out)) {
		rc = cli_fail();
		goto done;
	}
	printf("%s: %zu parameters, seed %llu\n", out, ml_model_param_count(m),
	       (unsigned long long)seed);
done:
	json_decref(spec);
	ml_model_free(m);
	return rc;
}
