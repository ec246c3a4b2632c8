/* dp.h: central differential privacy for the averaging strategies
 * (DP-FedAvg, McMahan et al. 2018), privacy.dp = central. Each update's
 * change from the round's global model g is clipped to L2 norm C
 * (privacy.clip_norm): u' = g + (u - g) min(1, C / |u - g|); every client
 * weighs the same; the round's sum of changes gets Gaussian noise of
 * standard deviation s C per element (s = privacy.noise_multiplier) and is
 * divided by the planned sample size m = federation.fit_clients, not by
 * how many updates came back (so one client moves the mean by at most
 * C / m whatever happens):
 *
 *   mean = g + (sum_i (u'_i - g) + N(0, (s C)^2 I)) / m
 *
 * which the strategy's own finish then takes as the round's mean (FedAvg
 * publishes it, FedAvgM and FedOpt step from it). The noise comes from the
 * kernel's random source (getrandom), never from the job's seed: a seed
 * anyone can read must not give the noise away, so a resumed job's model
 * is not bit-identical to an uninterrupted one's. The accountant
 * (dpaccount.h) turns the rounds released into epsilon at privacy.delta. */
#ifndef COHORT_DP_H
#define COHORT_DP_H

#include <jansson.h>

#include "config.h"
#include "dpaccount.h"
#include "error.h"
#include "fedavg.h"
#include "tensor.h"

struct dp {
	double clip;       /* C of the next round */
	double clip_used;  /* C of the round just released */
	double sigma;      /* s: the accountant's noise multiplier */
	double delta;      /* privacy.delta */
	unsigned expected; /* m: federation.fit_clients */
	/* privacy.adaptive_clip (Andrew et al. 2021): C moves towards the
	 * target quantile of the change norms, by a noisy count */
	int adaptive;
	double quantile, clip_lr, count_sd;
	double sigma_update; /* the update's share of the noise: s itself, or
	                      * (s^-2 - (2 count_sd)^-2)^-1/2 when adaptive */
	const void *global;  /* the round's global model (dp_configure) */
	unsigned folded, clipped;
	double norm_max; /* largest change norm before clipping, this round */
	struct dpaccount acct;
};

/* What the round line and metrics show of a released round. */
struct dp_round_info {
	double epsilon;  /* spent so far at privacy.delta (inf: no noise) */
	double clip;     /* the C this round clipped to */
	double norm_max; /* largest change norm before clipping */
	unsigned clipped;
	int adaptive;
};

/* The config's refusals: privacy.dp central needs an averaging strategy,
 * uniform weighting and no partial sums. */
int dp_check_config(const struct config *c, struct ipc_error *err);
/* The state of privacy.dp central, or NULL when it is off. */
struct dp *dp_new(const struct config *c);
/* A round starts from global (valid until its finish). */
void dp_configure(struct dp *d, const void *global);
/* Fold update into acc as the clipped u' above, with weight 1. */
void dp_fold(struct dp *d, struct fedavg *acc, const struct tensor_manifest *m,
             const void *update);
/* Before the strategy's finish: add the noise and make acc's mean the
 * fixed-denominator mean above. */
int dp_release(struct dp *d, struct fedavg *acc,
               const struct tensor_manifest *m, struct ipc_error *err);
/* The round was released: account for it. */
void dp_account(struct dp *d);
/* Epsilon spent so far at privacy.delta. */
double dp_epsilon(const struct dp *d);
/* The last released round, for the round line and metrics. */
void dp_info(const struct dp *d, struct dp_round_info *info);
/* What a checkpoint keeps: the rounds accounted, the RDP spent at every
 * order (so a resume with other settings adds its rounds to what was
 * really spent, not a replay under the new ones) and, with adaptive
 * clipping, where C got to. */
json_t *dp_save(const struct dp *d);
/* Restore dp_save's object (NULL: nothing saved yet); -1 when it is not
 * one, naming the field. */
int dp_load(struct dp *d, const json_t *obj, struct ipc_error *err);
void dp_free(struct dp *d);

#endif
