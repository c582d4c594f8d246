#include "service/tmpdir.h"

#include "core/err.h"
#include "core/file.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *base_dir(void)
{
	const char *t = getenv("TMPDIR");

	return t && t[0] ? t : "/tmp";
}

/* 1 when the folder at path belongs to no living process: its lock can
 * be taken, or it has none and is older than stale_s. */
static int abandoned(const char *path, long stale_s)
{
	char lock[4096 + 8];
	struct stat st;
	int fd, dead;

	snprintf(lock, sizeof(lock), "%s/lock", path);
	fd = open(lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		       time(NULL) - st.st_mtime > stale_s;
	dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return dead;
}

/* The services' folders, and the check folders (and their hidden pull
 * siblings) of older versions; never the command-line programs'. */
static int ours(const char *name)
{
	return strncmp(name, "fedmarket-svc-", 14) == 0 ||
	       strncmp(name, "fedmarket-check-", 16) == 0 ||
	       strncmp(name, ".fedmarket-check-", 17) == 0;
}

static int sweep(const char *base, long stale_s)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char path[4096];
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!ours(e->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", base, e->d_name) >=
		    (int)sizeof(path))
			continue;
		if (!abandoned(path, stale_s))
			continue;
		file_remove_tree(path);
		n++;
	}
	closedir(d);
	return n;
}

int tmpdir_open(struct tmpdir *t, const char *name, long stale_s,
		int *removed)
{
	const char *base = base_dir();
	char lock[4096 + 8];
	int n;

	t->lock_fd = -1;
	n = sweep(base, stale_s);
	if (removed)
		*removed = n;
	if (snprintf(t->path, sizeof(t->path), "%s/fedmarket-svc-%s-XXXXXX", base,
		     name) >= (int)sizeof(t->path))
		return fm_error_set(FM_EINVAL, "TMPDIR: path too long");
	if (!mkdtemp(t->path)) {
		int e = errno;

		t->path[0] = '\0';
		return fm_error_set(FM_EIO, "%s: cannot create a temporary "
				    "folder: %s", base, strerror(e));
	}
	snprintf(lock, sizeof(lock), "%s/lock", t->path);
	t->lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (t->lock_fd < 0 || flock(t->lock_fd, LOCK_EX) != 0) {
		int e = errno;

		tmpdir_close(t);
		return fm_error_set(FM_EIO, "%s: %s", lock, strerror(e));
	}
	return FM_OK;
}

void tmpdir_close(struct tmpdir *t)
{
	file_remove_tree(t->path);
	t->path[0] = '\0';
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	t->lock_fd = -1;
}

int tmpdir_make(const struct tmpdir *t, char *out, size_t n,
		const char *prefix)
{
	if (!t->path[0])
		return fm_error_set(FM_EINTERNAL, "no temporary folder");
	if (snprintf(out, n, "%s/%sXXXXXX", t->path, prefix) >= (int)n)
		return fm_error_set(FM_EINVAL, "TMPDIR: path too long");
	if (!mkdtemp(out)) {
		int e = errno;

		out[0] = '\0';
		return fm_error_set(FM_EIO, "cannot create a temporary folder: "
				    "%s", strerror(e));
	}
	return FM_OK;
}
