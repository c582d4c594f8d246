/* The `keys` command every fedmarket CLI shares, and the loading of a
 * CLI's signing identity.
 *
 *   keys new [--light]                  create a key, store its keystore
 *   keys import FILE                    add a keystore v3 file (geth,
 *                                       cast wallet, MetaMask)
 *   keys import-private-key [--private-key-file F] [--light]
 *                                       a hex key from F or stdin (never
 *                                       from the command line)
 *   keys list                           addresses and files
 *   keys address [--key ADDR|--keystore F]
 *                                       the identity the CLI signs with
 * Common options: --keystore-dir D (default: keystore_dir),
 * --password-file P (default: password_file; else asked on the
 * terminal), --json, --config FILE. */
#ifndef FM_CHAIN_KEYS_CMD_H
#define FM_CHAIN_KEYS_CMD_H

#include "chain/keystore.h"
#include "chain/sig.h"
#include "core/cfg.h"

#include <stddef.h>

/* argv[0] is "keys"; the action and the options follow in any order
 * (options are never abbreviated: "--private-key KEY" is not
 * "--private-key-file KEY"). Loads the configuration (--config), prints
 * results on stdout and errors on stderr, as prog; returns the exit
 * code: 0, 1 (runtime), 2 (usage). */
int keys_cmd_run(const char *prog, int argc, char **argv);

/* Finds a keystore file: which is an address (0x + 40 hex digits) of a
 * key in dir, or else a file path, or NULL for the only key in dir. path_out gets n bytes at most.
 * FM_ENOTFOUND when nothing matches, FM_ECONFLICT when which is NULL and
 * dir holds several keys. */
int keys_find(char *path_out, size_t n, const char *dir, const char *which);

/* The password for a keystore: from password_file when given, else
 * cfg->password_file when set, else asked on the terminal (twice when
 * confirm is set). */
int keys_password(char out[KS_PASSWORD_MAX], const struct fm_config *cfg,
		  const char *password_file, int confirm);

/* The keystore file a CLI signs with: keys_find(cfg->keystore_dir,
 * which). */
int keys_identity_file(char *path_out, size_t n, const struct fm_config *cfg,
		       const char *which);

/* Loads the signing key a CLI uses: keys_identity_file, then decrypts
 * it with keys_password(cfg, password_file). */
int keys_load_identity(struct chain_key *out, const struct fm_config *cfg,
		       const char *which, const char *password_file);

/* The key of an operator command: from private_key_file (hex, "-" for
 * stdin) when given, else from the keystore file with its password. */
int keys_load_signer(struct chain_key *out, const struct fm_config *cfg,
		     const char *keystore, const char *password_file,
		     const char *private_key_file);

#endif
