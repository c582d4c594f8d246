#include "marketfx.h"

#include "core/buf.h"
#include "db/db.h"
#include "db/migrate.h"
#include "market/market.h"
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

int mdb_open(struct mdb *m, int pool_size)
{
	char dir[1024];

	memset(m, 0, sizeof(*m));
	if (tenv_db_create(m->url, sizeof(m->url), m->name, sizeof(m->name)))
		return -1;
	snprintf(dir, sizeof(dir), "%s/migrations", tenv_require("FM_TOP"));
	if (migrate_run(m->url, dir, NULL, NULL))
		return -1;
	return db_pool_new(&m->pool, m->url, pool_size);
}

void mdb_close(struct mdb *m)
{
	db_pool_free(m->pool);
	m->pool = NULL;
	tenv_db_drop(m->name);
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char b[64];

	randombytes_buf(b, bytes);
	hex_encode(out, b, bytes);
}

void mfx_address(char out[43])
{
	out[0] = '0';
	out[1] = 'x';
	random_hex(out + 2, 20);
}

json_t *mfx_spec(int max_assignments)
{
	char id[67] = "0x";

	random_hex(id + 2, 32);
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i,"
		" s:{s:s}, s:{s:i, s:i, s:f, s:s, s:s, s:b,"
		"   s:{s:s, s:s, s:[i,i], s:{s:f}}},"
		" s:{s:s, s:i}, s:s}",
		"task_id", id, "title", "Improve the Fashion-MNIST classifier",
		"description", "Train on your own images.", "kind",
		"model_contributor", "reward_wei", "1000000000000000",
		"max_assignments", max_assignments, "assignment_duration_s",
		3600, "lifetime_s", 86400, "validation", "strategy", "manual",
		"training", "epochs", 1, "batch_size", 32, "learning_rate",
		0.001, "optimizer", "adam", "loss",
		"sparse_categorical_crossentropy", "from_logits", 1, "data",
		"kind", "image", "format", "idx", "shape", 28, 28,
		"preprocessing", "scale", 255.0, "aggregation", "rule", "fedavg",
		"min_results_per_round", 1, "assets",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}

const struct market_chain_info mfx_chain = {
	"0x00000000000000000000000000000000000000aa",
	"0x00000000000000000000000000000000000000bb", 31337
};

int mfx_task_open(struct db_pool *pool, char id[67], const char *creator,
		  const json_t *spec)
{
	return mfx_task_open_on(pool, id, creator, spec,
				mfx_chain.operator_address,
				mfx_chain.escrow_address);
}

int mfx_task_open_on(struct db_pool *pool, char id[67], const char *creator,
		     const json_t *spec, const char *operator_address,
		     const char *escrow_address)
{
	struct market_chain_info chain = { operator_address, escrow_address,
					   mfx_chain.chain_id };
	struct task_spec s;
	json_t *t = NULL;
	char funded[80];
	int err;

	err = task_spec_parse(&s, spec, (long long)time(NULL));
	if (err)
		return -1;
	err = market_task_create(pool, &t, &s, creator, &chain);
	json_decref(t);
	t = NULL;
	if (!err)
		err = spec_wei_mul(funded, s.reward_wei, s.max_payouts);
	if (!err)
		err = market_task_open(pool, &t, s.task_id,
				       "0x1111111111111111111111111111111"
				       "111111111111111111111111111111111",
				       funded);
	json_decref(t);
	if (!err)
		memcpy(id, s.task_id, 67);
	task_spec_cleanup(&s);
	return err ? -1 : 0;
}

int mfx_group_setup(void **state)
{
	struct mdb *m = calloc(1, sizeof(*m));

	if (!m || mdb_open(m, 16)) {
		free(m);
		return -1;
	}
	*state = m;
	return 0;
}

int mfx_group_teardown(void **state)
{
	mdb_close(*state);
	free(*state);
	return 0;
}
