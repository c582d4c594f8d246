/* What services verify before they record anything: bundles in storage
 * (every file against its sha256), models loaded by the engine, and the
 * escrow funding on chain. Bundle layout: a task-assets bundle holds the
 * initial model under model/ (model_contributor, model_engineer) or the
 * items to label in items.json (data_annotator); a result bundle holds
 * model/ or labels.json the same way. */
#ifndef FM_SERVICE_CHECKS_H
#define FM_SERVICE_CHECKS_H

#include "market/spec.h"
#include "service/budget.h"
#include "service/svc.h"

#include <jansson.h>

/* Largest bundle a service downloads. */
#define CHECKS_BUNDLE_MAX ((uint64_t)1 << 30)

/* The assets bundle exists, verifies, and holds what the task kind needs
 * (a model the engine loads, or items.json). FM_EUNPROCESSABLE names the
 * problem; FM_EUNAVAIL when storage is down. */
int checks_assets(struct svc *s, const struct task_spec *spec);

/* The escrow holds this task's funding: funded by creator with
 * reward x max_assignments for the operator, deadline not before the
 * task's expiry. *funded is 0 when nothing is funded yet (the task waits
 * as a draft); a funding that disagrees is FM_EUNPROCESSABLE naming the
 * field. On success funding_tx (67 bytes) and funded_wei (80 bytes) are
 * filled. */
int checks_funding(struct svc *s, const struct task_spec *spec,
		   const char *creator, char *funding_tx, char *funded_wei,
		   int *funded);

/* Verifies a submitted result bundle against its task (JSON as the API
 * returns it); *out (new reference) records what was checked. The
 * bundle's manifest may declare task.spec.max_result_bytes at most; what
 * the check downloads (the bundle and the task's assets, each distinct
 * blob once) is reserved from budget (NULL: none) first, and a check
 * that does not fit now is FM_EUNAVAIL. */
int checks_result(json_t **out, struct svc *s, const json_t *task,
		  const char *bundle_ref, struct budget *budget);

/* Scoring reports are small JSON documents: more is refused. */
#define CHECKS_REPORT_MAX (8u << 20)

/* The scoring report blob ref_text, downloaded (verified against its
 * hash, at most CHECKS_REPORT_MAX bytes) and parsed into *out.
 * FM_EUNPROCESSABLE names what is wrong with it. */
int checks_report(json_t **out, struct svc *s, const char *ref_text);

#endif
