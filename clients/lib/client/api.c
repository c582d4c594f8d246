#include "client/api.h"

#include "chain/reqsig.h"
#include "core/buf.h"
#include "core/err.h"
#include "http/client.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct api {
	struct httpc *http[API_NSERVICES];
	int unreachable; /* enum api_service, or -1 */
};

int api_new(struct api **out, const struct fm_config *cfg,
	    const struct chain_key *key)
{
	const char *urls[API_NSERVICES] = { cfg->taskd_url, cfg->assignd_url,
					    cfg->resultd_url,
					    cfg->validationd_url };
	struct api *a = calloc(1, sizeof(*a));
	int err = FM_OK;

	if (!a)
		return fm_error_set(FM_ENOMEM, "out of memory");
	a->unreachable = -1;
	for (int i = 0; i < API_NSERVICES && !err; i++) {
		struct httpc_opts o = HTTPC_OPTS_INIT;

		o.base_url = urls[i];
		o.timeout_ms = 120000; /* result checks download bundles */
		if (key) {
			o.sign = reqsig_httpc_sign;
			o.sign_arg = (void *)key;
		}
		err = httpc_new(&a->http[i], &o);
	}
	if (err) {
		api_free(a);
		return err;
	}
	*out = a;
	return FM_OK;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	for (int i = 0; i < API_NSERVICES; i++)
		httpc_free(a->http[i]);
	free(a);
}

int api_unreachable(const struct api *a)
{
	return a ? a->unreachable : -1;
}

const char *api_service_name(enum api_service svc)
{
	static const char *const names[API_NSERVICES] = {
		"taskd", "assignd", "resultd", "validationd" };

	return (unsigned)svc < API_NSERVICES ? names[svc] : "?";
}

/* Remembers which service did not answer, for the hint. */
static int noted(struct api *a, enum api_service svc, int err)
{
	a->unreachable = err == FM_EUNAVAIL || err == FM_ETIMEOUT ? (int)svc
								 : -1;
	return err;
}

int api_get(struct api *a, enum api_service svc, const char *path,
	    json_t **out)
{
	return noted(a, svc, httpc_get(a->http[svc], path, out));
}

int api_post(struct api *a, enum api_service svc, const char *path,
	     const json_t *body, json_t **out)
{
	uint8_t raw[16];
	char key[33];
	json_t *empty = NULL;
	int err;

	randombytes_buf(raw, sizeof(raw));
	hex_encode(key, raw, sizeof(raw));
	if (!body)
		body = empty = json_object();
	err = noted(a, svc, httpc_post(a->http[svc], path, body, key, out));
	json_decref(empty);
	return err;
}

int api_task(struct api *a, const char *task_id, json_t **out)
{
	char p[128];

	snprintf(p, sizeof(p), "/v1/tasks/%s", task_id);
	return api_get(a, API_TASKD, p, out);
}

int api_assignment(struct api *a, const char *id, json_t **out)
{
	char p[128];

	snprintf(p, sizeof(p), "/v1/assignments/%s", id);
	return api_get(a, API_ASSIGND, p, out);
}

int api_result(struct api *a, const char *id, json_t **out)
{
	char p[128];

	snprintf(p, sizeof(p), "/v1/results/%s", id);
	return api_get(a, API_RESULTD, p, out);
}

int api_model_version(struct api *a, const char *task_id, int version,
		      json_t **out)
{
	char p[128];
	json_t *list = NULL, *models, *m, *found = NULL;
	size_t i;
	int err;

	snprintf(p, sizeof(p), "/v1/tasks/%s/models", task_id);
	err = api_get(a, API_TASKD, p, &list);
	if (err)
		return err;
	models = json_object_get(list, "models");
	json_array_foreach(models, i, m) {
		int v = (int)json_integer_value(json_object_get(m, "version"));

		if (version < 0 ? (!found || v > json_integer_value(json_object_get(
							 found, "version")))
				: v == version)
			found = m;
	}
	if (!found)
		err = fm_error_set(FM_ENOTFOUND,
				   "task %s has no model version %d", task_id,
				   version);
	else
		*out = json_incref(found);
	json_decref(list);
	return err;
}
