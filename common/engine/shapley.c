#include "engine/shapley.h"

#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = { "exact", "gtg" };

int ml_shapley_method_parse(enum ml_shapley_method *out, const char *name)
{
	for (int i = 0; i < 2; i++)
		if (name && !strcmp(name, method_names[i])) {
			*out = (enum ml_shapley_method)i;
			return FM_OK;
		}
	return fm_error_set(FM_EINVAL, "method \"%s\": expected exact or gtg",
			    name ? name : "");
}

const char *ml_shapley_method_name(enum ml_shapley_method m)
{
	return (unsigned)m < 2 ? method_names[m] : "?";
}

void ml_shapley_result_cleanup(struct ml_shapley_result *r)
{
	if (!r)
		return;
	free(r->phi);
	free(r->evals);
	memset(r, 0, sizeof(*r));
}

static uint64_t full_mask(size_t k)
{
	return k == 64 ? UINT64_MAX : (UINT64_C(1) << k) - 1;
}

/* ---- coalition values, each evaluated once ---------------------------- */

/* Open addressing over coalition masks; the log keeps the order. */
struct memo {
	uint64_t *keys;
	double *vals;
	unsigned char *used;
	size_t cap; /* a power of two, > 2 x budget */
	struct ml_shapley_eval *log;
	size_t n, budget;
	ml_shapley_value_fn value;
	void *arg;
};

static int memo_init(struct memo *m, size_t budget, ml_shapley_value_fn value,
		     void *arg)
{
	memset(m, 0, sizeof(*m));
	m->cap = 16;
	while (m->cap < 2 * budget + 2)
		m->cap *= 2;
	m->keys = calloc(m->cap, sizeof(*m->keys));
	m->vals = calloc(m->cap, sizeof(*m->vals));
	m->used = calloc(m->cap, 1);
	m->log = calloc(budget, sizeof(*m->log));
	m->budget = budget;
	m->value = value;
	m->arg = arg;
	if (!m->keys || !m->vals || !m->used || !m->log)
		return fm_error_set(FM_ENOMEM, "shapley: out of memory for "
				    "%zu evaluations", budget);
	return FM_OK;
}

static void memo_cleanup(struct memo *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	free(m->log);
}

static size_t memo_slot(const struct memo *m, uint64_t key)
{
	/* splitmix-style scrambling: masks of nearby coalitions differ in
	 * few bits */
	uint64_t h = key + UINT64_C(0x9e3779b97f4a7c15);
	size_t i;

	h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	for (i = (size_t)h & (m->cap - 1); m->used[i] && m->keys[i] != key;
	     i = (i + 1) & (m->cap - 1))
		;
	return i;
}

/* *out = v(key), evaluated now unless seen; FM_ETOOLARGE when that would
 * go past the budget. */
static int memo_get(struct memo *m, uint64_t key, double *out)
{
	size_t i = memo_slot(m, key);
	double v;
	int err;

	if (m->used[i]) {
		*out = m->vals[i];
		return FM_OK;
	}
	if (m->n == m->budget)
		return FM_ETOOLARGE;
	err = m->value(m->arg, key, &v);
	if (err)
		return err;
	if (!isfinite(v))
		return fm_error_set(FM_EUNPROCESSABLE, "shapley: the value of "
				    "coalition 0x%llx is not finite",
				    (unsigned long long)key);
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = v;
	m->log[m->n].coalition = key;
	m->log[m->n].value = v;
	m->n++;
	*out = v;
	return FM_OK;
}

/* ---- exact ------------------------------------------------------------- */

static int exact(struct ml_shapley_result *r, struct memo *m)
{
	size_t k = r->k, count = (size_t)1 << k;
	double coef[ML_SHAPLEY_EXACT_MAX], *v = NULL;
	int err = FM_OK;

	v = malloc(count * sizeof(*v));
	if (!v)
		return fm_error_set(FM_ENOMEM, "shapley: out of memory for "
				    "%zu coalitions", count);
	/* Gray-code order: each coalition differs from the last by one */
	for (size_t i = 0; i < count; i++) {
		uint64_t g = (uint64_t)(i ^ (i >> 1));

		err = memo_get(m, g, &v[g]);
		if (err)
			goto done;
	}
	/* |S|! (k - |S| - 1)! / k!, from coef[0] = 1/k by s / (k - s) */
	coef[0] = 1.0 / (double)k;
	for (size_t s = 1; s < k; s++)
		coef[s] = coef[s - 1] * (double)s / (double)(k - s);
	for (size_t s = 0; s < count; s++) {
		double c = coef[__builtin_popcountll(s)];

		for (size_t i = 0; i < k; i++)
			if (!(s & ((size_t)1 << i)))
				r->phi[i] += c * (v[s | ((size_t)1 << i)] -
						  v[s]);
	}
	r->v_empty = v[0];
	r->v_all = v[count - 1];
done:
	free(v);
	return err;
}

/* ---- GTG-Shapley ------------------------------------------------------- */

struct perm_rng {
	uint64_t s;
};

static uint64_t perm_next(struct perm_rng *g)
{
	uint64_t z = (g->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* perm = first, then the others in a random order. */
static void guided_perm(size_t *perm, size_t k, size_t first,
			struct perm_rng *g)
{
	size_t n = 0;

	perm[n++] = first;
	for (size_t i = 0; i < k; i++)
		if (i != first)
			perm[n++] = i;
	for (size_t i = k - 1; i > 1; i--) {
		size_t j = 1 + (size_t)(perm_next(g) % i);
		size_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
}

/* One permutation's marginals into sum. FM_ETOOLARGE (nothing added)
 * when the budget ends inside it. */
static int walk(double *sum, struct memo *m, const size_t *perm, size_t k,
		double v0, double vn, double cut)
{
	double marg[ML_SHAPLEY_MAX] = { 0 }, prev = v0, v;
	uint64_t mask = 0;
	int err;

	for (size_t pos = 0; pos < k; pos++) {
		/* within-permutation truncation: the rest adds nothing */
		if (fabs(vn - prev) <= cut)
			break;
		mask |= UINT64_C(1) << perm[pos];
		err = memo_get(m, mask, &v);
		if (err)
			return err;
		marg[perm[pos]] = v - prev;
		prev = v;
	}
	for (size_t i = 0; i < k; i++)
		sum[i] += marg[i];
	return FM_OK;
}

static double moved(const double *sum, const double *last, size_t k,
		    size_t t, size_t t_last)
{
	double d = 0, mag = 0;

	for (size_t i = 0; i < k; i++) {
		double now = sum[i] / (double)t;

		d += fabs(now - last[i] / (double)t_last);
		mag += fabs(now);
	}
	return mag > 0 ? d / mag : 0;
}

/* Cycles of permutations that met no new coalition before sampling stops:
 * the estimate still moves, but nothing is left to spend the budget on. */
#define IDLE_CYCLES 100

static int gtg(struct ml_shapley_result *r, struct memo *m,
	       const struct ml_shapley_opts *o)
{
	size_t k = r->k, t = 0, t_last = 0, perm[ML_SHAPLEY_MAX];
	size_t seen = 0, idle = 0;
	double sum[ML_SHAPLEY_MAX] = { 0 }, last[ML_SHAPLEY_MAX] = { 0 };
	struct perm_rng g = { o->seed };
	double v0, vn, cut;
	int err;

	err = memo_get(m, 0, &v0);
	if (!err)
		err = memo_get(m, full_mask(k), &vn);
	if (err)
		return err;
	r->v_empty = v0;
	r->v_all = vn;
	/* between-round truncation: a round that gained nothing scores 0 */
	if (vn == v0)
		return FM_OK;
	cut = o->truncation * fabs(vn - v0);
	for (;;) {
		guided_perm(perm, k, t % k, &g);
		err = walk(sum, m, perm, k, v0, vn, cut);
		if (err == FM_ETOOLARGE)
			break; /* the budget ended inside it: not counted */
		if (err)
			return err;
		t++;
		if (t % k)
			continue;
		/* a whole guided cycle: converged? Or is the budget out of
		 * reach, every coalition the walks need known already? */
		if (t_last && moved(sum, last, k, t, t_last) < o->tolerance)
			break;
		idle = m->n == seen ? idle + 1 : 0;
		if (idle == IDLE_CYCLES)
			break;
		seen = m->n;
		memcpy(last, sum, sizeof(sum));
		t_last = t;
	}
	fm_error_clear();
	if (t == 0)
		return fm_error_set(FM_EINVAL, "shapley: a budget of %zu "
				    "evaluations does not finish one "
				    "permutation of %zu updates",
				    m->budget, k);
	for (size_t i = 0; i < k; i++)
		r->phi[i] = sum[i] / (double)t;
	r->permutations = t;
	return FM_OK;
}

int ml_shapley(struct ml_shapley_result *out, size_t k,
	       ml_shapley_value_fn value, void *arg,
	       const struct ml_shapley_opts *o)
{
	struct ml_shapley_result r = { 0 };
	struct memo m = { 0 };
	size_t budget;
	int err;

	if (k < 1 || k > ML_SHAPLEY_MAX)
		return fm_error_set(FM_EINVAL, "shapley: %zu updates (expected "
				    "1 to %d)", k, ML_SHAPLEY_MAX);
	if (o->method == ML_SHAPLEY_EXACT && k > ML_SHAPLEY_EXACT_MAX)
		return fm_error_set(FM_EINVAL, "shapley: exact scoring of %zu "
				    "updates needs 2^%zu evaluations (at most "
				    "%d updates; use gtg)",
				    k, k, ML_SHAPLEY_EXACT_MAX);
	if (!(o->truncation >= 0 && o->truncation < 1) ||
	    !(o->tolerance >= 0 && o->tolerance < 1))
		return fm_error_set(FM_EINVAL, "shapley: truncation and "
				    "tolerance must be in [0, 1)");
	budget = o->method == ML_SHAPLEY_EXACT ? (size_t)1 << k
		 : o->budget ? o->budget : 16 * k;
	if (o->method == ML_SHAPLEY_GTG && budget < 2)
		return fm_error_set(FM_EINVAL, "shapley: a budget of %zu "
				    "evaluations (at least 2)", budget);
	r.k = k;
	r.phi = calloc(k, sizeof(*r.phi));
	if (!r.phi)
		return fm_error_set(FM_ENOMEM, "shapley: out of memory");
	err = memo_init(&m, budget, value, arg);
	if (err)
		goto done;
	err = o->method == ML_SHAPLEY_EXACT ? exact(&r, &m) : gtg(&r, &m, o);
	if (err)
		goto done;
	r.evaluations = m.n;
	r.evals = m.log; /* handed over */
	m.log = NULL;
	*out = r;
	r.phi = NULL;
done:
	memo_cleanup(&m);
	free(r.phi);
	return err;
}

/* ---- FedAvg coalitions -------------------------------------------------- */

int ml_shapley_fedavg_init(struct ml_shapley_fedavg *f)
{
	size_t n = 0;

	ml_model_params(f->model, &n);
	if (n != f->n)
		return fm_error_set(FM_EINVAL, "shapley: the model has %zu "
				    "parameters, the updates %zu", n, f->n);
	if (f->k < 1 || f->k > ML_SHAPLEY_MAX)
		return fm_error_set(FM_EINVAL, "shapley: %zu updates", f->k);
	for (size_t i = 0; f->weights && i < f->k; i++)
		if (!(f->weights[i] > 0) || !isfinite(f->weights[i]))
			return fm_error_set(FM_EINVAL, "shapley: weight %zu "
					    "must be > 0", i + 1);
	f->sum = calloc(f->n, sizeof(*f->sum));
	if (!f->sum)
		return fm_error_set(FM_ENOMEM, "shapley: out of memory for "
				    "%zu parameters", f->n);
	f->wsum = 0;
	f->members = 0;
	return FM_OK;
}

void ml_shapley_fedavg_cleanup(struct ml_shapley_fedavg *f)
{
	if (!f)
		return;
	free(f->sum);
	f->sum = NULL;
}

/* sum += sign * w_i * update_i */
static void move_by(struct ml_shapley_fedavg *f, size_t i, double sign)
{
	double w = sign * (f->weights ? f->weights[i] : 1.0);
	const float *u = f->updates[i];

	for (size_t j = 0; j < f->n; j++)
		f->sum[j] += w * (double)u[j];
	f->wsum += w;
}

int ml_shapley_fedavg_value(void *arg, uint64_t coalition, double *out)
{
	struct ml_shapley_fedavg *f = arg;
	uint64_t diff = coalition ^ f->members;
	float *p = ml_model_params(f->model, NULL);
	struct ml_eval e;
	int err;

	/* from the last coalition when that is cheaper than from nothing */
	if (__builtin_popcountll(diff) > __builtin_popcountll(coalition)) {
		memset(f->sum, 0, f->n * sizeof(*f->sum));
		f->wsum = 0;
		diff = coalition;
	}
	for (size_t i = 0; i < f->k; i++)
		if (diff & (UINT64_C(1) << i))
			move_by(f, i, coalition & (UINT64_C(1) << i) ? 1 : -1);
	f->members = coalition;
	if (!coalition) {
		memcpy(p, f->base, f->n * sizeof(*p));
		f->wsum = 0; /* no drift left over from removals */
	} else {
		for (size_t j = 0; j < f->n; j++)
			p[j] = (float)(f->sum[j] / f->wsum);
	}
	err = ml_evaluate(f->model, f->data, f->loss, f->from_logits, 0, &e);
	if (err)
		return err;
	*out = f->metric == ML_SHAPLEY_ACCURACY ? e.accuracy : -e.loss;
	return FM_OK;
}

/* ---- rank correlation ---------------------------------------------------- */

static int cmp_by_value(const void *a, const void *b, void *arg)
{
	const double *v = arg;
	double x = v[*(const size_t *)a], y = v[*(const size_t *)b];

	return (x > y) - (x < y);
}

/* rank[i] = 1-based rank of v[i], ties averaged */
static int ranks(double *rank, const double *v, size_t n)
{
	size_t *idx = malloc(n * sizeof(*idx));

	if (!idx)
		return -1;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_by_value, (void *)v);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
			j++;
		for (size_t t = i; t <= j; t++)
			rank[idx[t]] = (double)(i + j) / 2.0 + 1.0;
		i = j + 1;
	}
	free(idx);
	return 0;
}

double ml_spearman(const double *a, const double *b, size_t n)
{
	double *ra = malloc(n * sizeof(*ra)), *rb = malloc(n * sizeof(*rb));
	double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0, rho = 0;

	if (n < 2 || !ra || !rb || ranks(ra, a, n) || ranks(rb, b, n))
		goto done;
	for (size_t i = 0; i < n; i++) {
		ma += ra[i] / (double)n;
		mb += rb[i] / (double)n;
	}
	for (size_t i = 0; i < n; i++) {
		sab += (ra[i] - ma) * (rb[i] - mb);
		saa += (ra[i] - ma) * (ra[i] - ma);
		sbb += (rb[i] - mb) * (rb[i] - mb);
	}
	if (saa > 0 && sbb > 0)
		rho = sab / sqrt(saa * sbb);
done:
	free(ra);
	free(rb);
	return rho;
}
