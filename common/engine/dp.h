/* Differential privacy for federated updates: L2 clipping, Gaussian
 * noise (seeded, from engine/ml.h's generator), DP-FedAvg (central DP:
 * the server adds the noise to the sum of clipped client deltas), and the
 * Renyi DP accountant of the sampled Gaussian mechanism (Mironov, Talwar,
 * Zhang 2019, arXiv:1908.10530) with the (eps, delta) conversion of Balle
 * et al. 2020 (arXiv:1905.09982, Theorem 21). */
#ifndef FM_ENGINE_DP_H
#define FM_ENGINE_DP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ml.h"

/* A seed from the operating system (getrandom), for runs without --seed:
 * noise nobody can predict. */
int ml_dp_random_seed(uint64_t *out);

/* L2 norm of v, summed in double. */
double ml_dp_norm(const float *v, size_t n);
/* Scales v so that its L2 norm is at most clip (> 0); returns the norm
 * it had. */
double ml_dp_clip(float *v, size_t n, double clip);
/* Adds independent N(0, stddev^2) noise to each coordinate of v. */
void ml_dp_add_noise(float *v, size_t n, double stddev, struct ml_rng *r);

/* DP-FedAvg (McMahan et al., ICLR 2018): out = (sum_i clip(delta_i, C) +
 * N(0, (noise * C)^2 I)) / denom over the k client deltas (n floats each;
 * not modified). denom must not depend on who took part: the expected
 * number of participants (sample rate x clients) under Poisson sampling,
 * or k when k is fixed in advance. Weights are uniform on purpose:
 * weighting by example counts would raise a client's sensitivity above
 * C. nclipped, when not NULL, receives how many deltas were longer than
 * C. */
int ml_dp_fedavg(float *out, const float *const *deltas, size_t k, size_t n,
		 double clip, double noise, double denom, struct ml_rng *r,
		 size_t *nclipped);

/* RDP of one step of the sampled Gaussian mechanism at order alpha > 1:
 * each client takes part with probability q in [0, 1], noise multiplier
 * sigma >= 0. May be INFINITY (sigma 0, alpha infinite); NAN for
 * arguments out of range. */
double ml_dp_rdp_sgm(double q, double sigma, double alpha);

/* The smallest eps over the orders such that RDP values rdp[i] at
 * orders[i] give (eps, delta)-DP, 0 < delta < 1; *order_out (may be
 * NULL) gets the order that achieved it. */
int ml_dp_eps_from_rdp(double *eps_out, double *order_out,
		       const double *orders, const double *rdp, size_t n,
		       double delta);

#define ML_DP_MAX_ORDERS 256

/* Accumulates RDP over rounds at a fixed set of orders. */
struct ml_dp_acct {
	size_t n;
	double orders[ML_DP_MAX_ORDERS];
	double rdp[ML_DP_MAX_ORDERS];
};

/* Default orders: 1.1 to 10.9 by 0.1, 11 to 63, 128, 256, 512, 1024. */
void ml_dp_acct_init(struct ml_dp_acct *a);
/* Custom orders, each > 1 (at most ML_DP_MAX_ORDERS). */
int ml_dp_acct_init_orders(struct ml_dp_acct *a, const double *orders,
			   size_t n);
/* Records steps rounds of the sampled Gaussian mechanism. */
int ml_dp_acct_add(struct ml_dp_acct *a, double q, double sigma,
		   long steps);
int ml_dp_acct_epsilon(const struct ml_dp_acct *a, double delta,
		       double *eps_out, double *order_out);

#endif
