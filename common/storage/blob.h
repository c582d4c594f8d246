/* Content-addressed blobs on top of a store: a blob's key is
 * "sha256/<hex of the sha256 of its bytes>". Every download is hashed as
 * it arrives and checked against the reference; a mismatch is an
 * FM_EUNPROCESSABLE error and leaves nothing behind, so a corrupted store
 * is never silently used. */
#ifndef FM_STORAGE_BLOB_H
#define FM_STORAGE_BLOB_H

#include "core/buf.h"
#include "core/sha256.h"
#include "storage/store.h"

#include <stdint.h>

/* A blob or bundle reference: the lowercase hex sha256 of the bytes. */
struct store_ref {
	char hex[SHA256_HEX_LEN + 1];
};

/* Parses a reference: exactly 64 hex digits, optionally after "sha256:";
 * upper case is accepted and stored as lower case. FM_EINVAL names what is
 * wrong (length, the first bad character and its position). */
int store_ref_parse(struct store_ref *out, const char *text);
/* The reference of n bytes at p. */
void store_ref_of(struct store_ref *out, const void *p, size_t n);
/* The store key of ref, "sha256/<hex>", into out. */
void store_blob_key(char out[8 + SHA256_HEX_LEN], const struct store_ref *ref);

/* Hashes the file at path (streamed) into out; *size_out (may be NULL)
 * gets its size. */
int store_hash_file(struct store_ref *out, uint64_t *size_out,
		    const char *path);

/* Stores the file at path as a blob and writes its reference to out and
 * its size to size_out (either may be NULL). A blob already present with the same size is not sent
 * again. The file is hashed again while it is sent; if it changed
 * meanwhile the upload is abandoned before its last byte (so no object
 * with the wrong content appears) and FM_ECONFLICT returned. */
int store_blob_put_file(struct store *s, struct store_ref *out,
			uint64_t *size_out, const char *path,
			const struct store_xfer *x);
int store_blob_put_mem(struct store *s, struct store_ref *out,
		       const void *data, size_t len);

/* Downloads blob ref into path (which appears only when complete and
 * verified). When expect_size is not UINT64_MAX a blob of another size is
 * refused before or while it downloads. */
int store_blob_get_file(struct store *s, const struct store_ref *ref,
			uint64_t expect_size, const char *path,
			const struct store_xfer *x);
/* Downloads and verifies blob ref into out (reset first, capped at
 * out->max). */
int store_blob_get_mem(struct store *s, const struct store_ref *ref,
		       struct buf *out);
/* FM_OK (and *size_out, may be NULL) when the blob is present,
 * FM_ENOTFOUND when not. Does not read the bytes. */
int store_blob_head(struct store *s, const struct store_ref *ref,
		    uint64_t *size_out);

#endif
