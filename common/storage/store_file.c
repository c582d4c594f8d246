/* file:// backend: keys are files under a root directory. Writes go to a
 * temp file that is fsynced and renamed over the key, so a reader sees
 * the old object or the new one, never a mix. */
#include "storage/store_int.h"

#include "core/err.h"
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_CHUNK (1u << 20)
#define FILE_LIST_DEPTH 32

static int key_path(const struct store *s, const char *key, char *out,
		    size_t n)
{
	if (snprintf(out, n, "%s/%s", s->root, key) >= (int)n)
		return fm_error_set(FM_EINVAL, "%s: path of key is too long",
				    key);
	return FM_OK;
}

static void progress(const struct store_xfer *x, uint64_t done,
		     uint64_t total)
{
	if (x && x->progress)
		x->progress(x->progress_ud, done, total);
}

static int file_put(struct store *s, const char *key, struct store__src *src,
		    const struct store_xfer *x)
{
	struct store__tmp t = { .fd = -1 };
	char path[4096];
	char *chunk = NULL;
	uint64_t sent = 0;
	size_t got;
	int err;

	err = key_path(s, key, path, sizeof(path));
	if (err)
		return err;
	err = store__mkdirs_for(path);
	if (err)
		return err;
	err = store__tmp_open(&t, path);
	if (err)
		return err;
	chunk = malloc(FILE_CHUNK);
	if (!chunk) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (;;) {
		err = src->read(src, chunk, FILE_CHUNK, &got);
		if (err)
			goto done;
		if (got == 0)
			break;
		err = file_write_all(t.fd, chunk, got, path);
		if (err)
			goto done;
		sent += got;
		progress(x, sent, src->size);
	}
	if (sent != src->size) {
		err = fm_error_set(FM_ECONFLICT, "%s: source gave %llu bytes, "
				   "expected %llu", key,
				   (unsigned long long)sent,
				   (unsigned long long)src->size);
		goto done;
	}
	err = store__tmp_commit(&t, 1);
done:
	store__tmp_abort(&t);
	free(chunk);
	return err;
}

static int open_key(const struct store *s, const char *key, int *fd_out,
		    uint64_t *size_out)
{
	char path[4096];
	struct stat st;
	int fd, err;

	err = key_path(s, key, path, sizeof(path));
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return fm_error_set(FM_ENOTFOUND, "%s: not found in %s",
					    key, s->url);
		return fm_error_set(FM_EIO, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fm_error_set(FM_ENOTFOUND, "%s: not found in %s "
				    "(not a regular file)", key, s->url);
	}
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return FM_OK;
}

static int file_get(struct store *s, const char *key, struct store__sink *k,
		    const struct store_xfer *x)
{
	char *chunk = NULL;
	uint64_t size;
	int fd = -1, err;

	err = open_key(s, key, &fd, &size);
	if (err)
		return err;
	err = store__sink_announce(k, size);
	if (err)
		goto done;
	chunk = malloc(FILE_CHUNK);
	if (!chunk) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	for (;;) {
		ssize_t r = read(fd, chunk, FILE_CHUNK);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = fm_error_set(FM_EIO, "%s: %s", key,
					   strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		err = store__sink_put(k, chunk, (size_t)r);
		if (err)
			goto done;
		progress(x, k->got, size);
	}
	err = store__sink_finish(k);
done:
	free(chunk);
	close(fd);
	return err;
}

static int file_head(struct store *s, const char *key, uint64_t *size)
{
	int fd, err = open_key(s, key, &fd, size);

	if (err)
		return err;
	close(fd);
	return FM_OK;
}

static int file_del(struct store *s, const char *key)
{
	char path[4096];
	int err = key_path(s, key, path, sizeof(path));

	if (err)
		return err;
	if (unlink(path) != 0 && errno != ENOENT && errno != ENOTDIR)
		return fm_error_set(FM_EIO, "%s: %s", path, strerror(errno));
	return FM_OK;
}

static int file_ensure(struct store *s)
{
	char probe[4096 + 8];

	/* mkdirs_for creates the parents of a path: name one inside root */
	snprintf(probe, sizeof(probe), "%s/x", s->root);
	return store__mkdirs_for(probe);
}

struct walk {
	const struct store *s;
	const char *prefix;
	store_list_fn fn;
	void *ud;
	char key[STORE_KEY_MAX + 2];
};

/* Walks dir (the key so far is w->key[0..len)); skips dot files (temps). */
static int walk_dir(struct walk *w, int dfd, size_t len, int depth)
{
	DIR *d = NULL;
	struct dirent *e;
	int err = FM_OK;

	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return fm_error_set(FM_EIO, "%s: %s", w->s->root,
				    strerror(errno));
	}
	while ((e = readdir(d))) {
		struct stat st;
		size_t n = strlen(e->d_name);
		size_t klen = len + n;

		if (e->d_name[0] == '.')
			continue;
		if (klen + 1 > STORE_KEY_MAX)
			continue;
		memcpy(w->key + len, e->d_name, n + 1);
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode) && depth < FILE_LIST_DEPTH) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);

			if (sub < 0)
				continue;
			w->key[klen] = '/';
			w->key[klen + 1] = '\0';
			err = walk_dir(w, sub, klen + 1, depth + 1);
		} else if (S_ISREG(st.st_mode) &&
			   strncmp(w->key, w->prefix, strlen(w->prefix)) == 0 &&
			   store_key_check(w->key) == FM_OK) {
			err = w->fn(w->ud, w->key, (uint64_t)st.st_size);
		}
		if (err)
			break;
	}
	closedir(d);
	return err;
}

static int file_list(struct store *s, const char *prefix, store_list_fn fn,
		     void *ud)
{
	struct walk w = { .s = s, .prefix = prefix, .fn = fn, .ud = ud };
	int dfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0) {
		if (errno == ENOENT)
			return FM_OK; /* nothing stored yet */
		return fm_error_set(FM_EIO, "%s: %s", s->root, strerror(errno));
	}
	w.key[0] = '\0';
	return walk_dir(&w, dfd, 0, 0);
}

static const struct store__ops file_ops = {
	.put = file_put,
	.get = file_get,
	.head = file_head,
	.del = file_del,
	.ensure = file_ensure,
	.list = file_list,
};

/* rest is what follows "file://": "/abs/dir", "localhost/abs/dir" or a
 * relative "./dir" (the default config uses one). */
int store__file_open(struct store *s, const char *rest)
{
	size_t n;

	if (strncmp(rest, "localhost/", 10) == 0)
		rest += 9;
	if (!rest[0])
		return fm_error_set(FM_EINVAL, "file:// URL has no directory");
	n = strlen(rest);
	while (n > 1 && rest[n - 1] == '/')
		n--;
	if (n >= sizeof(s->root) - STORE_KEY_MAX - 2)
		return fm_error_set(FM_EINVAL, "file:// directory is too long");
	memcpy(s->root, rest, n);
	s->root[n] = '\0';
	s->ops = &file_ops;
	s->scheme = STORE_FILE;
	snprintf(s->url, sizeof(s->url), "file://%s", s->root);
	return FM_OK;
}
