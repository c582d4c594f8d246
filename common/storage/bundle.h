/* Bundles: a set of files described by a manifest JSON, itself stored as
 * a blob; the manifest blob's reference is the bundle's reference.
 * The manifest (schema/manifest.schema.json):
 *   { "manifest": 1,
 *     "kind": "model" | "result" | "task-assets" | "dataset",
 *     "name": "...", "version": "...", "created": "YYYY-MM-DDTHH:MM:SSZ",
 *     "description": "..."                                  (optional)
 *     "files": [ { "path": "a/b.bin", "sha256": "<64 hex>", "size": N } ],
 *     "model": { "format": "tfjs-layers",                   (kind model:
 *                "inputs":  [ { "name", "shape", "dtype" } ],  required;
 *                "outputs": [ { "name", "shape", "dtype" } ],  others:
 *                "parameters": N, "engine_version": "1.2" },   optional)
 *     "meta": { ... } }                                     (optional,
 *                                                           caller-owned)
 * shape is an array of 1..8 dimensions, each a positive integer or null
 * (any size); dtype is "float32", "int32" or "bool".
 * Paths are relative, '/'-separated, without empty, "." or ".."
 * components, backslashes or control characters; no path may be both a
 * file and a directory. The storage layer knows nothing of the engine:
 * callers fill "model" themselves. */
#ifndef FM_STORAGE_BUNDLE_H
#define FM_STORAGE_BUNDLE_H

#include "storage/blob.h"

#include <jansson.h>

#define STORE_MANIFEST_MAX (4u << 20)  /* bytes of manifest JSON */
#define STORE_BUNDLE_FILES_MAX 10000
#define STORE_PATH_MAX 1024            /* bytes of one bundle path */

enum store_kind {
	STORE_KIND_MODEL = 0,
	STORE_KIND_RESULT,
	STORE_KIND_TASK_ASSETS,
	STORE_KIND_DATASET,
};

/* "model", "result", "task-assets", "dataset". */
const char *store_kind_name(enum store_kind k);
/* FM_EINVAL naming the accepted kinds when name is none of them. */
int store_kind_parse(enum store_kind *out, const char *name);

/* FM_OK when path is a confined bundle path, else FM_EINVAL naming it. */
int store_path_check(const char *path);

/* Checks a manifest's whole shape; FM_EINVAL names the first bad field
 * by its path (e.g. "files[3].path: ..."). */
int store_manifest_check(const json_t *m);

/* What push writes into the manifest besides the files. Strings and JSON
 * are borrowed. */
struct store_bundle_info {
	enum store_kind kind;
	const char *name;
	const char *version;
	const char *created;     /* NULL: now */
	const char *description; /* NULL: none */
	const json_t *model;     /* required for STORE_KIND_MODEL */
	const json_t *meta;      /* NULL: none */
};

/* Uploads every regular file under dir as a blob, then the manifest, and
 * writes the bundle's reference to out. Symbolic links and special files
 * are refused (naming them), never followed. *manifest_out (may be NULL)
 * gets the manifest, owned by the caller (json_decref). */
int store_bundle_push(struct store *s, struct store_ref *out,
		      json_t **manifest_out, const char *dir,
		      const struct store_bundle_info *info,
		      const struct store_xfer *x);

/* Downloads and checks the manifest of bundle ref; *out is owned by the
 * caller (json_decref). */
int store_bundle_manifest(struct store *s, const struct store_ref *ref,
			  json_t **out);

/* Downloads bundle ref into dir, which must not exist or be empty. Every
 * file is verified; the files are gathered in a temporary directory
 * beside dir and moved into place only when all are there, so a failure
 * leaves nothing. *manifest_out (may be NULL) as above. */
int store_bundle_pull(struct store *s, const struct store_ref *ref,
		      const char *dir, json_t **manifest_out,
		      const struct store_xfer *x);

#endif
