/* The rules for storage keys, shared by the dispatcher (store.c) and the
 * backends that map keys onto paths and URLs. */
#include "storage/store.h"

#include "core/err.h"

#include <string.h>

static int key_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
	       c == '~';
}

int store_key_check(const char *key)
{
	size_t len, comp = 0;

	if (!key || !key[0])
		return fm_error_set(FM_EINVAL, "storage key is empty");
	len = strlen(key);
	if (len > STORE_KEY_MAX)
		return fm_error_set(FM_EINVAL, "storage key is %zu bytes, "
				    "limit is %d", len, STORE_KEY_MAX);
	for (size_t i = 0; i <= len; i++) {
		char c = key[i];

		if (c == '/' || c == '\0') {
			if (comp == 0)
				return fm_error_set(FM_EINVAL,
						    "storage key \"%.200s\": "
						    "empty component at "
						    "offset %zu", key, i);
			comp = 0;
			continue;
		}
		if (comp == 0 && c == '.')
			return fm_error_set(FM_EINVAL, "storage key \"%.200s\":"
					    " a component starts with '.' at "
					    "offset %zu", key, i);
		if (!key_char_ok(c))
			return fm_error_set(FM_EINVAL, "storage key \"%.200s\":"
					    " character 0x%02x at offset %zu is "
					    "not allowed (A-Z a-z 0-9 . _ ~ - /)",
					    key, (unsigned char)c, i);
		if (++comp > 255)
			return fm_error_set(FM_EINVAL, "storage key \"%.200s\":"
					    " a component is over 255 bytes",
					    key);
	}
	return FM_OK;
}
