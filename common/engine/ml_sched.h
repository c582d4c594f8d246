/* Training's two-thread scheduler: steps made of phases, each phase a
 * fixed set of tasks that the calling thread and one helper thread claim
 * as they come. Which thread runs a task never changes what it computes,
 * so results depend only on the number of tasks, never on timing. Only
 * common/engine/ml_*.c includes this. */
#ifndef FM_ENGINE_ML_SCHED_H
#define FM_ENGINE_ML_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Task k of a phase. */
typedef void ml_task_fn(void *arg, int k);

struct ml_sched {
	void *arg;             /* passed to every task */
	int tasks;             /* per phase: 1 (no helper) or 2 */
	int helper;            /* the helper thread runs */
	ml_task_fn *fn;        /* the open phase's task */
	/* phase number << 32 | tasks claimed; phases count from 1 */
	_Atomic uint64_t phase;
	atomic_int finished;   /* tasks of the current phase done */
	atomic_int quit, sleeping;
	/* 1 while the caller runs every task alone (see pace()) */
	atomic_int solo;
	int stage, stage_steps;
	long stage_start, helped_ns, solo_ns;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t tid;
};

/* Readies s (cannot fail); ml__sched_cleanup may follow at once, and
 * must follow once. */
void ml__sched_init(struct ml_sched *s, void *arg);
/* Phases of `tasks` tasks (1 or 2); with 2, starts the helper thread.
 * Without one (it could not start) the caller runs every task. */
void ml__sched_start(struct ml_sched *s, int tasks);
/* Stops the helper and releases s. */
void ml__sched_cleanup(struct ml_sched *s);
/* Around each epoch: the helper's BLAS products go to one thread, and
 * who runs the steps is probed again. */
void ml__sched_epoch_begin(struct ml_sched *s);
void ml__sched_epoch_end(struct ml_sched *s);
/* Before each step: decides whether the helper takes part. */
void ml__sched_step(struct ml_sched *s);
/* Opens a phase of fn's tasks and returns when all of them are done. */
void ml__sched_phase(struct ml_sched *s, ml_task_fn *fn);

/* Monotonic clock in nanoseconds. */
long ml__mono_ns(void);

#endif
