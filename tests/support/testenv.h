/* Helpers for integration tests: the stack's environment, throwaway
 * databases, shell commands. */
#ifndef FM_TESTS_TESTENV_H
#define FM_TESTS_TESTENV_H

#include <stddef.h>

/* Value of an environment variable the suite needs; aborts the test
 * program with a clear message when it is missing. */
const char *tenv_require(const char *name);

/* Creates an empty database with a unique name on the stack's PostgreSQL;
 * writes its conninfo URL into url and its name into name. */
int tenv_db_create(char *url, size_t url_n, char *name, size_t name_n);
int tenv_db_drop(const char *name);

/* Runs a shell command; returns its exit status (or -1). */
int tenv_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command and captures up to n-1 bytes of stdout, trailing
 * newline removed. Returns the exit status. */
int tenv_sh_out(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
