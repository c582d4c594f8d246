#include "market/reward.h"

#include "core/err.h"

#include <math.h>

uint64_t reward_floor_ppm(double floor_share)
{
	if (!(floor_share > 0))
		return 0;
	if (floor_share >= 1)
		return REWARD_PPM;
	return (uint64_t)llround(floor_share * (double)REWARD_PPM);
}

int reward_weights(uint64_t *w, const double *phi, size_t n)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!isfinite(phi[i]))
			return fm_error_set(FM_EINVAL, "score %zu is not a "
					    "finite number", i + 1);
		if (phi[i] > 0)
			sum += phi[i];
	}
	for (i = 0; i < n; i++)
		w[i] = sum > 0 && phi[i] > 0
			       ? (uint64_t)llround(phi[i] / sum *
						   (double)REWARD_PPM)
			       : 0;
	return FM_OK;
}

/* a x w / d rounded down, for w, d <= n x REWARD_PPM: a = q d + r, so
 * a w / d = q w + r w / d, and r w stays far inside 64 bits. */
static int mul_div(struct chain_u256 *out, const struct chain_u256 *a,
		   uint64_t w, uint64_t d)
{
	struct chain_u256 q, part;
	uint64_t r = 0;
	int err;

	chain_u256_div_u64(&q, &r, a, d);
	err = chain_u256_mul_u64(&part, &q, w);
	if (err)
		return err;
	q = chain_u256_from_u64(r * w / d);
	return chain_u256_add(out, &part, &q);
}

int reward_split(struct chain_u256 *amounts, const struct chain_u256 *pool,
		 uint64_t floor_ppm, const uint64_t *w, size_t n)
{
	struct chain_u256 floor, spent, rest;
	uint64_t sum = 0;
	size_t i;
	int err;

	if (n == 0 || n > REWARD_SPLIT_MAX)
		return fm_error_set(FM_EINVAL, "reward split: %zu results, "
				    "expected 1 to %d", n, REWARD_SPLIT_MAX);
	if (floor_ppm > REWARD_PPM)
		return fm_error_set(FM_EINVAL, "reward split: floor share "
				    "above 1");
	for (i = 0; i < n; i++) {
		if (w[i] > REWARD_PPM)
			return fm_error_set(FM_EINVAL, "reward split: weight "
					    "%zu above %llu", i + 1,
					    (unsigned long long)REWARD_PPM);
		sum += w[i];
	}
	err = mul_div(&floor, pool, floor_ppm, REWARD_PPM * n);
	if (err)
		return err;
	err = chain_u256_mul_u64(&spent, &floor, n);
	if (err)
		return err;
	err = chain_u256_sub(&rest, pool, &spent);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		struct chain_u256 share = chain_u256_from_u64(0);

		if (sum) {
			err = mul_div(&share, &rest, w[i], sum);
			if (err)
				return err;
		}
		err = chain_u256_add(&amounts[i], &floor, &share);
		if (err)
			return err;
	}
	return FM_OK;
}
