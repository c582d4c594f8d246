/* Bundles: push a directory as blobs plus a manifest blob; pull one back
 * into a directory that appears only when every file is verified. */
#include "storage/bundle.h"

#include "core/err.h"
#include "core/file.h"
#include "core/fjson.h"
#include "storage/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

static int walk_dir(struct walk *w, int dfd, const char *rel, int depth);

/* Entry name of directory dfd, at sub in the bundle: a regular file is
 * added, a directory walked. */
static int walk_entry(struct walk *w, int dfd, const char *name,
		      const char *sub, int depth)
{
	struct stat st;
	int fd, err;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return fm_error_set(FM_EIO, "%s/%s: %s", w->root, sub,
				    strerror(errno));
	if (S_ISLNK(st.st_mode))
		return fm_error_set(FM_EINVAL, "%s/%s: symbolic links are not "
				    "allowed in a bundle", w->root, sub);
	if (S_ISDIR(st.st_mode)) {
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
		if (fd < 0)
			return fm_error_set(FM_EIO, "%s/%s: %s", w->root, sub,
					    strerror(errno));
		return walk_dir(w, fd, sub, depth + 1);
	}
	if (!S_ISREG(st.st_mode))
		return fm_error_set(FM_EINVAL, "%s/%s: not a regular file or "
				    "directory", w->root, sub);
	err = store_path_check(sub);
	if (err)
		return err;
	return walk_add(w, sub);
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
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e)
			break;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
			     e->d_name) > STORE_PATH_MAX) {
			err = fm_error_set(FM_EINVAL, "%s/%.64s...: path is over"
					   " %d bytes", w->root, sub,
					   STORE_PATH_MAX);
			goto done;
		}
		err = walk_entry(w, dirfd(d), e->d_name, sub, depth);
		if (err)
			goto done;
	}
	/* readdir ends with NULL and errno set on a failure */
	if (errno)
		err = fm_error_set(FM_EIO, "%s/%s: %s", w->root, rel,
				   strerror(errno));
done:
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
	if (err)
		return err;
	err = json_put(m, "kind", json_string(store_kind_name(info->kind)));
	if (err)
		return err;
	err = json_put(m, "name", json_string(info->name));
	if (err)
		return err;
	err = json_put(m, "version", json_string(info->version));
	if (err)
		return err;
	err = json_put(m, "created", json_string(created));
	if (err)
		return err;
	if (info->description) {
		err = json_put(m, "description",
			       json_string(info->description));
		if (err)
			return err;
	}
	/* deep copies: the caller keeps its own */
	if (info->model) {
		err = json_put(m, "model", json_deep_copy(info->model));
		if (err)
			return err;
	}
	if (info->meta) {
		err = json_put(m, "meta", json_deep_copy(info->meta));
		if (err)
			return err;
	}
	return FM_OK;
}

/* The regular files under dir into w, sorted by path; at least one. */
static int collect_files(struct walk *w, const char *dir)
{
	int dfd, err;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fm_error_set(errno == ENOENT ? FM_ENOTFOUND : FM_EINVAL,
				    "%s: %s", dir, strerror(errno));
	err = walk_dir(w, dfd, "", 0);
	if (err)
		return err;
	if (w->n == 0)
		return fm_error_set(FM_EINVAL, "%s: no files to push", dir);
	qsort(w->v, w->n, sizeof(*w->v), entry_cmp);
	return FM_OK;
}

/* The sha256 and size of one manifest file entry. */
static int file_entry_set(json_t *f, const char *hex, uint64_t size)
{
	int err = json_put(f, "sha256", json_string(hex));

	if (err)
		return err;
	return json_put(f, "size", json_integer((json_int_t)size));
}

/* One entry per file, with a placeholder hash and size until the file
 * is pushed. */
static int files_json(json_t *files, const struct walk *w)
{
	static const char zero_sha[] = "0000000000000000000000000000000000000"
				       "000000000000000000000000000";
	int err;

	for (size_t i = 0; i < w->n; i++) {
		json_t *f = json_object();

		if (!f || json_array_append_new(files, f))
			return fm_error_set(FM_ENOMEM, "out of memory");
		err = json_put(f, "path", json_string(w->v[i].path));
		if (err)
			return err;
		err = file_entry_set(f, zero_sha, 0);
		if (err)
			return err;
	}
	return FM_OK;
}

/* Pushes every file as a blob and records its hash and size. */
static int push_files(struct store *s, json_t *files, const struct walk *w,
		      const char *dir, const struct store_xfer *x)
{
	size_t cap = strlen(dir) + STORE_PATH_MAX + 2;
	char *full = malloc(cap);
	struct store_ref ref;
	uint64_t size;
	int err = FM_OK;

	if (!full)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++) {
		snprintf(full, cap, "%s/%s", dir, w->v[i].path);
		err = store_blob_put_file(s, &ref, &size, full, x);
		if (err)
			goto done;
		err = file_entry_set(json_array_get(files, i), ref.hex, size);
		if (err)
			goto done;
	}
done:
	free(full);
	return err;
}

/* The manifest's text, as stored, into body. */
static int manifest_text(struct buf *body, const json_t *m)
{
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	int err;

	if (!text)
		return fm_error_set(FM_ENOMEM, "out of memory");
	err = buf_appends(body, text);
	if (err)
		goto done;
	err = buf_appends(body, "\n");
done:
	if (err)
		fm_error_prefix("manifest");
	free(text);
	return err;
}

/* The manifest as a blob. */
static int push_manifest(struct store *s, struct store_ref *out,
			 const json_t *m)
{
	struct buf body = BUF_INIT(STORE_MANIFEST_MAX);
	int err;

	err = manifest_text(&body, m);
	if (err)
		goto done;
	err = store_blob_put_mem(s, out, body.data, body.len);
done:
	buf_cleanup(&body);
	return err;
}

int store_bundle_push(struct store *s, struct store_ref *out,
		      json_t **manifest_out, const char *dir,
		      const struct store_bundle_info *info,
		      const struct store_xfer *x)
{
	struct walk w = { .root = dir };
	json_t *m = NULL, *files = NULL;
	struct store_ref ref;
	int err;

	if ((unsigned)info->kind > STORE_KIND_DATASET)
		return fm_error_set(FM_EINVAL, "bundle kind %d is unknown",
				    (int)info->kind);
	m = json_object();
	files = json_array();
	if (!m || !files) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	/* check what the caller gave before moving any bytes */
	err = manifest_head(m, info);
	if (err)
		goto done;
	err = collect_files(&w, dir);
	if (err)
		goto done;
	err = files_json(files, &w);
	if (err)
		goto done;
	err = json_put(m, "files", json_incref(files));
	if (err)
		goto done;
	/* refuse a bad name, version or model before moving any bytes */
	err = store_manifest_check(m);
	if (err) {
		fm_error_prefix("manifest");
		goto done;
	}
	err = push_files(s, files, &w, dir, x);
	if (err)
		goto done;
	err = push_manifest(s, &ref, m);
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
	if (err)
		goto done;
	err = fj_parse(&m, b.data, b.len, "manifest");
	if (err)
		goto done;
	err = store_manifest_check(m);
	if (err) {
		fm_error_prefix("manifest %s", ref->hex);
		goto done;
	}
	*out = m;
	m = NULL;
done:
	buf_cleanup(&b);
	json_decref(m);
	return err;
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

/* Manifest entry f into the file full. */
static int pull_file(struct store *s, const json_t *f, const char *full,
		     const struct store_xfer *x)
{
	const char *sha = json_string_value(json_object_get(f, "sha256"));
	json_int_t size = json_integer_value(json_object_get(f, "size"));
	struct store_ref ref;
	int err;

	err = store_ref_parse(&ref, sha);
	if (err)
		return err;
	err = store__mkdirs_for(full);
	if (err)
		return err;
	return store_blob_get_file(s, &ref, (uint64_t)size, full, x);
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
	for (size_t i = 0; i < json_array_size(files); i++) {
		const json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));

		/* the manifest was checked: path is confined, sha is hex */
		snprintf(full, cap, "%s/%s", tmp, path);
		err = pull_file(s, f, full, x);
		if (err) {
			fm_error_prefix("%s", path);
			goto done;
		}
	}
done:
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
	if (err)
		goto done;
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
		file_remove_tree(tmp);
	free(tmp);
	json_decref(m);
	return err;
}
