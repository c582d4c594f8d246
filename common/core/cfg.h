/* Configuration: one project-wide table of keys. Values come from the
 * table's defaults, then an optional file of "key = value" lines, then
 * FEDMARKET_<KEY> environment variables. Unknown keys in the file and
 * unknown FEDMARKET_* variables are errors. */
#ifndef FM_CORE_CFG_H
#define FM_CORE_CFG_H

#include <stddef.h>

#define CFG_STR_MAX 512

struct fm_config {
	/* logging */
	char log_level[16];
	int log_json;
	/* state */
	char database_url[CFG_STR_MAX];
	long db_pool_size;
	/* chain */
	char rpc_url[CFG_STR_MAX];
	long chain_id;
	char escrow_address[64];
	char operator_address[64];
	char operator_keystore[CFG_STR_MAX];
	char operator_password[256];
	char operator_password_file[CFG_STR_MAX];
	long confirmations;
	long payout_batch_size;
	long payout_poll_ms;
	long payout_stuck_timeout_s;
	/* storage */
	char storage_url[CFG_STR_MAX];
	char s3_endpoint[CFG_STR_MAX];
	char s3_region[64];
	char s3_access_key[256];
	char s3_secret_key[256];
	int s3_path_style;
	/* services */
	char taskd_listen[128];
	char assignd_listen[128];
	char resultd_listen[128];
	char validationd_listen[128];
	long http_threads;
	long http_max_connections;
	long http_max_connections_per_ip;
	long http_request_timeout_s;
	long idempotency_lease_s;
	long result_checks_max;
	long result_tmp_max_bytes;
	long max_body_bytes;
	long signature_max_skew_s;
	long sweep_interval_s;
	long draft_ttl_s;
	long max_drafts_per_creator;
	/* clients */
	char taskd_url[CFG_STR_MAX];
	char assignd_url[CFG_STR_MAX];
	char resultd_url[CFG_STR_MAX];
	char validationd_url[CFG_STR_MAX];
	char keystore_dir[CFG_STR_MAX];
	char password_file[CFG_STR_MAX];
	char work_dir[CFG_STR_MAX];
};

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL };

struct cfg_key {
	const char *name; /* lowercase; env is FEDMARKET_ + uppercase */
	enum cfg_type type;
	size_t offset;
	size_t size; /* CFG_STR: capacity of the field */
	const char *def;
	long min, max; /* CFG_INT range */
	int secret; /* never printed */
	const char *help;
};

/* The table, and its length. */
const struct cfg_key *cfg_keys(size_t *n);

/* Fills out from defaults, then file (skipped when NULL; when file is
 * NULL, $FEDMARKET_CONFIG or ~/.config/fedmarket/config is read if it
 * exists), then the environment. */
int cfg_load(struct fm_config *out, const char *file);
/* Sets one key from text, as the file and environment do. */
int cfg_set(struct fm_config *c, const char *key, const char *value,
	    const char *origin);
/* Value of one key as text into out (secrets shown as "***"). */
int cfg_get(const struct fm_config *c, const char *key, char *out,
	    size_t n);

/* Expands a leading "~/" with $HOME into out. */
int cfg_expand_path(char *out, size_t n, const char *path);

#endif
