/* partition.c: splitting a training set across clients (iid, Dirichlet,
 * label shards), the partition file, and reading one client's slice. */
#include "partition.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "mapfile.h"
#include "rng.h"
#include "util.h"

#define PARTITION_MAGIC "COHPART\0"
#define PARTITION_VERSION 1u
#define DIRICHLET_TRIES 100

/* File layout: this header, offsets[clients + 1], train_end[clients] (both
 * uint64), then the indices (uint32), native byte order. */
struct partition_header {
	char magic[8];
	uint32_t version;
	uint32_t clients;
	uint64_t total;
	uint32_t dataset_count;
	uint32_t reserved;
};
_Static_assert(sizeof(struct partition_header) == 32, "partition header");

/* A sampled partition's whole file (spec.samples_per_client). */
#define SAMPLED_MAGIC "COHSAMP\0"
#define SAMPLED_VERSION 1u
struct sampled_header {
	char magic[8];
	uint32_t version;
	uint32_t clients;
	uint64_t seed;
	uint32_t dataset_count;
	uint32_t per_client;
	uint32_t holdout;
	uint32_t reserved;
};
_Static_assert(sizeof(struct sampled_header) == 40, "sampled header");

/* A split being built: client c owns indices[offsets[c]..offsets[c+1]). */
struct split {
	uint32_t clients;
	uint64_t *offsets;
	uint64_t *train_end;
	uint32_t *indices;
	uint64_t total;
	uint32_t dataset_count;
};

int
partition_scheme_parse(const char *name, enum partition_scheme *out,
                       struct ipc_error *err)
{
	static const char *const names[] = {"iid", "dirichlet", "shards"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum partition_scheme)i;
			return 0;
		}
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "partition.scheme: unknown scheme \"%s\" (choose "
	                     "iid, dirichlet or shards)",
	                     name);
}

/* Check the arguments of partition_build. */
static int
check_spec(const uint8_t *labels, uint32_t count, uint32_t classes,
           uint32_t clients, const struct partition_spec *spec,
           struct ipc_error *err)
{
	if (count == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partition: the dataset is empty");
	if (classes == 0 || classes > 256)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partition: %u classes (must be 1..256)",
		                     classes);
	for (uint32_t i = 0; i < count; i++)
		if (labels[i] >= classes)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "partition: label %u of sample %u "
			                     "is not < %u classes",
			                     labels[i], i, classes);
	if (clients == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "clients: 0 (use at least 1 client)");
	if (spec->samples_per_client > 0) {
		if (spec->scheme != PARTITION_IID)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "data.samples_per_client draws each client's "
			    "samples uniformly: set data.partition to iid, or "
			    "data.samples_per_client to 0 to split the data");
		if (spec->samples_per_client > count)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "data.samples_per_client: %u is more than the %u "
			    "samples of the training set",
			    spec->samples_per_client, count);
	} else if (clients > count)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "clients: %u clients for %u samples "
		                     "(every client needs a sample: use at "
		                     "most %u clients)",
		                     clients, count, count);
	if (!(spec->holdout_fraction >= 0.0 && spec->holdout_fraction < 1.0))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partition.holdout_fraction: %g is "
		                     "outside [0, 1) (e.g. 0.1 keeps 10%% of "
		                     "each client's slice for evaluation)",
		                     spec->holdout_fraction);
	switch (spec->scheme) {
	case PARTITION_IID:
		return 0;
	case PARTITION_DIRICHLET:
		if (!(spec->alpha > 0.0) || !isfinite(spec->alpha))
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "partition.alpha: %g must be a "
			                     "positive number (0.1 = very "
			                     "skewed, 100 = nearly iid)",
			                     spec->alpha);
		return 0;
	case PARTITION_SHARDS:
		if (spec->shards_per_client == 0)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "partition.shards_per_client: 0 "
			                     "(use at least 1, typically 2)");
		if ((uint64_t)clients * spec->shards_per_client > count)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "partition.shards_per_client: %u clients x %u "
			    "shards is more than the %u samples (use "
			    "fewer shards per client or fewer clients)",
			    clients, spec->shards_per_client, count);
		return 0;
	}
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "partition.scheme: unknown scheme %d",
	                     (int)spec->scheme);
}

/* Shuffled, equal-size slices: client c gets [c*n/k, (c+1)*n/k). */
static void
split_iid(struct rng *r, uint32_t count, struct split *s)
{
	for (uint32_t i = 0; i < count; i++)
		s->indices[i] = i;
	rng_shuffle_u32(r, s->indices, count);
	for (uint32_t c = 0; c <= s->clients; c++)
		s->offsets[c] = (uint64_t)c * count / s->clients;
}

/* Indices grouped by class in a shuffled order within each class:
 * class k occupies sorted[start[k]..start[k+1]). */
static void
group_by_class(struct rng *r, const uint8_t *labels, uint32_t count,
               uint32_t classes, uint32_t *sorted, uint64_t *start)
{
	uint32_t *order = xmalloc((size_t)count * sizeof *order);
	for (uint32_t i = 0; i < count; i++)
		order[i] = i;
	rng_shuffle_u32(r, order, count);
	memset(start, 0, (classes + 1) * sizeof *start);
	for (uint32_t i = 0; i < count; i++)
		start[labels[i] + 1]++;
	for (uint32_t k = 0; k < classes; k++)
		start[k + 1] += start[k];
	uint64_t *fill = xmalloc(classes * sizeof *fill);
	memcpy(fill, start, classes * sizeof *fill);
	/* A counting sort is stable, so ties keep the shuffled order. */
	for (uint32_t i = 0; i < count; i++)
		sorted[fill[labels[order[i]]]++] = order[i];
	free(fill);
	free(order);
}

/* Draw cuts[k * (clients + 1) + c]: where client c's share of class k
 * starts, from proportions ~ Dir(alpha). Returns 0 when every client got
 * at least one sample. */
static int
draw_dirichlet(struct rng *r, double alpha, uint32_t classes, uint32_t clients,
               const uint64_t *start, uint64_t *cuts, double *p,
               uint64_t *sizes)
{
	memset(sizes, 0, clients * sizeof *sizes);
	for (uint32_t k = 0; k < classes; k++) {
		uint64_t n = start[k + 1] - start[k];
		uint64_t *cut = cuts + (size_t)k * (clients + 1);
		double sum = 0.0;
		for (uint32_t c = 0; c < clients; c++) {
			p[c] = rng_gamma(r, alpha);
			sum += p[c];
		}
		if (!(sum > 0.0)) {
			/* Every draw underflowed (tiny alpha): the limit of
			 * Dir(alpha) is one client taking the whole class. */
			memset(p, 0, clients * sizeof *p);
			p[rng_below(r, clients)] = 1.0;
			sum = 1.0;
		}
		double acc = 0.0;
		cut[0] = 0;
		for (uint32_t c = 0; c < clients; c++) {
			acc += p[c];
			uint64_t at =
			    c + 1 == clients
			        ? n
			        : (uint64_t)floor(acc / sum * (double)n);
			if (at > n)
				at = n;
			if (at < cut[c])
				at = cut[c];
			cut[c + 1] = at;
			sizes[c] += at - cut[c];
		}
	}
	for (uint32_t c = 0; c < clients; c++)
		if (sizes[c] == 0)
			return -1;
	return 0;
}

/* Per class, proportions ~ Dir(alpha) over clients; redrawn while some
 * client ends up empty. */
static int
split_dirichlet(struct rng *r, const uint8_t *labels, uint32_t count,
                uint32_t classes, double alpha, struct split *s,
                struct ipc_error *err)
{
	uint32_t clients = s->clients;
	uint32_t *sorted = xmalloc((size_t)count * sizeof *sorted);
	uint64_t *start = xmalloc((classes + 1) * sizeof *start);
	uint64_t *cuts =
	    xmalloc((size_t)classes * (clients + 1) * sizeof *cuts);
	double *p = xmalloc(clients * sizeof *p);
	uint64_t *sizes = xmalloc(clients * sizeof *sizes);
	group_by_class(r, labels, count, classes, sorted, start);
	int tries = 0, rc = -1;
	while (tries < DIRICHLET_TRIES && rc != 0) {
		rc = draw_dirichlet(r, alpha, classes, clients, start, cuts, p,
		                    sizes);
		tries++;
	}
	if (rc != 0) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "partition.alpha: with alpha %g, %u clients and "
		              "%u samples some client got no sample in %d "
		              "draws: raise alpha or use fewer clients",
		              alpha, clients, count, DIRICHLET_TRIES);
		goto out;
	}
	s->offsets[0] = 0;
	for (uint32_t c = 0; c < clients; c++)
		s->offsets[c + 1] = s->offsets[c] + sizes[c];
	for (uint32_t c = 0; c < clients; c++) {
		uint64_t at = s->offsets[c];
		for (uint32_t k = 0; k < classes; k++) {
			const uint64_t *cut = cuts + (size_t)k * (clients + 1);
			uint64_t n = cut[c + 1] - cut[c];
			memcpy(s->indices + at, sorted + start[k] + cut[c],
			       n * sizeof *sorted);
			at += n;
		}
	}
out:
	free(sizes);
	free(p);
	free(cuts);
	free(start);
	free(sorted);
	return rc;
}

/* Label-sorted indices cut into clients * per_client equal shards, dealt to
 * clients at random. */
static void
split_shards(struct rng *r, const uint8_t *labels, uint32_t count,
             uint32_t classes, uint32_t per_client, struct split *s)
{
	uint32_t clients = s->clients;
	uint32_t nshards = clients * per_client;
	uint32_t *sorted = xmalloc((size_t)count * sizeof *sorted);
	uint64_t *start = xmalloc((classes + 1) * sizeof *start);
	uint32_t *deal = xmalloc((size_t)nshards * sizeof *deal);
	group_by_class(r, labels, count, classes, sorted, start);
	for (uint32_t i = 0; i < nshards; i++)
		deal[i] = i;
	rng_shuffle_u32(r, deal, nshards);
	uint64_t at = 0;
	for (uint32_t c = 0; c < clients; c++) {
		s->offsets[c] = at;
		for (uint32_t j = 0; j < per_client; j++) {
			uint64_t shard = deal[(size_t)c * per_client + j];
			uint64_t lo = shard * count / nshards;
			uint64_t hi = (shard + 1) * count / nshards;
			memcpy(s->indices + at, sorted + lo,
			       (hi - lo) * sizeof *sorted);
			at += hi - lo;
		}
	}
	s->offsets[clients] = at;
	free(deal);
	free(start);
	free(sorted);
}

/* Samples of k held out: floor(fraction * k), always keeping one. */
static uint64_t
held_out(double fraction, uint64_t k)
{
	uint64_t held = (uint64_t)floor(fraction * (double)k);
	return held >= k ? k - 1 : held;
}

/* Shuffle each client's slice and hold out its last floor(f * size)
 * samples, always keeping one for training. */
static void
apply_holdout(struct rng *r, double fraction, struct split *s)
{
	for (uint32_t c = 0; c < s->clients; c++) {
		uint64_t lo = s->offsets[c], n = s->offsets[c + 1] - lo;
		rng_shuffle_u32(r, s->indices + lo, n);
		s->train_end[c] = s->offsets[c + 1] - held_out(fraction, n);
	}
}

/* Write a built split (arg) as a partition file to fd. */
static int
write_split(int fd, const void *arg, struct ipc_error *err)
{
	const struct split *s = arg;
	struct partition_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, PARTITION_MAGIC, sizeof h.magic);
	h.version = PARTITION_VERSION;
	h.clients = s->clients;
	h.total = s->total;
	h.dataset_count = s->dataset_count;
	if (write_all(fd, &h, sizeof h) != 0 ||
	    write_all(fd, s->offsets, (s->clients + 1) * sizeof *s->offsets) !=
	        0 ||
	    write_all(fd, s->train_end, s->clients * sizeof *s->train_end) !=
	        0 ||
	    write_all(fd, s->indices, s->total * sizeof *s->indices) != 0)
		return ipc_error_set(err, IPC_E_IO, "write: %s",
		                     strerror(errno));
	return 0;
}

/* Write a sampled partition's header (arg) to fd. */
static int
write_sampled(int fd, const void *arg, struct ipc_error *err)
{
	if (write_all(fd, arg, sizeof(struct sampled_header)) != 0)
		return ipc_error_set(err, IPC_E_IO, "write: %s",
		                     strerror(errno));
	return 0;
}

int
partition_build(const uint8_t *labels, uint32_t count, uint32_t classes,
                uint32_t clients, const struct partition_spec *spec,
                const char *path, struct ipc_error *err)
{
	if (check_spec(labels, count, classes, clients, spec, err) != 0)
		return -1;
	if (spec->samples_per_client > 0) {
		struct sampled_header h = {
		    .version = SAMPLED_VERSION,
		    .clients = clients,
		    .seed = rng_derive(spec->seed, "partition-sample", 0),
		    .dataset_count = count,
		    .per_client = spec->samples_per_client,
		    .holdout = (uint32_t)held_out(spec->holdout_fraction,
		                                  spec->samples_per_client),
		};
		memcpy(h.magic, SAMPLED_MAGIC, sizeof h.magic);
		return atomicfile_write(path, write_sampled, &h, err);
	}
	struct split s = {
	    .clients = clients,
	    .offsets = xcalloc((size_t)clients + 1, sizeof *s.offsets),
	    .train_end = xcalloc(clients, sizeof *s.train_end),
	    .indices = xmalloc((size_t)count * sizeof *s.indices),
	    .total = count,
	    .dataset_count = count,
	};
	struct rng r;
	rng_seed(&r, rng_derive(spec->seed, "partition", 0), spec->scheme);
	int rc = 0;
	switch (spec->scheme) {
	case PARTITION_IID:
		split_iid(&r, count, &s);
		break;
	case PARTITION_DIRICHLET:
		rc = split_dirichlet(&r, labels, count, classes, spec->alpha,
		                     &s, err);
		break;
	case PARTITION_SHARDS:
		split_shards(&r, labels, count, classes,
		             spec->shards_per_client, &s);
		break;
	}
	if (rc == 0) {
		struct rng hr;
		rng_seed(&hr, rng_derive(spec->seed, "partition-holdout", 0),
		         0);
		apply_holdout(&hr, spec->holdout_fraction, &s);
		rc = atomicfile_write(path, write_split, &s, err);
	}
	free(s.indices);
	free(s.train_end);
	free(s.offsets);
	return rc;
}

/* Validate a mapped partition file of size bytes. */
static int
check_partition(const uint8_t *base, size_t size, const char *path,
                struct ipc_error *err)
{
	const struct partition_header *h = (const void *)base;
	if (memcmp(h->magic, PARTITION_MAGIC, sizeof h->magic) != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: not a cohort partition file (bad "
		                     "magic): rebuild it with partition_build",
		                     path);
	if (h->version != PARTITION_VERSION)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: partition version %u, this build "
		                     "reads %u: rebuild it",
		                     path, h->version, PARTITION_VERSION);
	if (h->clients == 0 || h->dataset_count == 0 ||
	    h->total > h->dataset_count)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: header says %u clients, %llu "
		                     "indices of a %u-sample dataset: rebuild "
		                     "it",
		                     path, h->clients,
		                     (unsigned long long)h->total,
		                     h->dataset_count);
	uint64_t want =
	    sizeof *h + (2 * (uint64_t)h->clients + 1) * 8 + h->total * 4;
	if (size != want)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "%s: file is %zu bytes, its header "
		                     "implies %llu (truncated or damaged): "
		                     "rebuild it",
		                     path, size, (unsigned long long)want);
	const uint64_t *off = (const void *)(base + sizeof *h);
	const uint64_t *tend = off + h->clients + 1;
	const uint32_t *idx = (const void *)(tend + h->clients);
	if (off[0] != 0 || off[h->clients] != h->total)
		return ipc_error_set(err, IPC_E_BOUNDS,
		                     "%s: offsets do not span the %llu "
		                     "indices: rebuild it",
		                     path, (unsigned long long)h->total);
	for (uint32_t c = 0; c < h->clients; c++)
		if (off[c + 1] < off[c] || tend[c] < off[c] ||
		    tend[c] > off[c + 1])
			return ipc_error_set(err, IPC_E_BOUNDS,
			                     "%s: client %u's offsets are out "
			                     "of order: rebuild it",
			                     path, c);
	uint8_t *seen = xcalloc(h->dataset_count / 8 + 1, 1);
	int rc = 0;
	for (uint64_t i = 0; i < h->total && rc == 0; i++) {
		uint32_t v = idx[i];
		if (v >= h->dataset_count)
			rc = ipc_error_set(err, IPC_E_BOUNDS,
			                   "%s: index %u at position %llu is "
			                   "not < %u samples: rebuild it",
			                   path, v, (unsigned long long)i,
			                   h->dataset_count);
		else if (seen[v / 8] & (1u << (v % 8)))
			rc = ipc_error_set(err, IPC_E_DUPLICATE,
			                   "%s: sample %u appears twice: "
			                   "rebuild it",
			                   path, v);
		else
			seen[v / 8] |= (uint8_t)(1u << (v % 8));
	}
	free(seen);
	return rc;
}

/* Take a mapped sampled partition file of size bytes into p. */
static int
open_sampled(const uint8_t *base, size_t size, const char *path,
             struct partition *p, struct ipc_error *err)
{
	struct sampled_header h;
	if (size != sizeof h)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "%s: a sampled partition is %zu bytes, "
		                     "this one %zu: rebuild it",
		                     path, sizeof h, size);
	memcpy(&h, base, sizeof h);
	if (h.version != SAMPLED_VERSION)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: sampled partition version %u, this "
		                     "build reads %u: rebuild it",
		                     path, h.version, SAMPLED_VERSION);
	if (h.clients == 0 || h.per_client == 0 ||
	    h.per_client > h.dataset_count || h.holdout >= h.per_client)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: %u clients of %u samples (%u held "
		                     "out) from %u: rebuild it",
		                     path, h.clients, h.per_client, h.holdout,
		                     h.dataset_count);
	p->clients = h.clients;
	p->dataset_count = h.dataset_count;
	p->per_client = h.per_client;
	p->holdout = h.holdout;
	p->seed = h.seed;
	p->draw = xmalloc((size_t)h.per_client * sizeof *p->draw);
	p->seen = xcalloc((size_t)h.dataset_count / 64 + 1, sizeof *p->seen);
	return 0;
}

int
partition_open(const char *path, struct partition *p, struct ipc_error *err)
{
	memset(p, 0, sizeof *p);
	void *map;
	size_t size;
	if (mapfile_open(path, sizeof(struct partition_header),
	                 "shorter than a partition header: rebuild it", &map,
	                 &size, err) != 0)
		return -1;
	if (memcmp(map, SAMPLED_MAGIC, 8) == 0) {
		int rc = open_sampled(map, size, path, p, err);
		munmap(map, size);
		return rc;
	}
	if (check_partition(map, size, path, err) != 0) {
		munmap(map, size);
		return -1;
	}
	const struct partition_header *h = map;
	p->clients = h->clients;
	p->offsets = (const uint64_t *)((const uint8_t *)map + sizeof *h);
	p->train_end = p->offsets + h->clients + 1;
	p->indices = (const uint32_t *)(p->train_end + h->clients);
	p->map = map;
	p->map_size = size;
	p->dataset_count = h->dataset_count;
	return 0;
}

void
partition_close(struct partition *p)
{
	if (p->map != NULL)
		munmap(p->map, p->map_size);
	free(p->draw);
	free(p->seen);
	memset(p, 0, sizeof *p);
}

/* Client c's sample of a sampled partition into p->draw: per_client
 * distinct indices (Floyd's algorithm: one draw each), then shuffled. */
static void
draw_client(struct partition *p, uint32_t c)
{
	struct rng r;
	rng_seed(&r, p->seed, c);
	uint32_t n = p->dataset_count, k = p->per_client;
	for (uint32_t i = 0, j = n - k; i < k; i++, j++) {
		uint32_t t = (uint32_t)rng_below(&r, (uint64_t)j + 1);
		if (p->seen[t / 64] & (1ull << (t % 64)))
			t = j; /* j itself cannot have been drawn yet */
		p->seen[t / 64] |= 1ull << (t % 64);
		p->draw[i] = t;
	}
	for (uint32_t i = 0; i < k; i++)
		p->seen[p->draw[i] / 64] = 0;
	rng_shuffle_u32(&r, p->draw, k);
}

int
partition_client(struct partition *p, uint32_t client, const uint32_t **train,
                 size_t *ntrain, const uint32_t **holdout, size_t *nholdout,
                 struct ipc_error *err)
{
	if (client >= p->clients)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "client %u: the partition has only %u "
		                     "clients (was it built for fewer?)",
		                     client, p->clients);
	if (p->offsets == NULL) {
		draw_client(p, client);
		*train = p->draw;
		*ntrain = p->per_client - p->holdout;
		*holdout = p->draw + *ntrain;
		*nholdout = p->holdout;
		return 0;
	}
	uint64_t lo = p->offsets[client], mid = p->train_end[client],
	         hi = p->offsets[client + 1];
	*train = p->indices + lo;
	*ntrain = (size_t)(mid - lo);
	*holdout = p->indices + mid;
	*nholdout = (size_t)(hi - mid);
	return 0;
}
