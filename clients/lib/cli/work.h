/* Task work the CLIs share: bundles pulled into a local cache and
 * pushed from folders, models and data read the way a task's spec says
 * (schema/task.schema.json "training"), and a task's training options. */
#ifndef FM_CLI_WORK_H
#define FM_CLI_WORK_H

#include "cli/cli.h"
#include "engine/ml.h"
#include "storage/blob.h"
#include "storage/bundle.h"

#include <jansson.h>
#include <stddef.h>

#define WORK_PATH_MAX 4096

/* A folder under work_dir (created with its parents): work_dir/sub. */
int work_dir(struct cli *c, char *out, size_t n, const char *sub);

/* Pulls bundle ref (verified file by file) into work_dir/bundles/<ref>
 * unless it is already there; out gets the folder. */
int work_pull(struct cli *c, char *out, size_t n, const char *ref);

/* The model folder of a pulled bundle: dir/model. FM_EUNPROCESSABLE
 * when the bundle holds no model. */
int work_model_dir(char *out, size_t n, const char *bundle_dir);

/* Pulls ref and loads the model it holds. */
int work_load_bundle_model(struct cli *c, const char *ref,
			   struct ml_model **out);

/* The manifest's "model" member for m: inputs, outputs, parameters and
 * engine version. New reference. */
int work_model_meta(json_t **out, const struct ml_model *m);

/* Pushes a bundle of kind made of m, saved as model/model.json and
 * model/weights.bin; meta (may be NULL) goes into the manifest's "meta".
 * out gets the reference. */
int work_push_model(struct cli *c, struct store_ref *out,
		    const struct ml_model *m, enum store_kind kind,
		    const char *name, const json_t *meta);

/* Pushes one JSON document as the only file (named file) of a bundle of
 * kind. */
/* The configured store, created if missing, ready to take pushes (the
 * CLI's failure hints now speak of storage). */
int work_store_for_push(struct cli *c, struct store **out);
int work_push_json(struct cli *c, struct store_ref *out, const json_t *doc,
		   const char *file, enum store_kind kind, const char *name);
/* Pushes doc as one blob (compact JSON, sorted keys): its reference is
 * the sha256 of those bytes, what a scoring report's hash on chain is. */
int work_push_blob_json(struct cli *c, struct store_ref *out,
			const json_t *doc);

/* The training options of a task spec (its "training" member); the loss
 * and from_logits are also what evaluation uses. */
int work_train_opts(struct ml_train_opts *o, const json_t *spec);

/* Loads data the way the spec's training.data says: for IDX, path is a
 * folder holding one *images* and one *labels* file, or
 * "IMAGES,LABELS"; for CSV, a file whose columns are the spec's inputs
 * and label_column. Preprocessing (scale, resize) is applied. */
int work_load_data(struct ml_dataset *out, const json_t *spec,
		   const char *path);

/* Loss and accuracy of m on d with the spec's loss. */
int work_evaluate(struct ml_model *m, const json_t *spec,
		  const struct ml_dataset *d, struct ml_eval *out);

/* The platform's chain settings from taskd's GET /v1/info: the escrow
 * address and the operator address (lowercase "0x..."). escrow_address
 * in the configuration, when set, must agree. */
int work_market_chain(struct cli *c, uint8_t escrow[CHAIN_ADDR_LEN],
		      char operator_hex[CHAIN_ADDR_HEX]);

#endif
