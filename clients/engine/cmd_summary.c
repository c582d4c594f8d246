/* summary --model DIR [--json] */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_summary(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0, rc;
	const struct opt opts[] = {
		{ "--model", OPT_STR, &dir, "DIR", "model folder (model.json)",
		  0, 0 },
		{ "--json", OPT_FLAG, &json, NULL, "print JSON", 0, 0 },
		{ NULL, 0, NULL, NULL, NULL, 0, 0 },
	};
	struct ml_model *m = NULL;
	struct buf out = BUF_INIT(1 << 20);
	json_t *j = NULL;
	char *text = NULL;

	rc = opts_parse(opts, argc, argv, "summary", "--model DIR [--json]");
	if (rc)
		return rc;
	if (!dir)
		return cli_usage_error("summary", "--model is required");
	if (ml_model_load(&m, dir))
		return cli_fail();
	if (json) {
		if (ml_model_summary_json(m, &j)) {
			rc = cli_fail();
			goto done;
		}
		text = json_dumps(j, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
	} else {
		if (ml_model_summary_text(m, &out)) {
			rc = cli_fail();
			goto done;
		}
		fputs(out.data, stdout);
	}
done:
	free(text);
	json_decref(j);
	buf_cleanup(&out);
	ml_model_free(m);
	return rc;
}
