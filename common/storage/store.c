/* The store interface: URL dispatch, and the calls every backend shares
 * (files and memory turned into sources and sinks). Backends never call
 * back into this file: what they share with it lives in store_key.c and
 * store_io.c. */
#include "storage/store_int.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct store_limits default_limits = {
	.connect_timeout_ms = 10000,
	.stall_timeout_s = 30,
	.timeout_ms = 0,
	.retries = 3,
	.backoff_ms = 200,
};

int store_open(struct store **out, const char *url,
	       const struct fm_config *cfg)
{
	struct store *s = NULL;
	int err;

	if (!url)
		url = cfg ? cfg->storage_url : NULL;
	if (!url || !url[0])
		return fm_error_set(FM_EINVAL, "storage URL is empty");
	s = calloc(1, sizeof(*s));
	if (!s)
		return fm_error_set(FM_ENOMEM, "out of memory");
	s->lim = default_limits;
	if (strncasecmp(url, "file://", 7) == 0)
		err = store__file_open(s, url + 7);
	else if (strncasecmp(url, "s3://", 5) == 0)
		err = store__s3_open(s, url + 5, cfg);
	else if (strncasecmp(url, "http://", 7) == 0 ||
		 strncasecmp(url, "https://", 8) == 0)
		err = store__http_open(s, url);
	else
		err = fm_error_set(FM_EINVAL,
				   "storage URL \"%.200s\": expected file://, "
				   "s3:// or http(s)://", url);
	if (err) {
		store_free(s);
		return err;
	}
	*out = s;
	return FM_OK;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	if (s->ops && s->ops->free)
		s->ops->free(s);
	/* the password must not linger in freed memory */
	explicit_bzero(s->pass, sizeof(s->pass));
	free(s);
}

const char *store_url(const struct store *s)
{
	return s->url;
}

void store_get_limits(const struct store *s, struct store_limits *out)
{
	*out = s->lim;
}

int store_set_limits(struct store *s, const struct store_limits *lim)
{
	if (lim->connect_timeout_ms < 1 || lim->connect_timeout_ms > 600000)
		return fm_error_set(FM_EINVAL, "connect_timeout_ms: expected "
				    "1..600000, got %ld",
				    lim->connect_timeout_ms);
	if (lim->stall_timeout_s < 1 || lim->stall_timeout_s > 3600)
		return fm_error_set(FM_EINVAL, "stall_timeout_s: expected "
				    "1..3600, got %ld", lim->stall_timeout_s);
	if (lim->timeout_ms < 0 || lim->timeout_ms > 86400000)
		return fm_error_set(FM_EINVAL, "timeout_ms: expected "
				    "0..86400000, got %ld", lim->timeout_ms);
	if (lim->retries < 0 || lim->retries > 10)
		return fm_error_set(FM_EINVAL, "retries: expected 0..10, got "
				    "%d", lim->retries);
	if (lim->backoff_ms < 0 || lim->backoff_ms > 60000)
		return fm_error_set(FM_EINVAL, "backoff_ms: expected "
				    "0..60000, got %ld", lim->backoff_ms);
	s->lim = *lim;
	return FM_OK;
}

int store_ensure(struct store *s)
{
	return s->ops->ensure(s);
}

int store_put_file(struct store *s, const char *key, const char *path,
		   const struct store_xfer *x)
{
	struct store__fd_src src;
	uint64_t size = 0;
	int fd = -1, err;

	err = store_key_check(key);
	if (err)
		return err;
	err = store__open_regular(&fd, &size, path);
	if (err)
		return err;
	if (size > STORE_OBJECT_MAX) {
		close(fd);
		return fm_error_set(FM_ETOOLARGE, "%s: %llu bytes is over the "
				    "object limit", path,
				    (unsigned long long)size);
	}
	err = store__fd_src_init(&src, fd, size, path, NULL);
	if (err)
		goto done;
	err = s->ops->put(s, key, &src.base, x);
done:
	store__fd_src_cleanup(&src);
	close(fd);
	return err;
}

int store_put_mem(struct store *s, const char *key, const void *data,
		  size_t len, const struct store_xfer *x)
{
	struct store__mem_src src;
	char hex[SHA256_HEX_LEN + 1];
	int err = store_key_check(key);

	if (err)
		return err;
	/* cheap next to the transfer, and lets S3 check the body */
	fm_sha256_hex(hex, data, len);
	store__mem_src_init(&src, data, len, hex);
	return s->ops->put(s, key, &src.base, x);
}

static uint64_t xfer_max(const struct store_xfer *x)
{
	return x && x->max_bytes ? x->max_bytes : STORE_OBJECT_MAX;
}

int store__get_into_file(struct store *s, const char *key, const char *path,
			 const char *expect_hex, uint64_t expect_size,
			 const struct store_xfer *x)
{
	struct store__file_sink k;
	int err;

	err = store__file_sink_open(&k, path, expect_hex, xfer_max(x),
				    expect_size, key);
	if (err)
		return err;
	err = s->ops->get(s, key, &k.base, x);
	if (err) {
		store__file_sink_abort(&k);
		return err;
	}
	return store__file_sink_commit(&k);
}

int store_get_file(struct store *s, const char *key, const char *path,
		   const struct store_xfer *x)
{
	int err = store_key_check(key);

	if (err)
		return err;
	return store__get_into_file(s, key, path, NULL, STORE_UNKNOWN, x);
}

int store_get_mem(struct store *s, const char *key, struct buf *out,
		  const struct store_xfer *x)
{
	struct store__mem_sink k;
	int err = store_key_check(key);

	if (err)
		return err;
	buf_reset(out);
	store__mem_sink_init(&k, out, xfer_max(x), key);
	err = s->ops->get(s, key, &k.base, x);
	if (err)
		return err;
	if (!out->data)
		return buf_reserve(out, 0); /* an empty object is "" */
	return FM_OK;
}

int store_head(struct store *s, const char *key, uint64_t *size_out)
{
	uint64_t size = 0;
	int err = store_key_check(key);

	if (err)
		return err;
	err = s->ops->head(s, key, &size);
	if (err)
		return err;
	if (size_out)
		*size_out = size;
	return FM_OK;
}

int store_delete(struct store *s, const char *key)
{
	int err = store_key_check(key);

	if (err)
		return err;
	return s->ops->del(s, key);
}

int store_list(struct store *s, const char *prefix, store_list_fn fn,
	       void *ud)
{
	if (!prefix)
		prefix = "";
	if (strlen(prefix) > STORE_KEY_MAX)
		return fm_error_set(FM_EINVAL, "list prefix is over %d bytes",
				    STORE_KEY_MAX);
	if (!s->ops->list)
		return fm_error_set(FM_EINVAL, "%s: this kind of store cannot "
				    "list its keys", s->url);
	return s->ops->list(s, prefix, fn, ud);
}
