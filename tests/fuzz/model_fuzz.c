/* The TensorFlow.js model.json reader over untrusted text: topology,
 * layer configs and the weights manifest. No weights directory exists,
 * so a topology that parses stops at its first .bin file. */
#include "engine/ml.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ml_model *m = NULL;

	if (ml_model_load_json(&m, (const char *)data, size,
			       "/nonexistent/fedmarket-fuzz") == 0)
		ml_model_free(m);
	return 0;
}
