/* What a service's checks may take at once: slots (checks running) and
 * bytes of temporary space, reserved from the sizes manifests declare
 * before anything is downloaded. A request that finds none left is told
 * to come back later (503), so concurrent submissions cannot fill the
 * disk. */
#ifndef FM_SERVICE_BUDGET_H
#define FM_SERVICE_BUDGET_H

#include <pthread.h>
#include <stdint.h>

struct budget {
	pthread_mutex_t lock;
	unsigned slots, slots_used;
	uint64_t bytes, bytes_used;
};

void budget_init(struct budget *b, unsigned slots, uint64_t bytes);
void budget_cleanup(struct budget *b);

/* A slot: FM_OK, or FM_EUNAVAIL when all are taken. */
int budget_take_slot(struct budget *b);
void budget_give_slot(struct budget *b);

/* n bytes of space: FM_OK; FM_EUNAVAIL when they do not fit now;
 * FM_EUNPROCESSABLE naming what when they never would. */
int budget_reserve(struct budget *b, uint64_t n, const char *what);
void budget_release(struct budget *b, uint64_t n);

#endif
