/* Bundles as the services download them to check: the manifest's sizes
 * weighed before a byte is fetched, each distinct blob fetched and hashed
 * once (its other paths are hard links to it), every blob refused as
 * soon as it grows past its declared size. */
#ifndef FM_SERVICE_FETCH_H
#define FM_SERVICE_FETCH_H

#include "storage/store.h"

#include <jansson.h>
#include <stdint.h>

/* The bytes a checked manifest declares: *total over its files (a path
 * listed twice counts twice: that is what the bundle holds) and
 * *distinct over its distinct blobs (what a fetch writes). Either may be
 * NULL. Sums saturate at UINT64_MAX. */
void fetch_declared(const json_t *manifest, uint64_t *total,
		    uint64_t *distinct);

/* Downloads the files of a checked manifest into dir (an empty folder).
 * One sha256 declared with two sizes is FM_EUNPROCESSABLE. Messages name
 * the bundle's paths, never dir. */
int fetch_files(struct store *st, const json_t *manifest, const char *dir);

/* Rewrites the current error message without the server's folder dir:
 * "dir/model/x.bin" becomes "model/x.bin". Returns the current code. */
int fetch_scrub(const char *dir);

#endif
