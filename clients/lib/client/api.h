/* A client of the marketplace's four services, for the CLIs and the
 * validator daemon: one signed HTTP client per service, with every POST
 * sent under a fresh Idempotency-Key so its retries are safe. */
#ifndef FM_CLIENT_API_H
#define FM_CLIENT_API_H

#include "chain/sig.h"
#include "core/cfg.h"

#include <jansson.h>

enum api_service { API_TASKD = 0, API_ASSIGND, API_RESULTD, API_VALIDATIOND,
		   API_NSERVICES };

struct api;

/* Base URLs come from cfg (taskd_url, ...). key signs POSTs; NULL makes a
 * read-only client. key is borrowed and must outlive the client. */
int api_new(struct api **out, const struct fm_config *cfg,
	    const struct chain_key *key);
void api_free(struct api *a);

/* The service whose answer made the last call fail for want of an
 * answer (down, overloaded, timed out), or -1: what a hint names. */
int api_unreachable(const struct api *a);
/* "taskd", "assignd", ... */
const char *api_service_name(enum api_service svc);

/* GET path; *out is the JSON answer (new reference). Errors carry the
 * service's message. */
int api_get(struct api *a, enum api_service svc, const char *path,
	    json_t **out);
/* Signed POST of body (NULL: {}). */
int api_post(struct api *a, enum api_service svc, const char *path,
	     const json_t *body, json_t **out);

/* Shortcuts for what every client does. */
int api_task(struct api *a, const char *task_id, json_t **out);
int api_assignment(struct api *a, const char *id, json_t **out);
int api_result(struct api *a, const char *id, json_t **out);
/* The version's entry of GET /v1/tasks/{id}/models: version < 0 is the
 * newest. */
int api_model_version(struct api *a, const char *task_id, int version,
		      json_t **out);

#endif
