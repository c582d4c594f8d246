/* A service's own temporary folder, $TMPDIR/fedmarket-svc-<name>-XXXXXX
 * (/tmp without TMPDIR), holding the folders its checks download into.
 * The process keeps a lock (flock) on the folder's "lock" file while it
 * lives, so that a process starting later can tell the folders of the
 * dead (killed mid-check) from those of the living, and removes them. */
#ifndef FM_SERVICE_TMPDIR_H
#define FM_SERVICE_TMPDIR_H

#include <stddef.h>

struct tmpdir {
	char path[4096];
	int lock_fd;
};

/* Removes the folders of processes that are gone (*removed counts them;
 * may be NULL), then creates and locks this process's folder. Folders
 * without a lock file (left by older versions) go once they are older
 * than stale_s. */
int tmpdir_open(struct tmpdir *t, const char *name, long stale_s,
		int *removed);
/* Removes the folder and its contents, and the lock; idempotent. */
void tmpdir_close(struct tmpdir *t);
/* A new empty folder inside t into out (n bytes): "<t>/<prefix>XXXXXX". */
int tmpdir_make(const struct tmpdir *t, char *out, size_t n,
		const char *prefix);

#endif
