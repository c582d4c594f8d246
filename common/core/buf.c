#include "core/buf.h"

#include "core/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_cleanup(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t need, ncap;
	char *p;

	if (n > b->max || b->len > b->max - n) {
		buf_cleanup(b);
		return fm_error_set(FM_ETOOLARGE,
				    "data exceeds the limit of %zu bytes",
				    b->max);
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return FM_OK;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = realloc(b->data, ncap);
	if (!p)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu bytes)",
				    ncap);
	b->data = p;
	b->cap = ncap;
	return FM_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int err = buf_reserve(b, n);

	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return FM_OK;
}

int buf_appends(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fm_error_set(FM_EINTERNAL, "bad format string");
	err = buf_reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return FM_OK;
}

char *buf_detach(struct buf *b, size_t *len_out)
{
	char *p = b->data;

	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

int buf_read_file(struct buf *b, const char *path)
{
	FILE *f = NULL;
	struct stat st;
	char chunk[65536];
	size_t n;
	int err = FM_OK;

	buf_reset(b);
	f = fopen(path, "rb");
	if (!f)
		return fm_error_set(errno == ENOENT ? FM_ENOTFOUND : FM_EIO,
				    "%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size > b->max) {
		err = fm_error_set(FM_ETOOLARGE,
				   "%s: file is %lld bytes, limit is %zu",
				   path, (long long)st.st_size, b->max);
		goto done;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		err = buf_append(b, chunk, n);
		if (err) {
			fm_error_prefix("%s", path);
			goto done;
		}
	}
	if (ferror(f)) {
		err = fm_error_set(FM_EIO, "%s: read error", path);
		goto done;
	}
	if (!b->data) {
		err = buf_reserve(b, 0);
		if (err)
			goto done;
	}
	b->data[b->len] = '\0';
done:
	fclose(f);
	return err;
}

void hex_encode(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(uint8_t *out, size_t n, const char *hex)
{
	if (!hex)
		return fm_error_set(FM_EINVAL, "missing hex string");
	if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
		hex += 2;
	if (strlen(hex) != 2 * n)
		return fm_error_set(FM_EINVAL,
				    "expected %zu hex digits, got %zu", 2 * n,
				    strlen(hex));
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(hex[2 * i]);
		int lo = hex_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return fm_error_set(FM_EINVAL,
					    "invalid hex digit at position %zu",
					    2 * i);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return FM_OK;
}
