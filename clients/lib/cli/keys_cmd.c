#include "cli/keys_cmd.h"

#include "cli/opt.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fjson.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PATH_MAX_ 4096
#define LIST_MAX 10000 /* keystore files looked at in one folder */

/* Options of the keys actions. */
struct keys_args {
	const char *dir;
	const char *password_file;
	const char *private_key_file;
	const char *key;      /* --key ADDR */
	const char *keystore; /* --keystore FILE */
	int json;
	int light;
	const char *file;     /* import's operand */
};

/* ---- terminal and files ---- */

static int prompt_tty(char out[KS_PASSWORD_MAX], const char *prompt)
{
	struct termios old, quiet;
	char line[KS_PASSWORD_MAX + 2];
	ssize_t got;
	size_t n = 0;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), err = FM_OK;

	if (fd < 0)
		return fm_error_set(FM_EINVAL, "no password: give "
				    "--password-file (there is no terminal "
				    "to ask on)");
	if (tcgetattr(fd, &old) != 0) {
		close(fd);
		return fm_error_set(FM_EINVAL, "no password: give "
				    "--password-file");
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the prompt is a courtesy; reading still works */
	}
	while (n < sizeof(line) - 1) {
		got = read(fd, line + n, 1);
		if (got <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) {
		/* as above */
	}
	close(fd);
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n >= KS_PASSWORD_MAX)
		err = fm_error_set(FM_EINVAL, "password longer than %d bytes",
				   KS_PASSWORD_MAX - 1);
	else
		memcpy(out, line, n + 1);
	sodium_memzero(line, sizeof(line));
	return err;
}

int keys_password(char out[KS_PASSWORD_MAX], const struct fm_config *cfg,
		  const char *password_file, int confirm)
{
	char again[KS_PASSWORD_MAX];
	char path[CFG_STR_MAX];
	int err;

	if (!password_file && cfg && cfg->password_file[0])
		password_file = cfg->password_file;
	if (password_file) {
		err = cfg_expand_path(path, sizeof(path), password_file);
		return err ? err : ks_password_from_file(out, path);
	}
	err = prompt_tty(out, "keystore password: ");
	if (err || !confirm)
		return err;
	err = prompt_tty(again, "repeat the password: ");
	if (err)
		goto done;
	if (strcmp(out, again) != 0)
		err = fm_error_set(FM_EINVAL, "the passwords differ");
done:
	sodium_memzero(again, sizeof(again));
	if (err)
		sodium_memzero(out, KS_PASSWORD_MAX);
	return err;
}

/* A hex private key from a file, or from stdin for "-". */
static int read_private_key(struct chain_key *out, const char *file)
{
	struct buf b = BUF_INIT(1024);
	char chunk[256];
	size_t got;
	int err = FM_OK;

	if (!file || strcmp(file, "-") == 0) {
		while (!err && (got = fread(chunk, 1, sizeof(chunk), stdin)))
			err = buf_append(&b, chunk, got);
		sodium_memzero(chunk, sizeof(chunk));
		if (err)
			err = fm_error_set(FM_EINVAL, "private key on stdin: "
					   "more than 1 KiB");
	} else {
		err = buf_read_file(&b, file);
	}
	if (err)
		goto done;
	err = chain_key_from_hex(out, b.data ? b.data : "");
	if (err && file && strcmp(file, "-") != 0)
		fm_error_prefix("%s", file);
done:
	if (b.data)
		sodium_memzero(b.data, b.len);
	buf_cleanup(&b);
	return err;
}

static int key_dir(char out[PATH_MAX_], const struct fm_config *cfg,
		   const char *dir)
{
	if (!dir)
		dir = cfg ? cfg->keystore_dir : "";
	if (!dir[0])
		return fm_error_set(FM_EINVAL, "no keystore folder: set "
				    "keystore_dir or give --keystore-dir");
	return cfg_expand_path(out, PATH_MAX_, dir);
}

/* ---- the folder of keystores ---- */

struct entry {
	char path[PATH_MAX_];
	uint8_t addr[CHAIN_ADDR_LEN];
	int has_addr;
};

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path,
		      ((const struct entry *)b)->path);
}

/* Keystore files of dir, sorted by name; a missing folder is empty. */
static int scan_dir(struct entry **out, size_t *n, const char *dir)
{
	struct entry *list = NULL, *grown;
	size_t count = 0, cap = 0;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);
	int err = FM_OK;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? FM_OK :
			fm_error_set(FM_EIO, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp"))
			continue;
		if (count == LIST_MAX) {
			err = fm_error_set(FM_ETOOLARGE, "%s: more than %d "
					   "files", dir, LIST_MAX);
			break;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				err = fm_error_set(FM_ENOMEM, "out of memory");
				break;
			}
			list = grown;
		}
		snprintf(list[count].path, PATH_MAX_, "%s/%s", dir, e->d_name);
		if (stat(list[count].path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		list[count].has_addr =
			ks_peek_address(list[count].addr, list[count].path) ==
			FM_OK;
		count++;
	}
	closedir(d);
	fm_error_clear();
	if (err) {
		free(list);
		return err;
	}
	if (count)
		qsort(list, count, sizeof(*list), by_path);
	*out = list;
	*n = count;
	return FM_OK;
}

int keys_find(char *path_out, size_t n, const char *dir, const char *which)
{
	struct entry *list = NULL;
	uint8_t want[CHAIN_ADDR_LEN];
	size_t count = 0, hit = SIZE_MAX;
	char hex[CHAIN_ADDR_HEX];
	int err;

	/* an address is 0x and 40 digits; anything else names a file */
	if (which && !(strlen(which) == 42 && !strncmp(which, "0x", 2))) {
		if (access(which, R_OK) != 0)
			return fm_error_set(FM_ENOTFOUND, "%s: %s", which,
					    strerror(errno));
		snprintf(path_out, n, "%s", which);
		return FM_OK;
	}
	if (which) {
		err = chain_address_parse(want, which, "--key");
		if (err)
			return err;
	}
	err = scan_dir(&list, &count, dir);
	if (err)
		return err;
	for (size_t i = 0; i < count; i++) {
		if (which && !(list[i].has_addr &&
			       !memcmp(list[i].addr, want, CHAIN_ADDR_LEN)))
			continue;
		if (hit != SIZE_MAX) {
			err = fm_error_set(FM_ECONFLICT, "%s holds several "
					   "keys%s: pick one with --key "
					   "ADDRESS or --keystore FILE", dir,
					   which ? " for that address" : "");
			goto done;
		}
		hit = i;
	}
	if (hit == SIZE_MAX) {
		if (which) {
			chain_address_to_hex(hex, want);
			err = fm_error_set(FM_ENOTFOUND, "no key for %s in %s",
					   hex, dir);
		} else {
			err = fm_error_set(FM_ENOTFOUND, "no key in %s: create "
					   "one with `keys new` or `keys "
					   "import`", dir);
		}
		goto done;
	}
	snprintf(path_out, n, "%s", list[hit].path);
done:
	free(list);
	return err;
}

int keys_identity_file(char *path_out, size_t n, const struct fm_config *cfg,
		       const char *which)
{
	char dir[PATH_MAX_];
	int err = key_dir(dir, cfg, NULL);

	if (err)
		return err;
	return keys_find(path_out, n, dir, which);
}

int keys_load_identity(struct chain_key *out, const struct fm_config *cfg,
		       const char *which, const char *password_file)
{
	char path[PATH_MAX_], pw[KS_PASSWORD_MAX];
	int err;

	err = keys_identity_file(path, sizeof(path), cfg, which);
	if (err)
		return err;
	err = keys_password(pw, cfg, password_file, 0);
	if (err)
		goto done;
	err = ks_load(out, path, pw);
done:
	sodium_memzero(pw, sizeof(pw));
	return err;
}

int keys_load_signer(struct chain_key *out, const struct fm_config *cfg,
		     const char *keystore, const char *password_file,
		     const char *private_key_file)
{
	char pw[KS_PASSWORD_MAX];
	int err;

	if (private_key_file && keystore)
		return fm_error_set(FM_EINVAL, "give either --keystore or "
				    "--private-key-file, not both");
	if (private_key_file)
		return read_private_key(out, private_key_file);
	if (!keystore)
		return fm_error_set(FM_EINVAL, "no key: give --keystore FILE "
				    "(with --password-file) or "
				    "--private-key-file FILE");
	err = keys_password(pw, cfg, password_file, 0);
	if (err)
		goto done;
	err = ks_load(out, keystore, pw);
done:
	sodium_memzero(pw, sizeof(pw));
	return err;
}

/* ---- output ---- */

static void print_key(const struct keys_args *a, const uint8_t addr[20],
		      const char *path)
{
	char hex[CHAIN_ADDR_HEX];

	chain_address_to_hex(hex, addr);
	if (a->json) {
		json_t *j = json_pack("{s:s, s:s}", "address", hex, "keystore",
				      path);

		if (j)
			json_dumpf(j, stdout, JSON_COMPACT);
		json_decref(j);
		fputc('\n', stdout);
	} else {
		printf("%s  %s\n", hex, path);
	}
}

/* ---- actions ---- */

/* Encrypts k under a new password into a keystore file of dir. */
static int save_key(char *path, size_t n, const char *dir,
		    const struct chain_key *k, const struct keys_args *a,
		    const struct fm_config *cfg)
{
	static const struct ks_params light = KS_SCRYPT_LIGHT;
	char pw[KS_PASSWORD_MAX];
	int err = keys_password(pw, cfg, a->password_file, 1);

	if (err)
		goto done;
	err = ks_save(path, n, dir, k, pw, a->light ? &light : NULL);
done:
	sodium_memzero(pw, sizeof(pw));
	return err;
}

/* Stores key under dir unless dir already holds it. */
static int store_new(const struct keys_args *a, const char *dir,
		     const struct chain_key *k, const char *text, size_t len,
		     const struct fm_config *cfg)
{
	char path[PATH_MAX_], hex[CHAIN_ADDR_HEX];
	int err;

	chain_address_to_hex(hex, k->addr);
	err = keys_find(path, sizeof(path), dir, hex);
	if (err == FM_OK)
		return fm_error_set(FM_ECONFLICT, "%s is already in %s (%s)",
				    hex, dir, path);
	if (err != FM_ENOTFOUND)
		return err;
	if (text)
		err = ks_write(path, sizeof(path), dir, k->addr, text, len);
	else
		err = save_key(path, sizeof(path), dir, k, a, cfg);
	if (err)
		return err;
	print_key(a, k->addr, path);
	return FM_OK;
}

static int do_new(const struct keys_args *a, const char *dir,
		  const struct fm_config *cfg)
{
	struct chain_key k;
	int err = chain_key_generate(&k);

	if (err)
		return err;
	err = store_new(a, dir, &k, NULL, 0, cfg);
	chain_key_wipe(&k);
	return err;
}

/* The keystore text with an address field, which cast wallet omits and
 * `keys list` and --key need; the encrypted part is left as it is. */
static int with_address(struct buf *out, const struct buf *text,
			const struct chain_key *k, const char *what)
{
	json_t *root = NULL;
	char hex[41], *dumped = NULL;
	int err = fj_parse(&root, text->data, text->len, what);

	if (err)
		return err;
	if (json_object_get(root, "address")) {
		err = buf_append(out, text->data, text->len);
		goto done;
	}
	hex_encode(hex, k->addr, CHAIN_ADDR_LEN);
	if (json_object_set_new(root, "address", json_string(hex)) ||
	    !(dumped = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS))) {
		err = fm_error_set(FM_ENOMEM, "out of memory");
		goto done;
	}
	err = buf_appends(out, dumped);
done:
	free(dumped);
	json_decref(root);
	return err;
}

static int do_import(const struct keys_args *a, const char *dir,
		     const struct fm_config *cfg)
{
	struct buf text = BUF_INIT(KS_FILE_MAX), kept = BUF_INIT(KS_FILE_MAX);
	char pw[KS_PASSWORD_MAX];
	struct chain_key k;
	int err;

	memset(&k, 0, sizeof(k));
	/* decrypting proves the file and the password before keeping it */
	err = buf_read_file(&text, a->file);
	if (err)
		goto done;
	err = keys_password(pw, cfg, a->password_file, 0);
	if (err)
		goto done;
	err = ks_decrypt(&k, text.data, text.len, pw, a->file);
	if (err)
		goto done;
	err = with_address(&kept, &text, &k, a->file);
	if (err)
		goto done;
	err = store_new(a, dir, &k, kept.data, kept.len, cfg);
done:
	sodium_memzero(pw, sizeof(pw));
	chain_key_wipe(&k);
	buf_cleanup(&text);
	buf_cleanup(&kept);
	return err;
}

static int do_import_private_key(const struct keys_args *a, const char *dir,
				 const struct fm_config *cfg)
{
	struct chain_key k;
	int err = read_private_key(&k, a->private_key_file);

	if (err)
		return err;
	err = store_new(a, dir, &k, NULL, 0, cfg);
	chain_key_wipe(&k);
	return err;
}

static int do_list(const struct keys_args *a, const char *dir,
		   const struct fm_config *cfg)
{
	struct entry *list = NULL;
	size_t count = 0;
	char hex[CHAIN_ADDR_HEX];
	json_t *arr = NULL, *root = NULL;
	int err = scan_dir(&list, &count, dir);

	(void)cfg;
	if (err)
		return err;
	if (a->json)
		arr = json_array();
	for (size_t i = 0; i < count; i++) {
		if (list[i].has_addr)
			chain_address_to_hex(hex, list[i].addr);
		else
			snprintf(hex, sizeof(hex), "unknown");
		if (arr)
			json_array_append_new(
				arr, json_pack("{s:s?, s:s}", "address",
					       list[i].has_addr ? hex : NULL,
					       "keystore", list[i].path));
		else
			printf("%s  %s\n", hex, list[i].path);
	}
	if (a->json) {
		root = json_pack("{s:o}", "keys", arr ? arr : json_array());
		if (root)
			json_dumpf(root, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(root);
	}
	free(list);
	return FM_OK;
}

/* The address of a keystore without an address field: only the key
 * itself can tell. */
static int address_of_key(uint8_t addr[CHAIN_ADDR_LEN], const char *path,
			  const struct keys_args *a,
			  const struct fm_config *cfg)
{
	char pw[KS_PASSWORD_MAX];
	struct chain_key k;
	int err;

	memset(&k, 0, sizeof(k));
	err = keys_password(pw, cfg, a->password_file, 0);
	if (err)
		goto done;
	err = ks_load(&k, path, pw);
	if (err)
		goto done;
	memcpy(addr, k.addr, CHAIN_ADDR_LEN);
done:
	sodium_memzero(pw, sizeof(pw));
	chain_key_wipe(&k);
	return err;
}

static int do_address(const struct keys_args *a, const char *dir,
		      const struct fm_config *cfg)
{
	char path[PATH_MAX_];
	uint8_t addr[CHAIN_ADDR_LEN];
	int err;

	if (a->key && a->keystore)
		return fm_error_set(FM_EINVAL, "give --key or --keystore, not "
				    "both");
	err = keys_find(path, sizeof(path), dir,
			a->keystore ? a->keystore : a->key);
	if (err)
		return err;
	err = ks_peek_address(addr, path);
	if (err == FM_ENOTFOUND)
		err = address_of_key(addr, path, a, cfg);
	if (err)
		return err;
	print_key(a, addr, path);
	return FM_OK;
}

/* An action of `keys`: its options and operands. */
struct keys_action {
	struct opt_command cmd;
	int (*run)(const struct keys_args *a, const char *dir,
		   const struct fm_config *cfg);
	const struct opt *opts;
	int operands;
};

/* Runs an action once its line is parsed: configuration, keystore
 * folder, then the action. */
static int run_action(const struct keys_action *act, const struct keys_args *a,
		      const char *config)
{
	struct fm_config cfg;
	char dir[PATH_MAX_];
	int err;

	err = cfg_load(&cfg, config);
	if (err)
		return err;
	err = key_dir(dir, &cfg, a->dir);
	if (err)
		return err;
	return act->run(a, dir, &cfg);
}

int keys_cmd_run(const char *prog, int argc, char **argv)
{
	struct keys_args a = { 0 };
	const char *config = NULL;
	char cmd[64];
	size_t k;
	int code;
	const struct opt common[] = {
		{ "--keystore-dir", OPT_STR, &a.dir, "DIR",
		  "keystore folder (default: keystore_dir)", 0, 0 },
		{ "--password-file", OPT_STR, &a.password_file, "FILE",
		  "keystore password (default: password_file, else asked)", 0,
		  0 },
		{ "--json", OPT_FLAG, &a.json, NULL, "machine-readable output",
		  0, 0 },
		{ "--config", OPT_STR, &config, "FILE",
		  "configuration file (default: ~/.config/fedmarket/config)",
		  0, 0 },
		OPT_END,
	};
	const struct opt none[] = { OPT_END };
	const struct opt light[] = {
		{ "--light", OPT_FLAG, &a.light, NULL,
		  "cheap key derivation (tests and demos only)", 0, 0 },
		OPT_END,
	};
	const struct opt private_key[] = {
		{ "--private-key-file", OPT_STR, &a.private_key_file, "FILE",
		  "hex private key (default: standard input)", 0, 0 },
		light[0],
		OPT_END,
	};
	const struct opt which[] = {
		{ "--key", OPT_STR, &a.key, "ADDR", "a key of the keystore "
		  "folder", 0, 0 },
		{ "--keystore", OPT_STR, &a.keystore, "FILE", "a keystore file",
		  0, 0 },
		OPT_END,
	};
	/* sorted by name */
	const struct keys_action actions[] = {
		{ { "address", "[--key ADDR | --keystore FILE]",
		    "the address a CLI signs with" }, do_address, which, 0 },
		{ { "import", "FILE", "add a keystore v3 file (geth, cast "
		    "wallet, MetaMask)" }, do_import, none, 1 },
		{ { "import-private-key", "[--private-key-file FILE]",
		    "a hex key from FILE or standard input (never from the "
		    "command line)" }, do_import_private_key, private_key, 0 },
		{ { "list", NULL, "addresses and files" }, do_list, none, 0 },
		{ { "new", "[--light]", "create a key and store its keystore" },
		  do_new, light, 0 },
	};
	const struct opt_prog p = {
		.prog = prog, .cmd = "keys",
		.about = "create, import and list signing keys (keystore v3)",
		.common = common, .cmds = OPT_ROWS(actions),
	};
	struct opt_spec s = { .prog = prog, .cmd = cmd, .common = common,
			      .pos = &a.file };

	if (!opt_command(&p, &argc, argv, &k, &code))
		return code;
	snprintf(cmd, sizeof(cmd), "keys %s", actions[k].cmd.name);
	s.synopsis = actions[k].cmd.args ? actions[k].cmd.args : "";
	s.opts = actions[k].opts;
	s.min_pos = s.max_pos = actions[k].operands;
	if (!opt_parse(&s, argc, argv, &code))
		return code;
	if (run_action(&actions[k], &a, config))
		return opt_fail(prog, cmd);
	return CLI_OK;
}
