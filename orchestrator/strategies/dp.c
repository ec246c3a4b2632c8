/* dp.c: clipping, noise and accounting of central DP (the math is in
 * dp.h). */
#include "dp.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

/* Strategies whose aggregate is the round's mean. */
static const char *const averaging[] = {"fedavg",  "fedprox", "fedavgm",
                                        "fedadam", "fedyogi", "fedadagrad"};

int
dp_check_config(const struct config *c, struct ipc_error *err)
{
	if (strcmp(c->privacy.dp, "central") != 0)
		return 0;
	size_t i = 0;
	while (i < ARRAY_LEN(averaging) &&
	       strcmp(averaging[i], c->strategy.name) != 0)
		i++;
	if (i == ARRAY_LEN(averaging))
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "privacy.dp central adds noise to the round's mean; "
		    "strategy %s does not average (use fedavg, fedprox, "
		    "fedavgm, fedadam, fedyogi or fedadagrad)",
		    c->strategy.name);
	if (strcmp(c->strategy.weighting, "uniform") != 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "privacy.dp central needs strategy.weighting uniform (a "
		    "client weighted by its %s could move the mean by more "
		    "than privacy.clip_norm / fit_clients): --set "
		    "strategy.weighting=uniform",
		    c->strategy.weighting);
	if (strcmp(c->launcher.partial_sums, "on") == 0)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "privacy.dp central clips every update in the "
		    "orchestrator, so workers cannot add them up: set "
		    "launcher.partial_sums to auto or off");
	double sd = c->privacy.clip_count_stddev > 0
	                ? c->privacy.clip_count_stddev
	                : (double)c->federation.fit_clients / 20;
	if (c->privacy.adaptive_clip && c->privacy.noise_multiplier > 0 &&
	    !(2 * sd > c->privacy.noise_multiplier))
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "privacy.adaptive_clip spends part of the noise on the "
		    "count of unclipped updates, and with its standard "
		    "deviation %g (privacy.clip_count_stddev; default "
		    "fit_clients / 20) nothing is left for the update: it "
		    "must be above privacy.noise_multiplier / 2 = %g (more "
		    "clients per round, a larger privacy.clip_count_stddev, "
		    "or adaptive_clip off)",
		    sd, c->privacy.noise_multiplier / 2);
	return 0;
}

struct dp *
dp_new(const struct config *c)
{
	if (strcmp(c->privacy.dp, "central") != 0)
		return NULL;
	struct dp *d = xcalloc(1, sizeof *d);
	d->clip = c->privacy.clip_norm;
	d->sigma = c->privacy.noise_multiplier;
	d->delta = c->privacy.delta;
	d->expected = (unsigned)c->federation.fit_clients;
	d->clip_used = d->clip;
	d->sigma_update = d->sigma;
	d->adaptive = c->privacy.adaptive_clip;
	if (d->adaptive) {
		d->quantile = c->privacy.target_quantile;
		d->clip_lr = c->privacy.clip_learning_rate;
		d->count_sd = c->privacy.clip_count_stddev > 0
		                  ? c->privacy.clip_count_stddev
		                  : (double)d->expected / 20;
		if (d->sigma > 0)
			d->sigma_update =
			    1 / sqrt(1 / (d->sigma * d->sigma) -
			             1 / (4 * d->count_sd * d->count_sd));
	}
	dpaccount_init(&d->acct,
	               (double)c->federation.fit_clients /
	                   (double)c->federation.clients,
	               d->sigma);
	return d;
}

void
dp_configure(struct dp *d, const void *global)
{
	d->global = global;
	d->folded = d->clipped = 0;
	d->norm_max = 0;
	d->clip_used = d->clip;
}

/* |u - g| over the whole model. */
static double
change_norm(const struct tensor_manifest *m, const void *u, const void *g)
{
	double sum = 0;
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		const float *a = (const float *)((const char *)u + t->offset);
		const float *b = (const float *)((const char *)g + t->offset);
		for (size_t k = 0; k < t->nbytes / sizeof(float); k++) {
			double x = (double)a[k] - (double)b[k];
			sum += x * x;
		}
	}
	return sqrt(sum);
}

void
dp_fold(struct dp *d, struct fedavg *acc, const struct tensor_manifest *m,
        const void *update)
{
	double norm = change_norm(m, update, d->global);
	double scale = norm > d->clip ? d->clip / norm : 1.0;
	d->clipped += norm > d->clip;
	d->norm_max = norm > d->norm_max ? norm : d->norm_max;
	/* u' = scale u + (1 - scale) g, element by element */
	int first = acc->folded == 0;
	double *a = acc->acc;
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		const float *u =
		    (const float *)((const char *)update + t->offset);
		const float *g =
		    (const float *)((const char *)d->global + t->offset);
		size_t n = t->nbytes / sizeof(float);
		for (size_t k = 0; k < n; k++) {
			double v = scale * u[k] + (1 - scale) * g[k];
			a[k] = first ? v : a[k] + v;
		}
		a += n;
	}
	acc->resident = 1;
	acc->weight += 1;
	acc->folded++;
	d->folded++;
}

/* Standard normal deviates into out[0..n), Box-Muller over uniforms from
 * the kernel's random source; -1 (errno set) when it cannot be read. */
static int
gaussians(double *out, size_t n)
{
	enum { BATCH = 1024 };
	uint64_t bits[BATCH];
	size_t i = 0;
	while (i < n) {
		size_t want = sizeof bits;
		for (size_t got = 0; got < want;) {
			ssize_t r =
			    getrandom((char *)bits + got, want - got, 0);
			if (r < 0 && errno != EINTR)
				return -1;
			got += r > 0 ? (size_t)r : 0;
		}
		for (size_t k = 0; k + 1 < BATCH && i < n; k += 2) {
			/* uniforms in (0, 1]: 53 random bits, plus one ulp */
			double u1 = ((bits[k] >> 11) + 1) * 0x1p-53;
			double u2 = (bits[k + 1] >> 11) * 0x1p-53;
			double r = sqrt(-2 * log(u1));
			out[i++] = r * cos(2 * M_PI * u2);
			if (i < n)
				out[i++] = r * sin(2 * M_PI * u2);
		}
	}
	return 0;
}

/* Adaptive clipping: the share of this round's updates within C, counted
 * with noise of count_sd, moves C geometrically towards the target
 * quantile: C <- C exp(-clip_lr (share - quantile)). */
static int
adapt_clip(struct dp *d, struct ipc_error *err)
{
	double noise = 0;
	if (d->count_sd > 0 && d->sigma > 0 && gaussians(&noise, 1) < 0)
		return ipc_error_set(
		    err, IPC_E_IO,
		    "privacy: cannot read random bytes for the "
		    "count's noise: %s",
		    strerror(errno));
	double within = (double)(d->folded - d->clipped) + d->count_sd * noise;
	double share = within / d->expected;
	d->clip = d->clip * exp(-d->clip_lr * (share - d->quantile));
	return 0;
}

int
dp_release(struct dp *d, struct fedavg *acc, const struct tensor_manifest *m,
           struct ipc_error *err)
{
	/* acc = sum u'_i = n g + sum changes; make it m g + sum changes +
	 * noise, with weight m */
	double extra = (double)d->expected - (double)d->folded;
	double sd = d->sigma_update * d->clip;
	enum { CHUNK = 4096 };
	double noise[CHUNK];
	double *a = acc->acc;
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		const float *g =
		    (const float *)((const char *)d->global + t->offset);
		size_t n = t->nbytes / sizeof(float);
		for (size_t k0 = 0; k0 < n; k0 += CHUNK) {
			size_t len = n - k0 < CHUNK ? n - k0 : CHUNK;
			if (sd > 0 && gaussians(noise, len) < 0)
				return ipc_error_set(
				    err, IPC_E_IO,
				    "privacy: cannot read random "
				    "bytes for the noise: %s",
				    strerror(errno));
			for (size_t k = 0; k < len; k++)
				a[k0 + k] += extra * g[k0 + k] +
				             (sd > 0 ? sd * noise[k] : 0);
		}
		a += n;
	}
	acc->weight = d->expected;
	return d->adaptive ? adapt_clip(d, err) : 0;
}

void
dp_account(struct dp *d)
{
	dpaccount_round(&d->acct);
}

double
dp_epsilon(const struct dp *d)
{
	if (d->sigma <= 0)
		return INFINITY; /* no noise: no privacy */
	return dpaccount_epsilon(&d->acct, d->delta, NULL);
}

void
dp_info(const struct dp *d, struct dp_round_info *info)
{
	info->epsilon = dp_epsilon(d);
	info->clip = d->clip_used;
	info->norm_max = d->norm_max;
	info->clipped = d->clipped;
	info->adaptive = d->adaptive;
}

json_t *
dp_save(const struct dp *d)
{
	json_t *rdp = json_array();
	/* a round without noise spends an infinite RDP: null in JSON */
	for (unsigned i = 0; i < DP_ORDERS; i++)
		json_array_append_new(rdp, isfinite(d->acct.rdp[i])
		                               ? json_real(d->acct.rdp[i])
		                               : json_null());
	json_t *obj = json_pack("{s:I,s:o}", "rounds",
	                        (json_int_t)d->acct.rounds, "rdp", rdp);
	if (d->adaptive)
		json_object_set_new(obj, "clip", json_real(d->clip));
	return obj;
}

int
dp_load(struct dp *d, const json_t *obj, struct ipc_error *err)
{
	if (obj == NULL)
		return 0;
	const json_t *rdp = json_object_get(obj, "rdp");
	json_int_t rounds = json_integer_value(json_object_get(obj, "rounds"));
	if (json_array_size(rdp) != DP_ORDERS || rounds < 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "state.json: strategy.dp: expected "
		                     "\"rounds\" >= 0 and \"rdp\", %d numbers",
		                     DP_ORDERS);
	for (unsigned i = 0; i < DP_ORDERS; i++) {
		const json_t *e = json_array_get(rdp, i);
		double v = json_is_null(e) ? INFINITY : json_number_value(e);
		if (!(v >= 0) || (!json_is_null(e) && !json_is_number(e)))
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "state.json: strategy.dp.rdp[%u] "
			                     "must be a number >= 0 or null",
			                     i);
		d->acct.rdp[i] = v;
	}
	d->acct.rounds = (unsigned)rounds;
	double clip = json_number_value(json_object_get(obj, "clip"));
	if (d->adaptive && clip > 0 && isfinite(clip))
		d->clip = clip; /* adaptive clipping's C, where it got to */
	return 0;
}

void
dp_free(struct dp *d)
{
	free(d);
}
