/* OpenBLAS start-up: the right kernels without the user setting anything.
 * Debian's OpenBLAS 0.3.21 does not recognise recent Intel CPUs and falls
 * back to SSE3 kernels, 3-6x slower; it reads OPENBLAS_CORETYPE (and
 * OPENBLAS_THREAD_TIMEOUT) only when the library loads, so the fix is to
 * set them and exec the program again. */
#include "engine/ml_impl.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Products smaller than this many multiply-adds run on one thread: on two
 * cores OpenBLAS' hand-off costs more than it saves for a batch of 32 or
 * 128 through a 784x128 layer, and a second busy core makes it far
 * worse. Larger ones (evaluation batches) use every allowed thread. */
#define THREAD_MIN_MACS (64.0 * 1024 * 1024)

/* Inference splits samples across threads when each gets at least this
 * many. */
#define INFER_MIN_SAMPLES 1024

/* Training cuts a batch in halves for two threads when each gets at
 * least this many samples: below it, handing off costs more than it
 * saves. */
#define HALF_MIN_SAMPLES 8

static atomic_int max_threads; /* 0 until set: OpenBLAS' own count */
static atomic_int cur_threads;
static atomic_int parallel;    /* engine-parallel sections running */

/* OpenBLAS kernel sets this code may ask for, weakest first. */
static const char *const cores[] = { "Haswell", "SkylakeX", "Cooperlake" };

static int core_rank(const char *name)
{
	for (size_t i = 0; i < sizeof(cores) / sizeof(cores[0]); i++)
		if (name && strcasecmp(name, cores[i]) == 0)
			return (int)i + 1;
	if (name && (strcasecmp(name, "Zen") == 0))
		return 1;
	if (name && strcasecmp(name, "SapphireRapids") == 0)
		return 4;
	return 0; /* Prescott, Nehalem, Sandybridge, ...: slower than any */
}

/* The best kernel set this CPU (and its OS) supports, or NULL. */
static const char *cpu_core(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512bf16") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl"))
		return "Cooperlake";
	if (__builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512vl"))
		return "SkylakeX";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return "Haswell";
	return NULL;
}

void ml_blas_setup(int argc, char **argv)
{
	const char *want = cpu_core();
	int fix_core = !getenv("OPENBLAS_CORETYPE") && want &&
		       core_rank(want) > core_rank(openblas_get_corename());
	/* OpenBLAS' idle threads spin (yielding) for 2^28 cycles after each
	 * threaded product; right after an evaluation that steals the core
	 * a training thread needs and halves the next epoch. 2^4: they
	 * sleep at once, which costs a threaded product microseconds. */
	int fix_timeout = !getenv("OPENBLAS_THREAD_TIMEOUT") &&
			  !getenv("GOTO_THREAD_TIMEOUT") &&
			  sysconf(_SC_NPROCESSORS_ONLN) > 1;
	char exe[4096];
	ssize_t n;

	if ((fix_core || fix_timeout) && argc > 0 && argv) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0 &&
		    (!fix_core || setenv("OPENBLAS_CORETYPE", want, 1) == 0) &&
		    (!fix_timeout ||
		     setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0)) {
			exe[n] = '\0';
			fflush(NULL);
			execv(exe, argv);
		}
		/* exec failed: run on with the library as it started */
		if (fix_core)
			unsetenv("OPENBLAS_CORETYPE");
		if (fix_timeout)
			unsetenv("OPENBLAS_THREAD_TIMEOUT");
	}
	if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS")) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		ml_blas_threads(cpus > 0 ? (int)cpus : 1);
	}
}

const char *ml_blas_corename(void)
{
	return openblas_get_corename();
}

void ml_blas_threads(int n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (cpus > 0 && n > cpus)
		n = (int)cpus;
	atomic_store(&max_threads, n);
	atomic_store(&cur_threads, n);
	openblas_set_num_threads(n);
}

static int thread_budget(void)
{
	int max = atomic_load(&max_threads);

	if (max == 0) {
		/* what OpenBLAS started with: OPENBLAS_NUM_THREADS or the
		 * CPUs */
		max = openblas_get_num_threads();
		max = max > 0 ? max : 1;
		atomic_store(&max_threads, max);
		atomic_store(&cur_threads, max);
	}
	return max;
}

static void threads_for(double macs)
{
	int max = thread_budget();
	int want = macs < THREAD_MIN_MACS || atomic_load(&parallel) ? 1 : max;

	if (atomic_exchange(&cur_threads, want) != want)
		openblas_set_num_threads(want);
}

int ml__infer_threads(size_t n)
{
	size_t t = n / INFER_MIN_SAMPLES;
	int max = thread_budget();

	if (t < 1)
		t = 1;
	return t < (size_t)max ? (int)t : max;
}

int ml__train_halves(size_t B)
{
	return thread_budget() >= 2 && !atomic_load(&parallel) &&
	       B >= 2 * HALF_MIN_SAMPLES ? 2 : 1;
}

void ml__parallel_begin(void)
{
	atomic_fetch_add(&parallel, 1);
	threads_for(0);
}

void ml__parallel_end(void)
{
	atomic_fetch_sub(&parallel, 1);
}

void ml__sgemm(int trans_a, int trans_b, int M, int N, int K, const float *A,
	       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	threads_for((double)M * N * K);
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
		    trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda,
		    B, ldb, beta, C, ldc);
}
