/* File-system helpers for tests. */
#ifndef FM_TESTS_DIRFX_H
#define FM_TESTS_DIRFX_H

/* Entries of dir other than . and .., or -1 when dir cannot be opened. */
int dirfx_count(const char *dir);

#endif
