#include "service/budget.h"

#include "core/err.h"

void budget_init(struct budget *b, unsigned slots, uint64_t bytes)
{
	pthread_mutex_init(&b->lock, NULL);
	b->slots = slots;
	b->bytes = bytes;
	b->slots_used = 0;
	b->bytes_used = 0;
}

void budget_cleanup(struct budget *b)
{
	pthread_mutex_destroy(&b->lock);
}

int budget_take_slot(struct budget *b)
{
	int err = FM_OK;

	pthread_mutex_lock(&b->lock);
	if (b->slots_used < b->slots)
		b->slots_used++;
	else
		err = fm_error_set(FM_EUNAVAIL, "%u checks are running, the "
				   "most at once: try again shortly", b->slots);
	pthread_mutex_unlock(&b->lock);
	return err;
}

void budget_give_slot(struct budget *b)
{
	pthread_mutex_lock(&b->lock);
	if (b->slots_used)
		b->slots_used--;
	pthread_mutex_unlock(&b->lock);
}

int budget_reserve(struct budget *b, uint64_t n, const char *what)
{
	int err = FM_OK;

	if (n > b->bytes)
		return fm_error_set(FM_EUNPROCESSABLE, "%s: %llu bytes, more "
				    "than this service's temporary space of "
				    "%llu bytes", what, (unsigned long long)n,
				    (unsigned long long)b->bytes);
	pthread_mutex_lock(&b->lock);
	if (n <= b->bytes - b->bytes_used)
		b->bytes_used += n;
	else
		err = fm_error_set(FM_EUNAVAIL, "temporary space is taken by "
				   "checks running now: try again shortly");
	pthread_mutex_unlock(&b->lock);
	return err;
}

void budget_release(struct budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->lock);
	b->bytes_used = n < b->bytes_used ? b->bytes_used - n : 0;
	pthread_mutex_unlock(&b->lock);
}
