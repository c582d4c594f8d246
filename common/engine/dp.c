#include "engine/dp.h"

#include "core/err.h"
#include "engine/agg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int ml_dp_random_seed(uint64_t *out)
{
	uint64_t seed;
	ssize_t got;

	do
		got = getrandom(&seed, sizeof(seed), 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(seed))
		return fm_error_set(FM_EINTERNAL, "getrandom: %s",
				    got < 0 ? strerror(errno) : "short read");
	*out = seed;
	return FM_OK;
}

/* ----------------------------------------------------- clip and noise */

double ml_dp_norm(const float *v, size_t n)
{
	double s = 0.0;

	for (size_t i = 0; i < n; i++)
		s += (double)v[i] * v[i];
	return sqrt(s);
}

double ml_dp_clip(float *v, size_t n, double clip)
{
	double norm = ml_dp_norm(v, n);

	if (norm > clip) {
		double scale = clip / norm;

		for (size_t i = 0; i < n; i++)
			v[i] = (float)(v[i] * scale);
	}
	return norm;
}

void ml_dp_add_noise(float *v, size_t n, double stddev, struct ml_rng *r)
{
	if (stddev == 0.0)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = (float)(v[i] + stddev * ml_rng_normal(r));
}

int ml_dp_fedavg(float *out, const float *const *deltas, size_t k, size_t n,
		 double clip, double noise, double denom, struct ml_rng *r,
		 size_t *nclipped)
{
	struct ml_agg_opts fedavg = ML_AGG_OPTS_INIT;
	double *w = NULL;
	size_t clipped = 0;
	int err = FM_OK;

	if (!(clip > 0.0) || !isfinite(clip))
		return fm_error_set(FM_EINVAL, "dp clip %g: expected a finite "
				    "value > 0", clip);
	if (!(noise >= 0.0) || !isfinite(noise))
		return fm_error_set(FM_EINVAL, "dp noise %g: expected a finite "
				    "value >= 0", noise);
	if (!(denom > 0.0) || !isfinite(denom))
		return fm_error_set(FM_EINVAL, "dp denominator %g: expected a "
				    "finite value > 0", denom);
	err = ml_agg_opts_check(&fedavg, k);
	if (err)
		return err;
	w = malloc(k * sizeof(*w));
	if (!w)
		return fm_error_set(FM_ENOMEM, "out of memory (%zu weights)",
				    k);
	/* clip by weighting: the deltas stay as they are */
	for (size_t i = 0; i < k; i++) {
		double norm = ml_dp_norm(deltas[i], n);

		if (!isfinite(norm)) {
			size_t j = ml_agg_first_nonfinite(deltas[i], n);

			err = fm_error_set(FM_EUNPROCESSABLE,
					   "update %zu: coordinate %zu is not "
					   "finite", i, j);
			goto done;
		}
		w[i] = 1.0 / denom;
		if (norm > clip) {
			w[i] *= clip / norm;
			clipped++;
		}
	}
	err = ml_agg_wsum(out, deltas, w, k, n);
	if (err)
		goto done;
	/* noise on the sum has stddev noise * clip; on the mean, / denom */
	ml_dp_add_noise(out, n, noise * clip / denom, r);
	if (nclipped)
		*nclipped = clipped;
done:
	free(w);
	return err;
}

/* ---------------------------------------------------------- accountant */

/* log(exp(a) + exp(b)) */
static double log_add(double a, double b)
{
	double lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo == -INFINITY)
		return hi;
	return hi + log1p(exp(lo - hi));
}

/* log(exp(a) - exp(b)), NaN when b > a (a rounding failure; the caller
 * then drops the order, which can only raise eps). */
static double log_sub(double a, double b)
{
	if (b > a)
		return NAN;
	if (b == -INFINITY)
		return a;
	if (a == b)
		return -INFINITY;
	return b + log(expm1(a - b));
}

/* log(erfc(x)), accurate where erfc underflows: the asymptotic series
 * erfc(x) ~ exp(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - ...). */
static double log_erfc(double x)
{
	double r;

	if (x < 25.0)
		return log(erfc(x));
	r = 1.0 / (x * x);
	return -x * x - log(x) - 0.5 * log(M_PI) +
	       log1p(r * (-0.5 + r * (0.75 + r * (-1.875 + r * 6.5625))));
}

/* log A_alpha for integer alpha: the binomial expansion of
 * E[((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha] (section 3.3 of
 * Mironov et al.). */
static double log_a_int(double q, double sigma, long alpha)
{
	double la = -INFINITY, lg = lgamma((double)alpha + 1.0);

	for (long i = 0; i <= alpha; i++) {
		double c = lg - lgamma((double)i + 1.0) -
			   lgamma((double)(alpha - i) + 1.0) +
			   (double)i * log(q) + (double)(alpha - i) * log1p(-q);

		la = log_add(la, c + (double)(i * i - i) /
					 (2.0 * sigma * sigma));
	}
	return la;
}

/* log A_alpha for fractional alpha: the integral split at z0 where the
 * two Gaussians' densities cross, each half a series in erfc terms. */
static double log_a_frac(double q, double sigma, double alpha)
{
	double la0 = -INFINITY, la1 = -INFINITY;
	double z0 = sigma * sigma * log(1.0 / q - 1.0) + 0.5;
	double log_coef = 0.0; /* log |binomial(alpha, i)| */
	int sign = 1;

	for (long i = 0; i < 100000; i++) {
		double j = alpha - (double)i;
		double t0 = log_coef + (double)i * log(q) + j * log1p(-q);
		double t1 = log_coef + j * log(q) + (double)i * log1p(-q);
		double e0 = log(0.5) + log_erfc(((double)i - z0) /
						(M_SQRT2 * sigma));
		double e1 = log(0.5) + log_erfc((z0 - j) / (M_SQRT2 * sigma));
		double s0 = t0 + (double)(i * i - i) / (2.0 * sigma * sigma) +
			    e0;
		double s1 = t1 + (j * j - j) / (2.0 * sigma * sigma) + e1;

		if (sign > 0) {
			la0 = log_add(la0, s0);
			la1 = log_add(la1, s1);
		} else {
			la0 = log_sub(la0, s0);
			la1 = log_sub(la1, s1);
		}
		if (isnan(la0) || isnan(la1))
			return NAN;
		if ((s0 > s1 ? s0 : s1) < -30.0)
			break;
		/* binomial(alpha, i + 1) = binomial(alpha, i) (alpha - i) /
		 * (i + 1): its sign flips once alpha - i < 0 */
		if (j == 0.0)
			return log_add(la0, la1); /* the rest are zero */
		log_coef += log(fabs(j)) - log((double)i + 1.0);
		if (j < 0.0)
			sign = -sign;
	}
	return log_add(la0, la1);
}

double ml_dp_rdp_sgm(double q, double sigma, double alpha)
{
	if (!(q >= 0.0 && q <= 1.0) || !(sigma >= 0.0) || !(alpha > 1.0))
		return NAN;
	if (q == 0.0)
		return 0.0;
	if (sigma == 0.0 || isinf(alpha))
		return INFINITY;
	if (q == 1.0)
		return alpha / (2.0 * sigma * sigma);
	if (alpha == floor(alpha) && alpha <= 1e6)
		return log_a_int(q, sigma, (long)alpha) / (alpha - 1.0);
	return log_a_frac(q, sigma, alpha) / (alpha - 1.0);
}

int ml_dp_eps_from_rdp(double *eps_out, double *order_out,
		       const double *orders, const double *rdp, size_t n,
		       double delta)
{
	double best = INFINITY, best_order = NAN;

	if (!(delta > 0.0 && delta < 1.0))
		return fm_error_set(FM_EINVAL, "delta %g: expected 0 < delta "
				    "< 1", delta);
	for (size_t i = 0; i < n; i++) {
		double a = orders[i], e;

		if (isnan(rdp[i]) || !(a > 1.0))
			continue;
		if (rdp[i] <= 0.0 || delta * delta + expm1(-rdp[i]) > 0.0) {
			/* the KL bound delta <= sqrt(1 - exp(-rdp)) already
			 * holds (D_alpha >= KL) */
			e = 0.0;
		} else {
			/* Balle et al. 2020, Theorem 21 */
			e = rdp[i] - (log(delta) + log(a)) / (a - 1.0) +
			    log1p(-1.0 / a);
			if (e < 0.0)
				e = 0.0;
		}
		if (e < best || isnan(best_order)) {
			best = e;
			best_order = a;
		}
	}
	*eps_out = best;
	if (order_out)
		*order_out = best_order;
	return FM_OK;
}

void ml_dp_acct_init(struct ml_dp_acct *a)
{
	size_t n = 0;

	for (int x = 1; x < 100; x++)
		a->orders[n++] = 1.0 + x / 10.0;
	for (int x = 11; x < 64; x++)
		a->orders[n++] = x;
	for (int x = 128; x <= 1024; x *= 2)
		a->orders[n++] = x;
	a->n = n;
	memset(a->rdp, 0, sizeof(a->rdp));
}

int ml_dp_acct_init_orders(struct ml_dp_acct *a, const double *orders,
			   size_t n)
{
	if (n == 0 || n > ML_DP_MAX_ORDERS)
		return fm_error_set(FM_EINVAL, "%zu orders: expected 1..%d", n,
				    ML_DP_MAX_ORDERS);
	for (size_t i = 0; i < n; i++)
		if (!(orders[i] > 1.0 && orders[i] <= 1e4))
			return fm_error_set(FM_EINVAL, "order %g: expected "
					    "1 < order <= 10000", orders[i]);
	memcpy(a->orders, orders, n * sizeof(*orders));
	memset(a->rdp, 0, sizeof(a->rdp));
	a->n = n;
	return FM_OK;
}

int ml_dp_acct_add(struct ml_dp_acct *a, double q, double sigma, long steps)
{
	if (!(q >= 0.0 && q <= 1.0))
		return fm_error_set(FM_EINVAL, "sample rate %g: expected 0..1",
				    q);
	if (!(sigma >= 0.0) || !isfinite(sigma))
		return fm_error_set(FM_EINVAL, "noise multiplier %g: expected "
				    "a finite value >= 0", sigma);
	if (steps < 0)
		return fm_error_set(FM_EINVAL, "steps %ld: expected >= 0",
				    steps);
	if (steps == 0)
		return FM_OK;
	for (size_t i = 0; i < a->n; i++)
		a->rdp[i] += (double)steps *
			     ml_dp_rdp_sgm(q, sigma, a->orders[i]);
	return FM_OK;
}

int ml_dp_acct_epsilon(const struct ml_dp_acct *a, double delta,
		       double *eps_out, double *order_out)
{
	return ml_dp_eps_from_rdp(eps_out, order_out, a->orders, a->rdp, a->n,
				  delta);
}
