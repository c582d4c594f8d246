/* xoshiro256** seeded through splitmix64: fast, small state, and the same
 * sequence on every platform, which is what "deterministic under a seed"
 * needs. */
#include "engine/ml.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void ml_rng_seed(struct ml_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t ml_rng_u64(struct ml_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

double ml_rng_uniform(struct ml_rng *r)
{
	return (double)(ml_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t ml_rng_below(struct ml_rng *r, uint64_t n)
{
	/* rejection keeps the result unbiased */
	uint64_t lim = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;

	do
		x = ml_rng_u64(r);
	while (x >= lim);
	return x % n;
}

double ml_rng_normal(struct ml_rng *r)
{
	/* Box-Muller; one value per call keeps the state simple */
	double u1 = 1.0 - ml_rng_uniform(r); /* (0, 1] */
	double u2 = ml_rng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void ml_rng_shuffle(struct ml_rng *r, size_t *idx, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)ml_rng_below(r, i);
		size_t t = idx[i - 1];

		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}
