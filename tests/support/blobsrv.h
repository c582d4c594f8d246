/* A blob store over HTTP for the services' tests: serves GET and HEAD of
 * ROOT/<path> (the folder of a file:// store) on loopback, counts the
 * GETs of each path and the bytes sent, and can hold the downloads of
 * one path half-way until released, so a test can act while a service
 * is in the middle of a download. */
#ifndef FM_TESTS_BLOBSRV_H
#define FM_TESTS_BLOBSRV_H

#include <stdint.h>

struct blobsrv;

/* Serves root on 127.0.0.1:port. */
int blobsrv_start(struct blobsrv **out, const char *root, int port);
/* Releases held downloads, cuts the rest, and frees b (NULL is fine). */
void blobsrv_stop(struct blobsrv *b);

/* Downloads of path ("sha256/<hex>") from now on send half of the bytes,
 * then wait for blobsrv_release. */
void blobsrv_hold(struct blobsrv *b, const char *path);
void blobsrv_release(struct blobsrv *b);
/* Downloads of path begun so far, and those waiting in a hold now. */
int blobsrv_gets(struct blobsrv *b, const char *path);
int blobsrv_held(struct blobsrv *b);
/* Body bytes sent so far, all paths. */
uint64_t blobsrv_bytes(struct blobsrv *b);

#endif
