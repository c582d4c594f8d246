/* Fixtures shared by tests that need a migrated database and task specs. */
#ifndef FM_TESTS_MARKETFX_H
#define FM_TESTS_MARKETFX_H

#include <jansson.h>

struct db_pool;

struct mdb {
	char url[1024];
	char name[128];
	struct db_pool *pool;
};

/* A fresh database with every migration applied and a pool on it. */
int mdb_open(struct mdb *m, int pool_size);
void mdb_close(struct mdb *m);

/* A valid model_contributor spec with a random task id; tests modify it.
 * Returns a new reference. */
json_t *mfx_spec(int max_assignments);
/* A random lowercase address. */
void mfx_address(char out[43]);

/* The chain a task is created for (escrow and operator placeholders). */
struct market_chain_info;
extern const struct market_chain_info mfx_chain;

/* Posts spec as creator and opens it, funded with reward_wei x
 * results_per_round x rounds; its id into id. 0 or -1 (the error is
 * fm_error_msg()). */
int mfx_task_open(struct db_pool *pool, char id[67], const char *creator,
		  const json_t *spec);
/* The same for the escrow and operator given (0x addresses). */
int mfx_task_open_on(struct db_pool *pool, char id[67], const char *creator,
		     const json_t *spec, const char *operator_address,
		     const char *escrow_address);

/* cmocka group setup/teardown: *state is a struct mdb * on a fresh
 * database with a pool of 16. */
int mfx_group_setup(void **state);
int mfx_group_teardown(void **state);

#endif
