/* What every command uses: the parser with the engine's name and
 * version, and its error reports. */
#include "cli.h"

#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *engine_version(void)
{
	static char text[96];

	if (!text[0])
		snprintf(text, sizeof(text), "%s (OpenBLAS %s)", CLI_VERSION,
			 ml_blas_corename());
	return text;
}

int engine_parse(struct opt_spec *s, int argc, char **argv, int *code)
{
	s->prog = ENGINE_PROG;
	s->version = engine_version();
	return opt_parse(s, argc, argv, code);
}

int engine_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opt_vusage(ENGINE_PROG, cmd, fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int engine_fail(const char *cmd)
{
	return opt_fail(ENGINE_PROG, cmd);
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

void engine_check_logits(const struct ml_model *m, enum ml_loss loss,
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

void engine_threads(int threads)
{
	if (threads > 0)
		ml_blas_threads(threads);
}
