/* Byte sources and sinks, streaming SHA-256 and temporary files shared by
 * the backends and the blob layer. */
#include "storage/store_int.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store__sha_init(struct store__sha *h)
{
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
		return fm_error_set(FM_ENOMEM, "cannot start a SHA-256");
	}
	return FM_OK;
}

void store__sha_update(struct store__sha *h, const void *p, size_t n)
{
	/* only fails on a bad context, which init rules out */
	FM_ASSERT(EVP_DigestUpdate(h->ctx, p, n) == 1);
}

void store__sha_final(struct store__sha *h, char hex[SHA256_HEX_LEN + 1])
{
	uint8_t d[32];
	unsigned int n = sizeof(d);

	FM_ASSERT(EVP_DigestFinal_ex(h->ctx, d, &n) == 1);
	hex_encode(hex, d, sizeof(d));
	store__sha_reset(h);
}

void store__sha_reset(struct store__sha *h)
{
	FM_ASSERT(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1);
}

void store__sha_cleanup(struct store__sha *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

/* ---- sources ---- */

static int fd_src_read(struct store__src *src, void *p, size_t n,
		       size_t *got)
{
	struct store__fd_src *s = (struct store__fd_src *)src;
	uint64_t left = s->base.size - s->off;
	char hex[SHA256_HEX_LEN + 1];
	ssize_t r;

	if (n > left)
		n = (size_t)left;
	*got = 0;
	if (n == 0)
		return FM_OK;
	do
		r = pread(s->fd, p, n, (off_t)s->off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return fm_error_set(FM_EIO, "%s: %s", s->path, strerror(errno));
	if (r == 0)
		return fm_error_set(FM_ECONFLICT,
				    "%s: file shrank to %llu bytes while being "
				    "sent (was %llu)", s->path,
				    (unsigned long long)s->off,
				    (unsigned long long)s->base.size);
	s->off += (uint64_t)r;
	if (s->expect_hex) {
		store__sha_update(&s->sha, p, (size_t)r);
		if (s->off == s->base.size) {
			store__sha_final(&s->sha, hex);
			if (strcmp(hex, s->expect_hex) != 0)
				return fm_error_set(FM_ECONFLICT,
						    "%s: file changed while "
						    "being sent", s->path);
		}
	}
	*got = (size_t)r;
	return FM_OK;
}

static int fd_src_rewind(struct store__src *src)
{
	struct store__fd_src *s = (struct store__fd_src *)src;

	s->off = 0;
	if (s->expect_hex)
		store__sha_reset(&s->sha);
	return FM_OK;
}

int store__fd_src_init(struct store__fd_src *s, int fd, uint64_t size,
		       const char *path, const char *expect_hex)
{
	memset(s, 0, sizeof(*s));
	s->base.read = fd_src_read;
	s->base.rewind = fd_src_rewind;
	s->base.size = size;
	s->base.sha256_hex = expect_hex;
	s->fd = fd;
	s->path = path;
	s->expect_hex = expect_hex;
	if (expect_hex)
		return store__sha_init(&s->sha);
	return FM_OK;
}

void store__fd_src_cleanup(struct store__fd_src *s)
{
	store__sha_cleanup(&s->sha);
}

static int mem_src_read(struct store__src *src, void *p, size_t n,
			size_t *got)
{
	struct store__mem_src *s = (struct store__mem_src *)src;
	size_t left = (size_t)s->base.size - s->off;

	if (n > left)
		n = left;
	if (n)
		memcpy(p, s->p + s->off, n);
	s->off += n;
	*got = n;
	return FM_OK;
}

static int mem_src_rewind(struct store__src *src)
{
	((struct store__mem_src *)src)->off = 0;
	return FM_OK;
}

void store__mem_src_init(struct store__mem_src *s, const void *p, size_t n,
			 const char *sha256_hex)
{
	memset(s, 0, sizeof(*s));
	s->base.read = mem_src_read;
	s->base.rewind = mem_src_rewind;
	s->base.size = n;
	s->base.sha256_hex = sha256_hex;
	s->p = p;
}

int store__open_regular(int *fd_out, uint64_t *size_out, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fm_error_set(errno == ENOENT ? FM_ENOTFOUND : FM_EIO,
				    "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fm_error_set(FM_EINVAL, "%s: not a regular file", path);
	}
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return FM_OK;
}

/* ---- temporary files ---- */

static void dir_of(char *out, size_t n, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, n, ".");
	else if (slash == path)
		snprintf(out, n, "/");
	else
		snprintf(out, n, "%.*s", (int)(slash - path), path);
}

int store__mkdirs_for(const char *path)
{
	char d[4096];
	size_t len;

	if (strlen(path) >= sizeof(d))
		return fm_error_set(FM_EINVAL, "%.64s...: path too long",
				    path);
	dir_of(d, sizeof(d), path);
	len = strlen(d);
	for (size_t i = 1; i <= len; i++) {
		if (d[i] != '/' && d[i] != '\0')
			continue;
		d[i] = '\0';
		if (mkdir(d, 0755) != 0 && errno != EEXIST) {
			int e = errno;

			return fm_error_set(FM_EIO, "%s: cannot create "
					    "directory: %s", d, strerror(e));
		}
		if (i < len)
			d[i] = '/';
	}
	return FM_OK;
}

/* O_TMPFILE files are published through /proc/self/fd; without /proc a
 * named temp file is used instead. */
static int tmp_can_anon(void)
{
	return access("/proc/self/fd", X_OK) == 0;
}

int store__tmp_open(struct store__tmp *t, const char *path)
{
	char d[4096];
	const char *base;

	t->fd = -1;
	t->anon = 0;
	t->tmp_path[0] = '\0';
	if (snprintf(t->path, sizeof(t->path), "%s", path) >=
	    (int)sizeof(t->path))
		return fm_error_set(FM_EINVAL, "%.64s...: path too long",
				    path);
	dir_of(d, sizeof(d), path);
	if (tmp_can_anon()) {
		t->fd = open(d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
		if (t->fd >= 0) {
			t->anon = 1;
			return FM_OK;
		}
		if (errno != EOPNOTSUPP && errno != EISDIR &&
		    errno != EINVAL)
			return fm_error_set(errno == ENOENT ? FM_ENOTFOUND :
					    FM_EIO, "%s: %s", d,
					    strerror(errno));
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	snprintf(t->tmp_path, sizeof(t->tmp_path), "%s/.%.200s.fm-XXXXXX", d,
		 base);
	t->fd = mkostemp(t->tmp_path, O_CLOEXEC);
	if (t->fd < 0) {
		int e = errno;

		t->tmp_path[0] = '\0';
		return fm_error_set(e == ENOENT ? FM_ENOTFOUND : FM_EIO,
				    "%s: %s", d, strerror(e));
	}
	fchmod(t->fd, 0644);
	return FM_OK;
}

static int fsync_dir_of(const char *path)
{
	char d[4096];
	int fd, rc;

	dir_of(d, sizeof(d), path);
	fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fm_error_set(FM_EIO, "%s: %s", d, strerror(errno));
	rc = fsync(fd);
	close(fd);
	if (rc != 0)
		return fm_error_set(FM_EIO, "%s: fsync: %s", d,
				    strerror(errno));
	return FM_OK;
}

int store__tmp_commit(struct store__tmp *t, int durable)
{
	char proc[64];
	int err = FM_OK;

	if (durable && fsync(t->fd) != 0) {
		err = fm_error_set(FM_EIO, "%s: fsync: %s", t->path,
				   strerror(errno));
		goto done;
	}
	if (t->anon) {
		/* link under a unique name, then rename over the target:
		 * linkat cannot replace an existing file */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
		for (int i = 0; i < 100; i++) {
			snprintf(t->tmp_path, sizeof(t->tmp_path),
				 "%s.fm-%ld-%d", t->path, (long)getpid(), i);
			if (linkat(AT_FDCWD, proc, AT_FDCWD, t->tmp_path,
				   AT_SYMLINK_FOLLOW) == 0)
				break;
			if (errno != EEXIST || i == 99) {
				err = fm_error_set(FM_EIO, "%s: %s",
						   t->tmp_path,
						   strerror(errno));
				t->tmp_path[0] = '\0';
				goto done;
			}
		}
	}
	if (rename(t->tmp_path, t->path) != 0) {
		err = fm_error_set(FM_EIO, "%s: %s", t->path, strerror(errno));
		goto done;
	}
	t->tmp_path[0] = '\0';
	if (durable)
		err = fsync_dir_of(t->path);
done:
	store__tmp_abort(t);
	return err;
}

void store__tmp_abort(struct store__tmp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->tmp_path[0])
		unlink(t->tmp_path);
	t->tmp_path[0] = '\0';
}

/* ---- sinks ---- */

static int file_sink_write(struct store__sink *sink, const void *p, size_t n)
{
	struct store__file_sink *k = (struct store__file_sink *)sink;
	const char *c = p;
	size_t left = n;

	while (left > 0) {
		ssize_t w = write(k->tmp.fd, c, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return fm_error_set(errno == ENOSPC ? FM_ETOOLARGE :
					    FM_EIO, "%s: %s", k->tmp.path,
					    strerror(errno));
		c += w;
		left -= (size_t)w;
	}
	if (k->expect_hex)
		store__sha_update(&k->sha, p, n);
	k->len += n;
	return FM_OK;
}

static int file_sink_reset(struct store__sink *sink)
{
	struct store__file_sink *k = (struct store__file_sink *)sink;

	if (ftruncate(k->tmp.fd, 0) != 0 || lseek(k->tmp.fd, 0, SEEK_SET) < 0)
		return fm_error_set(FM_EIO, "%s: %s", k->tmp.path,
				    strerror(errno));
	if (k->expect_hex)
		store__sha_reset(&k->sha);
	k->len = 0;
	return FM_OK;
}

int store__file_sink_open(struct store__file_sink *k, const char *path,
			  const char *expect_hex, uint64_t max,
			  uint64_t expect_size, const char *what)
{
	int err;

	memset(k, 0, sizeof(*k));
	k->tmp.fd = -1;
	k->base.write = file_sink_write;
	k->base.reset = file_sink_reset;
	k->base.max = max;
	k->base.expect_size = expect_size;
	k->base.what = what;
	k->expect_hex = expect_hex;
	if (expect_hex) {
		err = store__sha_init(&k->sha);
		if (err)
			return err;
	}
	err = store__tmp_open(&k->tmp, path);
	if (err)
		store__sha_cleanup(&k->sha);
	return err;
}

int store__file_sink_commit(struct store__file_sink *k)
{
	char hex[SHA256_HEX_LEN + 1];
	int err;

	if (k->expect_hex) {
		store__sha_final(&k->sha, hex);
		if (strcmp(hex, k->expect_hex) != 0) {
			store__file_sink_abort(k);
			return fm_error_set(FM_EUNPROCESSABLE,
					    "%s: content does not match its "
					    "sha256 (got %s): the store is "
					    "corrupted", k->base.what, hex);
		}
	}
	err = store__tmp_commit(&k->tmp, 0);
	store__sha_cleanup(&k->sha);
	return err;
}

void store__file_sink_abort(struct store__file_sink *k)
{
	store__tmp_abort(&k->tmp);
	store__sha_cleanup(&k->sha);
}

static int mem_sink_write(struct store__sink *sink, const void *p, size_t n)
{
	struct store__mem_sink *k = (struct store__mem_sink *)sink;
	int err = buf_append(k->out, p, n);

	if (err)
		fm_error_prefix("%s", k->base.what);
	return err;
}

static int mem_sink_reset(struct store__sink *sink)
{
	buf_reset(((struct store__mem_sink *)sink)->out);
	return FM_OK;
}

void store__mem_sink_init(struct store__mem_sink *k, struct buf *out,
			  uint64_t max, const char *what)
{
	memset(k, 0, sizeof(*k));
	k->base.write = mem_sink_write;
	k->base.reset = mem_sink_reset;
	k->base.max = max < out->max ? max : out->max;
	k->base.expect_size = STORE_UNKNOWN;
	k->base.what = what;
	k->out = out;
}

static int sink_size_error(const struct store__sink *k, uint64_t len)
{
	if (k->expect_size != STORE_UNKNOWN && len != k->expect_size)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "%s: object is %s%llu bytes, expected "
				    "%llu", k->what, len > k->expect_size ?
				    "at least " : "", (unsigned long long)len,
				    (unsigned long long)k->expect_size);
	return fm_error_set(FM_ETOOLARGE,
			    "%s: object is over the limit of %llu bytes",
			    k->what, (unsigned long long)k->max);
}

int store__sink_put(struct store__sink *k, const void *p, size_t n)
{
	int err;

	if (n > k->max - k->got)
		return sink_size_error(k, k->got + n);
	if (k->expect_size != STORE_UNKNOWN && k->got + n > k->expect_size)
		return sink_size_error(k, k->got + n);
	err = k->write(k, p, n);
	if (err)
		return err;
	k->got += n;
	return FM_OK;
}

int store__sink_announce(struct store__sink *k, uint64_t len)
{
	if (len == STORE_UNKNOWN)
		return FM_OK;
	if (len > k->max ||
	    (k->expect_size != STORE_UNKNOWN && len != k->expect_size))
		return sink_size_error(k, len);
	return FM_OK;
}

int store__sink_restart(struct store__sink *k)
{
	k->got = 0;
	return k->reset(k);
}

int store__sink_finish(struct store__sink *k)
{
	if (k->expect_size != STORE_UNKNOWN && k->got != k->expect_size)
		return fm_error_set(FM_EUNPROCESSABLE,
				    "%s: object is %llu bytes, expected %llu",
				    k->what, (unsigned long long)k->got,
				    (unsigned long long)k->expect_size);
	return FM_OK;
}
