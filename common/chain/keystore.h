/* Ethereum keystore v3 files (the "Web3 Secret Storage" format of geth,
 * foundry's cast wallet and MetaMask): scrypt or PBKDF2-SHA256 derives a
 * key from the password; AES-128-CTR encrypts the private key;
 * keccak256(dk[16..32] || ciphertext) is the MAC that tells a wrong
 * password from a right one. Reads both KDFs, writes scrypt.
 *
 * The MAC does not cover the IV: a changed IV decrypts to another valid
 * key. The address field is what catches that, so ks_encrypt always
 * writes it and `keys import` adds it to files that lack it (cast's). */
#ifndef FM_CHAIN_KEYSTORE_H
#define FM_CHAIN_KEYSTORE_H

#include "chain/sig.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Largest keystore file read. */
#define KS_FILE_MAX (64u * 1024)

struct ks_params {
	uint64_t n; /* scrypt cost, a power of two */
	uint32_t r;
	uint32_t p;
};

/* geth's defaults: 256 MiB and about a second per use. */
#define KS_SCRYPT_STANDARD { 262144, 8, 1 }
/* geth's --lightkdf: 4 MiB, for tests and short-lived keys. */
#define KS_SCRYPT_LIGHT { 4096, 8, 6 }

/* Decrypts the keystore JSON text (len bytes). what names it in errors
 * (a file name). FM_EAUTH for a wrong password; FM_EINVAL naming the
 * field for a malformed or unsupported keystore, or one whose key does
 * not match its address field. */
int ks_decrypt(struct chain_key *out, const char *text, size_t len,
	       const char *password, const char *what);
int ks_load(struct chain_key *out, const char *path, const char *password);

/* Encrypts key into keystore v3 JSON appended to out. params NULL means
 * KS_SCRYPT_STANDARD. */
int ks_encrypt(struct buf *out, const struct chain_key *key,
	       const char *password, const struct ks_params *params);
/* Writes a new keystore file into dir (created with its parents, 0700,
 * if missing), named
 * like geth's "UTC--<time>--<address>", mode 0600, never replacing an
 * existing file. path_out (n bytes) gets its path. */
int ks_save(char *path_out, size_t n, const char *dir,
	    const struct chain_key *key, const char *password,
	    const struct ks_params *params);

/* Writes keystore text (already encrypted) as a new file for addr in
 * dir, as ks_save does. */
int ks_write(char *path_out, size_t n, const char *dir,
	     const uint8_t addr[CHAIN_ADDR_LEN], const char *text,
	     size_t len);

/* Reads a password file as geth and cast do: the first line, without its
 * line ending; at most KS_PASSWORD_MAX - 1 bytes. */
#define KS_PASSWORD_MAX 1024
int ks_password_from_file(char out[KS_PASSWORD_MAX], const char *path);

/* The address field of a keystore file, without the password.
 * FM_ENOTFOUND when the file has none (some tools omit it). */
int ks_peek_address(uint8_t out[CHAIN_ADDR_LEN], const char *path);

#endif
