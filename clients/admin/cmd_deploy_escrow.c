/* deploy-escrow: sends the committed Escrow bytecode, waits for it to be
 * mined, checks the deployed code, prints the address. */
#include "admin.h"

#include "chain/escrow.h"
#include "cli/keys_cmd.h"
#include "chain/rpc.h"
#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
	"[--rpc-url URL] (--keystore FILE [--password-file FILE] | "
	"--private-key-file FILE) [--timeout SECONDS] [--json]";

enum { OPT_RPC = 1, OPT_KEYSTORE, OPT_PWFILE, OPT_PKFILE, OPT_JSON,
       OPT_TIMEOUT, OPT_HELP };

/* The code now at addr must be what the artifact says it deploys. */
static int check_code(struct chain_rpc *rpc, const uint8_t addr[20])
{
	struct buf got = BUF_INIT(1 << 20), want = BUF_INIT(1 << 20);
	int err = chain_rpc_code(rpc, &got, addr);

	if (!err)
		err = escrow_runtime_code(&want);
	if (!err && (got.len != want.len ||
		     memcmp(got.data, want.data, want.len) != 0))
		err = fm_error_set(FM_EUNPROCESSABLE, "the code at the new "
				   "address is not the escrow's (%zu bytes, "
				   "expected %zu)", got.len, want.len);
	buf_cleanup(&got);
	buf_cleanup(&want);
	return err;
}

static void print_result(int json, const struct chain_receipt *rc,
			 uint64_t chain_id, const struct chain_key *key)
{
	char addr[CHAIN_ADDR_HEX], from[CHAIN_ADDR_HEX], hash[67];
	json_t *j;

	chain_address_to_hex(addr, rc->contract_address);
	chain_address_to_hex(from, key->addr);
	hash[0] = '0';
	hash[1] = 'x';
	hex_encode(hash + 2, rc->tx_hash, 32);
	if (!json) {
		/* stdout is only the address, for ESCROW=$(...) */
		printf("%s\n", addr);
		fprintf(stderr, "escrow deployed by %s in transaction %s "
			"(block %llu, chain %llu, %llu gas)\n", from, hash,
			(unsigned long long)rc->block_number,
			(unsigned long long)chain_id,
			(unsigned long long)rc->gas_used);
		return;
	}
	j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "address", addr,
		      "tx_hash", hash, "block", (json_int_t)rc->block_number,
		      "chain_id", (json_int_t)chain_id, "deployer", from,
		      "gas_used", (json_int_t)rc->gas_used);
	if (j)
		json_dumpf(j, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(j);
}

int cmd_deploy_escrow(int argc, char **argv, struct fm_config *cfg)
{
	static const struct option longopts[] = {
		{ "rpc-url", required_argument, NULL, OPT_RPC },
		{ "keystore", required_argument, NULL, OPT_KEYSTORE },
		{ "password-file", required_argument, NULL, OPT_PWFILE },
		{ "private-key-file", required_argument, NULL, OPT_PKFILE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *rpc_url = cfg->rpc_url, *keystore = NULL, *pwfile = NULL;
	const char *pkfile = NULL, *cmd = "deploy-escrow";
	struct chain_rpc *rpc = NULL;
	struct chain_receipt rc;
	struct chain_key key;
	struct chain_tx tx;
	long timeout_s = 120;
	int json = 0, c, err;
	char *end;

	memset(&rc, 0, sizeof(rc));
	memset(&key, 0, sizeof(key));
	optind = 0;
	opterr = 0;
	while ((c = keys_getopt(argc, argv, longopts)) != -1) {
		switch (c) {
		case OPT_RPC: rpc_url = optarg; break;
		case OPT_KEYSTORE: keystore = optarg; break;
		case OPT_PWFILE: pwfile = optarg; break;
		case OPT_PKFILE: pkfile = optarg; break;
		case OPT_JSON: json = 1; break;
		case OPT_TIMEOUT:
			timeout_s = strtol(optarg, &end, 10);
			if (*end || timeout_s < 1 || timeout_s > 3600)
				return admin_usage(cmd, usage_text, "--timeout:"
						   " expected 1 to 3600 "
						   "seconds");
			break;
		case OPT_HELP:
			printf("usage: fedmarket-admin %s %s\n", cmd,
			       usage_text);
			return 0;
		default:
			return admin_usage(cmd, usage_text, "unknown option "
					   "or missing value (options are "
					   "not abbreviated)");
		}
	}
	if (optind != argc)
		return admin_usage(cmd, usage_text, "unexpected argument %s",
				   argv[optind]);
	if (!keystore && !pkfile)
		return admin_usage(cmd, usage_text, "no key: give --keystore "
				   "or --private-key-file");
	chain_tx_init(&tx);
	err = keys_load_signer(&key, cfg, keystore, pwfile, pkfile);
	if (!err)
		err = chain_rpc_new(&rpc, rpc_url, NULL);
	if (!err)
		err = escrow_deploy_tx(&tx);
	if (!err)
		err = chain_rpc_send_tx(rpc, &rc, &tx, &key, timeout_s * 1000);
	if (!err && !rc.has_contract)
		err = fm_error_set(FM_EUNPROCESSABLE, "the receipt names no "
				   "contract address");
	if (!err)
		err = check_code(rpc, rc.contract_address);
	if (!err)
		print_result(json, &rc, tx.chain_id, &key);
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	chain_key_wipe(&key);
	chain_rpc_free(rpc);
	return err ? admin_fail(cmd) : 0;
}
