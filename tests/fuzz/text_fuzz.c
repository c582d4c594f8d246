/* Short texts from users and the wire: blob references, addresses,
 * amounts, route patterns, bundle paths and signed-request headers. The
 * first byte picks the parser. */
#include "chain/reqsig.h"
#include "chain/sig.h"
#include "chain/u256.h"
#include "http/route.h"
#include "storage/blob.h"
#include "storage/bundle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits s at '\n' into at most n fields (the rest are NULL). */
static void fields(char *s, const char **f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		f[i] = s;
		if (!s)
			continue;
		s = strchr(s, '\n');
		if (s)
			*s++ = '\0';
	}
}

static void fuzz_reqsig(char *s)
{
	const char *f[7];
	struct reqsig_msg m;
	uint8_t who[CHAIN_ADDR_LEN];

	fields(s, f, 7);
	m.method = f[0] ? f[0] : "POST";
	m.target = f[1] ? f[1] : "/";
	m.body = f[2] ? f[2] : "";
	m.body_len = f[2] ? strlen(f[2]) : 0;
	(void)reqsig_verify(who, &m, f[3], f[4], f[5], f[6], 1765000000,
			    300);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_ref ref;
	struct chain_u256 v;
	struct http_pattern pat;
	uint8_t addr[CHAIN_ADDR_LEN];
	char *s;

	if (size < 1 || size > 8192)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 6) {
	case 0:
		(void)store_ref_parse(&ref, s);
		break;
	case 1:
		(void)chain_address_parse(addr, s, "address");
		break;
	case 2:
		(void)chain_u256_parse(&v, s, "amount");
		break;
	case 3:
		(void)http_pattern_parse(&pat, s);
		break;
	case 4:
		(void)store_path_check(s);
		break;
	default:
		fuzz_reqsig(s);
		break;
	}
	free(s);
	return 0;
}
