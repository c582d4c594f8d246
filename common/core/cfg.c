#include "core/cfg.h"

#include "core/err.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define OFF(f) offsetof(struct fm_config, f)
#define STR(f) CFG_STR, OFF(f), sizeof(((struct fm_config *)0)->f)
#define INT(f) CFG_INT, OFF(f), 0
#define BOOL(f) CFG_BOOL, OFF(f), 0

/* Sorted by name. */
static const struct cfg_key keys[] = {
	{ "assignd_listen", STR(assignd_listen), "127.0.0.1:54391", 0, 0, 0,
	  "address:port assignd listens on" },
	{ "assignd_url", STR(assignd_url), "http://127.0.0.1:54391", 0, 0, 0,
	  "assignd base URL for clients" },
	{ "chain_id", INT(chain_id), "31337", 1, 1L << 40, 0,
	  "EVM chain id; transactions are signed for it" },
	{ "confirmations", INT(confirmations), "1", 1, 1000, 0,
	  "blocks before a payout counts as confirmed" },
	{ "database_url", STR(database_url),
	  "postgresql://postgres@127.0.0.1:54380/fedmarket", 0, 0, 1,
	  "libpq connection string" },
	{ "db_pool_size", INT(db_pool_size), "16", 1, 256, 0,
	  "PostgreSQL connections per process" },
	{ "draft_ttl_s", INT(draft_ttl_s), "86400", 60, 31536000, 0,
	  "a task posted unfunded expires when not funded within this long" },
	{ "escrow_address", STR(escrow_address), "", 0, 0, 0,
	  "escrow contract address (0x...)" },
	{ "http_max_connections", INT(http_max_connections), "16384", 16,
	  1000000, 0,
	  "open connections per service at most (the descriptor limit is "
	  "raised to its hard limit, and this is kept below it)" },
	{ "http_max_connections_per_ip", INT(http_max_connections_per_ip), "0",
	  0, 1000000, 0,
	  "open connections from one address at most; 0: no limit (set it "
	  "when no proxy stands in front, as a proxy's address is shared)" },
	{ "http_request_timeout_s", INT(http_request_timeout_s), "10", 1, 3600,
	  0, "a request's headers and body must arrive within this long of "
	  "its connection opening (or of the previous answer on it)" },
	{ "http_threads", INT(http_threads), "16", 1, 256, 0,
	  "HTTP worker threads per service (handlers wait on the database;"
	  " as many as db_pool_size)" },
	{ "idempotency_lease_s", INT(idempotency_lease_s), "300", 1, 86400, 0,
	  "how long a request in progress holds its Idempotency-Key (and "
	  "resultd an assignment); a retry after a crash runs once it passes" },
	{ "keystore_dir", STR(keystore_dir), "~/.config/fedmarket/keys", 0, 0,
	  0, "where CLIs keep keystore v3 files" },
	{ "log_json", BOOL(log_json), "false", 0, 0, 0,
	  "log one JSON object per line" },
	{ "log_level", STR(log_level), "info", 0, 0, 0,
	  "debug, info, warn, error or off" },
	{ "max_body_bytes", INT(max_body_bytes), "1048576", 1024,
	  1L << 30, 0, "largest request body a service accepts" },
	{ "max_drafts_per_creator", INT(max_drafts_per_creator), "20", 1,
	  100000, 0, "unfunded drafts one creator may hold at once" },
	{ "operator_address", STR(operator_address), "", 0, 0, 0,
	  "operator address (derived from the keystore when empty)" },
	{ "operator_keystore", STR(operator_keystore), "", 0, 0, 0,
	  "keystore v3 file of the payout key (validationd only)" },
	{ "operator_password", STR(operator_password), "", 0, 0, 1,
	  "operator keystore password (prefer operator_password_file)" },
	{ "operator_password_file", STR(operator_password_file), "", 0, 0, 0,
	  "file holding the operator keystore password" },
	{ "password_file", STR(password_file), "", 0, 0, 0,
	  "file holding a CLI keystore password" },
	{ "payout_batch_size", INT(payout_batch_size), "50", 1, 500, 0,
	  "most results in one releaseBatch transaction" },
	{ "payout_poll_ms", INT(payout_poll_ms), "500", 10, 600000, 0,
	  "payout worker poll interval" },
	{ "payout_stuck_timeout_s", INT(payout_stuck_timeout_s), "60", 1,
	  86400, 0, "replace a pending payout transaction after this long" },
	{ "result_checks_max", INT(result_checks_max), "4", 1, 256, 0,
	  "results resultd downloads and checks at once; more are answered "
	  "503 with Retry-After" },
	{ "result_tmp_max_bytes", INT(result_tmp_max_bytes), "4294967296",
	  1L << 20, 1L << 40, 0,
	  "temporary space resultd's checks take at once (reserved from the "
	  "sizes manifests declare, before downloading)" },
	{ "resultd_listen", STR(resultd_listen), "127.0.0.1:54392", 0, 0, 0,
	  "address:port resultd listens on" },
	{ "resultd_url", STR(resultd_url), "http://127.0.0.1:54392", 0, 0, 0,
	  "resultd base URL for clients" },
	{ "rpc_url", STR(rpc_url), "http://127.0.0.1:54381", 0, 0, 0,
	  "Ethereum JSON-RPC endpoint" },
	{ "s3_access_key", STR(s3_access_key), "", 0, 0, 1,
	  "S3 access key id" },
	{ "s3_endpoint", STR(s3_endpoint), "", 0, 0, 0,
	  "S3 endpoint URL (http://host:port)" },
	{ "s3_path_style", BOOL(s3_path_style), "true", 0, 0, 0,
	  "address buckets as endpoint/bucket rather than bucket.endpoint" },
	{ "s3_region", STR(s3_region), "us-east-1", 0, 0, 0, "S3 region" },
	{ "s3_secret_key", STR(s3_secret_key), "", 0, 0, 1,
	  "S3 secret access key" },
	{ "signature_max_skew_s", INT(signature_max_skew_s), "300", 1, 3600,
	  0, "accepted clock skew of signed requests" },
	{ "storage_url", STR(storage_url), "file://./var/store", 0, 0, 0,
	  "blob store: file://DIR, s3://bucket/prefix or http(s)://..." },
	{ "sweep_interval_s", INT(sweep_interval_s), "5", 1, 3600, 0,
	  "how often expired assignments and tasks are swept" },
	{ "taskd_listen", STR(taskd_listen), "127.0.0.1:54390", 0, 0, 0,
	  "address:port taskd listens on" },
	{ "taskd_url", STR(taskd_url), "http://127.0.0.1:54390", 0, 0, 0,
	  "taskd base URL for clients" },
	{ "validationd_listen", STR(validationd_listen), "127.0.0.1:54393",
	  0, 0, 0, "address:port validationd listens on" },
	{ "validationd_url", STR(validationd_url), "http://127.0.0.1:54393",
	  0, 0, 0, "validationd base URL for clients" },
	{ "work_dir", STR(work_dir), "~/.cache/fedmarket", 0, 0, 0,
	  "where CLIs keep pulled bundles and trained models" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

const struct cfg_key *cfg_keys(size_t *n)
{
	*n = NKEYS;
	return keys;
}

static const struct cfg_key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") ||
	    !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "0") ||
		 !strcmp(v, "no") || !strcmp(v, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int set_value(struct fm_config *c, const struct cfg_key *k,
		     const char *v, const char *origin)
{
	char *field = (char *)c + k->offset;

	switch (k->type) {
	case CFG_STR:
		if (strlen(v) >= k->size)
			return fm_error_set(FM_EINVAL,
					    "%s: %s: longer than %zu bytes",
					    origin, k->name, k->size - 1);
		memcpy(field, v, strlen(v) + 1);
		break;
	case CFG_INT: {
		char *end;
		long x;

		errno = 0;
		x = strtol(v, &end, 10);
		if (errno || end == v || *end || x < k->min || x > k->max)
			return fm_error_set(FM_EINVAL,
					    "%s: %s: expected integer in "
					    "[%ld, %ld], got \"%s\"",
					    origin, k->name, k->min, k->max,
					    v);
		*(long *)(void *)field = x;
		break;
	}
	case CFG_BOOL:
		if (parse_bool(v, (int *)(void *)field))
			return fm_error_set(FM_EINVAL,
					    "%s: %s: expected true or false, "
					    "got \"%s\"",
					    origin, k->name, v);
		break;
	}
	return FM_OK;
}

int cfg_set(struct fm_config *c, const char *key, const char *value,
	    const char *origin)
{
	const struct cfg_key *k = find_key(key);

	if (!k)
		return fm_error_set(FM_EINVAL, "%s: unknown setting \"%s\"",
				    origin, key);
	return set_value(c, k, value, origin);
}

int cfg_get(const struct fm_config *c, const char *key, char *out, size_t n)
{
	const struct cfg_key *k = find_key(key);
	const char *field;

	if (!k)
		return fm_error_set(FM_EINVAL, "unknown setting \"%s\"", key);
	field = (const char *)c + k->offset;
	if (k->secret && k->type == CFG_STR && field[0])
		snprintf(out, n, "***");
	else if (k->type == CFG_STR)
		snprintf(out, n, "%s", field);
	else if (k->type == CFG_INT)
		snprintf(out, n, "%ld", *(const long *)(const void *)field);
	else
		snprintf(out, n, "%s",
			 *(const int *)(const void *)field ? "true" : "false");
	return FM_OK;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_file(struct fm_config *c, const char *path, int must_exist)
{
	char line[2048], origin[600];
	FILE *f = fopen(path, "r");
	int lineno = 0, err = FM_OK;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return FM_OK;
		return fm_error_set(FM_EINVAL, "config file %s: %s", path,
				    strerror(errno));
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *val;

		lineno++;
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
		eq = strchr(s, '=');
		if (!eq) {
			err = fm_error_set(FM_EINVAL,
					   "%s: expected \"key = value\"",
					   origin);
			break;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		err = cfg_set(c, key, val, origin);
		if (err)
			break;
	}
	fclose(f);
	return err;
}

static int load_env(struct fm_config *c)
{
	static const char prefix[] = "FEDMARKET_";

	for (char **e = environ; e && *e; e++) {
		char name[128], origin[160];
		const char *eq;
		size_t len;

		if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0)
			continue;
		eq = strchr(*e, '=');
		if (!eq)
			continue;
		len = (size_t)(eq - *e) - (sizeof(prefix) - 1);
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		for (size_t i = 0; i < len; i++)
			name[i] = (char)tolower(
				(unsigned char)(*e)[sizeof(prefix) - 1 + i]);
		name[len] = '\0';
		/* FEDMARKET_CONFIG names the file, not a setting */
		if (strcmp(name, "config") == 0)
			continue;
		snprintf(origin, sizeof(origin), "environment FEDMARKET_%.*s",
			 (int)len, *e + sizeof(prefix) - 1);
		int err = cfg_set(c, name, eq + 1, origin);
		if (err)
			return err;
	}
	return FM_OK;
}

int cfg_load(struct fm_config *out, const char *file)
{
	struct fm_config c;
	char path[1024];
	int err;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < NKEYS; i++) {
		err = set_value(&c, &keys[i], keys[i].def, "default");
		FM_ASSERT(err == FM_OK);
	}
	if (file) {
		err = load_file(&c, file, 1);
	} else if (getenv("FEDMARKET_CONFIG")) {
		err = load_file(&c, getenv("FEDMARKET_CONFIG"), 1);
	} else {
		const char *home = getenv("HOME");

		err = FM_OK;
		if (home) {
			snprintf(path, sizeof(path),
				 "%s/.config/fedmarket/config", home);
			err = load_file(&c, path, 0);
		}
	}
	if (err)
		return err;
	err = load_env(&c);
	if (err)
		return err;
	if (log_level_parse(c.log_level) < 0)
		return fm_error_set(FM_EINVAL,
				    "log_level: expected debug, info, warn, "
				    "error or off, got \"%s\"",
				    c.log_level);
	*out = c;
	return FM_OK;
}

int cfg_expand_path(char *out, size_t n, const char *path)
{
	const char *home = getenv("HOME");
	int len;

	if (path[0] == '~' && path[1] == '/') {
		if (!home || !home[0])
			return fm_error_set(FM_EINVAL,
					    "%s: HOME is not set", path);
		len = snprintf(out, n, "%s%s", home, path + 1);
	} else {
		len = snprintf(out, n, "%s", path);
	}
	if (len < 0 || (size_t)len >= n)
		return fm_error_set(FM_EINVAL, "path too long: %s", path);
	return FM_OK;
}
