/* The option parser every command uses: a table of rows, generic
 * handlers per type, `--name value` or `--name=value`. */
#include "cli.h"

#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void opts_usage(const struct opt *opts, const char *cmd,
		const char *synopsis)
{
	fprintf(stderr, "usage: fedmarket-engine %s %s\n\noptions:\n", cmd,
		synopsis);
	for (const struct opt *o = opts; o->name; o++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", o->name,
			 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(stderr, "  %-24s %s\n", left, o->help);
	}
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fedmarket-engine %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see fedmarket-engine %s --help)\n", cmd);
	return CLI_USAGE;
}

int cli_fail(void)
{
	fprintf(stderr, "fedmarket-engine: %s\n", fm_error_msg());
	return CLI_ERR;
}

static int set_value(const struct opt *o, const char *v, const char *cmd)
{
	char *end;
	int ranged = o->min != 0 || o->max != 0;

	switch (o->type) {
	case OPT_STR:
		*(const char **)o->dst = v;
		return 0;
	case OPT_INT: {
		long x;

		errno = 0;
		x = strtol(v, &end, 10);
		if (errno || end == v || *end || x < -2147483647L ||
		    x > 2147483647L || (ranged && (x < o->min || x > o->max)))
			return cli_usage_error(cmd, "%s: '%s' is not an integer"
					       " in [%.0f, %.0f]", o->name, v,
					       o->min, o->max);
		*(int *)o->dst = (int)x;
		return 0;
	}
	case OPT_U64: {
		unsigned long long x;

		errno = 0;
		x = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-')
			return cli_usage_error(cmd, "%s: '%s' is not a "
					       "non-negative integer", o->name,
					       v);
		*(uint64_t *)o->dst = (uint64_t)x;
		return 0;
	}
	case OPT_NUM: {
		double x;

		errno = 0;
		x = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(x) ||
		    (ranged && (x < o->min || x > o->max)))
			return cli_usage_error(cmd, "%s: '%s' is not a number "
					       "in [%g, %g]", o->name, v,
					       o->min, o->max);
		*(double *)o->dst = x;
		return 0;
	}
	case OPT_FLAG:
		break;
	}
	return 0;
}

int opts_parse(const struct opt *opts, int argc, char **argv,
	       const char *cmd, const char *synopsis)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		const struct opt *o;
		size_t len;
		int err;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			opts_usage(opts, cmd, synopsis);
			return -1;
		}
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (o = opts; o->name; o++)
			if (strlen(o->name) == len &&
			    strncmp(o->name, a, len) == 0)
				break;
		if (!o->name)
			return cli_usage_error(cmd, "unknown option '%s'", a);
		if (o->type == OPT_FLAG) {
			if (eq)
				return cli_usage_error(cmd, "%s takes no value",
						       o->name);
			*(int *)o->dst = 1;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return cli_usage_error(cmd, "%s needs a value",
					       o->name);
		err = set_value(o, val, cmd);
		if (err)
			return err;
	}
	return 0;
}

int split_names(char *buf, size_t bufsize, const char *list,
		const char **names, size_t max, size_t *n)
{
	size_t len = strlen(list);
	char *p;

	*n = 0;
	if (len + 1 > bufsize)
		return fm_error_set(FM_EINVAL, "column list is too long");
	memcpy(buf, list, len + 1);
	for (p = buf;;) {
		char *c = strchr(p, ',');

		if (c)
			*c = '\0';
		if (!*p)
			return fm_error_set(FM_EINVAL, "empty column name in "
					    "'%s'", list);
		if (*n == max)
			return fm_error_set(FM_EINVAL, "more than %zu columns "
					    "in '%s'", max, list);
		names[(*n)++] = p;
		if (!c)
			break;
		p = c + 1;
	}
	return FM_OK;
}

void cli_check_logits(const struct ml_model *m, enum ml_loss loss,
		      int from_logits)
{
	enum ml_activation a = ml_model_output_activation(m);

	if (loss == ML_LOSS_MSE)
		return;
	if (!from_logits && a == ML_ACT_LINEAR)
		fprintf(stderr, "fedmarket-engine: warning: the model outputs "
			"logits (linear last layer); did you mean "
			"--from-logits?\n");
	else if (from_logits && (a == ML_ACT_SOFTMAX || a == ML_ACT_SIGMOID))
		fprintf(stderr, "fedmarket-engine: warning: --from-logits with "
			"a %s output layer\n", ml_activation_name(a));
}

void cli_threads(int threads)
{
	if (threads > 0)
		ml_blas_threads(threads);
}
