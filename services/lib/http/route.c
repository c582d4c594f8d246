#include "http/route.h"

#include "core/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = { "", "str", "int", "addr", "hash",
					  "uuid" };

static const char *const type_expect[] = {
	"a literal", "a segment of at most 256 bytes", "a non-negative integer",
	"an address (0x and 40 hex digits)", "a hash (0x and 64 hex digits)",
	"a UUID"
};

/* The "{name[:type]}" segment s..e into g. */
static int parse_param(struct http_seg *g, const char *s, const char *e,
		       const char *pattern)
{
	const char *colon, *name_end;

	if (e - s < 3 || e[-1] != '}' || memchr(s + 1, '{', e - s - 1) ||
	    memchr(s, '}', e - s - 1))
		return fm_error_set(FM_EINVAL, "pattern %s: malformed "
				    "parameter", pattern);
	colon = memchr(s, ':', e - s);
	name_end = colon ? colon : e - 1;
	*g = (struct http_seg){ HTTP_SEG_STR, s + 1,
				(size_t)(name_end - s - 1) };
	if (g->len == 0)
		return fm_error_set(FM_EINVAL, "pattern %s: parameter without "
				    "a name", pattern);
	if (!colon)
		return FM_OK;
	size_t tl = (size_t)(e - 1 - colon - 1);
	for (int t = HTTP_SEG_STR; t <= HTTP_SEG_UUID; t++) {
		if (strlen(type_names[t]) == tl &&
		    memcmp(colon + 1, type_names[t], tl) == 0) {
			g->type = (enum http_seg_type)t;
			return FM_OK;
		}
	}
	return fm_error_set(FM_EINVAL, "pattern %s: unknown parameter type "
			    "'%.*s'", pattern, (int)tl, colon + 1);
}

int http_pattern_parse(struct http_pattern *out, const char *pattern)
{
	struct http_pattern p = { .n_segs = 0 };
	const char *s = pattern;
	int n_params = 0, err;

	if (!s || s[0] != '/')
		return fm_error_set(FM_EINVAL, "pattern %s: must start with "
				    "'/'", s ? s : "(null)");
	if (strcmp(s, "/") == 0) {
		*out = p;
		return FM_OK;
	}
	while (*s == '/') {
		const char *b = ++s;
		const char *e = b + strcspn(b, "/");
		struct http_seg *g;

		if (p.n_segs == HTTP_MAX_SEGMENTS)
			return fm_error_set(FM_EINVAL, "pattern %s: more than "
					    "%d segments", pattern,
					    HTTP_MAX_SEGMENTS);
		if (e == b)
			return fm_error_set(FM_EINVAL, "pattern %s: empty "
					    "segment", pattern);
		g = &p.segs[p.n_segs++];
		s = e;
		if (*b != '{') {
			if (memchr(b, '{', e - b) || memchr(b, '}', e - b))
				return fm_error_set(FM_EINVAL, "pattern %s: a "
						    "parameter must be a whole "
						    "segment", pattern);
			*g = (struct http_seg){ HTTP_SEG_LIT, b,
						(size_t)(e - b) };
			p.spec |= 1u << (HTTP_MAX_SEGMENTS - p.n_segs);
			continue;
		}
		err = parse_param(g, b, e, pattern);
		if (err)
			return err;
		for (int i = 0; i < p.n_segs - 1; i++)
			if (p.segs[i].type != HTTP_SEG_LIT &&
			    p.segs[i].len == g->len &&
			    memcmp(p.segs[i].text, g->text, g->len) == 0)
				return fm_error_set(FM_EINVAL, "pattern %s: "
						    "parameter %.*s named "
						    "twice", pattern,
						    (int)g->len, g->text);
		if (++n_params > HTTP_MAX_PARAMS)
			return fm_error_set(FM_EINVAL, "pattern %s: more than "
					    "%d parameters", pattern,
					    HTTP_MAX_PARAMS);
	}
	*out = p;
	return FM_OK;
}

static int lit_eq(const struct http_seg *g, const char *s, size_t n)
{
	return g->len == n && memcmp(g->text, s, n) == 0;
}

int http_pattern_same(const struct http_pattern *a,
		      const struct http_pattern *b)
{
	if (a->n_segs != b->n_segs || a->spec != b->spec)
		return 0;
	for (int i = 0; i < a->n_segs; i++)
		if (a->segs[i].type == HTTP_SEG_LIT &&
		    !lit_eq(&a->segs[i], b->segs[i].text, b->segs[i].len))
			return 0;
	return 1;
}

int http_pattern_match(const struct http_pattern *p, char *const *segs,
		       int n)
{
	if (p->n_segs != n)
		return 0;
	for (int i = 0; i < n; i++)
		if (p->segs[i].type == HTTP_SEG_LIT &&
		    !lit_eq(&p->segs[i], segs[i], strlen(segs[i])))
			return 0;
	return 1;
}

int http_path_split(char *path, char **segs, int *n)
{
	char *p = path + 1;

	*n = 0;
	if (path[0] != '/')
		return -1;
	if (!*p)
		return 0;
	for (;;) {
		char *e = strchr(p, '/');
		if (*n == HTTP_MAX_SEGMENTS || p == e || !*p)
			return -1;
		segs[(*n)++] = p;
		if (!e)
			return 0;
		*e = '\0';
		p = e + 1;
	}
}

int http_parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	if (!s || !(*s == '-' || (*s >= '0' && *s <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return -1;
	*out = v;
	return 0;
}

static int hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

static int hex_0x(const char *v, size_t n, size_t digits)
{
	return n == digits + 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') &&
	       hex_run(v + 2, digits);
}

int http_param_ok(enum http_seg_type t, const char *v)
{
	size_t n = strlen(v);
	long long x;

	switch (t) {
	case HTTP_SEG_LIT:
		return 0;
	case HTTP_SEG_STR:
		return n > 0 && n <= 256;
	case HTTP_SEG_INT:
		return v[0] != '-' && http_parse_int(v, &x) == 0;
	case HTTP_SEG_ADDR:
		return hex_0x(v, n, 40);
	case HTTP_SEG_HASH:
		return hex_0x(v, n, 64);
	case HTTP_SEG_UUID:
		return n == 36 && v[8] == '-' && v[13] == '-' && v[18] == '-' &&
		       v[23] == '-' && hex_run(v, 8) && hex_run(v + 9, 4) &&
		       hex_run(v + 14, 4) && hex_run(v + 19, 4) &&
		       hex_run(v + 24, 12);
	}
	return 0;
}

const char *http_param_expect(enum http_seg_type t)
{
	return type_expect[t];
}
