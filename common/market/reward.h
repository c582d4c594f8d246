/* How a round's pool is split among its accepted results when a task
 * pays by contribution (reward.scoring "shapley"): floor_share of the
 * pool in equal parts, the rest in proportion to max(0, phi) of each
 * result. Integer wei throughout, with the scores rounded to parts per
 * million first, so that anyone holding a scoring report recomputes the
 * very amounts that were paid. What is not split (every phi <= 0, or the
 * wei lost to rounding down) stays in the escrow for the creator. */
#ifndef FM_MARKET_REWARD_H
#define FM_MARKET_REWARD_H

#include "chain/u256.h"

#include <stddef.h>
#include <stdint.h>

/* Parts of a million in which floor_share and the weights are counted. */
#define REWARD_PPM 1000000ULL
/* Results one split takes at most. */
#define REWARD_SPLIT_MAX 100000

/* floor_share (0..1) in parts per million, rounded to nearest. */
uint64_t reward_floor_ppm(double floor_share);

/* The weight of each score: round(max(0, phi_i) / sum of max(0, phi) x
 * REWARD_PPM); all 0 when no score is positive. FM_EINVAL for a score
 * that is not finite. */
int reward_weights(uint64_t *w, const double *phi, size_t n);

/* amounts[i] = floor + rest x w[i] / sum(w), where floor = pool x
 * floor_ppm / REWARD_PPM / n and rest = pool - n x floor (each rounded
 * down). n in 1..REWARD_SPLIT_MAX, floor_ppm <= REWARD_PPM. */
int reward_split(struct chain_u256 *amounts, const struct chain_u256 *pool,
		 uint64_t floor_ppm, const uint64_t *w, size_t n);

#endif
