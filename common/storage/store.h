/* Object storage: one interface over three backends chosen by URL.
 *   file://DIR              local directory (the default); writes are
 *                           atomic (temp file, fsync, rename)
 *   s3://bucket[/prefix]    any S3-compatible store, SigV4 via libcurl;
 *                           endpoint, region, path style and credentials
 *                           from the config (s3_* keys), or AWS_ACCESS_KEY_ID
 *                           and AWS_SECRET_ACCESS_KEY when those are empty
 *   http(s)://host[/path]   GET/HEAD, and PUT/DELETE on WebDAV-style
 *                           servers; user:password@ in the URL is sent as
 *                           basic auth and never shown
 * Keys are relative paths of [A-Za-z0-9._~-] components separated by '/',
 * no component starting with '.', at most STORE_KEY_MAX bytes.
 *
 * Network requests retry with exponential backoff on timeouts and 5xx
 * answers only. Downloads to a file appear complete or not at all. A store
 * is not thread-safe: use one per thread (they are cheap). */
#ifndef FM_STORAGE_STORE_H
#define FM_STORAGE_STORE_H

#include "core/buf.h"
#include "core/cfg.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 1024
/* Largest object get/put accept unless told a smaller limit: 1 TiB. */
#define STORE_OBJECT_MAX (UINT64_C(1) << 40)

struct store;

/* Called as bytes move; total is 0 when unknown. */
typedef void (*store_progress_fn)(void *ud, uint64_t done, uint64_t total);

/* Per-transfer options; NULL means defaults. */
struct store_xfer {
	store_progress_fn progress;
	void *progress_ud;
	/* gets: refuse objects bigger than this (0 = STORE_OBJECT_MAX) */
	uint64_t max_bytes;
};

/* Network limits of a store (ignored by file://). */
struct store_limits {
	long connect_timeout_ms; /* default 10000 */
	long stall_timeout_s;    /* abort when under 1 byte/s this long; 30 */
	long timeout_ms;         /* whole request, 0 = none (default) */
	int retries;             /* extra attempts after the first; 3 */
	long backoff_ms;         /* first retry delay, doubled each time; 200 */
};

/* Opens the store named by url (NULL: cfg->storage_url). cfg supplies the
 * S3 settings and may be NULL for file:// and http(s)://. Nothing is
 * contacted yet. FM_EINVAL names what is wrong with the URL. */
int store_open(struct store **out, const char *url,
	       const struct fm_config *cfg);
void store_free(struct store *s);

/* The store's URL with any password removed. Borrowed. */
const char *store_url(const struct store *s);

void store_get_limits(const struct store *s, struct store_limits *out);
/* FM_EINVAL when a value is out of range; nothing changes then. */
int store_set_limits(struct store *s, const struct store_limits *lim);

/* Creates the bucket (s3) or directory (file) if missing; a no-op for
 * http(s). */
int store_ensure(struct store *s);

/* Uploads the file at path under key, replacing any object there. */
int store_put_file(struct store *s, const char *key, const char *path,
		   const struct store_xfer *x);
int store_put_mem(struct store *s, const char *key, const void *data,
		  size_t len, const struct store_xfer *x);

/* Downloads key into path. The file appears (replacing any old one) only
 * when the whole object arrived; on any failure nothing is left. */
int store_get_file(struct store *s, const char *key, const char *path,
		   const struct store_xfer *x);
/* Downloads key into out (reset first), refusing more than out->max bytes
 * with FM_ETOOLARGE. */
int store_get_mem(struct store *s, const char *key, struct buf *out,
		  const struct store_xfer *x);

/* FM_OK and *size_out (may be NULL) when key exists, FM_ENOTFOUND when
 * it does not. */
int store_head(struct store *s, const char *key, uint64_t *size_out);
/* Removes key; removing a missing key succeeds. */
int store_delete(struct store *s, const char *key);

/* Calls fn for each key under prefix (NULL or "" for all) of file:// and
 * s3:// stores, in no particular order; a non-zero return from fn stops
 * the walk and is returned. http(s) stores cannot list (FM_EINVAL). */
typedef int (*store_list_fn)(void *ud, const char *key, uint64_t size);
int store_list(struct store *s, const char *prefix, store_list_fn fn,
	       void *ud);

/* FM_OK when key is a valid key, else FM_EINVAL naming the problem. */
int store_key_check(const char *key);

#endif
