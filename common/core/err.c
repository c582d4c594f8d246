#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char err_msg[FM_ERR_MSG_MAX];
static _Thread_local int err_code;

int fm_error_vset(int code, const char *fmt, va_list ap)
{
	char tmp[FM_ERR_MSG_MAX];

	/* through a copy: an argument may be fm_error_msg() itself */
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	memcpy(err_msg, tmp, sizeof(err_msg));
	/* one line: a newline in user data would split log records */
	for (char *p = err_msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	err_code = code;
	return code;
}

int fm_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fm_error_vset(code, fmt, ap);
	va_end(ap);
	return code;
}

int fm_error_prefix(const char *fmt, ...)
{
	char prefix[FM_ERR_MSG_MAX];
	char old[FM_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err_msg, sizeof(old));
	/* a long message is cut, never overflowed */
	if (snprintf(err_msg, sizeof(err_msg), "%s: %s", prefix, old) < 0)
		err_msg[0] = '\0';
	return err_code;
}

const char *fm_error_msg(void)
{
	return err_msg;
}

int fm_error_code(void)
{
	return err_code;
}

void fm_error_clear(void)
{
	err_msg[0] = '\0';
	err_code = FM_OK;
}

static const struct {
	int code;
	int status;
	const char *name;
} err_table[] = {
	{ FM_OK, 200, "ok" },
	{ FM_EINTERNAL, 500, "internal" },
	{ FM_EINVAL, 400, "invalid_argument" },
	{ FM_ENOTFOUND, 404, "not_found" },
	{ FM_ECONFLICT, 409, "conflict" },
	{ FM_EAUTH, 401, "unauthenticated" },
	{ FM_EFORBIDDEN, 403, "forbidden" },
	{ FM_ETOOLARGE, 413, "too_large" },
	{ FM_EUNAVAIL, 503, "unavailable" },
	{ FM_EUNPROCESSABLE, 422, "unprocessable" },
	{ FM_ENOMEM, 503, "out_of_memory" },
	{ FM_EIO, 500, "io_error" },
	{ FM_ETIMEOUT, 504, "timeout" },
};

#define ERR_TABLE_LEN (sizeof(err_table) / sizeof(err_table[0]))

const char *fm_err_name(int code)
{
	for (size_t i = 0; i < ERR_TABLE_LEN; i++)
		if (err_table[i].code == code)
			return err_table[i].name;
	return "internal";
}

int fm_err_http_status(int code)
{
	for (size_t i = 0; i < ERR_TABLE_LEN; i++)
		if (err_table[i].code == code)
			return err_table[i].status;
	return 500;
}

void fm_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "fedmarket: assertion failed: %s (%s:%d)\n", expr,
		file, line);
	abort();
}
