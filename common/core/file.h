/* Small file-system helpers every side needs. */
#ifndef FM_CORE_FILE_H
#define FM_CORE_FILE_H

#include <stddef.h>

/* Writes all n bytes of p to fd, resuming after EINTR and short writes;
 * FM_EIO naming path otherwise. */
int file_write_all(int fd, const void *p, size_t n, const char *path);

/* rm -rf of dir without following symbolic links; a missing, NULL or
 * empty dir is not an error. Only for the program's own temporary
 * folders. */
void file_remove_tree(const char *dir);

#endif
