/* JSON documents users send: task specs (POST /v1/tasks) and bundle
 * manifests, through fj_parse like the services read them. */
#include "core/fjson.h"
#include "market/spec.h"
#include "storage/bundle.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task_spec spec;
	json_t *doc = NULL;

	if (fj_parse(&doc, (const char *)data, size, "fuzz input"))
		return 0;
	if (task_spec_parse(&spec, doc, 1765000000) == 0)
		task_spec_cleanup(&spec);
	(void)store_manifest_check(doc);
	json_decref(doc);
	return 0;
}
