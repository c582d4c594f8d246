/* Content-addressed blobs: keys are sha256/<hex>, downloads verified. */
#include "storage/blob.h"

#include "core/err.h"
#include "storage/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_CHUNK (1u << 20)

int store_ref_parse(struct store_ref *out, const char *text)
{
	const char *h = text;
	size_t n;

	if (!text || !text[0])
		return fm_error_set(FM_EINVAL, "reference is empty: expected "
				    "64 hex digits (a sha256)");
	if (strncmp(h, "sha256:", 7) == 0)
		h += 7;
	n = strlen(h);
	for (size_t i = 0; i < n && i < SHA256_HEX_LEN; i++) {
		char c = h[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return fm_error_set(FM_EINVAL, "reference \"%.80s\": "
					    "'%c' at position %zu is not a hex "
					    "digit", text,
					    c >= 0x20 && c < 0x7f ? c : '?',
					    (size_t)(h - text) + i);
	}
	if (n != SHA256_HEX_LEN)
		return fm_error_set(FM_EINVAL, "reference \"%.80s%s\": expected "
				    "64 hex digits (a sha256), got %zu", text,
				    strlen(text) > 80 ? "..." : "", n);
	for (size_t i = 0; i < n; i++)
		out->hex[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ?
				     h[i] - 'A' + 'a' : h[i]);
	out->hex[n] = '\0';
	return FM_OK;
}

void store_ref_of(struct store_ref *out, const void *p, size_t n)
{
	fm_sha256_hex(out->hex, p, n);
}

void store_blob_key(char out[8 + SHA256_HEX_LEN], const struct store_ref *ref)
{
	memcpy(out, "sha256/", 7);
	memcpy(out + 7, ref->hex, SHA256_HEX_LEN + 1);
}

static int hash_fd(struct store_ref *out, int fd, const char *path)
{
	struct store__sha h = { NULL };
	char *chunk = malloc(HASH_CHUNK);
	int err;

	if (!chunk)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = store__sha_init(&h);
	if (err)
		goto done;
	for (;;) {
		ssize_t r = read(fd, chunk, HASH_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = fm_error_set(FM_EIO, "%s: %s", path,
					   strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		store__sha_update(&h, chunk, (size_t)r);
	}
	store__sha_final(&h, out->hex);
done:
	store__sha_cleanup(&h);
	free(chunk);
	return err;
}

int store_hash_file(struct store_ref *out, uint64_t *size_out,
		    const char *path)
{
	uint64_t size = 0;
	int fd, err = store__open_regular(&fd, &size, path);

	if (err)
		return err;
	err = hash_fd(out, fd, path);
	close(fd);
	if (err)
		return err;
	if (size_out)
		*size_out = size;
	return FM_OK;
}

/* FM_OK with *present set when the blob is there with the right size. */
static int blob_present(struct store *s, const char *key, uint64_t size,
			int *present)
{
	uint64_t have;
	int err = s->ops->head(s, key, &have);

	*present = 0;
	if (err == FM_ENOTFOUND)
		return FM_OK;
	if (err)
		return err;
	*present = have == size;
	return FM_OK;
}

/* Uploads size bytes of fd under key; they must still hash to hex. */
static int put_fd(struct store *s, const char *key, int fd, uint64_t size,
		  const char *path, const char *hex,
		  const struct store_xfer *x)
{
	struct store__fd_src src;
	int err;

	err = store__fd_src_init(&src, fd, size, path, hex);
	if (err)
		goto done;
	err = s->ops->put(s, key, &src.base, x);
done:
	store__fd_src_cleanup(&src);
	return err;
}

int store_blob_put_file(struct store *s, struct store_ref *out,
			uint64_t *size_out, const char *path,
			const struct store_xfer *x)
{
	struct store_ref ref;
	char key[8 + SHA256_HEX_LEN];
	uint64_t size = 0;
	int fd = -1, present, err;

	err = store__open_regular(&fd, &size, path);
	if (err)
		return err;
	err = hash_fd(&ref, fd, path);
	if (err)
		goto done;
	store_blob_key(key, &ref);
	err = blob_present(s, key, size, &present);
	if (err)
		goto done;
	if (!present) {
		err = put_fd(s, key, fd, size, path, ref.hex, x);
		if (err)
			goto done;
	}
	if (out)
		*out = ref;
	if (size_out)
		*size_out = size;
done:
	close(fd);
	return err;
}

int store_blob_put_mem(struct store *s, struct store_ref *out,
		       const void *data, size_t len)
{
	struct store__mem_src src;
	struct store_ref ref;
	char key[8 + SHA256_HEX_LEN];
	int present, err;

	store_ref_of(&ref, data, len);
	store_blob_key(key, &ref);
	err = blob_present(s, key, len, &present);
	if (err)
		return err;
	if (!present) {
		store__mem_src_init(&src, data, len, ref.hex);
		err = s->ops->put(s, key, &src.base, NULL);
		if (err)
			return err;
	}
	if (out)
		*out = ref;
	return FM_OK;
}

int store_blob_get_file(struct store *s, const struct store_ref *ref,
			uint64_t expect_size, const char *path,
			const struct store_xfer *x)
{
	char key[8 + SHA256_HEX_LEN];

	store_blob_key(key, ref);
	return store__get_into_file(s, key, path, ref->hex,
				    expect_size == UINT64_MAX ? STORE_UNKNOWN :
				    expect_size, x);
}

int store_blob_get_mem(struct store *s, const struct store_ref *ref,
		       struct buf *out)
{
	struct store__mem_sink k;
	struct store_ref got;
	char key[8 + SHA256_HEX_LEN];
	int err;

	store_blob_key(key, ref);
	buf_reset(out);
	store__mem_sink_init(&k, out, out->max, key);
	err = s->ops->get(s, key, &k.base, NULL);
	if (err)
		return err;
	if (!out->data) {
		err = buf_reserve(out, 0);
		if (err)
			return err;
	}
	store_ref_of(&got, out->data, out->len);
	if (strcmp(got.hex, ref->hex) != 0) {
		buf_reset(out);
		return fm_error_set(FM_EUNPROCESSABLE, "%s: content does not "
				    "match its sha256 (got %s): the store is "
				    "corrupted", key, got.hex);
	}
	return FM_OK;
}

int store_blob_head(struct store *s, const struct store_ref *ref,
		    uint64_t *size_out)
{
	char key[8 + SHA256_HEX_LEN];
	uint64_t size = 0;
	int err;

	store_blob_key(key, ref);
	err = s->ops->head(s, key, &size);
	if (err)
		return err;
	if (size_out)
		*size_out = size;
	return FM_OK;
}
