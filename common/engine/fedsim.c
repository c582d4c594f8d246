#include "engine/fedsim.h"

#include "core/err.h"
#include "engine/dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most clients a simulation or split accepts. */
#define FED_MAX_CLIENTS ML_AGG_MAX_UPDATES
#define FED_MAX_ROUNDS 100000
/* Dirichlet draws tried before giving up on a split with empty clients. */
#define FED_SPLIT_TRIES 1000

/* ------------------------------------------------ federated evaluation */

int ml_fed_eval_combine(struct ml_eval *out, const struct ml_eval *shards,
			size_t k)
{
	double loss = 0.0, acc = 0.0;
	size_t n = 0;

	for (size_t i = 0; i < k; i++) {
		if (shards[i].n == 0)
			continue;
		if (!isfinite(shards[i].loss) || !isfinite(shards[i].accuracy))
			return fm_error_set(FM_EINVAL, "shard %zu: loss or "
					    "accuracy is not finite", i);
		n += shards[i].n;
		loss += (double)shards[i].n * shards[i].loss;
		acc += (double)shards[i].n * shards[i].accuracy;
	}
	if (n == 0)
		return fm_error_set(FM_EINVAL, "federated evaluation: the %zu "
				    "shards hold no example", k);
	out->n = n;
	out->loss = loss / (double)n;
	out->accuracy = acc / (double)n;
	return FM_OK;
}

int ml_fed_evaluate(struct ml_model *m, const struct ml_dataset *shards,
		    size_t k, enum ml_loss loss, int from_logits,
		    struct ml_eval *per_shard, struct ml_eval *out)
{
	struct ml_eval *r = per_shard;
	int err = FM_OK;

	if (!r) {
		r = calloc(k ? k : 1, sizeof(*r));
		if (!r)
			return fm_error_set(FM_ENOMEM, "out of memory (%zu "
					    "shards)", k);
	}
	for (size_t i = 0; i < k; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		if (shards[i].n == 0)
			continue;
		err = ml_evaluate(m, &shards[i], loss, from_logits, 0, &r[i]);
		if (err) {
			fm_error_prefix("shard %zu", i);
			goto done;
		}
	}
	err = ml_fed_eval_combine(out, r, k);
done:
	if (r != per_shard)
		free(r);
	return err;
}

/* ------------------------------------------------------------- random */

/* Marsaglia and Tsang (2000); shapes below 1 through the boost
 * Gamma(a) = Gamma(a + 1) U^(1/a). */
double ml_fed_gamma(struct ml_rng *r, double shape)
{
	double d, c;

	if (shape < 1.0) {
		double u = 1.0 - ml_rng_uniform(r);

		return ml_fed_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
	}
	d = shape - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x = ml_rng_normal(r), v = 1.0 + c * x, u;

		if (v <= 0.0)
			continue;
		v = v * v * v;
		u = 1.0 - ml_rng_uniform(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return d * v;
		if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return d * v;
	}
}

void ml_fed_dirichlet(struct ml_rng *r, double alpha, double *out, size_t k)
{
	double top = -INFINITY, sum = 0.0;

	/* in logs: for small alpha, U^(1/alpha) underflows to 0 */
	for (size_t i = 0; i < k; i++) {
		if (alpha < 1.0)
			out[i] = log(ml_fed_gamma(r, alpha + 1.0)) +
				 log(1.0 - ml_rng_uniform(r)) / alpha;
		else
			out[i] = log(ml_fed_gamma(r, alpha));
		top = out[i] > top ? out[i] : top;
	}
	for (size_t i = 0; i < k; i++) {
		out[i] = exp(out[i] - top);
		sum += out[i];
	}
	for (size_t i = 0; i < k; i++)
		out[i] /= sum;
}

/* ------------------------------------------------------------- splits */

static int parse_number(const char *text, const char *what, double lo,
			double hi, double *out)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text || *end || !isfinite(v) || v < lo || v > hi)
		return fm_error_set(FM_EINVAL, "%s '%s': expected a number in "
				    "[%g, %g]", what, text, lo, hi);
	*out = v;
	return FM_OK;
}

int ml_fed_split_parse(struct ml_fed_split_spec *out, const char *text)
{
	struct ml_fed_split_spec s = { ML_FED_SPLIT_IID, 0.0, 0 };
	double v;
	int err;

	if (!strcmp(text, "iid")) {
		*out = s;
		return FM_OK;
	}
	if (!strncmp(text, "dirichlet:", 10)) {
		err = parse_number(text + 10, "dirichlet alpha", 1e-3, 1e6,
				   &v);
		if (err)
			return err;
		s.kind = ML_FED_SPLIT_DIRICHLET;
		s.alpha = v;
		*out = s;
		return FM_OK;
	}
	if (!strncmp(text, "shards:", 7)) {
		err = parse_number(text + 7, "shards per client", 1, 100000,
				   &v);
		if (err)
			return err;
		if (v != floor(v))
			return fm_error_set(FM_EINVAL, "shards per client "
					    "'%s': expected an integer",
					    text + 7);
		s.kind = ML_FED_SPLIT_SHARDS;
		s.shards = (int)v;
		*out = s;
		return FM_OK;
	}
	return fm_error_set(FM_EINVAL, "split '%s': expected iid, "
			    "dirichlet:ALPHA or shards:K", text);
}

void ml_fed_split_cleanup(struct ml_fed_split *s)
{
	free(s->off);
	free(s->idx);
	s->off = NULL;
	s->idx = NULL;
	s->clients = 0;
}

/* Sample indices grouped by class: class c is by_class[start[c] ..
 * start[c + 1]), in index order. */
static int group_by_class(const struct ml_dataset *d, int classes,
			  size_t **by_class_out, size_t **start_out)
{
	size_t *start = calloc((size_t)classes + 1, sizeof(*start));
	size_t *by_class = malloc(d->n * sizeof(*by_class));
	size_t *fill = calloc((size_t)classes, sizeof(*fill));

	if (!start || !by_class || !fill) {
		free(start);
		free(by_class);
		free(fill);
		return fm_error_set(FM_ENOMEM, "out of memory (split of %zu "
				    "samples)", d->n);
	}
	for (size_t i = 0; i < d->n; i++)
		start[(size_t)d->y[i * d->y_size] + 1]++;
	for (int c = 0; c < classes; c++)
		start[c + 1] += start[c];
	for (size_t i = 0; i < d->n; i++) {
		size_t c = (size_t)d->y[i * d->y_size];

		by_class[start[c] + fill[c]++] = i;
	}
	free(fill);
	*by_class_out = by_class;
	*start_out = start;
	return FM_OK;
}

/* owner[i] = client of sample i, drawn by Dirichlet shares per class.
 * Returns 1 when every client got a sample. */
static int dirichlet_owners(size_t *owner, const size_t *by_class,
			    const size_t *start, int classes, size_t clients,
			    double alpha, struct ml_rng *r, double *share,
			    size_t *perm, size_t *count)
{
	memset(count, 0, clients * sizeof(*count));
	for (int c = 0; c < classes; c++) {
		size_t nc = start[c + 1] - start[c], from = 0;
		double cum = 0.0;

		memcpy(perm, by_class + start[c], nc * sizeof(*perm));
		ml_rng_shuffle(r, perm, nc);
		ml_fed_dirichlet(r, alpha, share, clients);
		for (size_t j = 0; j < clients; j++) {
			size_t to;

			cum += share[j];
			to = j == clients - 1 ? nc :
			     (size_t)llround(cum * (double)nc);
			to = to > nc ? nc : to < from ? from : to;
			for (size_t i = from; i < to; i++)
				owner[perm[i]] = j;
			count[j] += to - from;
			from = to;
		}
	}
	for (size_t j = 0; j < clients; j++)
		if (count[j] == 0)
			return 0;
	return 1;
}

/* owner[i] for label-sorted shards: clients * k equal shards, k random
 * ones per client. */
static void shard_owners(size_t *owner, const size_t *by_class, size_t n,
			 size_t clients, size_t k, struct ml_rng *r,
			 size_t *perm)
{
	size_t total = clients * k;

	for (size_t s = 0; s < total; s++)
		perm[s] = s;
	ml_rng_shuffle(r, perm, total);
	for (size_t s = 0; s < total; s++) {
		size_t lo = perm[s] * n / total, hi = (perm[s] + 1) * n / total;

		for (size_t i = lo; i < hi; i++)
			owner[by_class[i]] = s / k;
	}
}

static int split_check(const struct ml_fed_split_spec *spec,
		       const struct ml_dataset *d, int classes, size_t clients)
{
	int err;

	if (clients < 1 || clients > FED_MAX_CLIENTS)
		return fm_error_set(FM_EINVAL, "clients %zu: expected 1..%d",
				    clients, FED_MAX_CLIENTS);
	if (d->n < clients)
		return fm_error_set(FM_EINVAL, "%zu samples cannot be split "
				    "over %zu clients", d->n, clients);
	if (spec->kind != ML_FED_SPLIT_IID) {
		if (d->y_size != 1)
			return fm_error_set(FM_EINVAL, "a label split needs "
					    "one class label per sample, the "
					    "data has %zu values", d->y_size);
		if (classes < 1 || classes > 100000)
			return fm_error_set(FM_EINVAL, "classes %d: expected "
					    "1..100000", classes);
		err = ml_dataset_check_labels(d, classes);
		if (err)
			return err;
	}
	if (spec->kind == ML_FED_SPLIT_SHARDS &&
	    (spec->shards < 1 || (size_t)spec->shards * clients > d->n))
		return fm_error_set(FM_EINVAL, "%d shards for each of %zu "
				    "clients: more shards than the %zu "
				    "samples", spec->shards, clients, d->n);
	if (spec->kind == ML_FED_SPLIT_DIRICHLET &&
	    !(spec->alpha > 0.0 && isfinite(spec->alpha)))
		return fm_error_set(FM_EINVAL, "dirichlet alpha %g: expected "
				    "> 0", spec->alpha);
	return FM_OK;
}

/* owner[i] = the client of sample i, drawn from r as spec says. */
static int draw_owners(size_t *owner, const struct ml_fed_split_spec *spec,
		       const struct ml_dataset *d, int classes,
		       size_t clients, struct ml_rng *r)
{
	/* shards need clients * K <= n slots, checked before */
	size_t *perm = malloc(d->n * sizeof(*perm));
	size_t *by_class = NULL, *start = NULL, *count = NULL;
	double *share = NULL;
	int err = FM_OK;

	if (!perm)
		return fm_error_set(FM_ENOMEM, "out of memory (split of %zu "
				    "samples)", d->n);
	if (spec->kind == ML_FED_SPLIT_IID) {
		for (size_t i = 0; i < d->n; i++)
			perm[i] = i;
		ml_rng_shuffle(r, perm, d->n);
		for (size_t i = 0; i < d->n; i++)
			owner[perm[i]] = i * clients / d->n;
		goto done;
	}
	err = group_by_class(d, classes, &by_class, &start);
	if (err)
		goto done;
	if (spec->kind == ML_FED_SPLIT_SHARDS) {
		shard_owners(owner, by_class, d->n, clients,
			     (size_t)spec->shards, r, perm);
		goto done;
	}
	count = calloc(clients, sizeof(*count));
	share = malloc(clients * sizeof(*share));
	if (!count || !share) {
		err = fm_error_set(FM_ENOMEM, "out of memory (split of %zu "
				   "samples)", d->n);
		goto done;
	}
	for (int t = 0;; t++) {
		if (t == FED_SPLIT_TRIES) {
			err = fm_error_set(FM_EINVAL, "dirichlet:%g left a "
					   "client without samples in %d "
					   "draws: use a larger alpha or fewer "
					   "clients", spec->alpha,
					   FED_SPLIT_TRIES);
			goto done;
		}
		if (dirichlet_owners(owner, by_class, start, classes, clients,
				     spec->alpha, r, share, perm, count))
			break;
	}
done:
	free(perm);
	free(by_class);
	free(start);
	free(count);
	free(share);
	return err;
}

/* s->off and s->idx from owner[] over n samples, keeping index order
 * inside each client; every client must own a sample. */
static int group_by_owner(struct ml_fed_split *s, const size_t *owner,
			  size_t n)
{
	size_t *fill = calloc(s->clients, sizeof(*fill));
	int err = FM_OK;

	s->off = calloc(s->clients + 1, sizeof(*s->off));
	s->idx = malloc(n * sizeof(*s->idx));
	if (!fill || !s->off || !s->idx) {
		err = fm_error_set(FM_ENOMEM, "out of memory (split of %zu "
				   "samples)", n);
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		s->off[owner[i] + 1]++;
	for (size_t c = 0; c < s->clients; c++)
		s->off[c + 1] += s->off[c];
	for (size_t i = 0; i < n; i++)
		s->idx[s->off[owner[i]] + fill[owner[i]]++] = i;
	for (size_t c = 0; c < s->clients; c++) {
		if (s->off[c + 1] == s->off[c]) {
			err = fm_error_set(FM_EINVAL, "client %zu got no "
					   "samples", c);
			goto done;
		}
	}
done:
	free(fill);
	return err;
}

int ml_fed_split_make(struct ml_fed_split *out,
		      const struct ml_fed_split_spec *spec,
		      const struct ml_dataset *d, int classes, size_t clients,
		      uint64_t seed)
{
	struct ml_fed_split s = { clients, NULL, NULL };
	size_t *owner = NULL;
	struct ml_rng r;
	int err;

	err = split_check(spec, d, classes, clients);
	if (err)
		return err;
	ml_rng_seed(&r, seed);
	owner = malloc(d->n * sizeof(*owner));
	if (!owner)
		return fm_error_set(FM_ENOMEM, "out of memory (split of %zu "
				    "samples)", d->n);
	err = draw_owners(owner, spec, d, classes, clients, &r);
	if (err)
		goto done;
	err = group_by_owner(&s, owner, d->n);
	if (err)
		goto done;
	*out = s;
	s.off = NULL;
	s.idx = NULL;
done:
	ml_fed_split_cleanup(&s);
	free(owner);
	return err;
}

/* ------------------------------------------------------------ attacks */

int ml_fed_attack_parse(struct ml_fed_attack *out, const char *text)
{
	static const struct {
		const char *name;
		enum ml_fed_attack_kind kind;
		int needs_value;
	} kinds[] = {
		{ "none", ML_FED_ATTACK_NONE, -1 },
		{ "sign_flip", ML_FED_ATTACK_SIGN_FLIP, 0 },
		{ "scale", ML_FED_ATTACK_SCALE, 1 },
		{ "noise", ML_FED_ATTACK_NOISE, 0 },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t len = strlen(kinds[i].name);
		struct ml_fed_attack a = { kinds[i].kind, 1.0 };
		int err;

		if (strncmp(text, kinds[i].name, len) ||
		    (text[len] && text[len] != ':'))
			continue;
		if (text[len] == ':' && kinds[i].needs_value >= 0) {
			err = parse_number(text + len + 1, "attack scale",
					   1e-6, 1e6, &a.scale);
			if (err)
				return err;
		} else if (text[len] == ':' || kinds[i].needs_value == 1) {
			return fm_error_set(FM_EINVAL, "attack '%s': %s", text,
					    kinds[i].needs_value == 1 ?
					    "expected scale:K" :
					    "takes no value");
		}
		*out = a;
		return FM_OK;
	}
	return fm_error_set(FM_EINVAL, "attack '%s': expected none, "
			    "sign_flip[:K], scale:K or noise[:S]", text);
}

void ml_fed_attack_apply(const struct ml_fed_attack *a, float *delta,
			 size_t n, struct ml_rng *r)
{
	switch (a->kind) {
	case ML_FED_ATTACK_NONE:
		return;
	case ML_FED_ATTACK_SIGN_FLIP:
	case ML_FED_ATTACK_SCALE: {
		float s = (float)(a->kind == ML_FED_ATTACK_SIGN_FLIP ?
				  -a->scale : a->scale);

		for (size_t i = 0; i < n; i++)
			delta[i] *= s;
		return;
	}
	case ML_FED_ATTACK_NOISE:
		for (size_t i = 0; i < n; i++)
			delta[i] = (float)(a->scale * ml_rng_normal(r));
		return;
	}
}

/* --------------------------------------------------------- simulation */

void ml_fed_sim_opts_init(struct ml_fed_sim_opts *o)
{
	struct ml_agg_opts agg = ML_AGG_OPTS_INIT;

	memset(o, 0, sizeof(*o));
	o->clients = 10;
	o->rounds = 5;
	o->sample_rate = 1.0;
	ml_train_opts_init(&o->local);
	o->split.kind = ML_FED_SPLIT_IID;
	o->classes = 10;
	o->agg = agg;
	o->attack.kind = ML_FED_ATTACK_NONE;
	o->attack.scale = 1.0;
	o->dp_delta = 1e-5;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int sim_check(const struct ml_fed_sim_opts *o)
{
	int err;

	if (o->clients < 1 || o->clients > FED_MAX_CLIENTS)
		return fm_error_set(FM_EINVAL, "clients %zu: expected 1..%d",
				    o->clients, FED_MAX_CLIENTS);
	if (o->rounds < 1 || o->rounds > FED_MAX_ROUNDS)
		return fm_error_set(FM_EINVAL, "rounds %d: expected 1..%d",
				    o->rounds, FED_MAX_ROUNDS);
	if (!(o->sample_rate > 0.0 && o->sample_rate <= 1.0))
		return fm_error_set(FM_EINVAL, "sample rate %g: expected a "
				    "fraction in (0, 1]", o->sample_rate);
	if (o->malicious > o->clients)
		return fm_error_set(FM_EINVAL, "%zu attackers among %zu "
				    "clients", o->malicious, o->clients);
	if (o->dp_clip != 0.0) {
		if (!(o->dp_clip > 0.0) || !isfinite(o->dp_clip))
			return fm_error_set(FM_EINVAL, "dp clip %g: expected a "
					    "finite value > 0", o->dp_clip);
		if (!(o->dp_noise >= 0.0) || !isfinite(o->dp_noise))
			return fm_error_set(FM_EINVAL, "dp noise %g: expected "
					    "a finite value >= 0",
					    o->dp_noise);
		if (!(o->dp_delta > 0.0 && o->dp_delta < 1.0))
			return fm_error_set(FM_EINVAL, "dp delta %g: expected "
					    "0 < delta < 1", o->dp_delta);
		if (o->agg.rule != ML_AGG_FEDAVG)
			return fm_error_set(FM_EINVAL, "differential privacy "
					    "works with the fedavg rule only, "
					    "not %s",
					    ml_agg_rule_name(o->agg.rule));
	}
	/* with every client in every round the rule must accept them all */
	err = ml_agg_opts_check(&o->agg, o->clients);
	return err;
}

/* The round's participants into part; returns how many. */
static size_t sample_clients(const struct ml_fed_sim_opts *o, int dp,
			     struct ml_rng *r, size_t *part)
{
	size_t k = 0, m;

	if (o->sample_rate >= 1.0) {
		for (size_t c = 0; c < o->clients; c++)
			part[k++] = c;
		return k;
	}
	if (dp) {
		for (size_t c = 0; c < o->clients; c++)
			if (ml_rng_uniform(r) < o->sample_rate)
				part[k++] = c;
		return k;
	}
	m = (size_t)llround(o->sample_rate * (double)o->clients);
	m = m < 1 ? 1 : m;
	for (size_t c = 0; c < o->clients; c++)
		part[c] = c;
	/* a partial Fisher-Yates draws m without replacement */
	for (size_t i = 0; i < m; i++) {
		size_t j = i + (size_t)ml_rng_below(r, o->clients - i), t;

		t = part[i];
		part[i] = part[j];
		part[j] = t;
	}
	return m;
}

struct local_loss {
	double loss;
};

static int last_epoch_loss(void *arg, struct ml_model *m,
			   const struct ml_epoch_stats *s)
{
	struct local_loss *l = arg;

	(void)m;
	l->loss = s->loss;
	return 0;
}

/* The per-round buffers of a simulation, sized once. */
struct sim_scratch {
	struct ml_dataset *client; /* [clients] views of the sorted set */
	float *deltas;             /* [clients x n] the round's updates */
	float *agg;                /* [n] the round's aggregate step */
	float *center;             /* [n] the last step (centered clipping) */
	const float **ptr;         /* [clients] the round's finite updates */
	double *weight;            /* [clients] and their weights */
	size_t *part;              /* [clients] the round's participants */
	size_t *ids;               /* [clients] the attackers' draw */
	char *evil;                /* [clients] 1 for an attacker */
};

static void sim_scratch_free(struct sim_scratch *b)
{
	free(b->client);
	free(b->deltas);
	free(b->agg);
	free(b->center);
	free(b->ptr);
	free(b->weight);
	free(b->part);
	free(b->ids);
	free(b->evil);
	memset(b, 0, sizeof(*b));
}

static int sim_scratch_alloc(struct sim_scratch *b, size_t clients, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->client = calloc(clients, sizeof(*b->client));
	b->deltas = malloc(clients * n * sizeof(*b->deltas));
	b->agg = malloc(n * sizeof(*b->agg));
	b->center = calloc(n, sizeof(*b->center));
	b->ptr = malloc(clients * sizeof(*b->ptr));
	b->weight = malloc(clients * sizeof(*b->weight));
	b->part = malloc(clients * sizeof(*b->part));
	b->ids = malloc(clients * sizeof(*b->ids));
	b->evil = calloc(clients, 1);
	if (!b->client || !b->deltas || !b->agg || !b->center || !b->ptr ||
	    !b->weight || !b->part || !b->ids || !b->evil) {
		sim_scratch_free(b);
		return fm_error_set(FM_ENOMEM, "out of memory (simulation of "
				    "%zu clients x %zu parameters)", clients,
				    n);
	}
	return FM_OK;
}

/* A running simulation. */
struct sim {
	const struct ml_fed_sim_opts *o;
	struct ml_model *global;
	const struct ml_dataset *test;
	struct ml_model *local;    /* a client's copy of the model */
	size_t n;                  /* parameters */
	int dp;
	struct ml_fed_split split;
	struct ml_dataset sorted;  /* the training set in client order */
	struct sim_scratch b;
	struct ml_dp_acct acct;
	struct ml_rng r;           /* attackers, sampling, noise */
};

/* The split, the clients' views, the local model and the attackers. */
static int sim_setup(struct sim *s, const struct ml_dataset *train)
{
	const struct ml_fed_sim_opts *o = s->o;
	struct sim_scratch *b = &s->b;
	int err;

	err = ml_fed_split_make(&s->split, &o->split, train, o->classes,
				o->clients, o->seed);
	if (err)
		return err;
	/* one copy of the training set in client order; clients are views */
	err = ml_dataset_subset(&s->sorted, train, s->split.idx,
				s->split.off[o->clients]);
	if (err)
		return err;
	err = ml_model_clone(&s->local, s->global);
	if (err)
		return err;
	err = sim_scratch_alloc(b, o->clients, s->n);
	if (err)
		return err;
	for (size_t c = 0; c < o->clients; c++) {
		size_t off = s->split.off[c];

		b->client[c] = s->sorted;
		b->client[c].n = s->split.off[c + 1] - off;
		b->client[c].x = s->sorted.x + off * s->sorted.x_size;
		b->client[c].y = s->sorted.y + off * s->sorted.y_size;
	}
	/* attackers and sampling draw from their own stream */
	ml_rng_seed(&s->r, o->seed ^ 0x5eed5eed5eed5eedull);
	for (size_t c = 0; c < o->clients; c++)
		b->ids[c] = c;
	ml_rng_shuffle(&s->r, b->ids, o->clients);
	for (size_t i = 0; i < o->malicious; i++)
		b->evil[b->ids[i]] = 1;
	ml_dp_acct_init(&s->acct);
	return FM_OK;
}

static void sim_cleanup(struct sim *s)
{
	ml_fed_split_cleanup(&s->split);
	ml_dataset_cleanup(&s->sorted);
	ml_model_free(s->local);
	s->local = NULL;
	sim_scratch_free(&s->b);
}

/* Trains the k participants from the global weights g; their finite
 * updates go to b.ptr and b.weight (*used of them), the mean of their
 * last epochs' losses to info->train_loss. */
static int train_clients(struct sim *s, int round, const float *g, size_t k,
			 struct ml_fed_round *info, size_t *used)
{
	const struct ml_fed_sim_opts *o = s->o;
	struct sim_scratch *b = &s->b;
	double loss_sum = 0.0, loss_n = 0.0;
	size_t n = s->n, np;
	int err;

	*used = 0;
	for (size_t i = 0; i < k; i++) {
		size_t c = b->part[i];
		float *l = ml_model_params(s->local, &np);
		float *d = b->deltas + *used * n;
		struct ml_train_opts lo = o->local;
		struct local_loss ll = { NAN };

		memcpy(l, g, n * sizeof(*l));
		lo.seed = o->local.seed + (uint64_t)round * 1000003u + c;
		lo.on_epoch = last_epoch_loss;
		lo.on_batch = NULL;
		lo.cb_arg = &ll;
		err = ml_train(s->local, &b->client[c], &lo);
		if (err) {
			fm_error_prefix("round %d, client %zu", round, c);
			return err;
		}
		for (size_t j = 0; j < n; j++)
			d[j] = l[j] - g[j];
		if (b->evil[c]) {
			ml_fed_attack_apply(&o->attack, d, n, &s->r);
			info->malicious++;
		}
		/* a server refuses a non-finite update */
		if (ml_agg_first_nonfinite(d, n) < n)
			continue;
		if (isfinite(ll.loss)) {
			loss_sum += ll.loss * (double)b->client[c].n;
			loss_n += (double)b->client[c].n;
		}
		b->ptr[*used] = d;
		b->weight[(*used)++] = (double)b->client[c].n;
	}
	info->train_loss = loss_n > 0 ? loss_sum / loss_n : NAN;
	return FM_OK;
}

/* Adds the aggregate of the used updates to the global weights g. */
static int aggregate(struct sim *s, int round, float *g, size_t used,
		     struct ml_fed_round *info)
{
	const struct ml_fed_sim_opts *o = s->o;
	struct sim_scratch *b = &s->b;
	size_t n = s->n;
	int err;

	if (s->dp)
		err = ml_dp_fedavg(b->agg, b->ptr, used, n, o->dp_clip,
				   o->dp_noise,
				   o->sample_rate * (double)o->clients, &s->r,
				   &info->dp_clipped);
	else
		err = ml_agg_combine(b->agg, b->ptr, b->weight, used, n,
				     &o->agg, b->center, NULL);
	if (err) {
		fm_error_prefix("round %d", round);
		return err;
	}
	for (size_t j = 0; j < n; j++)
		g[j] += b->agg[j];
	/* centered clipping starts from the last step */
	memcpy(b->center, b->agg, n * sizeof(*b->center));
	return FM_OK;
}

/* The new global model on the clients' data (with fed_eval) and on the
 * test set. */
static int evaluate_round(struct sim *s, int round, struct ml_fed_round *info)
{
	const struct ml_fed_sim_opts *o = s->o;
	struct ml_eval ev;
	int err;

	info->client_loss = info->client_accuracy = NAN;
	if (o->fed_eval) {
		err = ml_fed_evaluate(s->global, s->b.client, o->clients,
				      o->local.loss, o->local.from_logits,
				      NULL, &ev);
		if (err) {
			fm_error_prefix("round %d: client data", round);
			return err;
		}
		info->client_loss = ev.loss;
		info->client_accuracy = ev.accuracy;
	}
	err = ml_evaluate(s->global, s->test, o->local.loss,
			  o->local.from_logits, 0, &ev);
	if (err) {
		fm_error_prefix("round %d: test set", round);
		return err;
	}
	info->test_loss = ev.loss;
	info->test_accuracy = ev.accuracy;
	return FM_OK;
}

static int run_round(struct sim *s, int round)
{
	const struct ml_fed_sim_opts *o = s->o;
	struct ml_fed_round info = { 0 };
	size_t np, used;
	float *g = ml_model_params(s->global, &np);
	double t0 = now_s();
	size_t k = sample_clients(o, s->dp, &s->r, s->b.part);
	int err;

	info.round = round;
	info.participants = k;
	err = train_clients(s, round, g, k, &info, &used);
	if (err)
		return err;
	if (used > 0) {
		err = aggregate(s, round, g, used, &info);
		if (err)
			return err;
	}
	info.epsilon = NAN;
	if (s->dp) {
		err = ml_dp_acct_add(&s->acct, o->sample_rate, o->dp_noise, 1);
		if (err)
			return err;
		err = ml_dp_acct_epsilon(&s->acct, o->dp_delta, &info.epsilon,
					 NULL);
		if (err)
			return err;
	}
	err = evaluate_round(s, round, &info);
	if (err)
		return err;
	info.seconds = now_s() - t0;
	return o->on_round ? o->on_round(o->cb_arg, &info) : FM_OK;
}

int ml_fed_simulate(struct ml_model *global, const struct ml_dataset *train,
		    const struct ml_dataset *test,
		    const struct ml_fed_sim_opts *o)
{
	struct sim s;
	size_t n;
	int err;

	err = sim_check(o);
	if (err)
		return err;
	n = ml_model_param_count(global);
	if (n == 0)
		return fm_error_set(FM_EINVAL, "the model has no parameters");
	if (n > SIZE_MAX / sizeof(float) / o->clients)
		return fm_error_set(FM_ETOOLARGE, "%zu clients x %zu "
				    "parameters do not fit in memory",
				    o->clients, n);
	/* data that does not fit the model fails here, not in round 1 */
	err = ml_data_check(global, train, o->local.loss);
	if (err)
		return fm_error_prefix("training data");
	err = ml_data_check(global, test, o->local.loss);
	if (err)
		return fm_error_prefix("test data");
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.global = global;
	s.test = test;
	s.n = n;
	s.dp = o->dp_clip > 0.0;
	err = sim_setup(&s, train);
	if (err)
		goto done;
	for (int round = 1; round <= o->rounds; round++) {
		err = run_round(&s, round);
		if (err)
			goto done;
	}
done:
	sim_cleanup(&s);
	return err;
}
