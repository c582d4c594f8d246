#include "core/sha256.h"

#include "core/buf.h"

#include <openssl/evp.h>
#include <sodium.h>

void fm_sha256(uint8_t out[32], const void *p, size_t n)
{
	unsigned int len = 32;

	/* EVP_Digest fails only when OpenSSL cannot allocate; libsodium's
	 * slower SHA-256 allocates nothing, so hashing never fails */
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
		crypto_hash_sha256(out, p, n);
}

void fm_sha256_hex(char out[SHA256_HEX_LEN + 1], const void *p, size_t n)
{
	uint8_t d[32];

	fm_sha256(d, p, n);
	hex_encode(out, d, sizeof(d));
}
