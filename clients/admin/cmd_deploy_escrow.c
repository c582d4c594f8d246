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

/* The code now at addr must be what the artifact says it deploys. */
static int check_code(struct chain_rpc *rpc, const uint8_t addr[20])
{
	struct buf got = BUF_INIT(1 << 20), want = BUF_INIT(1 << 20);
	int err = chain_rpc_code(rpc, &got, addr);

	if (err)
		goto done;
	err = escrow_runtime_code(&want);
	if (err)
		goto done;
	if (got.len != want.len || memcmp(got.data, want.data, want.len) != 0)
		err = fm_error_set(FM_EUNPROCESSABLE, "the code at the new "
				   "address is not the escrow's (%zu bytes, "
				   "expected %zu)", got.len, want.len);
done:
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

/* Sends the deployment signed by key, waits for its receipt and checks
 * the code now at the contract's address. */
static int deploy(struct chain_receipt *rc, struct chain_tx *tx,
		  const char *rpc_url, const struct chain_key *key,
		  long timeout_s)
{
	struct chain_rpc *rpc = NULL;
	int err;

	err = chain_rpc_new(&rpc, rpc_url, NULL);
	if (err)
		goto done;
	err = escrow_deploy_tx(tx);
	if (err)
		goto done;
	err = chain_rpc_send_tx(rpc, rc, tx, key, timeout_s * 1000);
	if (err)
		goto done;
	if (!rc->has_contract) {
		err = fm_error_set(FM_EUNPROCESSABLE, "the receipt names no "
				   "contract address");
		goto done;
	}
	err = check_code(rpc, rc->contract_address);
done:
	chain_rpc_free(rpc);
	return err;
}

int cmd_deploy_escrow(struct admin *a, int argc, char **argv)
{
	const char *rpc_url = NULL, *keystore = NULL, *pwfile = NULL;
	const char *pkfile = NULL;
	long timeout_s = 120;
	int json = 0, code, err;
	const struct opt opts[] = {
		{ "--rpc-url", OPT_STR, &rpc_url, "URL",
		  "the chain node (default: rpc_url)", 0, 0 },
		{ "--keystore", OPT_STR, &keystore, "FILE",
		  "the deployer's keystore", 0, 0 },
		{ "--password-file", OPT_STR, &pwfile, "FILE",
		  "its password (default: password_file, else asked)", 0, 0 },
		{ "--private-key-file", OPT_STR, &pkfile, "FILE",
		  "the deployer's hex key instead (- for stdin)", 0, 0 },
		{ "--timeout", OPT_LONG, &timeout_s, "SECONDS",
		  "wait this long for the receipt (120)", 1, 3600 },
		{ "--json", OPT_FLAG, &json, NULL, "machine-readable output", 0,
		  0 },
		OPT_END,
	};
	struct opt_spec s = {
		.opts = opts,
		.synopsis = "[--rpc-url URL] (--keystore FILE [--password-file "
			    "FILE] | --private-key-file FILE) [--timeout "
			    "SECONDS] [--json]",
	};
	struct chain_receipt rc;
	struct chain_key key;
	struct chain_tx tx;

	if (!admin_parse(a, &s, argc, argv, &code))
		return code;
	if (!keystore && !pkfile)
		return admin_usage(a, "no key: give --keystore or "
				   "--private-key-file");
	memset(&rc, 0, sizeof(rc));
	memset(&key, 0, sizeof(key));
	chain_tx_init(&tx);
	err = keys_load_signer(&key, &a->cfg, keystore, pwfile, pkfile);
	if (err)
		goto done;
	err = deploy(&rc, &tx, rpc_url ? rpc_url : a->cfg.rpc_url, &key,
		     timeout_s);
	if (err)
		goto done;
	print_result(json, &rc, tx.chain_id, &key);
done:
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	chain_key_wipe(&key);
	return err ? admin_fail(a) : CLI_OK;
}
