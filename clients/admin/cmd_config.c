/* config: the settings in effect (defaults, then the config file, then
 * FEDMARKET_* variables; secrets shown as "***"), or with --keys the
 * table of every setting. Deployment files are checked against --keys
 * --json, so they cannot name a setting the code does not have. Reaching
 * this command at all means the configuration loaded: unknown FEDMARKET_*
 * variables and malformed values were already refused by name. */
#include "admin.h"

#include "cli/keys_cmd.h"
#include "core/err.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] = "[--keys] [--json]";

enum { OPT_KEYS = 1, OPT_JSON, OPT_HELP };

static const char *type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STR: return "string";
	case CFG_INT: return "integer";
	case CFG_BOOL: return "boolean";
	}
	return "?";
}

/* FEDMARKET_ + the key in upper case. */
static void env_name(char *out, size_t n, const char *key)
{
	size_t i = 0, len = (size_t)snprintf(out, n, "FEDMARKET_");

	for (; key[i] && len + i + 1 < n; i++)
		out[len + i] = (char)toupper((unsigned char)key[i]);
	out[len + i] = '\0';
}

static json_t *key_json(const struct cfg_key *k)
{
	char env[128];
	json_t *j;

	env_name(env, sizeof(env), k->name);
	j = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "key", k->name,
		      "env", env, "type", type_name(k->type), "default",
		      k->def, "secret", k->secret, "help", k->help);
	/* NULL on any failure: the caller reports out of memory */
	if (j && k->type == CFG_INT &&
	    (json_object_set_new(j, "min", json_integer(k->min)) ||
	     json_object_set_new(j, "max", json_integer(k->max)))) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Prints j on one line unless err is set; takes j. Returns err, or the
 * write's failure. */
static int print_json(json_t *j, int err)
{
	if (!err && (json_dumpf(j, stdout, JSON_COMPACT) ||
		     fputc('\n', stdout) == EOF))
		err = fm_error_set(FM_EIO, "cannot write to stdout");
	json_decref(j);
	return err;
}

static int print_keys(int json)
{
	size_t n = 0;
	const struct cfg_key *keys = cfg_keys(&n);
	json_t *arr = json ? json_array() : NULL;
	char env[128];
	int err = FM_OK;

	if (json && !arr)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !err; i++) {
		if (json) {
			if (json_array_append_new(arr, key_json(&keys[i])))
				err = fm_error_set(FM_ENOMEM, "out of memory");
			continue;
		}
		env_name(env, sizeof(env), keys[i].name);
		printf("%-34s %-8s %s%s\n    default: %s\n", env,
		       type_name(keys[i].type), keys[i].help,
		       keys[i].secret ? " (secret)" : "",
		       keys[i].def[0] ? keys[i].def : "(empty)");
	}
	return json ? print_json(arr, err) : err;
}

static int print_values(int json, const struct fm_config *cfg)
{
	size_t n = 0;
	const struct cfg_key *keys = cfg_keys(&n);
	json_t *obj = json ? json_object() : NULL;
	char v[CFG_STR_MAX];
	int err = FM_OK;

	if (json && !obj)
		return fm_error_set(FM_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !err; i++) {
		err = cfg_get(cfg, keys[i].name, v, sizeof(v));
		if (err)
			break;
		if (!json)
			printf("%s = %s\n", keys[i].name, v);
		else if (json_object_set_new(obj, keys[i].name,
					     json_string(v)))
			err = fm_error_set(FM_ENOMEM, "out of memory");
	}
	return json ? print_json(obj, err) : err;
}

int cmd_config(int argc, char **argv, struct fm_config *cfg)
{
	static const struct option longopts[] = {
		{ "keys", no_argument, NULL, OPT_KEYS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "config";
	int keys = 0, json = 0, c, err;

	optind = 0;
	opterr = 0;
	while ((c = keys_getopt(argc, argv, longopts)) != -1) {
		switch (c) {
		case OPT_KEYS: keys = 1; break;
		case OPT_JSON: json = 1; break;
		case OPT_HELP:
			printf("usage: fedmarket-admin %s %s\n"
			       "  (none)   the settings in effect, as "
			       "\"key = value\" lines\n"
			       "  --keys   every setting: its FEDMARKET_* "
			       "variable, type, help and default\n"
			       "  --json   machine-readable output\n",
			       cmd, usage_text);
			return 0;
		default:
			return admin_usage(cmd, usage_text, "unknown option "
					   "(options are not abbreviated)");
		}
	}
	if (optind != argc)
		return admin_usage(cmd, usage_text, "unexpected argument %s",
				   argv[optind]);
	err = keys ? print_keys(json) : print_values(json, cfg);
	/* a full disk or closed pipe must not pass for a printed table */
	if (!err && (fflush(stdout) == EOF || ferror(stdout)))
		err = fm_error_set(FM_EIO, "cannot write to stdout");
	return err ? admin_fail(cmd) : 0;
}
