/* Chain fixtures for tests on the stack's anvil: its well-known accounts,
 * escrow deployment and task funding through the library. */
#ifndef FM_TESTS_CHAINFX_H
#define FM_TESTS_CHAINFX_H

#include "chain/sig.h"

#include <jansson.h>

#include <stdint.h>

/* Accounts 0 and 1 of anvil's default mnemonic (10000 ETH each). */
#define CHAINFX_KEY0 "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define CHAINFX_KEY1 "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

/* Lowercase "0x..." address of a key. */
void chainfx_addr_hex(char out[CHAIN_ADDR_HEX], const struct chain_key *k);

/* Deploys the escrow with key; writes its lowercase address. */
int chainfx_deploy_escrow(char out[CHAIN_ADDR_HEX], const struct chain_key *key);

/* fund(taskId, operator, deadline, reward, max) signed by creator. */
int chainfx_fund(const struct chain_key *creator, const char *escrow,
		 const char *task_id, const char *operator_addr,
		 uint64_t deadline, const char *reward_wei, uint32_t max);
/* As chainfx_fund with fundScored: no result paid above cap_wei (NULL:
 * fund()). */
int chainfx_fund_scored(const struct chain_key *creator, const char *escrow,
			const char *task_id, const char *operator_addr,
			uint64_t deadline, const char *reward_wei, uint32_t max,
			const char *cap_wei);

/* Sends value_wei from key to the address to. */
int chainfx_transfer(const struct chain_key *key, const char *to,
		     const char *value_wei);

/* A JSON-RPC call on the stack's node (anvil's evm_* methods); params is
 * consumed. */
int chainfx_rpc(const char *method, json_t *params);

#endif
