#include "chain/keystore.h"

#include "chain/keccak.h"
#include "core/err.h"
#include "core/file.h"
#include "core/fjson.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bounds on what a keystore may ask of us: memory 128 * r * n (512 MiB,
 * twice geth's default) and work n * r * p or c. */
#define SCRYPT_MEM_MAX (512ull << 20)
#define SCRYPT_WORK_MAX (1ull << 24)
#define PBKDF2_C_MAX 10000000
#define SALT_MAX 128

/* Reads a hex field of exactly n bytes, or of at most max bytes when n
 * is 0 (then *len gets the size). */
static int hex_field(uint8_t *out, size_t n, size_t max, size_t *len,
		     const json_t *obj, const char *path, const char *key)
{
	const char *s;
	size_t want;
	int err = fj_str(obj, path, key, 2 * (n ? n : max) + 2, &s);

	if (err)
		return err;
	if (s[0] == '0' && s[1] == 'x')
		s += 2;
	want = n ? n : strlen(s) / 2;
	if (strlen(s) != 2 * want || want == 0 || hex_decode(out, want, s))
		return fm_error_set(FM_EINVAL, "%s.%s: expected %s hex", path,
				    key, n ? "fixed-length" : "non-empty");
	if (len)
		*len = want;
	return FM_OK;
}

static int derive_scrypt(uint8_t dk[32], const json_t *kp, const char *pw,
			 const char *path)
{
	uint8_t salt[SALT_MAX];
	size_t salt_len;
	long long n, r, p, dklen;
	int err;

	err = fj_int(kp, path, "n", 2, 1LL << 40, &n);
	if (err)
		return err;
	err = fj_int(kp, path, "r", 1, 1 << 20, &r);
	if (err)
		return err;
	err = fj_int(kp, path, "p", 1, 1 << 20, &p);
	if (err)
		return err;
	err = fj_int(kp, path, "dklen", 32, 32, &dklen);
	if (err)
		return err;
	err = hex_field(salt, 0, SALT_MAX, &salt_len, kp, path, "salt");
	if (err)
		return err;
	if ((n & (n - 1)) != 0)
		return fm_error_set(FM_EINVAL, "%s.n: %lld is not a power of "
				    "two", path, n);
	if ((unsigned long long)(128 * r) * (unsigned long long)n >
		    SCRYPT_MEM_MAX ||
	    (unsigned long long)(n * r) * (unsigned long long)p >
		    SCRYPT_WORK_MAX)
		return fm_error_set(FM_EINVAL, "%s: scrypt n=%lld r=%lld "
				    "p=%lld asks for more than 512 MiB or 16x "
				    "the usual work", path, n, r, p);
	if (crypto_pwhash_scryptsalsa208sha256_ll(
		    (const uint8_t *)pw, strlen(pw), salt, salt_len,
		    (uint64_t)n, (uint32_t)r, (uint32_t)p, dk, 32) != 0)
		return fm_error_set(FM_ENOMEM, "%s: scrypt failed (out of "
				    "memory?)", path);
	return FM_OK;
}

static int derive_pbkdf2(uint8_t dk[32], const json_t *kp, const char *pw,
			 const char *path)
{
	uint8_t salt[SALT_MAX];
	size_t salt_len;
	long long c, dklen;
	const char *prf;
	int err;

	err = fj_int(kp, path, "c", 1, PBKDF2_C_MAX, &c);
	if (err)
		return err;
	err = fj_int(kp, path, "dklen", 32, 32, &dklen);
	if (err)
		return err;
	err = fj_str(kp, path, "prf", 32, &prf);
	if (err)
		return err;
	if (strcmp(prf, "hmac-sha256") != 0)
		return fm_error_set(FM_EINVAL, "%s.prf: \"%s\" is not "
				    "supported (only hmac-sha256)", path, prf);
	err = hex_field(salt, 0, SALT_MAX, &salt_len, kp, path, "salt");
	if (err)
		return err;
	if (!PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len,
			       (int)c, EVP_sha256(), 32, dk))
		return fm_error_set(FM_EINTERNAL, "%s: PBKDF2 failed", path);
	return FM_OK;
}

/* AES-128-CTR is its own inverse. */
static int aes128ctr(uint8_t *out, const uint8_t *in, size_t n,
		     const uint8_t key[16], const uint8_t iv[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len1 = 0, len2 = 0, ok;

	if (!c)
		return fm_error_set(FM_ENOMEM, "out of memory");
	ok = EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, key, iv) &&
	     EVP_EncryptUpdate(c, out, &len1, in, (int)n) &&
	     EVP_EncryptFinal_ex(c, out + len1, &len2);
	EVP_CIPHER_CTX_free(c);
	if (!ok || (size_t)(len1 + len2) != n)
		return fm_error_set(FM_EINTERNAL, "AES-128-CTR failed");
	return FM_OK;
}

static void mac_of(uint8_t out[32], const uint8_t dk[32],
		   const uint8_t *ct, size_t n)
{
	struct chain_keccak k;

	chain_keccak_init(&k);
	chain_keccak_update(&k, dk + 16, 16);
	chain_keccak_update(&k, ct, n);
	chain_keccak_final(&k, out);
}

/* The crypto section of a keystore: cipher parameters and the KDF. */
struct ks_crypto {
	uint8_t iv[16], ct[32], mac[32];
	const char *kdf;
	json_t *kdfparams;
};

static int read_crypto(struct ks_crypto *c, const json_t *root)
{
	json_t *crypto = NULL, *cp = NULL;
	const char *cipher;
	int err;

	/* geth writes "crypto"; some old tools "Crypto" */
	if (json_object_get(root, "Crypto") && !json_object_get(root, "crypto"))
		err = fj_obj(root, "", "Crypto", &crypto);
	else
		err = fj_obj(root, "", "crypto", &crypto);
	if (err)
		return err;
	err = fj_str(crypto, "crypto", "cipher", 32, &cipher);
	if (err)
		return err;
	if (strcmp(cipher, "aes-128-ctr") != 0)
		return fm_error_set(FM_EINVAL, "crypto.cipher: \"%s\" is not "
				    "supported (only aes-128-ctr)", cipher);
	err = fj_obj(crypto, "crypto", "cipherparams", &cp);
	if (err)
		return err;
	err = hex_field(c->iv, 16, 0, NULL, cp, "crypto.cipherparams", "iv");
	if (err)
		return err;
	err = hex_field(c->ct, 32, 0, NULL, crypto, "crypto", "ciphertext");
	if (err)
		return err;
	err = hex_field(c->mac, 32, 0, NULL, crypto, "crypto", "mac");
	if (err)
		return err;
	err = fj_str(crypto, "crypto", "kdf", 16, &c->kdf);
	if (err)
		return err;
	return fj_obj(crypto, "crypto", "kdfparams", &c->kdfparams);
}

static int derive(uint8_t dk[32], const struct ks_crypto *c,
		  const char *password)
{
	if (!strcmp(c->kdf, "scrypt"))
		return derive_scrypt(dk, c->kdfparams, password,
				     "crypto.kdfparams");
	if (!strcmp(c->kdf, "pbkdf2"))
		return derive_pbkdf2(dk, c->kdfparams, password,
				     "crypto.kdfparams");
	return fm_error_set(FM_EINVAL, "crypto.kdf: \"%s\" is not supported "
			    "(scrypt or pbkdf2)", c->kdf);
}

/* The file's address, when it gives one, must be the key's. */
static int check_address(const json_t *root, const struct chain_key *key)
{
	const char *addr_hex = NULL;
	uint8_t addr[20];
	int err;

	err = fj_str_opt(root, "", "address", 64, NULL, &addr_hex);
	if (err || !addr_hex)
		return err;
	err = chain_address_parse(addr, addr_hex, "address");
	if (err)
		return err;
	if (memcmp(addr, key->addr, 20) != 0)
		return fm_error_set(FM_EINVAL, "address: the decrypted key "
				    "belongs to another address");
	return FM_OK;
}

static int decrypt_json(struct chain_key *out, const json_t *root,
			const char *password)
{
	struct ks_crypto c;
	uint8_t dk[32], want[32], priv[32];
	long long version;
	int err;

	err = fj_int(root, "", "version", 3, 3, &version);
	if (err)
		return err;
	err = read_crypto(&c, root);
	if (err)
		return err;
	err = derive(dk, &c, password);
	if (err)
		goto done;
	mac_of(want, dk, c.ct, sizeof(c.ct));
	if (sodium_memcmp(want, c.mac, 32) != 0) {
		err = fm_error_set(FM_EAUTH, "wrong password (the MAC does not "
				   "match)");
		goto done;
	}
	err = aes128ctr(priv, c.ct, sizeof(c.ct), dk, c.iv);
	if (err)
		goto done;
	err = chain_key_from_priv(out, priv);
	if (err)
		goto done;
	err = check_address(root, out);
	if (err)
		chain_key_wipe(out);
done:
	sodium_memzero(dk, sizeof(dk));
	sodium_memzero(priv, sizeof(priv));
	return err;
}

int ks_decrypt(struct chain_key *out, const char *text, size_t len,
	       const char *password, const char *what)
{
	struct chain_key k;
	json_t *root = NULL;
	int err;

	if (len > KS_FILE_MAX)
		return fm_error_set(FM_ETOOLARGE, "%s: %zu bytes, a keystore "
				    "is at most %u", what, len, KS_FILE_MAX);
	err = fj_parse(&root, text, len, what);
	if (err)
		return err;
	err = decrypt_json(&k, root, password);
	json_decref(root);
	if (err)
		return fm_error_prefix("%s", what);
	*out = k;
	chain_key_wipe(&k);
	return FM_OK;
}

int ks_load(struct chain_key *out, const char *path, const char *password)
{
	struct buf b = BUF_INIT(KS_FILE_MAX);
	int err = buf_read_file(&b, path);

	if (err)
		goto done;
	err = ks_decrypt(out, b.data, b.len, password, path);
done:
	buf_cleanup(&b);
	return err;
}

static void uuid4(char out[37])
{
	uint8_t u[16];
	char hex[33];

	randombytes_buf(u, sizeof(u));
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	hex_encode(hex, u, 16);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
		 hex + 12, hex + 16, hex + 20);
}

int ks_encrypt(struct buf *out, const struct chain_key *key,
	       const char *password, const struct ks_params *params)
{
	static const struct ks_params standard = KS_SCRYPT_STANDARD;
	const struct ks_params *p = params ? params : &standard;
	uint8_t salt[32], iv[16], dk[32], ct[32], mac[32];
	char salt_hex[65], iv_hex[33], ct_hex[65], mac_hex[65], addr_hex[41];
	char id[37];
	int err;

	if (p->n < 2 || (p->n & (p->n - 1)) || p->r == 0 || p->p == 0 ||
	    128ull * p->r * p->n > SCRYPT_MEM_MAX)
		return fm_error_set(FM_EINVAL, "keystore: scrypt parameters "
				    "n=%llu r=%u p=%u are out of range",
				    (unsigned long long)p->n, p->r, p->p);
	if (sodium_init() < 0)
		return fm_error_set(FM_EINTERNAL, "libsodium: init failed");
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(iv, sizeof(iv));
	if (crypto_pwhash_scryptsalsa208sha256_ll(
		    (const uint8_t *)password, strlen(password), salt,
		    sizeof(salt), p->n, p->r, p->p, dk, sizeof(dk)) != 0)
		return fm_error_set(FM_ENOMEM, "keystore: scrypt failed (out "
				    "of memory?)");
	err = aes128ctr(ct, key->priv, 32, dk, iv);
	if (err)
		goto done;
	mac_of(mac, dk, ct, sizeof(ct));
	hex_encode(salt_hex, salt, sizeof(salt));
	hex_encode(iv_hex, iv, sizeof(iv));
	hex_encode(ct_hex, ct, sizeof(ct));
	hex_encode(mac_hex, mac, sizeof(mac));
	hex_encode(addr_hex, key->addr, 20);
	uuid4(id);
	err = buf_appendf(out,
		"{\"address\":\"%s\",\"crypto\":{\"cipher\":"
		"\"aes-128-ctr\",\"ciphertext\":\"%s\","
		"\"cipherparams\":{\"iv\":\"%s\"},\"kdf\":\"scrypt\","
		"\"kdfparams\":{\"dklen\":32,\"n\":%llu,\"p\":%u,\"r\":%u,\"salt\":"
		"\"%s\"},\"mac\":\"%s\"},\"id\":\"%s\",\"version\":3}",
		addr_hex, ct_hex, iv_hex, (unsigned long long)p->n,
		p->p, p->r, salt_hex, mac_hex, id);
done:
	sodium_memzero(dk, sizeof(dk));
	return err;
}

/* Writes n bytes of data to fd and syncs them (path names it). */
static int write_synced(int fd, const char *data, size_t n, const char *path)
{
	int err = file_write_all(fd, data, n, path);

	if (err)
		return err;
	if (fsync(fd) != 0)
		return fm_error_set(FM_EIO, "%s: %s", path, strerror(errno));
	return FM_OK;
}

/* Writes data to a new file: a temporary name first, then link() to the
 * final one, which fails rather than replace an existing file. */
static int write_new_file(const char *path, const char *data, size_t n)
{
	char tmp[4200];
	int fd, err;

	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
	err = write_synced(fd, data, n, tmp);
	/* a failed close is news only when nothing failed before it */
	if (close(fd) != 0 && err == FM_OK)
		err = fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
	if (err)
		goto done;
	if (link(tmp, path) != 0)
		err = fm_error_set(errno == EEXIST ? FM_ECONFLICT : FM_EIO,
				   "%s: %s", path, strerror(errno));
done:
	unlink(tmp);
	return err;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p))
		return fm_error_set(FM_EINVAL, "keystore directory: empty or "
				    "too long");
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return fm_error_set(FM_EIO, "%s: %s", p,
					    strerror(errno));
		p[i] = dir[i];
	}
	return FM_OK;
}

int ks_write(char *path_out, size_t n, const char *dir,
	     const uint8_t addr[CHAIN_ADDR_LEN], const char *text,
	     size_t len)
{
	char path[4096], stamp[64], addr_hex[41];
	struct timespec ts;
	struct tm tm;
	int err;

	err = make_dirs(dir);
	if (err)
		return err;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H-%M-%S", &tm);
	hex_encode(addr_hex, addr, 20);
	if (snprintf(path, sizeof(path), "%s/UTC--%s.%09ldZ--%s", dir, stamp,
		     ts.tv_nsec, addr_hex) >= (int)sizeof(path) ||
	    strlen(path) >= n)
		return fm_error_set(FM_EINVAL, "%s: keystore directory path "
				    "too long", dir);
	err = write_new_file(path, text, len);
	if (err)
		return err;
	snprintf(path_out, n, "%s", path);
	return FM_OK;
}

int ks_save(char *path_out, size_t n, const char *dir,
	    const struct chain_key *key, const char *password,
	    const struct ks_params *params)
{
	struct buf json = BUF_INIT(KS_FILE_MAX);
	int err = ks_encrypt(&json, key, password, params);

	if (err)
		goto done;
	err = ks_write(path_out, n, dir, key->addr, json.data, json.len);
done:
	buf_cleanup(&json);
	return err;
}

int ks_password_from_file(char out[KS_PASSWORD_MAX], const char *path)
{
	struct buf b = BUF_INIT(64 * 1024);
	size_t n;
	int err = buf_read_file(&b, path);

	if (err)
		return err;
	n = strcspn(b.data ? b.data : "", "\r\n");
	if (n >= KS_PASSWORD_MAX) {
		err = fm_error_set(FM_EINVAL, "%s: password longer than %d "
				   "bytes", path, KS_PASSWORD_MAX - 1);
	} else {
		memcpy(out, b.data ? b.data : "", n);
		out[n] = '\0';
	}
	if (b.data)
		sodium_memzero(b.data, b.len);
	buf_cleanup(&b);
	return err;
}

int ks_peek_address(uint8_t out[CHAIN_ADDR_LEN], const char *path)
{
	json_t *root = NULL;
	const char *a = NULL;
	int err = fj_load_file(&root, path, KS_FILE_MAX);

	if (err)
		goto done;
	err = fj_str_opt(root, "", "address", 64, NULL, &a);
	if (err)
		goto done;
	if (!a) {
		err = fm_error_set(FM_ENOTFOUND, "%s: no address field", path);
		goto done;
	}
	err = chain_address_parse(out, a, "address");
	if (err && err != FM_ENOTFOUND)
		fm_error_prefix("%s", path);
done:
	json_decref(root);
	return err;
}
