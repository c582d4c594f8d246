/* The programs' option parser and help layout. It talks to the terminal:
 * it is the user interface of the client binaries. */
#include "cli/opt.h"

#include "core/err.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LEFT_WIDTH 26 /* the option column of the help */

/* The command line parsed last, "prog cmd", and its usage line: a usage
 * error found after parsing shows the usage too. A process parses one
 * command line. */
static char parsed_who[128], parsed_usage[512];

static const char *sep(const char *cmd)
{
	return cmd && cmd[0] ? " " : "";
}

static const char *str(const char *s)
{
	return s ? s : "";
}

static int is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static size_t name_len(const char *a)
{
	const char *eq = strchr(a, '=');

	return eq ? (size_t)(eq - a) : strlen(a);
}

static const struct opt *find_opt(const struct opt *opts, const char *a,
				  size_t len)
{
	for (const struct opt *o = opts; o && o->name; o++)
		if (strlen(o->name) == len && !strncmp(o->name, a, len))
			return o;
	return NULL;
}

/* ------------------------------------------------------------------ help */

/* "  left   help", the help on a line of its own under a long left. */
static void row(FILE *f, const char *left, const char *help)
{
	if (strlen(left) > LEFT_WIDTH)
		fprintf(f, "  %s\n  %-*s %s\n", left, LEFT_WIDTH, "",
			str(help));
	else
		fprintf(f, "  %-*s %s\n", LEFT_WIDTH, left, str(help));
}

static void opt_rows(FILE *f, const struct opt *opts)
{
	for (const struct opt *o = opts; o && o->name; o++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", o->name,
			 o->arg ? " " : "", str(o->arg));
		row(f, left, o->help);
	}
}

/* --help and --version, which every command takes unless it has an
 * option of that name. */
static void builtin_rows(FILE *f, const struct opt *own)
{
	if (!find_opt(own, "--help", 6))
		row(f, "-h, --help", "show this help and exit");
	if (!find_opt(own, "--version", 9))
		row(f, "--version", "print the version and exit");
}

void opt_help(FILE *f, const struct opt_spec *s)
{
	fprintf(f, "usage: %s%s%s %s\n", s->prog, sep(s->cmd), str(s->cmd),
		str(s->synopsis));
	if (s->about)
		fprintf(f, "\n%s", s->about);
	if (s->opts && s->opts->name) {
		fprintf(f, "\noptions:\n");
		opt_rows(f, s->opts);
	}
	fprintf(f, "\ncommon options:\n");
	opt_rows(f, s->common);
	builtin_rows(f, s->opts);
}

static const struct opt_command *cmd_at(const struct opt_prog *p, size_t i)
{
	const char *row0 = (const char *)p->cmds;

	return (const struct opt_command *)(const void *)(row0 + i * p->stride);
}

void opt_prog_help(FILE *f, const struct opt_prog *p)
{
	const char *space = sep(p->cmd);

	fprintf(f, "%s%s%s — %s\n\nusage: %s%s%s [options] COMMAND [ARGS]\n"
		   "\ncommands:\n", p->prog, space, str(p->cmd), p->about,
		p->prog, space, str(p->cmd));
	for (size_t i = 0; i < p->ncmds; i++) {
		const struct opt_command *c = cmd_at(p, i);
		char left[96];

		snprintf(left, sizeof(left), "%s%s%s", c->name,
			 c->args ? " " : "", str(c->args));
		row(f, left, c->help);
	}
	fprintf(f, "\noptions (before or after the command):\n");
	opt_rows(f, p->common);
	builtin_rows(f, NULL);
	fprintf(f, "\nRun '%s%s%s COMMAND --help' for a command's options.\n",
		p->prog, space, str(p->cmd));
	if (p->epilog)
		fprintf(f, "%s", p->epilog);
}

static void print_version(const char *prog, const char *version)
{
	printf("%s %s\n", prog, version ? version : CLI_VERSION);
}

/* ---------------------------------------------------------------- errors */

int opt_vusage(const char *prog, const char *cmd, const char *fmt,
	       va_list ap)
{
	char who[128];

	snprintf(who, sizeof(who), "%s%s%s", prog, sep(cmd), str(cmd));
	fprintf(stderr, "%s: ", who);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (!strcmp(who, parsed_who))
		fprintf(stderr, "%s\n", parsed_usage);
	fprintf(stderr, "Run '%s --help' for its options.\n", who);
	return CLI_USAGE;
}

int opt_usage(const char *prog, const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	opt_vusage(prog, cmd, fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int opt_fail(const char *prog, const char *cmd)
{
	fprintf(stderr, "%s%s%s: %s\n", prog, sep(cmd), str(cmd),
		fm_error_msg()[0] ? fm_error_msg() : "failed");
	return CLI_ERR;
}

/* ---------------------------------------------------------------- values */

static int ranged(const struct opt *o)
{
	return o->min != 0 || o->max != 0;
}

static int bad_integer(const struct opt_spec *s, const struct opt *o,
		       const char *v)
{
	if (ranged(o))
		return opt_usage(s->prog, s->cmd, "%s: \"%s\" is not an "
				 "integer in [%.0f, %.0f]", o->name, v,
				 o->min, o->max);
	return opt_usage(s->prog, s->cmd, "%s: \"%s\" is not an integer",
			 o->name, v);
}

static int bad_number(const struct opt_spec *s, const struct opt *o,
		      const char *v)
{
	if (ranged(o))
		return opt_usage(s->prog, s->cmd, "%s: \"%s\" is not a number "
				 "in [%g, %g]", o->name, v, o->min, o->max);
	return opt_usage(s->prog, s->cmd, "%s: \"%s\" is not a number",
			 o->name, v);
}

/* A whole decimal number in [lo, hi]; 0 when it is not. */
static int parse_long(long *out, const char *v, long lo, long hi)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return 0;
	*out = x;
	return 1;
}

static int set_value(const struct opt_spec *s, const struct opt *o,
		     const char *v)
{
	long lo = ranged(o) ? (long)o->min : LONG_MIN;
	long hi = ranged(o) ? (long)o->max : LONG_MAX;
	unsigned long long u;
	double x;
	char *end;
	long l;

	switch (o->type) {
	case OPT_STR:
		*(const char **)o->dst = v;
		return CLI_OK;
	case OPT_INT:
		if (!ranged(o)) {
			lo = INT_MIN;
			hi = INT_MAX;
		}
		if (!parse_long(&l, v, lo, hi))
			return bad_integer(s, o, v);
		*(int *)o->dst = (int)l;
		return CLI_OK;
	case OPT_LONG:
		if (!parse_long(&l, v, lo, hi))
			return bad_integer(s, o, v);
		*(long *)o->dst = l;
		return CLI_OK;
	case OPT_U64:
		errno = 0;
		u = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-')
			return opt_usage(s->prog, s->cmd, "%s: \"%s\" is not a "
					 "non-negative integer", o->name, v);
		*(uint64_t *)o->dst = (uint64_t)u;
		return CLI_OK;
	case OPT_NUM:
		errno = 0;
		x = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(x) ||
		    (ranged(o) && (x < o->min || x > o->max)))
			return bad_number(s, o, v);
		*(double *)o->dst = x;
		return CLI_OK;
	case OPT_FLAG:
		*(int *)o->dst = 1;
		return CLI_OK;
	}
	return CLI_OK;
}

/* ---------------------------------------------------------------- parse */

/* One option at argv[*i] (advanced past its value). Returns -1 to go on,
 * else the exit code to stop with. */
static int one_option(const struct opt_spec *s, int argc, char **argv,
		      int *i)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t len = name_len(a);
	const struct opt *o = find_opt(s->opts, a, len);

	if (!o)
		o = find_opt(s->common, a, len);
	if (!o && is_help(a)) {
		opt_help(stdout, s);
		return CLI_OK;
	}
	if (!o && !strcmp(a, "--version")) {
		print_version(s->prog, s->version);
		return CLI_OK;
	}
	if (!o)
		return opt_usage(s->prog, s->cmd, "unknown option \"%.*s\"",
				 (int)len, a);
	if (o->type == OPT_FLAG) {
		if (eq)
			return opt_usage(s->prog, s->cmd, "%s takes no value",
					 o->name);
		return set_value(s, o, NULL) ? CLI_USAGE : -1;
	}
	if (!eq && *i + 1 >= argc)
		return opt_usage(s->prog, s->cmd, "%s needs a value (%s)",
				 o->name, str(o->arg));
	return set_value(s, o, eq ? eq + 1 : argv[++*i]) ? CLI_USAGE : -1;
}

int opt_parse(const struct opt_spec *s, int argc, char **argv, int *code)
{
	int npos = 0, only_pos = 0, rc;

	snprintf(parsed_who, sizeof(parsed_who), "%s%s%s", s->prog,
		 sep(s->cmd), str(s->cmd));
	snprintf(parsed_usage, sizeof(parsed_usage), "usage: %s %s",
		 parsed_who, str(s->synopsis));

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (only_pos || a[0] != '-' || !a[1]) {
			if (npos == s->max_pos) {
				*code = opt_usage(s->prog, s->cmd, "unexpected "
						  "argument \"%s\"", a);
				return 0;
			}
			s->pos[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		rc = one_option(s, argc, argv, &i);
		if (rc >= 0) {
			*code = rc;
			return 0;
		}
	}
	if (npos < s->min_pos) {
		*code = opt_usage(s->prog, s->cmd, "missing argument");
		return 0;
	}
	if (s->npos)
		*s->npos = npos;
	*code = CLI_OK;
	return 1;
}

/* -------------------------------------------------------------- commands */

static int find_cmd(const struct opt_prog *p, const char *word, size_t *k)
{
	for (size_t i = 0; i < p->ncmds; i++)
		if (!strcmp(cmd_at(p, i)->name, word)) {
			*k = i;
			return 1;
		}
	return 0;
}

/* Where the command word is in argv (0: none); *help and *version when
 * those came before it, *unknown the first option the program does not
 * know. */
static int word_at(const struct opt_prog *p, int argc, char **argv,
		   int *help, int *version, const char **unknown)
{
	size_t k;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o;

		if (!strcmp(a, "--"))
			return i + 1 < argc ? i + 1 : 0;
		if (a[0] != '-' || !a[1])
			return i;
		if (is_help(a)) {
			*help = 1;
			continue;
		}
		if (!strcmp(a, "--version")) {
			*version = 1;
			continue;
		}
		o = find_opt(p->common, a, name_len(a));
		if (o) {
			if (o->type != OPT_FLAG && !strchr(a, '='))
				i++;
			continue;
		}
		if (!*unknown)
			*unknown = a;
		/* a command's option given before the command */
		if (!strchr(a, '=') && i + 1 < argc && argv[i + 1][0] != '-' &&
		    !find_cmd(p, argv[i + 1], &k))
			i++;
	}
	return 0;
}

int opt_command(const struct opt_prog *p, int *argc, char **argv,
		size_t *index, int *code)
{
	static char help_flag[] = "--help";
	const char *unknown = NULL, *word;
	int help = 0, version = 0, at;

	at = word_at(p, *argc, argv, &help, &version, &unknown);
	if (version) {
		print_version(p->prog, p->version);
		*code = CLI_OK;
		return 0;
	}
	if (!at && help) {
		opt_prog_help(stdout, p);
		*code = CLI_OK;
		return 0;
	}
	if (!at && unknown) {
		*code = opt_usage(p->prog, p->cmd, "unknown option \"%.*s\"",
				  (int)name_len(unknown), unknown);
		return 0;
	}
	if (!at) {
		opt_prog_help(stderr, p);
		*code = CLI_USAGE;
		return 0;
	}
	word = argv[at];
	if (!strcmp(word, "help")) {
		if (at + 1 >= *argc) {
			opt_prog_help(stdout, p);
			*code = CLI_OK;
			return 0;
		}
		/* help CMD is CMD --help */
		word = argv[at + 1];
		argv[1] = help_flag;
		argv[2] = NULL;
		*argc = 2;
		at = 0;
	}
	if (!find_cmd(p, word, index)) {
		fprintf(stderr, "%s%s%s: unknown command \"%s\"\nRun '%s%s%s "
			"--help' for the commands.\n", p->prog, sep(p->cmd),
			str(p->cmd), word, p->prog, sep(p->cmd), str(p->cmd));
		*code = CLI_USAGE;
		return 0;
	}
	argv[0] = (char *)word;
	if (at) {
		memmove(argv + at, argv + at + 1,
			(size_t)(*argc - at - 1) * sizeof(*argv));
		argv[--*argc] = NULL;
	}
	return 1;
}
