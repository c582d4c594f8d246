/* The one command-line parser of every fedmarket program: a declarative
 * table of options per command, options anywhere on the line (before or
 * after the command word; `--name value` or `--name=value`, never
 * abbreviated), positional arguments, --help (on stdout, exit 0) and
 * --version on every command, one help layout and the exit codes.
 * Nothing here exits; main returns the code. */
#ifndef FM_CLI_OPT_H
#define FM_CLI_OPT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* The version every program prints for --version. */
#define CLI_VERSION "1.0"

/* Exit codes of every program. */
#define CLI_OK 0    /* done */
#define CLI_ERR 1   /* failed; the message says what to do next */
#define CLI_USAGE 2 /* the command line is wrong */

enum opt_type {
	OPT_STR,  /* const char * */
	OPT_INT,  /* int, in [min, max] */
	OPT_LONG, /* long, in [min, max] */
	OPT_U64,  /* uint64_t */
	OPT_NUM,  /* double, finite, in [min, max] */
	OPT_FLAG, /* int set to 1 */
};

struct opt {
	const char *name; /* "--data" */
	enum opt_type type;
	void *dst;
	const char *arg;  /* placeholder in help ("DIR"); NULL for flags */
	const char *help;
	double min, max;  /* OPT_INT, OPT_LONG, OPT_NUM; both 0: no range */
};

#define OPT_END { NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0 }

/* One command's line. */
struct opt_spec {
	const char *prog;        /* "fedmarket-engine" */
	const char *cmd;         /* "train", "keys new"; NULL: the program */
	const char *synopsis;    /* what follows "prog cmd" in usage */
	const char *about;       /* NULL, or lines shown under the usage */
	const char *version;     /* NULL: CLI_VERSION */
	const struct opt *opts;  /* the command's own (first match wins) */
	const struct opt *common; /* the program's, taken anywhere */
	const char **pos;        /* positional arguments go here */
	int min_pos, max_pos;
	int *npos;               /* NULL, or how many were given */
};

/* Parses argv[1..] (argv[0] is the command) against s. Returns 1 to go
 * on (*code is then 0); 0 when the caller should return *code at once:
 * 0 after --help (usage on stdout) or --version, 2 after a usage error
 * (reported on stderr, naming the argument). A command's own --version
 * wins over the built-in one. */
int opt_parse(const struct opt_spec *s, int argc, char **argv, int *code);
/* The help of s: usage, about, options, common options. */
void opt_help(FILE *f, const struct opt_spec *s);

/* Prints "prog cmd: <message>", the command's usage line (once its
 * line was parsed) and where to find the options on stderr; returns
 * CLI_USAGE. cmd may be NULL. */
int opt_usage(const char *prog, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int opt_vusage(const char *prog, const char *cmd, const char *fmt,
	       va_list ap) __attribute__((format(printf, 3, 0)));
/* Prints "prog cmd: <fm_error_msg()>" on stderr; returns CLI_ERR. */
int opt_fail(const char *prog, const char *cmd);

/* The first member of every row of a program's command table. */
struct opt_command {
	const char *name;
	const char *args; /* shown after the name in the list, or NULL */
	const char *help; /* one line */
};

/* A program with commands (or a command with actions, like keys). */
struct opt_prog {
	const char *prog;
	const char *cmd;          /* NULL; "keys" for the keys actions */
	const char *about;        /* one line */
	const char *epilog;       /* NULL, or text closing the help */
	const char *version;      /* NULL: CLI_VERSION */
	const struct opt *common; /* options taken before or after the word */
	const struct opt_command *cmds; /* rows of stride bytes */
	size_t ncmds, stride;
};

/* A table of rows whose first member `cmd` is a struct opt_command, for
 * the last three fields of struct opt_prog. */
#define OPT_ROWS(rows) \
	&(rows)[0].cmd, sizeof(rows) / sizeof((rows)[0]), sizeof((rows)[0])

/* Finds the command word in argv: the first argument that is neither an
 * option nor an option's value (an option the program does not know
 * takes the next word as its value unless that word names a command).
 * On success *index is its row, and argv becomes the command's line:
 * the word first, then every other argument in order (*argc one less).
 * Returns 0 with *code otherwise: the program's help (--help, or `help`
 * alone) or version (--version before the word), or a usage error (no
 * command, unknown command). `help CMD` becomes `CMD --help`. */
int opt_command(const struct opt_prog *p, int *argc, char **argv,
		size_t *index, int *code);
/* The help of a program: usage, commands, options. */
void opt_prog_help(FILE *f, const struct opt_prog *p);

#endif
