/* Private to common/storage: the backend table, byte sources and sinks,
 * streaming SHA-256 and temporary files. Not for use outside storage/. */
#ifndef FM_STORAGE_STORE_INT_H
#define FM_STORAGE_STORE_INT_H

#include "core/sha256.h"
#include "storage/store.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdint.h>

#define STORE_UNKNOWN UINT64_MAX

/* Streaming SHA-256. */
struct store__sha {
	EVP_MD_CTX *ctx;
};
int store__sha_init(struct store__sha *h);
void store__sha_update(struct store__sha *h, const void *p, size_t n);
/* Finishes into hex and restarts the context for reuse. */
void store__sha_final(struct store__sha *h, char hex[SHA256_HEX_LEN + 1]);
void store__sha_reset(struct store__sha *h);
void store__sha_cleanup(struct store__sha *h);

/* An upload body. read() gives up to n bytes, *got = 0 at the end. */
struct store__src {
	int (*read)(struct store__src *src, void *p, size_t n, size_t *got);
	int (*rewind)(struct store__src *src);
	uint64_t size;
	const char *sha256_hex; /* hash of the body when known, else NULL */
};

/* A download destination. write() fails to stop the transfer. */
struct store__sink {
	int (*write)(struct store__sink *k, const void *p, size_t n);
	int (*reset)(struct store__sink *k);
	uint64_t max;         /* refuse longer bodies */
	uint64_t expect_size; /* STORE_UNKNOWN or the exact length wanted */
	const char *what;     /* names the object in errors */
	uint64_t got;         /* bytes accepted so far */
};

/* The backends feed sinks only through these, which enforce max and
 * expect_size. */
int store__sink_put(struct store__sink *k, const void *p, size_t n);
/* Checks a length announced before the body (Content-Length, st_size). */
int store__sink_announce(struct store__sink *k, uint64_t len);
int store__sink_restart(struct store__sink *k);
/* Checks the body is complete. */
int store__sink_finish(struct store__sink *k);

/* Reads a file descriptor (not owned) from offset 0; with expect_hex set,
 * hashes what it reads and fails with FM_ECONFLICT at the end if the
 * bytes changed since they were hashed, before the last chunk is handed
 * over (so the upload never completes). */
struct store__fd_src {
	struct store__src base;
	int fd;
	uint64_t off;
	const char *path;
	const char *expect_hex;
	struct store__sha sha;
};
int store__fd_src_init(struct store__fd_src *s, int fd, uint64_t size,
		       const char *path, const char *expect_hex);
void store__fd_src_cleanup(struct store__fd_src *s);

struct store__mem_src {
	struct store__src base;
	const uint8_t *p;
	size_t off;
};
void store__mem_src_init(struct store__mem_src *s, const void *p, size_t n,
			 const char *sha256_hex);

/* A temporary file that becomes path on commit and vanishes otherwise
 * (also when the process dies, where O_TMPFILE is available). */
struct store__tmp {
	int fd;
	int anon;                 /* O_TMPFILE: not yet linked anywhere */
	char path[4096];          /* final path */
	char tmp_path[4096 + 32]; /* named temp file (fallback) */
};
int store__tmp_open(struct store__tmp *t, const char *path);
/* Moves the file into place; fsyncs the file and its directory when
 * durable is set. The temp is closed either way. */
int store__tmp_commit(struct store__tmp *t, int durable);
void store__tmp_abort(struct store__tmp *t);

/* Writes into a temp file that becomes path; with expect_hex, verifies
 * the bytes against it before committing. */
struct store__file_sink {
	struct store__sink base;
	struct store__tmp tmp;
	uint64_t len;
	const char *expect_hex;
	struct store__sha sha;
};
int store__file_sink_open(struct store__file_sink *k, const char *path,
			  const char *expect_hex, uint64_t max,
			  uint64_t expect_size, const char *what);
/* Verifies (when asked) and moves the file into place. */
int store__file_sink_commit(struct store__file_sink *k);
void store__file_sink_abort(struct store__file_sink *k);

/* Downloads key into path through a file sink (see above); x->max_bytes
 * bounds the size. */
int store__get_into_file(struct store *s, const char *key, const char *path,
			 const char *expect_hex, uint64_t expect_size,
			 const struct store_xfer *x);

struct store__mem_sink {
	struct store__sink base;
	struct buf *out;
};
void store__mem_sink_init(struct store__mem_sink *k, struct buf *out,
			  uint64_t max, const char *what);

/* Opens a regular file for reading; *size_out gets its size. */
int store__open_regular(int *fd_out, uint64_t *size_out, const char *path);

/* mkdir -p of the directories above path (not path itself). */
int store__mkdirs_for(const char *path);

struct store__ops {
	int (*put)(struct store *s, const char *key, struct store__src *src,
		   const struct store_xfer *x);
	int (*get)(struct store *s, const char *key, struct store__sink *k,
		   const struct store_xfer *x);
	int (*head)(struct store *s, const char *key, uint64_t *size);
	int (*del)(struct store *s, const char *key);
	int (*ensure)(struct store *s);
	int (*list)(struct store *s, const char *prefix, store_list_fn fn,
		    void *ud);
	void (*free)(struct store *s);
};

enum store__scheme { STORE_FILE, STORE_HTTP, STORE_S3 };

struct store {
	const struct store__ops *ops;
	enum store__scheme scheme;
	char url[1024];          /* for people: no password */
	struct store_limits lim;
	/* file:// */
	char root[4096];
	/* http(s):// and s3:// */
	CURL *curl;
	char base[2048];         /* URL that keys are appended to (ends '/') */
	char user[256];
	char pass[256];
	/* s3:// */
	char bucket[64];
	char prefix[512];        /* "" or "dir/" */
	char bucket_url[2048];   /* URL of the bucket itself */
	char sigv4[128];         /* "aws:amz:<region>:s3" */
	char region[64];
};

int store__file_open(struct store *s, const char *rest);
int store__http_open(struct store *s, const char *url);
/* Sets s->base (ending in '/'), s->url and the credentials from url;
 * what names the URL in errors. */
int store__http_split(struct store *s, const char *url, const char *what);
int store__s3_open(struct store *s, const char *rest,
		   const struct fm_config *cfg);

/* One HTTP exchange, retried on timeouts and 5xx answers. */
struct store__req {
	const char *method;      /* GET, PUT, HEAD or DELETE */
	const char *url;
	const char *payload_sha; /* s3: x-amz-content-sha256; NULL for http */
	struct store__src *src;  /* PUT body or NULL */
	struct store__sink *sink; /* body of a 2xx GET, or NULL */
	const struct store_xfer *x;
	/* answers */
	long status;
	uint64_t length;          /* Content-Length, STORE_UNKNOWN if none */
	char err_body[4096];      /* start of a non-2xx body */
	size_t err_len;
};
/* FM_OK once an answer arrived (any status: see r->status); otherwise the
 * transport error (FM_EUNAVAIL, FM_ETIMEOUT) or the sink's/source's. */
int store__http_do(struct store *s, struct store__req *r);
/* Frees the curl handle of an http(s):// or s3:// store. */
void store__http_free(struct store *s);
/* Maps a plain HTTP error status to an error naming what and the store. */
int store__http_status_error(const struct store *s, const char *what,
			     long status);

#endif
