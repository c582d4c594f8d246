/* Helpers of the chain integration tests: anvil's default accounts, the
 * stack's RPC URL, and running foundry's cast (an independent client,
 * used only to check what the library did). Include after cmocka.h. */
#ifndef FM_TESTS_CHAIN_TESTUTIL_H
#define FM_TESTS_CHAIN_TESTUTIL_H

#include "chain/rpc.h"
#include "chain/sig.h"
#include "core/buf.h"
#include "core/err.h"
#include "testenv.h"
#include "../unit/chain_assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of anvil's accounts 0..9 for the mnemonic "test test ... junk". */
static const char *const anvil_keys[10] = {
	"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
	"59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
	"5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
	"7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
	"47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
	"8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
	"92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
	"4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
	"dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
	"2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
};

static inline void anvil_key(struct chain_key *out, int i)
{
	assert_int_equal(chain_key_from_hex(out, anvil_keys[i]), FM_OK);
}

static inline struct chain_rpc *test_rpc(void)
{
	struct chain_rpc *r = NULL;

	assert_int_equal(chain_rpc_new(&r, tenv_require("FEDMARKET_RPC_URL"),
				       NULL), FM_OK);
	return r;
}

/* Runs "$FM_CAST <args>" (with --rpc-url of the stack when rpc is set)
 * and returns its trimmed output (stdout and stderr) in out; fails the
 * test when cast exits non-zero. */
static inline void cast_run(char *out, size_t n, int rpc, const char *fmt,
			    ...) __attribute__((format(printf, 4, 5)));
static inline void cast_run(char *out, size_t n, int rpc, const char *fmt,
			    ...)
{
	char args[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	st = tenv_sh_out(out, n, "'%s' %s%s%s 2>&1", tenv_require("FM_CAST"),
			 args, rpc ? " --rpc-url " : "",
			 rpc ? tenv_require("FEDMARKET_RPC_URL") : "");
	if (st != 0)
		fail_msg("cast %s: failed: %s", args, out);
}

static inline void addr_hex(char out[CHAIN_ADDR_HEX], const uint8_t a[20])
{
	chain_address_to_hex(out, a);
}

static inline void bytes32_hex(char out[67], const uint8_t b[32])
{
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, b, 32);
}

/* Balance in wei as decimal text, read by cast. */
static inline void cast_balance(char *out, size_t n, const uint8_t a[20])
{
	char hex[CHAIN_ADDR_HEX];

	addr_hex(hex, a);
	cast_run(out, n, 1, "balance %s", hex);
}

/* A raw JSON-RPC call whose result is ignored (anvil's evm_* methods). */
static inline void anvil_call(struct chain_rpc *r, const char *method,
			      json_t *params)
{
	json_t *res = NULL;

	if (chain_rpc_call(r, &res, method, params))
		fail_msg("%s: %s", method, fm_error_msg());
	json_decref(res);
}

#endif
