/* dpaccount.h: the privacy accountant of central differential privacy for
 * FedAvg: Rényi DP of the sampled Gaussian mechanism (each round samples a
 * client with probability q, adds Gaussian noise of noise_multiplier times
 * the clipping norm to the sum of clipped updates), composed over rounds,
 * converted to (epsilon, delta).
 *
 * RDP at integer order a of one round (Mironov, Talwar, Zhang 2019,
 * "Rényi Differential Privacy of the Sampled Gaussian Mechanism", sec. 3.3):
 *
 *   A_a = sum_{k=0..a} C(a, k) (1-q)^(a-k) q^k exp((k^2 - k) / (2 s^2))
 *   rdp(a) = log(A_a) / (a - 1)
 *
 * (s the noise multiplier), summed over rounds (RDP composes additively),
 * then epsilon(delta) = min over orders of
 *
 *   rdp(a) + log((a-1)/a) - (log(delta) + log(a)) / (a - 1)
 *
 * (the conversion of Balle et al. 2020, tighter than rdp + log(1/delta) /
 * (a-1), which bounds it from above). The sampling is taken as Poisson
 * with q = clients per round / clients, as the DP-FedAvg literature and
 * TensorFlow Privacy's accountant do for fixed-size samples. */
#ifndef COHORT_DPACCOUNT_H
#define COHORT_DPACCOUNT_H

/* The orders the accountant minimises over: 2 .. 64, then wider steps up
 * to 1024 (integers: the closed form above is exact there). */
#define DP_ORDERS 72

struct dpaccount {
	double q;     /* sampling probability of a client in a round */
	double sigma; /* noise standard deviation / clipping norm */
	double rdp[DP_ORDERS];
	unsigned rounds;
};

/* The order of index i (0 <= i < DP_ORDERS). */
unsigned dp_order(unsigned i);
/* RDP of one round of the sampled Gaussian mechanism at integer order
 * a >= 2 (q in [0, 1], sigma > 0); +inf when it overflows a double. */
double dp_rdp_round(double q, double sigma, unsigned a);
/* Start accounting for rounds of (q, sigma). */
void dpaccount_init(struct dpaccount *d, double q, double sigma);
/* One more round. */
void dpaccount_round(struct dpaccount *d);
/* Epsilon spent so far at delta, and the order that gave it (NULL: not
 * wanted); 0 before any round. */
double dpaccount_epsilon(const struct dpaccount *d, double delta,
                         unsigned *order);

#endif
