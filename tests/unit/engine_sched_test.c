/* The training scheduler (ml_sched.c): every task of a phase runs once,
 * and a phase ends only when all of its tasks are done, with the helper
 * thread or without it, while the pacing switches between the two. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/ml_sched.h"

#include <stdatomic.h>
#include <string.h>

#define STEPS 3000

struct counts {
	int step;               /* the caller's step, read by the tasks */
	atomic_int runs[2];     /* runs of task k in the current phase */
	int seen[2];            /* step that task k of phase A last saw */
	atomic_int bad;         /* a task saw an unfinished phase */
	atomic_int helper_runs; /* tasks run off the calling thread */
	pthread_t caller;
};

/* Phase A: records the step. */
static void task_a(void *arg, int k)
{
	struct counts *c = arg;

	atomic_fetch_add(&c->runs[k], 1);
	c->seen[k] = c->step;
	if (!pthread_equal(pthread_self(), c->caller))
		atomic_fetch_add(&c->helper_runs, 1);
}

/* Phase B: both tasks of phase A must be done. */
static void task_b(void *arg, int k)
{
	struct counts *c = arg;

	atomic_fetch_add(&c->runs[k], 1);
	if (c->seen[0] != c->step || c->seen[1] != c->step)
		atomic_fetch_add(&c->bad, 1);
}

static void run(int tasks, struct counts *c)
{
	struct ml_sched s;

	memset(c, 0, sizeof(*c));
	c->caller = pthread_self();
	c->seen[1] = tasks == 1 ? -1 : 0;
	ml__sched_init(&s, c);
	ml__sched_start(&s, tasks);
	assert_int_equal(s.helper, tasks > 1);
	for (int epoch = 0; epoch < 2; epoch++) {
		ml__sched_epoch_begin(&s);
		for (int i = 0; i < STEPS; i++) {
			c->step++;
			if (tasks == 1)
				c->seen[1] = c->step;
			ml__sched_step(&s);
			for (int ph = 0; ph < 2; ph++) {
				atomic_store(&c->runs[0], 0);
				atomic_store(&c->runs[1], 0);
				ml__sched_phase(&s, ph ? task_b : task_a);
				assert_int_equal(atomic_load(&c->runs[0]), 1);
				assert_int_equal(atomic_load(&c->runs[1]),
						 tasks > 1);
			}
		}
		ml__sched_epoch_end(&s);
	}
	ml__sched_cleanup(&s);
	assert_int_equal(atomic_load(&c->bad), 0);
}

static void test_sched__two_tasks_each_once_in_order(void **state)
{
	struct counts c;

	(void)state;
	run(2, &c);
}

static void test_sched__one_task_no_helper(void **state)
{
	struct counts c;

	(void)state;
	run(1, &c);
	assert_int_equal(atomic_load(&c.helper_runs), 0);
}

/* Ready and released without ever starting: nothing runs, nothing leaks. */
static void test_sched__cleanup_unstarted(void **state)
{
	struct ml_sched s;

	(void)state;
	ml__sched_init(&s, NULL);
	ml__sched_cleanup(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched__two_tasks_each_once_in_order),
		cmocka_unit_test(test_sched__one_task_no_helper),
		cmocka_unit_test(test_sched__cleanup_unstarted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
