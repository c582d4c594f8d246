#include "service/fetch.h"

#include "core/err.h"
#include "storage/blob.h"
#include "storage/bundle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
	const char *sha, *path;
	uint64_t size;
	size_t idx;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int by_sha(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	int c = strcmp(a->sha, b->sha);

	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The manifest's files sorted by sha256, first listed first. */
static int entries(struct entry **out, size_t *n, const json_t *manifest)
{
	const json_t *files = json_object_get(manifest, "files");
	size_t k = json_array_size(files);
	struct entry *e = calloc(k ? k : 1, sizeof(*e));

	if (!e)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; i < k; i++) {
		const json_t *f = json_array_get(files, i);
		json_int_t sz = json_integer_value(json_object_get(f, "size"));

		e[i].sha = json_string_value(json_object_get(f, "sha256"));
		e[i].path = json_string_value(json_object_get(f, "path"));
		e[i].size = sz > 0 ? (uint64_t)sz : 0;
		e[i].idx = i;
		if (!e[i].sha || !e[i].path) {
			free(e);
			return fm_error_set(FM_EUNPROCESSABLE, "manifest: "
					    "files[%zu]: no path or sha256", i);
		}
	}
	qsort(e, k, sizeof(*e), by_sha);
	*out = e;
	*n = k;
	return FM_OK;
}

void fetch_declared(const json_t *manifest, uint64_t *total,
		    uint64_t *distinct)
{
	struct entry *e = NULL;
	uint64_t t = 0, d = 0;
	size_t n = 0;

	if (entries(&e, &n, manifest) == FM_OK) {
		for (size_t i = 0; i < n; i++) {
			t = sat_add(t, e[i].size);
			if (i == 0 || strcmp(e[i].sha, e[i - 1].sha))
				d = sat_add(d, e[i].size);
		}
	} else {
		t = d = UINT64_MAX;
	}
	free(e);
	if (total)
		*total = t;
	if (distinct)
		*distinct = d;
}

int fetch_scrub(const char *dir)
{
	char msg[FM_ERR_MSG_MAX], out[FM_ERR_MSG_MAX];
	size_t dl = strlen(dir), o = 0;
	int code = fm_error_code();

	if (!dl)
		return code;
	snprintf(msg, sizeof(msg), "%s", fm_error_msg());
	for (const char *p = msg; *p && o + 1 < sizeof(out);) {
		if (strncmp(p, dir, dl) == 0) {
			p += dl;
			if (*p == '/')
				p++;
			else if (o + 7 < sizeof(out))
				o += (size_t)snprintf(out + o, 7, "bundle");
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	return fm_error_set(code, "%s", out);
}

/* mkdir -p of the folders above path (which lies under a folder that
 * exists, the manifest's paths being confined). */
static int mkdirs_for(char *path, size_t root)
{
	for (char *s = path + root + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			*s = '/';
			return fm_error_set(FM_EIO, "cannot create a folder: %s",
					    strerror(errno));
		}
		*s = '/';
	}
	return FM_OK;
}

int fetch_files(struct store *st, const json_t *manifest, const char *dir)
{
	struct entry *e = NULL;
	size_t n = 0, root = strlen(dir), cap = root + STORE_PATH_MAX + 2;
	char *full = malloc(cap), *first = malloc(cap);
	const char *at = NULL;
	int err;

	if (!full || !first) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = entries(&e, &n, manifest);
	for (size_t i = 0; !err && i < n; i++) {
		int dup = i > 0 && strcmp(e[i].sha, e[i - 1].sha) == 0;
		struct store_ref ref;

		at = e[i].path;
		snprintf(full, cap, "%s/%s", dir, e[i].path);
		err = mkdirs_for(full, root);
		if (err)
			break;
		if (dup) {
			/* the same bytes again: no second download */
			if (e[i].size != e[i - 1].size)
				err = fm_error_set(FM_EUNPROCESSABLE,
						   "declared with %llu bytes, "
						   "and with %llu as %s",
						   (unsigned long long)e[i].size,
						   (unsigned long long)
							   e[i - 1].size,
						   e[i - 1].path);
			else if (link(first, full) != 0)
				err = fm_error_set(FM_EIO, "cannot link: %s",
						   strerror(errno));
			continue;
		}
		err = store_ref_parse(&ref, e[i].sha);
		if (!err)
			err = store_blob_get_file(st, &ref, e[i].size, full,
						  NULL);
		if (!err)
			memcpy(first, full, strlen(full) + 1);
	}
	if (err && at) {
		fm_error_prefix("%s", at);
		fetch_scrub(dir);
	}
done:
	free(e);
	free(full);
	free(first);
	return err;
}
