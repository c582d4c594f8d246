/* SHA-256 through OpenSSL's EVP (uses the CPU's SHA instructions). */
#ifndef FM_CORE_SHA256_H
#define FM_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

void fm_sha256(uint8_t out[32], const void *p, size_t n);
/* Lowercase hex digest into out (65 bytes). */
void fm_sha256_hex(char out[SHA256_HEX_LEN + 1], const void *p, size_t n);

#endif
