/* Route path patterns such as "/v1/tasks/{id:int}": parsing, matching
 * request paths against them, and the parameter types. The server uses
 * it; it is public so that tools (the OpenAPI check) read route tables
 * the way the server does. Pure functions, no allocation. */
#ifndef FM_HTTP_ROUTE_H
#define FM_HTTP_ROUTE_H

#include <stddef.h>

#define HTTP_MAX_SEGMENTS 16 /* path segments of a pattern */
#define HTTP_MAX_PARAMS 8    /* parameters of a pattern */

/* {name} or {name:str}  any non-empty segment of at most 256 bytes
 * {name:int}            decimal integer in [0, INT64_MAX]
 * {name:addr}           0x + 40 hex digits (an Ethereum address)
 * {name:hash}           0x + 64 hex digits
 * {name:uuid}           8-4-4-4-12 hex digits */
enum http_seg_type {
	HTTP_SEG_LIT,
	HTTP_SEG_STR,
	HTTP_SEG_INT,
	HTTP_SEG_ADDR,
	HTTP_SEG_HASH,
	HTTP_SEG_UUID,
};

struct http_seg {
	enum http_seg_type type;
	const char *text; /* literal or parameter name: len bytes, borrowed
			     from the pattern, not NUL-terminated */
	size_t len;
};

struct http_pattern {
	struct http_seg segs[HTTP_MAX_SEGMENTS];
	int n_segs;
	unsigned spec; /* a bit per literal segment, leftmost highest: of two
			  patterns matching a path, the higher is chosen */
};

/* Parses pattern (borrowed by *out); FM_EINVAL naming what is wrong. */
int http_pattern_parse(struct http_pattern *out, const char *pattern);
/* 1 if a and b match the same paths (same literals, parameters in the
 * same places, whatever their names and types). */
int http_pattern_same(const struct http_pattern *a,
		      const struct http_pattern *b);
/* 1 if the segments match p's literals; parameter values are not
 * checked against their types here (see http_param_ok). */
int http_pattern_match(const struct http_pattern *p, char *const *segs,
		       int n);

/* Splits a decoded path in place: "/a/b" gives "a", "b"; "/" gives none.
 * Returns 0, or -1 when no pattern can match it (no leading '/', an empty
 * segment, more than HTTP_MAX_SEGMENTS segments). */
int http_path_split(char *path, char **segs, int *n);

/* 1 if v is a valid value of a parameter of type t. */
int http_param_ok(enum http_seg_type t, const char *v);
/* What a type expects, for messages: "a non-negative integer". */
const char *http_param_expect(enum http_seg_type t);

/* A whole string as a decimal integer (optional '-'); 0 or -1. */
int http_parse_int(const char *s, long long *out);

#endif
