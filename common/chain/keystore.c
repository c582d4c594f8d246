#include "chain/keystore.h"

#include "chain/keccak.h"
#include "core/err.h"
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
	if (!err)
		err = fj_int(kp, path, "r", 1, 1 << 20, &r);
	if (!err)
		err = fj_int(kp, path, "p", 1, 1 << 20, &p);
	if (!err)
		err = fj_int(kp, path, "dklen", 32, 32, &dklen);
	if (!err)
		err = hex_field(salt, 0, SALT_MAX, &salt_len, kp, path,
				"salt");
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
	if (!err)
		err = fj_int(kp, path, "dklen", 32, 32, &dklen);
	if (!err)
		err = fj_str(kp, path, "prf", 32, &prf);
	if (!err && strcmp(prf, "hmac-sha256") != 0)
		err = fm_error_set(FM_EINVAL, "%s.prf: \"%s\" is not "
				   "supported (only hmac-sha256)", path, prf);
	if (!err)
		err = hex_field(salt, 0, SALT_MAX, &salt_len, kp, path,
				"salt");
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

static int decrypt_json(struct chain_key *out, const json_t *root,
			const char *password)
{
	json_t *crypto = NULL, *cp = NULL, *kp = NULL;
	uint8_t dk[32], iv[16], ct[32], mac[32], want[32], priv[32], addr[20];
	const char *cipher, *kdf, *addr_hex;
	long long version;
	int err;

	err = fj_int(root, "", "version", 3, 3, &version);
	if (err)
		return err;
	/* geth writes "crypto"; some old tools "Crypto" */
	if (json_object_get(root, "Crypto") && !json_object_get(root, "crypto"))
		err = fj_obj(root, "", "Crypto", &crypto);
	else
		err = fj_obj(root, "", "crypto", &crypto);
	if (!err)
		err = fj_str(crypto, "crypto", "cipher", 32, &cipher);
	if (!err && strcmp(cipher, "aes-128-ctr") != 0)
		err = fm_error_set(FM_EINVAL, "crypto.cipher: \"%s\" is not "
				   "supported (only aes-128-ctr)", cipher);
	if (!err)
		err = fj_obj(crypto, "crypto", "cipherparams", &cp);
	if (!err)
		err = hex_field(iv, 16, 0, NULL, cp, "crypto.cipherparams",
				"iv");
	if (!err)
		err = hex_field(ct, 32, 0, NULL, crypto, "crypto",
				"ciphertext");
	if (!err)
		err = hex_field(mac, 32, 0, NULL, crypto, "crypto", "mac");
	if (!err)
		err = fj_str(crypto, "crypto", "kdf", 16, &kdf);
	if (!err)
		err = fj_obj(crypto, "crypto", "kdfparams", &kp);
	if (err)
		return err;
	if (!strcmp(kdf, "scrypt"))
		err = derive_scrypt(dk, kp, password, "crypto.kdfparams");
	else if (!strcmp(kdf, "pbkdf2"))
		err = derive_pbkdf2(dk, kp, password, "crypto.kdfparams");
	else
		err = fm_error_set(FM_EINVAL, "crypto.kdf: \"%s\" is not "
				   "supported (scrypt or pbkdf2)", kdf);
	if (err)
		goto done;
	mac_of(want, dk, ct, sizeof(ct));
	if (sodium_memcmp(want, mac, 32) != 0) {
		err = fm_error_set(FM_EAUTH, "wrong password (the MAC does not "
				   "match)");
		goto done;
	}
	err = aes128ctr(priv, ct, sizeof(ct), dk, iv);
	if (!err)
		err = chain_key_from_priv(out, priv);
	if (err)
		goto done;
	addr_hex = NULL;
	err = fj_str_opt(root, "", "address", 64, NULL, &addr_hex);
	if (!err && addr_hex) {
		err = chain_address_parse(addr, addr_hex, "address");
		if (!err && memcmp(addr, out->addr, 20) != 0)
			err = fm_error_set(FM_EINVAL, "address: the decrypted "
					   "key belongs to another address");
		if (err)
			chain_key_wipe(out);
	}
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

	if (!err)
		err = ks_decrypt(out, b.data, b.len, password, path);
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
	if (!err) {
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
	}
	sodium_memzero(dk, sizeof(dk));
	return err;
}

/* Writes data to a new file: a temporary name first, then link() to the
 * final one, which fails rather than replace an existing file. */
static int write_new_file(const char *path, const char *data, size_t n)
{
	char tmp[4200];
	int fd, err = FM_OK;
	size_t off = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err = fm_error_set(FM_EIO, "%s: %s", tmp,
					   strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (!err && fsync(fd) != 0)
		err = fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
	if (close(fd) != 0 && !err)
		err = fm_error_set(FM_EIO, "%s: %s", tmp, strerror(errno));
	if (!err && link(tmp, path) != 0)
		err = fm_error_set(errno == EEXIST ? FM_ECONFLICT : FM_EIO,
				   "%s: %s", path, strerror(errno));
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
	if (!err)
		snprintf(path_out, n, "%s", path);
	return err;
}

int ks_save(char *path_out, size_t n, const char *dir,
	    const struct chain_key *key, const char *password,
	    const struct ks_params *params)
{
	struct buf json = BUF_INIT(KS_FILE_MAX);
	int err = ks_encrypt(&json, key, password, params);

	if (!err)
		err = ks_write(path_out, n, dir, key->addr, json.data,
			       json.len);
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

	if (!err)
		err = fj_str_opt(root, "", "address", 64, NULL, &a);
	if (!err && !a)
		err = fm_error_set(FM_ENOTFOUND, "%s: no address field", path);
	if (!err)
		err = chain_address_parse(out, a, "address");
	if (err && err != FM_ENOTFOUND && a)
		fm_error_prefix("%s", path);
	json_decref(root);
	return err;
}
