/* Bounded byte buffers: every buffer filled from the network or disk has
 * a cap; going past it frees the buffer and returns FM_ETOOLARGE. */
#ifndef FM_CORE_BUF_H
#define FM_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* largest len allowed */
};

#define BUF_INIT(max_) { NULL, 0, 0, (max_) }

void buf_init(struct buf *b, size_t max);
/* Frees the data; the buffer can be reused. Idempotent. */
void buf_cleanup(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appends(struct buf *b, const char *s);
int buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes without changing len. */
int buf_reserve(struct buf *b, size_t n);
/* Hands the data to the caller (free()); the buffer is left empty. */
char *buf_detach(struct buf *b, size_t *len_out);

/* Reads a whole file into b (which is reset first); refuses files over
 * b->max with FM_ETOOLARGE naming the path. */
int buf_read_file(struct buf *b, const char *path);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(char *out, const uint8_t *p, size_t n);
/* Decodes exactly n bytes from hex (optional 0x prefix); FM_EINVAL if the
 * text has another length or a non-hex digit. */
int hex_decode(uint8_t *out, size_t n, const char *hex);

#endif
