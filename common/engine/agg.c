#include "engine/agg.h"

#include "core/err.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Coordinates per FedAvg block: the double accumulators (512 KiB) stay in
 * L2 while every update streams through them once, in runs long enough
 * for the hardware prefetcher (16384 read a 10M-parameter average at 0.69
 * of the triad bandwidth, 65536 at 0.79). */
#define AGG_BLOCK 65536
/* Fewest parameters worth a thread of their own. */
#define AGG_MIN_SHARE 32768
/* Bytes of the k x block transposed scratch of median / trimmed mean /
 * Krum: small enough for L2. */
#define AGG_SCRATCH_BYTES (256u * 1024u)

static const char *const rule_names[] = {
	[ML_AGG_FEDAVG] = "fedavg",
	[ML_AGG_MEDIAN] = "median",
	[ML_AGG_TRIMMED_MEAN] = "trimmed_mean",
	[ML_AGG_KRUM] = "krum",
	[ML_AGG_CENTERED_CLIP] = "centered_clip",
};
#define NRULES (sizeof(rule_names) / sizeof(rule_names[0]))

int ml_agg_rule_parse(enum ml_agg_rule *out, const char *name)
{
	for (size_t i = 0; i < NRULES; i++) {
		if (!strcmp(name, rule_names[i])) {
			*out = (enum ml_agg_rule)i;
			return FM_OK;
		}
	}
	return fm_error_set(FM_EINVAL,
			    "rule '%s': expected fedavg, median, trimmed_mean, "
			    "krum or centered_clip", name);
}

const char *ml_agg_rule_name(enum ml_agg_rule rule)
{
	if ((size_t)rule >= NRULES)
		return "unknown";
	return rule_names[rule];
}

/* Updates cut at each end by the trimmed mean. The epsilon keeps
 * 0.2 * 10 from becoming 1.999... */
static size_t trim_count(double trim, size_t k)
{
	return (size_t)floor(trim * (double)k + 1e-9);
}

int ml_agg_opts_check(const struct ml_agg_opts *o, size_t k)
{
	if (k == 0)
		return fm_error_set(FM_EINVAL, "no updates to aggregate");
	if (k > ML_AGG_MAX_UPDATES)
		return fm_error_set(FM_ETOOLARGE,
				    "%zu updates: at most %d per aggregation",
				    k, ML_AGG_MAX_UPDATES);
	switch (o->rule) {
	case ML_AGG_FEDAVG:
	case ML_AGG_MEDIAN:
		return FM_OK;
	case ML_AGG_TRIMMED_MEAN:
		if (!(o->trim >= 0.0 && o->trim < 0.5))
			return fm_error_set(FM_EINVAL,
					    "trim %g: expected a fraction in "
					    "[0, 0.5)", o->trim);
		if (2 * trim_count(o->trim, k) >= k)
			return fm_error_set(FM_EINVAL,
					    "trim %g of %zu updates leaves "
					    "none", o->trim, k);
		return FM_OK;
	case ML_AGG_KRUM:
		if (o->krum_f < 0)
			return fm_error_set(FM_EINVAL,
					    "krum f %d: expected >= 0",
					    o->krum_f);
		/* Blanchard et al. 2017: Krum needs n > 2f + 2. */
		if (k < 2 * (size_t)o->krum_f + 3)
			return fm_error_set(FM_EINVAL,
					    "krum with f = %d needs at least "
					    "%d updates, got %zu", o->krum_f,
					    2 * o->krum_f + 3, k);
		if (o->krum_m < 1 || (size_t)o->krum_m > k)
			return fm_error_set(FM_EINVAL,
					    "krum m %d: expected 1..%zu",
					    o->krum_m, k);
		return FM_OK;
	case ML_AGG_CENTERED_CLIP:
		if (!(o->clip_tau > 0.0) || !isfinite(o->clip_tau))
			return fm_error_set(FM_EINVAL,
					    "clipping radius %g: expected a "
					    "finite value > 0", o->clip_tau);
		if (o->clip_iters < 1 || o->clip_iters > 1000)
			return fm_error_set(FM_EINVAL,
					    "clipping iterations %d: expected "
					    "1..1000", o->clip_iters);
		return FM_OK;
	}
	return fm_error_set(FM_EINVAL, "unknown aggregation rule %d",
			    (int)o->rule);
}

size_t ml_agg_first_nonfinite(const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return i;
	return n;
}

double ml_agg_staleness_weight(double n_examples, double staleness,
			       double exponent)
{
	if (!(staleness > 0) || !(exponent > 0))
		return n_examples;
	return n_examples * pow(1.0 + staleness, -exponent);
}

static int check_finite(const float *const *upd, size_t k, size_t n)
{
	for (size_t i = 0; i < k; i++) {
		size_t j = ml_agg_first_nonfinite(upd[i], n);

		if (j < n)
			return fm_error_set(FM_EUNPROCESSABLE,
					    "update %zu: coordinate %zu is %s",
					    i, j, isnan(upd[i][j]) ?
					    "NaN" : "infinite");
	}
	return FM_OK;
}

/* ------------------------------------------------------------ FedAvg */

/* Weighted sums: four updates per pass over a block of double
 * accumulators that stays in L2, so each update is read once from memory
 * and the accumulators are touched k/4 times. Written with vector types
 * so that -O2 needs no auto-vectoriser; built for AVX-512, AVX2 and plain
 * x86-64, chosen at load time. No FMA: every variant rounds the same way,
 * so results do not depend on the machine. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AGG_CLONES __attribute__((target_clones("arch=x86-64-v4", \
	"arch=x86-64-v3", "default")))
#else
#define AGG_CLONES
#endif

typedef float agg_v8f __attribute__((vector_size(32)));
typedef double agg_v8d __attribute__((vector_size(64)));

/* acc[0..len) += w[0] p[0] + w[1] p[1] + w[2] p[2] + w[3] p[3] */
AGG_CLONES static void accumulate4(double *acc, const float *const *p,
				   const double *w, size_t len)
{
	const float *p0 = p[0], *p1 = p[1], *p2 = p[2], *p3 = p[3];
	double w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
	size_t j = 0;

	for (; j + 8 <= len; j += 8) {
		agg_v8f f0, f1, f2, f3;
		agg_v8d a;

		memcpy(&f0, p0 + j, sizeof(f0));
		memcpy(&f1, p1 + j, sizeof(f1));
		memcpy(&f2, p2 + j, sizeof(f2));
		memcpy(&f3, p3 + j, sizeof(f3));
		memcpy(&a, acc + j, sizeof(a));
		a += w0 * __builtin_convertvector(f0, agg_v8d) +
		     w1 * __builtin_convertvector(f1, agg_v8d) +
		     w2 * __builtin_convertvector(f2, agg_v8d) +
		     w3 * __builtin_convertvector(f3, agg_v8d);
		memcpy(acc + j, &a, sizeof(a));
	}
	for (; j < len; j++)
		acc[j] += w0 * (double)p0[j] + w1 * (double)p1[j] +
			  w2 * (double)p2[j] + w3 * (double)p3[j];
}

/* Squared L2 distance of a and b (len floats), in double. */
AGG_CLONES static double sqdist(const float *a, const float *b, size_t len)
{
	agg_v8d acc = { 0 };
	double s;
	size_t j = 0;

	for (; j + 8 <= len; j += 8) {
		agg_v8f x, y;
		agg_v8d e;

		memcpy(&x, a + j, sizeof(x));
		memcpy(&y, b + j, sizeof(y));
		e = __builtin_convertvector(x, agg_v8d) -
		    __builtin_convertvector(y, agg_v8d);
		acc += e * e;
	}
	s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	    ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	for (; j < len; j++) {
		double e = (double)a[j] - b[j];

		s += e * e;
	}
	return s;
}

/* out[lo..lo+len) = base_w * base + sum_i w[i] * upd[i][lo..lo+len)
 * (base, when not NULL, may be out + lo itself), summed in double in acc
 * (AGG_BLOCK doubles) so that averaging equal updates gives back exactly
 * the update. Updates of weight 0 are skipped. Returns 0 when a result
 * is not finite: a non-finite input, or weights that leave the float
 * range (a convex combination cannot). */
static int wsum_block(double *acc, float *out, const float *const *upd,
		      const double *w, size_t k, size_t lo, size_t len,
		      const float *base, double base_w)
{
	const float *p[4];
	double pw[4];
	size_t m = 0;
	int finite = 1;

	if (base)
		for (size_t j = 0; j < len; j++)
			acc[j] = base_w * (double)base[j];
	else
		memset(acc, 0, len * sizeof(*acc));
	for (size_t i = 0; i < k; i++) {
		if (w[i] == 0.0)
			continue;
		p[m] = upd[i] + lo;
		pw[m++] = w[i];
		if (m == 4) {
			accumulate4(acc, p, pw, len);
			m = 0;
		}
	}
	if (m) {
		/* pad the last group with weight 0 rows: a zero term changes
		 * no sum (and a non-finite p[0] is caught all the same) */
		for (; m < 4; m++) {
			p[m] = p[0];
			pw[m] = 0.0;
		}
		accumulate4(acc, p, pw, len);
	}
	for (size_t j = 0; j < len; j++) {
		out[lo + j] = (float)acc[j];
		finite &= isfinite(out[lo + j]) != 0;
	}
	return finite;
}

/* Threads of ml_agg_wsum; see ml_agg_set_threads. */
static int wsum_threads = 1;

void ml_agg_set_threads(int n)
{
	wsum_threads = n < 1 ? 1 : n > ML_AGG_MAX_THREADS ?
		       ML_AGG_MAX_THREADS : n;
}

/* One thread's share of a weighted sum: the blocks of [lo, hi). */
struct wsum_part {
	float *out;
	const float *const *upd;
	const double *w;
	size_t k, lo, hi;
	double *acc;
	int finite;
};

static void *wsum_run(void *arg)
{
	struct wsum_part *t = arg;

	t->finite = 1;
	for (size_t lo = t->lo; lo < t->hi && t->finite; lo += AGG_BLOCK) {
		size_t len = t->hi - lo < AGG_BLOCK ? t->hi - lo : AGG_BLOCK;

		t->finite = wsum_block(t->acc, t->out, t->upd, t->w, t->k, lo,
				       len, NULL, 0.0);
	}
	return NULL;
}

int ml_agg_wsum(float *out, const float *const *upd, const double *w,
		size_t k, size_t n)
{
	struct wsum_part part[ML_AGG_MAX_THREADS];
	pthread_t th[ML_AGG_MAX_THREADS];
	size_t nt, started = 1;
	double *acc;
	int finite = 1, err = FM_OK;

	for (size_t i = 0; i < k; i++)
		if (!isfinite(w[i]))
			return fm_error_set(FM_EINVAL,
					    "update %zu: weight is not finite",
					    i);
	/* a thread gets at least AGG_MIN_SHARE parameters: fewer do not
	 * pay for starting it */
	nt = (size_t)wsum_threads < n / AGG_MIN_SHARE ? (size_t)wsum_threads :
	     n / AGG_MIN_SHARE;
	nt = nt < 1 ? 1 : nt;
	acc = malloc(nt * AGG_BLOCK * sizeof(*acc));
	if (!acc)
		return fm_error_set(FM_ENOMEM, "out of memory (accumulators)");
	for (size_t i = 0; i < nt; i++) {
		/* shares start on 64-byte boundaries; each element's sum is
		 * the same whatever share or block holds it */
		struct wsum_part t = { out, upd, w, k, (n * i / nt) & ~(size_t)15,
				       (n * (i + 1) / nt) & ~(size_t)15,
				       acc + i * AGG_BLOCK, 1 };

		if (i + 1 == nt)
			t.hi = n;
		part[i] = t;
	}
	/* the calling thread takes part 0; a thread that cannot start
	 * leaves its part to the caller */
	for (size_t i = 1; i < nt; i++)
		if (pthread_create(&th[i], NULL, wsum_run, &part[i]) == 0)
			started = i + 1;
		else
			break;
	wsum_run(&part[0]);
	for (size_t i = 1; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = started; i < nt; i++)
		wsum_run(&part[i]);
	for (size_t i = 0; i < nt; i++)
		finite = finite && part[i].finite;
	if (!finite) {
		/* a non-finite input is named; otherwise the sum overflowed */
		err = check_finite(upd, k, n);
		if (err)
			goto done;
		err = fm_error_set(FM_EUNPROCESSABLE, "weighted sum exceeds "
				   "the float range");
	}
done:
	free(acc);
	return err;
}

static int fedavg(float *out, const float *const *upd, const double *weights,
		  size_t k, size_t n, int uniform)
{
	double *w = NULL, total = 0.0;
	int err;

	w = malloc(k * sizeof(*w));
	if (!w)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu weights)",
				    k);
	for (size_t i = 0; i < k; i++) {
		w[i] = uniform || !weights ? 1.0 : weights[i];
		total += w[i];
	}
	if (!isfinite(total)) {
		err = fm_error_set(FM_EINVAL, "weights: sum is not finite");
		goto done;
	}
	for (size_t i = 0; i < k; i++)
		w[i] /= total;
	err = ml_agg_wsum(out, upd, w, k, n);
done:
	free(w);
	return err;
}

/* ---------------------------------------------------------- selection */

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* The middle one of three values. */
static float median3(float a, float b, float c)
{
	if (a > b) {
		float t = a;

		a = b;
		b = t;
	}
	return c < a ? a : c > b ? b : c;
}

/* Rearranges a[0..len) so that a[t] holds the value a sorted array would
 * have there, nothing before it is greater and nothing after it smaller.
 * Quickselect with a median-of-three pivot and branch-free Lomuto passes
 * (a compare decides where the write pointer moves, not a jump: update
 * values are noise to a branch predictor). When a pass moves nothing
 * below the pivot, a second pass gathers the values equal to it, so runs
 * of equal values (unchanged weights) end the search at once. After
 * 2 log2(len) rounds without finishing it sorts what is left, so crafted
 * inputs cannot make it quadratic. */
static void select_nth(float *a, size_t len, size_t t)
{
	size_t lo = 0, hi = len;
	int budget = 2;

	for (size_t m = len; m > 1; m >>= 1)
		budget += 2;
	while (hi - lo > 16) {
		size_t i = lo;
		float p;

		if (budget-- == 0) {
			qsort(a + lo, hi - lo, sizeof(*a), cmp_float);
			return;
		}
		p = median3(a[lo], a[lo + (hi - lo) / 2], a[hi - 1]);
		for (size_t j = lo; j < hi; j++) {
			float v = a[j];

			a[j] = a[i];
			a[i] = v;
			i += v < p;
		}
		/* [lo, i) < p <= [i, hi) */
		if (t < i) {
			hi = i;
			continue;
		}
		if (i == lo) {
			for (size_t j = lo; j < hi; j++) {
				float v = a[j];

				a[j] = a[i];
				a[i] = v;
				i += !(v > p);
			}
			/* [lo, i) == p < [i, hi); p is in the range */
			if (t < i)
				return;
		}
		lo = i;
	}
	for (size_t i = lo + 1; i < hi; i++) {
		float v = a[i];
		size_t j = i;

		while (j > lo && a[j - 1] > v) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = v;
	}
}

/* Coordinates per transposed block for k updates. */
static size_t block_for(size_t k)
{
	size_t b = AGG_SCRATCH_BYTES / (k * sizeof(float));

	return b < 1 ? 1 : b > 1024 ? 1024 : b;
}

/* Median (trim_b == SIZE_MAX) or trimmed mean cutting trim_b at each end,
 * coordinate by coordinate. Each block of coordinates is copied from the
 * k updates (sequential reads) into rows of k values, then selected. */
static int coordinate_rule(float *out, const float *const *upd, size_t k,
			   size_t n, size_t trim_b)
{
	size_t bs = block_for(k);
	float *t = malloc(bs * k * sizeof(*t));

	if (!t)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu values)",
				    bs * k);
	for (size_t lo = 0; lo < n; lo += bs) {
		size_t len = n - lo < bs ? n - lo : bs;

		for (size_t i = 0; i < k; i++) {
			const float *p = upd[i] + lo;

			for (size_t j = 0; j < len; j++)
				t[j * k + i] = p[j];
		}
		for (size_t j = 0; j < len; j++) {
			float *row = t + j * k;
			double s = 0.0;

			if (trim_b == SIZE_MAX) {
				size_t h = k / 2;

				select_nth(row, k, h);
				if (k % 2) {
					out[lo + j] = row[h];
					continue;
				}
				/* even k: the lower middle is the largest
				 * value left of h */
				float low = row[0];

				for (size_t i = 1; i < h; i++)
					low = row[i] > low ? row[i] : low;
				out[lo + j] = (float)(((double)low +
						       (double)row[h]) / 2.0);
				continue;
			}
			if (trim_b > 0) {
				select_nth(row, k, trim_b);
				select_nth(row + trim_b, k - trim_b,
					   k - 2 * trim_b - 1);
			}
			for (size_t i = trim_b; i < k - trim_b; i++)
				s += row[i];
			out[lo + j] = (float)(s / (double)(k - 2 * trim_b));
		}
	}
	free(t);
	return FM_OK;
}

/* --------------------------------------------------------------- Krum */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct scored {
	double score;
	size_t index;
};

static int cmp_scored(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

/* d[i * k + j] (i < j) = squared L2 distance of updates i and j. */
static void pair_distances(double *d, const float *const *upd, size_t k,
			   size_t n, float *t, size_t bs)
{
	memset(d, 0, k * k * sizeof(*d));
	for (size_t lo = 0; lo < n; lo += bs) {
		size_t len = n - lo < bs ? n - lo : bs;

		for (size_t i = 0; i < k; i++)
			memcpy(t + i * bs, upd[i] + lo, len * sizeof(*t));
		for (size_t i = 0; i < k; i++) {
			const float *a = t + i * bs;

			for (size_t j = i + 1; j < k; j++)
				d[i * k + j] += sqdist(a, t + j * bs, len);
		}
	}
}

/* Krum (Blanchard et al., NeurIPS 2017): each update is scored by the
 * summed squared distances to its k - f - 2 nearest others; the m best
 * scored are averaged (m = 1 is Krum, m > 1 Multi-Krum). */
static int krum(float *out, const float *const *upd, size_t k, size_t n,
		int f, int m, int *chosen)
{
	size_t bs = block_for(k), near = k - (size_t)f - 2;
	double *d = NULL, *row = NULL, *w = NULL;
	struct scored *sc = NULL;
	float *t = NULL;
	int err = FM_OK;

	d = malloc(k * k * sizeof(*d));
	row = malloc(k * sizeof(*row));
	w = calloc(k, sizeof(*w));
	sc = malloc(k * sizeof(*sc));
	t = malloc(bs * k * sizeof(*t));
	if (!d || !row || !w || !sc || !t) {
		err = fm_error_set(FM_ENOMEM, "out of memory (krum of %zu "
				   "updates)", k);
		goto done;
	}
	pair_distances(d, upd, k, n, t, bs);
	for (size_t i = 0; i < k; i++) {
		size_t r = 0;

		sc[i].index = i;
		sc[i].score = 0.0;
		for (size_t j = 0; j < k; j++)
			if (j != i)
				row[r++] = i < j ? d[i * k + j] : d[j * k + i];
		qsort(row, r, sizeof(*row), cmp_double);
		for (size_t j = 0; j < near; j++)
			sc[i].score += row[j];
	}
	qsort(sc, k, sizeof(*sc), cmp_scored);
	for (int i = 0; i < m; i++)
		w[sc[i].index] = 1.0 / m;
	if (chosen)
		for (size_t i = 0; i < k; i++)
			chosen[i] = w[i] != 0.0;
	err = ml_agg_wsum(out, upd, w, k, n);
done:
	free(d);
	free(row);
	free(w);
	free(sc);
	free(t);
	return err;
}

/* ---------------------------------------------------- centered clipping */

/* Centered clipping (Karimireddy, He, Jaggi, ICML 2021), as Disco runs it:
 * v <- v + (1/k) sum_i (x_i - v) min(1, tau / |x_i - v|), iterated. The
 * step is v (1 - S/k) + sum_i (c_i / k) x_i with c_i the clip factors and
 * S their sum, so one weighted pass per iteration computes it. */
static int centered_clip(float *out, const float *const *upd, size_t k,
			 size_t n, double tau, int iters, const float *center)
{
	double *c = NULL, *acc = NULL;
	int err = FM_OK;

	c = malloc(k * sizeof(*c));
	acc = malloc(AGG_BLOCK * sizeof(*acc));
	if (!c || !acc) {
		err = fm_error_set(FM_ENOMEM, "out of memory (centered "
				   "clipping of %zu updates)", k);
		goto done;
	}
	if (center)
		memcpy(out, center, n * sizeof(*out));
	else
		memset(out, 0, n * sizeof(*out));
	for (int it = 0; it < iters; it++) {
		double s = 0.0;

		/* squared distances to v, a block of v at a time */
		memset(c, 0, k * sizeof(*c));
		for (size_t lo = 0; lo < n; lo += AGG_BLOCK) {
			size_t len = n - lo < AGG_BLOCK ? n - lo : AGG_BLOCK;

			for (size_t i = 0; i < k; i++)
				c[i] += sqdist(upd[i] + lo, out + lo, len);
		}
		for (size_t i = 0; i < k; i++) {
			double norm = sqrt(c[i]);

			c[i] = norm > tau ? tau / norm : 1.0;
			s += c[i];
		}
		for (size_t i = 0; i < k; i++)
			c[i] /= (double)k;
		for (size_t lo = 0; lo < n; lo += AGG_BLOCK) {
			size_t len = n - lo < AGG_BLOCK ? n - lo : AGG_BLOCK;

			wsum_block(acc, out, upd, c, k, lo, len, out + lo,
				   1.0 - s / (double)k);
		}
	}
done:
	free(c);
	free(acc);
	return err;
}

/* ------------------------------------------------------------- entry */

static int check_weights(const double *weights, size_t k)
{
	for (size_t i = 0; i < k; i++)
		if (!(weights[i] > 0.0) || !isfinite(weights[i]))
			return fm_error_set(FM_EINVAL,
					    "update %zu: weight %g: expected "
					    "a finite number > 0", i,
					    weights[i]);
	return FM_OK;
}

int ml_agg_combine(float *out, const float *const *upd, const double *weights,
		   size_t k, size_t n, const struct ml_agg_opts *o,
		   const float *center, int *chosen)
{
	int err;

	err = ml_agg_opts_check(o, k);
	if (err)
		return err;
	if (weights && o->rule == ML_AGG_FEDAVG && !o->uniform) {
		err = check_weights(weights, k);
		if (err)
			return err;
	}
	if (chosen)
		for (size_t i = 0; i < k; i++)
			chosen[i] = 1;
	if (n == 0)
		return FM_OK;
	/* FedAvg notices non-finite input in its single pass over the data;
	 * the other rules would silently drop a NaN, so they check first. */
	if (o->rule != ML_AGG_FEDAVG) {
		err = check_finite(upd, k, n);
		if (err)
			return err;
	}
	if (center && o->rule == ML_AGG_CENTERED_CLIP) {
		size_t j = ml_agg_first_nonfinite(center, n);

		if (j < n)
			return fm_error_set(FM_EUNPROCESSABLE,
					    "center: coordinate %zu is not "
					    "finite", j);
	}
	switch (o->rule) {
	case ML_AGG_FEDAVG:
		return fedavg(out, upd, weights, k, n, o->uniform);
	case ML_AGG_MEDIAN:
		return coordinate_rule(out, upd, k, n, SIZE_MAX);
	case ML_AGG_TRIMMED_MEAN:
		return coordinate_rule(out, upd, k, n,
				       trim_count(o->trim, k));
	case ML_AGG_KRUM:
		return krum(out, upd, k, n, o->krum_f, o->krum_m, chosen);
	case ML_AGG_CENTERED_CLIP:
		return centered_clip(out, upd, k, n, o->clip_tau,
				     o->clip_iters, center);
	}
	return fm_error_set(FM_EINVAL, "unknown aggregation rule %d",
			    (int)o->rule);
}
