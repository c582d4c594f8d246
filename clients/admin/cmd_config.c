/* config: the settings in effect (defaults, then the config file, then
 * FEDMARKET_* variables; secrets shown as "***"), or with --keys the
 * table of every setting. Deployment files are checked against --keys
 * --json, so they cannot name a setting the code does not have. Reaching
 * this command at all means the configuration loaded: unknown FEDMARKET_*
 * variables and malformed values were already refused by name. */
#include "admin.h"

#include "core/err.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

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
	for (size_t i = 0; i < n; i++) {
		if (json && json_array_append_new(arr, key_json(&keys[i]))) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			break;
		}
		if (json)
			continue;
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
	for (size_t i = 0; i < n; i++) {
		err = cfg_get(cfg, keys[i].name, v, sizeof(v));
		if (err)
			break;
		if (!json) {
			printf("%s = %s\n", keys[i].name, v);
			continue;
		}
		if (json_object_set_new(obj, keys[i].name, json_string(v))) {
			err = fm_error_set(FM_ENOMEM, "out of memory");
			break;
		}
	}
	return json ? print_json(obj, err) : err;
}

int cmd_config(struct admin *a, int argc, char **argv)
{
	int keys = 0, json = 0, code, err;
	const struct opt opts[] = {
		{ "--keys", OPT_FLAG, &keys, NULL, "every setting: its "
		  "FEDMARKET_* variable, type, help and default", 0, 0 },
		{ "--json", OPT_FLAG, &json, NULL, "machine-readable output", 0,
		  0 },
		OPT_END,
	};
	struct opt_spec s = {
		.synopsis = "[--keys] [--json]", .opts = opts,
		.about = "Without options: the settings in effect, as \"key = "
			 "value\" lines\n(defaults, then the config file, then "
			 "FEDMARKET_* variables;\nsecrets as \"***\").\n",
	};

	if (!admin_parse(a, &s, argc, argv, &code))
		return code;
	err = keys ? print_keys(json) : print_values(json, &a->cfg);
	if (err)
		return admin_fail(a);
	/* a full disk or closed pipe must not pass for a printed table */
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fm_error_set(FM_EIO, "cannot write to stdout");
		return admin_fail(a);
	}
	return CLI_OK;
}
