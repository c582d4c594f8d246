#include "chainfx.h"

#include "chain/escrow.h"
#include "chain/rpc.h"
#include "chain/tx.h"
#include "chain/u256.h"
#include "core/buf.h"
#include "core/err.h"
#include "testenv.h"

#include <stdio.h>
#include <string.h>

void chainfx_addr_hex(char out[CHAIN_ADDR_HEX], const struct chain_key *k)
{
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, k->addr, CHAIN_ADDR_LEN);
}

static int send(struct chain_tx *tx, const struct chain_key *key,
		struct chain_receipt *rc)
{
	struct chain_rpc *r = NULL;
	int err = chain_rpc_new(&r, tenv_require("FEDMARKET_RPC_URL"), NULL);

	if (!err)
		err = chain_rpc_send_tx(r, rc, tx, key, 30000);
	chain_rpc_free(r);
	return err;
}

int chainfx_deploy_escrow(char out[CHAIN_ADDR_HEX], const struct chain_key *key)
{
	struct chain_tx tx;
	struct chain_receipt rc;
	int err;

	memset(&rc, 0, sizeof(rc));
	chain_tx_init(&tx);
	err = escrow_deploy_tx(&tx);
	if (!err)
		err = send(&tx, key, &rc);
	if (!err && !rc.has_contract)
		err = fm_error_set(FM_EINTERNAL, "deployment made no contract");
	if (!err) {
		out[0] = '0';
		out[1] = 'x';
		hex_encode(out + 2, rc.contract_address, CHAIN_ADDR_LEN);
	}
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	return err;
}

int chainfx_fund(const struct chain_key *creator, const char *escrow,
		 const char *task_id, const char *operator_addr,
		 uint64_t deadline, const char *reward_wei, uint32_t max)
{
	return chainfx_fund_scored(creator, escrow, task_id, operator_addr,
				   deadline, reward_wei, max, NULL);
}

int chainfx_fund_scored(const struct chain_key *creator, const char *escrow,
			const char *task_id, const char *operator_addr,
			uint64_t deadline, const char *reward_wei, uint32_t max,
			const char *cap_wei)
{
	uint8_t esc[CHAIN_ADDR_LEN], op[CHAIN_ADDR_LEN], id[32];
	struct chain_u256 reward, cap;
	struct chain_tx tx;
	struct chain_receipt rc;
	int err;

	memset(&rc, 0, sizeof(rc));
	chain_tx_init(&tx);
	err = chain_address_parse(esc, escrow, "escrow");
	if (!err)
		err = chain_address_parse(op, operator_addr, "operator");
	if (!err)
		err = hex_decode(id, 32, task_id);
	if (!err)
		err = chain_u256_parse(&reward, reward_wei, "reward");
	if (!err && cap_wei)
		err = chain_u256_parse(&cap, cap_wei, "cap");
	if (!err)
		err = cap_wei ? escrow_fund_scored_tx(&tx, esc, id, op,
						      deadline, &reward, max,
						      &cap)
			      : escrow_fund_tx(&tx, esc, id, op, deadline,
					       &reward, max);
	if (!err)
		err = send(&tx, creator, &rc);
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	return err;
}

int chainfx_transfer(const struct chain_key *key, const char *to,
		     const char *value_wei)
{
	struct chain_tx tx;
	struct chain_receipt rc;
	int err;

	memset(&rc, 0, sizeof(rc));
	chain_tx_init(&tx);
	tx.has_to = 1;
	err = chain_address_parse(tx.to, to, "to");
	if (!err)
		err = chain_u256_parse(&tx.value, value_wei, "value");
	if (!err)
		err = send(&tx, key, &rc);
	chain_receipt_cleanup(&rc);
	chain_tx_cleanup(&tx);
	return err;
}

int chainfx_rpc(const char *method, json_t *params)
{
	struct chain_rpc *r = NULL;
	json_t *res = NULL;
	int err = chain_rpc_new(&r, tenv_require("FEDMARKET_RPC_URL"), NULL);

	if (!err)
		err = chain_rpc_call(r, &res, method, params);
	else
		json_decref(params);
	json_decref(res);
	chain_rpc_free(r);
	return err;
}
