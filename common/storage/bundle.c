/* Bundles: push a directory as blobs plus a manifest blob; pull one back
 * into a directory that appears only when every file is verified. */
#include "storage/bundle.h"

#include "core/err.h"
#include "core/fjson.h"
#include "storage/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WALK_DEPTH_MAX 64

struct entry {
	char *path; /* relative to the bundle root */
};

struct walk {
	const char *root;
	struct entry *v;
	size_t n, cap;
};

static int walk_add(struct walk *w, const char *rel)
{
	struct entry *v;

	if (w->n == STORE_BUNDLE_FILES_MAX)
		return fm_error_set(FM_ETOOLARGE, "%s: more than %d files",
				    w->root, STORE_BUNDLE_FILES_MAX);
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;

		v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return fm_error_set(FM_ENOMEM, "out of memory");
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n].path = strdup(rel);
	if (!w->v[w->n].path)
		return fm_error_set(FM_ENOMEM, "out of memory");
	w->n++;
	return FM_OK;
}

static void walk_cleanup(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].path);
	free(w->v);
	w->v = NULL;
	w->n = w->cap = 0;
}

/* Collects the regular files under dfd (rel is its path in the bundle,
 * "" at the root). Links and special files are refused, not followed. */
static int walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
	char sub[STORE_PATH_MAX + 2];
	struct dirent *e;
	DIR *d;
	int err = FM_OK;

	if (depth > WALK_DEPTH_MAX) {
		close(dfd);
		return fm_error_set(FM_EINVAL, "%s/%s: nested more than %d "
				    "directories deep", w->root, rel,
				    WALK_DEPTH_MAX);
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return fm_error_set(FM_EIO, "%s/%s: %s", w->root, rel,
				    strerror(errno));
	}
	while (!err && (errno = 0, e = readdir(d))) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
			     e->d_name) > STORE_PATH_MAX) {
			err = fm_error_set(FM_EINVAL, "%s/%.64s...: path is over"
					   " %d bytes", w->root, sub,
					   STORE_PATH_MAX);
			break;
		}
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			err = fm_error_set(FM_EIO, "%s/%s: %s", w->root, sub,
					   strerror(errno));
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			err = fm_error_set(FM_EINVAL, "%s/%s: symbolic links are "
					   "not allowed in a bundle", w->root,
					   sub);
		} else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), e->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);

			if (fd < 0)
				err = fm_error_set(FM_EIO, "%s/%s: %s", w->root,
						   sub, strerror(errno));
			else
				err = walk_dir(w, fd, sub, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			err = store_path_check(sub);
			if (!err)
				err = walk_add(w, sub);
		} else {
			err = fm_error_set(FM_EINVAL, "%s/%s: not a regular file "
					   "or directory", w->root, sub);
		}
	}
	if (!err && errno)
		err = fm_error_set(FM_EIO, "%s/%s: %s", w->root, rel,
				   strerror(errno));
	closedir(d);
	return err;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path,
		      ((const struct entry *)b)->path);
}

static int json_put(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v))
		return fm_error_set(FM_ENOMEM, "out of memory");
	return FM_OK;
}

static int manifest_head(json_t *m, const struct store_bundle_info *info)
{
	char now[32];
	const char *created = info->created;
	int err;

	if (!info->name || !info->version)
		return fm_error_set(FM_EINVAL, "bundle needs a name and a "
				    "version");
	if (!created) {
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
		created = now;
	}
	err = json_put(m, "manifest", json_integer(1));
	if (!err)
		err = json_put(m, "kind",
			       json_string(store_kind_name(info->kind)));
	if (!err)
		err = json_put(m, "name", json_string(info->name));
	if (!err)
		err = json_put(m, "version", json_string(info->version));
	if (!err)
		err = json_put(m, "created", json_string(created));
	if (!err && info->description)
		err = json_put(m, "description",
			       json_string(info->description));
	/* deep copies: the caller keeps its own */
	if (!err && info->model)
		err = json_put(m, "model", json_deep_copy(info->model));
	if (!err && info->meta)
		err = json_put(m, "meta", json_deep_copy(info->meta));
	return err;
}

int store_bundle_push(struct store *s, struct store_ref *out,
		      json_t **manifest_out, const char *dir,
		      const struct store_bundle_info *info,
		      const struct store_xfer *x)
{
	static const char zero_sha[] = "0000000000000000000000000000000000000"
				       "000000000000000000000000000";
	struct walk w = { .root = dir };
	struct buf body = BUF_INIT(STORE_MANIFEST_MAX);
	json_t *m = NULL, *files = NULL;
	char *text = NULL, *full = NULL;
	size_t full_cap = strlen(dir) + STORE_PATH_MAX + 2;
	struct store_ref ref;
	int dfd, err;

	if ((unsigned)info->kind > STORE_KIND_DATASET)
		return fm_error_set(FM_EINVAL, "bundle kind %d is unknown",
				    (int)info->kind);
	m = json_object();
	files = json_array();
	full = malloc(full_cap);
	if (!m || !files || !full) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	/* check what the caller gave before moving any bytes */
	err = manifest_head(m, info);
	if (err)
		goto done;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		err = fm_error_set(errno == ENOENT ? FM_ENOTFOUND : FM_EINVAL,
				   "%s: %s", dir, strerror(errno));
		goto done;
	}
	err = walk_dir(&w, dfd, "", 0);
	if (err)
		goto done;
	if (w.n == 0) {
		err = fm_error_set(FM_EINVAL, "%s: no files to push", dir);
		goto done;
	}
	qsort(w.v, w.n, sizeof(*w.v), entry_cmp);
	for (size_t i = 0; i < w.n; i++) {
		json_t *f = json_object();

		if (!f || json_array_append_new(files, f)) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			goto done;
		}
		err = json_put(f, "path", json_string(w.v[i].path));
		if (!err) /* until the real hash is known */
			err = json_put(f, "sha256", json_string(zero_sha));
		if (!err)
			err = json_put(f, "size", json_integer(0));
		if (err)
			goto done;
	}
	err = json_put(m, "files", json_incref(files));
	if (err)
		goto done;
	/* refuse a bad name, version or model before moving any bytes */
	err = store_manifest_check(m);
	if (err) {
		fm_error_prefix("manifest");
		goto done;
	}
	for (size_t i = 0; i < w.n; i++) {
		json_t *f = json_array_get(files, i);
		uint64_t size;

		snprintf(full, full_cap, "%s/%s", dir, w.v[i].path);
		err = store_blob_put_file(s, &ref, &size, full, x);
		if (!err)
			err = json_put(f, "sha256", json_string(ref.hex));
		if (!err)
			err = json_put(f, "size", json_integer((json_int_t)size));
		if (err)
			goto done;
	}
	text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = buf_appends(&body, text);
	if (!err)
		err = buf_appends(&body, "\n");
	if (err) {
		fm_error_prefix("manifest");
		goto done;
	}
	err = store_blob_put_mem(s, &ref, body.data, body.len);
	if (err)
		goto done;
	*out = ref;
	if (manifest_out) {
		*manifest_out = m;
		m = NULL;
	}
done:
	json_decref(m);
	json_decref(files);
	free(text);
	free(full);
	buf_cleanup(&body);
	walk_cleanup(&w);
	return err;
}

int store_bundle_manifest(struct store *s, const struct store_ref *ref,
			  json_t **out)
{
	struct buf b = BUF_INIT(STORE_MANIFEST_MAX);
	json_t *m = NULL;
	int err;

	err = store_blob_get_mem(s, ref, &b);
	if (!err)
		err = fj_parse(&m, b.data, b.len, "manifest");
	if (!err) {
		err = store_manifest_check(m);
		if (err)
			fm_error_prefix("manifest %s", ref->hex);
	}
	buf_cleanup(&b);
	if (err) {
		json_decref(m);
		return err;
	}
	*out = m;
	return FM_OK;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* rm -rf without following links: only ever called on our temp dir */
static void remove_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir may be missing or an empty directory; anything else is a conflict */
static int target_check(const char *dir)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int empty = 1;

	if (lstat(dir, &st) != 0) {
		if (errno == ENOENT)
			return FM_OK;
		return fm_error_set(FM_EIO, "%s: %s", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return fm_error_set(FM_ECONFLICT, "%s: exists and is not a "
				    "directory", dir);
	d = opendir(dir);
	if (!d)
		return fm_error_set(FM_EIO, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	if (!empty)
		return fm_error_set(FM_ECONFLICT, "%s: exists and is not empty",
				    dir);
	return FM_OK;
}

static int pull_files(struct store *s, const json_t *m, const char *tmp,
		      const struct store_xfer *x)
{
	const json_t *files = json_object_get(m, "files");
	size_t cap = strlen(tmp) + STORE_PATH_MAX + 2;
	char *full = malloc(cap);
	int err = FM_OK;

	if (!full)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; !err && i < json_array_size(files); i++) {
		const json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f,
								    "sha256"));
		json_int_t size = json_integer_value(json_object_get(f,
								     "size"));
		struct store_ref ref;

		/* the manifest was checked: path is confined, sha is hex */
		snprintf(full, cap, "%s/%s", tmp, path);
		err = store_ref_parse(&ref, sha);
		if (!err)
			err = store__mkdirs_for(full);
		if (!err)
			err = store_blob_get_file(s, &ref, (uint64_t)size, full,
						  x);
		if (err)
			fm_error_prefix("%s", path);
	}
	free(full);
	return err;
}

int store_bundle_pull(struct store *s, const struct store_ref *ref,
		      const char *dir, json_t **manifest_out,
		      const struct store_xfer *x)
{
	json_t *m = NULL;
	char *tmp = NULL;
	const char *base;
	size_t n = strlen(dir);
	int made = 0, err;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	err = store_bundle_manifest(s, ref, &m);
	if (!err)
		err = target_check(dir);
	if (err)
		goto done;
	tmp = malloc(n + 32);
	if (!tmp) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	/* a hidden sibling of dir, so the final rename stays on one fs */
	base = memrchr(dir, '/', n);
	base = base ? base + 1 : dir;
	sprintf(tmp, "%.*s.%.*s.pull-XXXXXX", (int)(base - dir), dir,
		(int)(dir + n - base), base);
	if (!mkdtemp(tmp)) {
		err = errno == ENOENT ?
		      fm_error_set(FM_ENOTFOUND, "%s: the folder it goes in "
				   "does not exist", dir) :
		      fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	made = 1;
	err = pull_files(s, m, tmp, x);
	if (err)
		goto done;
	if (chmod(tmp, 0755) != 0 || rename(tmp, dir) != 0) {
		err = fm_error_set(errno == ENOTEMPTY || errno == EEXIST ?
				   FM_ECONFLICT : FM_EIO, "%s: %s", dir,
				   strerror(errno));
		goto done;
	}
	made = 0;
	if (manifest_out) {
		*manifest_out = m;
		m = NULL;
	}
done:
	if (made)
		remove_tree(tmp);
	free(tmp);
	json_decref(m);
	return err;
}
