/* Error codes and the thread-local one-line message that names what was
 * wrong. 0 is success, negative is failure; values never change. */
#ifndef FM_CORE_ERR_H
#define FM_CORE_ERR_H

#include <stdarg.h>

enum fm_err {
	FM_OK = 0,
	FM_EINTERNAL = -1,      /* a bug or an unexpected failure */
	FM_EINVAL = -2,         /* malformed input (400, CLI exit 1) */
	FM_ENOTFOUND = -3,      /* no such object (404) */
	FM_ECONFLICT = -4,      /* wrong state, no slot, duplicate (409) */
	FM_EAUTH = -5,          /* bad or missing credentials (401) */
	FM_EFORBIDDEN = -6,     /* authenticated but not allowed (403) */
	FM_ETOOLARGE = -7,      /* over a size limit (413) */
	FM_EUNAVAIL = -8,       /* database, chain or storage down (503) */
	FM_EUNPROCESSABLE = -9, /* well-formed but invalid content (422) */
	FM_ENOMEM = -10,        /* allocation failed */
	FM_EIO = -11,           /* local file system failure */
	FM_ETIMEOUT = -12,      /* a deadline passed */
};

#define FM_ERR_MSG_MAX 512

/* Stores a formatted one-line message for this thread; returns code. The
 * arguments may include fm_error_msg() (to rewrap the last message). */
int fm_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int fm_error_vset(int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Prefixes the current message with "prefix: " (e.g. a field path or a
 * file name); returns the current code. */
int fm_error_prefix(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* The last message set on this thread ("" if none). Borrowed. */
const char *fm_error_msg(void);
/* The last code set on this thread (FM_OK if none). */
int fm_error_code(void);
void fm_error_clear(void);

/* Stable machine-readable name of a code, e.g. "invalid_argument". */
const char *fm_err_name(int code);
/* HTTP status for a code (200 for FM_OK). */
int fm_err_http_status(int code);

/* Programmer errors: abort with file:line. Never for bad input. */
#define FM_ASSERT(cond) \
	do { \
		if (!(cond)) \
			fm_assert_fail(#cond, __FILE__, __LINE__); \
	} while (0)
void fm_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn));

#endif
