/* Training's two-thread scheduler (see ml_sched.h). Each training step
 * is two phases of two tasks (the batch halves' gradients, then the
 * parameter halves' updates); either thread takes whichever task is next,
 * and when the other thread is slow to come (a busy machine), the calling
 * thread simply runs both tasks itself. */
#include "engine/ml_sched.h"
#include "engine/ml_impl.h"

#include <sched.h>
#include <string.h>
#include <time.h>

/* How long a thread spins waiting for the other before it sleeps (the
 * helper) or yields (the caller): a phase lasts tens to hundreds of
 * microseconds. The spin is a plain loop: in a virtual machine PAUSE
 * can hand the CPU back to the host, which stalls the whole step. */
#define SPIN_NS 200000L

/* Who runs the steps. With the helper a step takes the caller's task and
 * its wait for the helper's; alone, both tasks. Which is faster depends
 * on what else the machine runs, so the caller times PROBE_STEPS steps
 * each way and keeps the faster, for RUN_STEPS steps with the helper or
 * SOLO_STEPS alone: a busy spell (OpenBLAS' own threads still spinning
 * after an evaluation, say) passes, and going alone when the helper could
 * help costs the most. The tasks stay the same either way, and so do the
 * weights. */
#define PROBE_STEPS 32
#define RUN_STEPS 1024
#define SOLO_STEPS 128

enum { PACE_PROBE_HELPED, PACE_PROBE_SOLO, PACE_RUN };

long ml__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spins until *a differs from v or SPIN_NS passed; 1 if it changed. */
static int spin_while_equal(_Atomic uint64_t *a, uint64_t v,
			    const atomic_int *quit)
{
	long until = ml__mono_ns() + SPIN_NS;

	for (;;) {
		for (int i = 0; i < 64; i++) {
			if (atomic_load(a) != v || atomic_load(quit))
				return 1;
			__asm__ volatile("" ::: "memory");
		}
		if (ml__mono_ns() > until)
			return 0;
	}
}

/* Claims and runs one task of the current phase; 0 when none is left. */
static int run_task(struct ml_sched *s)
{
	uint64_t v = atomic_load(&s->phase);

	while ((uint32_t)v < (uint32_t)s->tasks) {
		if (atomic_compare_exchange_weak(&s->phase, &v, v + 1)) {
			/* set before the phase opened; the claim orders it */
			s->fn(s->arg, (int)(uint32_t)v);
			atomic_fetch_add(&s->finished, 1);
			return 1;
		}
	}
	return 0;
}

void ml__sched_phase(struct ml_sched *s, ml_task_fn *fn)
{
	uint64_t v = atomic_load(&s->phase);
	long start;
	int spins = 0;

	s->fn = fn;
	atomic_store(&s->finished, 0);
	atomic_store(&s->phase, ((v >> 32) + 1) << 32);
	if (atomic_load(&s->sleeping) && !atomic_load(&s->solo)) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	while (run_task(s))
		;
	start = ml__mono_ns();
	/* a task the helper took: it is running it now */
	while (atomic_load(&s->finished) < s->tasks) {
		if (++spins % 4096 == 0 && ml__mono_ns() > start + SPIN_NS)
			sched_yield();
		__asm__ volatile("" ::: "memory");
	}
}

/* Each epoch starts by probing: the epoch before may have ended in an
 * evaluation that changed who has the CPUs. */
static void pace_restart(struct ml_sched *s)
{
	s->stage = PACE_PROBE_HELPED;
	atomic_store(&s->solo, 0);
	s->stage_steps = 0;
	s->stage_start = ml__mono_ns();
}

static void pace(struct ml_sched *s)
{
	long now, per;

	if (++s->stage_steps < (s->stage != PACE_RUN	 ? PROBE_STEPS
				: atomic_load(&s->solo) ? SOLO_STEPS
							 : RUN_STEPS))
		return;
	now = ml__mono_ns();
	per = (now - s->stage_start) / s->stage_steps;
	switch (s->stage) {
	case PACE_PROBE_HELPED:
		s->helped_ns = per;
		s->stage = PACE_PROBE_SOLO;
		atomic_store(&s->solo, 1);
		break;
	case PACE_PROBE_SOLO:
		s->solo_ns = per;
		s->stage = PACE_RUN;
		atomic_store(&s->solo, s->solo_ns < s->helped_ns);
		break;
	default:
		s->stage = PACE_PROBE_HELPED;
		atomic_store(&s->solo, 0);
		break;
	}
	s->stage_steps = 0;
	s->stage_start = now;
}

void ml__sched_step(struct ml_sched *s)
{
	if (s->helper)
		pace(s);
}

void ml__sched_epoch_begin(struct ml_sched *s)
{
	if (!s->helper)
		return;
	/* one OpenBLAS thread per training thread */
	ml__parallel_begin();
	pace_restart(s);
}

void ml__sched_epoch_end(struct ml_sched *s)
{
	if (s->helper)
		ml__parallel_end();
}

static void *helper_main(void *arg)
{
	struct ml_sched *s = arg;

	while (!atomic_load(&s->quit)) {
		uint64_t v = atomic_load(&s->phase);

		if (!atomic_load(&s->solo) &&
		    (run_task(s) || spin_while_equal(&s->phase, v, &s->quit)))
			continue;
		pthread_mutex_lock(&s->mu);
		atomic_store(&s->sleeping, 1);
		/* a phase opened just before this may be missed: the caller
		 * runs it alone and the next one wakes this thread */
		while ((atomic_load(&s->phase) == v || atomic_load(&s->solo)) &&
		       !atomic_load(&s->quit))
			pthread_cond_wait(&s->cv, &s->mu);
		atomic_store(&s->sleeping, 0);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

void ml__sched_init(struct ml_sched *s, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->arg = arg;
	s->tasks = 1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

void ml__sched_start(struct ml_sched *s, int tasks)
{
	s->tasks = tasks;
	/* phase 0 has nothing to claim */
	atomic_store(&s->phase, (uint64_t)tasks);
	if (tasks > 1)
		s->helper = pthread_create(&s->tid, NULL, helper_main, s) == 0;
}

void ml__sched_cleanup(struct ml_sched *s)
{
	if (s->helper) {
		pthread_mutex_lock(&s->mu);
		atomic_store(&s->quit, 1);
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->tid, NULL);
		s->helper = 0;
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}
