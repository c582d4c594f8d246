/* Contributors' data files: IDX (plain or gzip) and CSV, read from a
 * file as the engine reads them. The first byte picks the format. */
#include "engine/ml.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static int put(const uint8_t *p, size_t n)
{
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof path, "/tmp/fedmarket-fuzz-%ld.data",
			 (long)getpid());
	f = fopen(path, "wb");
	if (!f)
		return -1;
	if (n && fwrite(p, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const in[] = {"a", "b"}, *const out[] = {"y"};
	struct ml_dataset d;

	if (size < 1 || put(data + 1, size - 1))
		return 0;
	memset(&d, 0, sizeof d);
	if (data[0] & 1) {
		if (ml_dataset_load_csv(&d, path, in, 2, out, 1) == 0)
			ml_dataset_cleanup(&d);
	} else if (ml_dataset_load_idx(&d, path, NULL) == 0) {
		ml_dataset_cleanup(&d);
	}
	unlink(path);
	return 0;
}
