#include "core/file.h"

#include "core/err.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int file_write_all(int fd, const void *p, size_t n, const char *path)
{
	const char *c = p;

	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, c + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return fm_error_set(FM_EIO, "%s: %s", path,
					    strerror(errno));
		off += (size_t)w;
	}
	return FM_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void file_remove_tree(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
