/* summary --model DIR [--json] */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

#define CMD "summary"

static int print_summary(const struct ml_model *m, int json)
{
	struct buf out = BUF_INIT(1 << 20);
	json_t *j = NULL;
	char *text = NULL;
	int err;

	if (json) {
		err = ml_model_summary_json(m, &j);
		if (err)
			goto done;
		text = json_dumps(j, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
	} else {
		err = ml_model_summary_text(m, &out);
		if (err)
			goto done;
		fputs(out.data, stdout);
	}
done:
	free(text);
	json_decref(j);
	buf_cleanup(&out);
	return err;
}

int cmd_summary(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0, code;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &dir, "DIR", "model folder (model.json)",
		  0, 0 },
		{ "--json", OPT_FLAG, &json, NULL, "print JSON", 0, 0 },
		OPT_END,
	};
	struct opt_spec s = { .cmd = CMD, .synopsis = "--model DIR [--json]",
			      .opts = opts };
	struct ml_model *m = NULL;
	int err;

	if (!engine_parse(&s, argc, argv, &code))
		return code;
	if (!dir)
		return engine_usage(CMD, "--model is required");
	err = ml_model_load(&m, dir);
	if (err)
		goto done;
	err = print_summary(m, json);
done:
	ml_model_free(m);
	return err ? engine_fail(CMD) : CLI_OK;
}
