/* partition.h: the split of a training set across a job's clients.
 * Computed once per job, deterministically from the seed, written to a file
 * in the workspace; each worker maps it and reads only its own slice. */
#ifndef COHORT_PARTITION_H
#define COHORT_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum partition_scheme {
	PARTITION_IID,       /* shuffled, equal-size slices */
	PARTITION_DIRICHLET, /* per-class proportions ~ Dir(alpha) over clients
	                      */
	PARTITION_SHARDS,    /* label-sorted shards, shards_per_client each */
};

struct partition_spec {
	enum partition_scheme scheme;
	double alpha;               /* dirichlet concentration, > 0 */
	uint32_t shards_per_client; /* shards scheme, >= 1 */
	double holdout_fraction;    /* share of each client's slice kept for
	                               local evaluation, in [0, 1) */
	uint64_t seed;
	/* > 0 (data.samples_per_client, scheme iid only): client c's slice
	 * is its own seeded draw of this many distinct samples of the
	 * training set, made when it is asked for (clients' draws overlap;
	 * nothing per client is stored, so a federation may hold millions) */
	uint32_t samples_per_client;
};

/* Parse "iid", "dirichlet", "shards" (IPC_E_BAD_VALUE naming the choices). */
int partition_scheme_parse(const char *name, enum partition_scheme *out,
                           struct ipc_error *err);

/* Split count samples with the given labels across clients and write the
 * result atomically to path. Every client gets at least one training sample
 * or the call fails saying why (too many clients for the data). With
 * samples_per_client only the draw's parameters are written. */
int partition_build(const uint8_t *labels, uint32_t count, uint32_t classes,
                    uint32_t clients, const struct partition_spec *spec,
                    const char *path, struct ipc_error *err);

struct partition {
	uint32_t clients;
	const uint64_t *offsets; /* clients + 1 entries into indices */
	const uint64_t
	    *train_end; /* per client: [offsets[c], train_end[c]) train,
	                   [train_end[c], offsets[c+1]) held out */
	const uint32_t *indices;
	void *map;
	size_t map_size;
	uint32_t dataset_count; /* samples in the dataset it was built for;
	                           every index is below it */
	/* A sampled partition (offsets NULL): each client's draw of
	 * per_client samples, the last holdout of them held out; drawn into
	 * draw (per_client entries) with seen (a bit per dataset sample). */
	uint32_t per_client, holdout;
	uint64_t seed;
	uint32_t *draw;
	uint64_t *seen;
};

int partition_open(const char *path, struct partition *p,
                   struct ipc_error *err);
void partition_close(struct partition *p);
/* A client's training indices and held-out indices (either may be empty);
 * of a sampled partition they stay valid until the next call. */
int partition_client(struct partition *p, uint32_t client,
                     const uint32_t **train, size_t *ntrain,
                     const uint32_t **holdout, size_t *nholdout,
                     struct ipc_error *err);

#endif
