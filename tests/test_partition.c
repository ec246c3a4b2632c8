/* test_partition.c: iid, Dirichlet and shard splits cover the data once, are
 * reproducible from the seed, have the promised label skew, and damaged
 * partition files are rejected; a sampled partition (samples_per_client)
 * gives a million clients each its own distinct, reproducible, uniform
 * draw from a 40-byte file. */
#include "dataset.h"
#include "harness.h"
#include "partition.h"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLASSES 10

/* Balanced labels: every class appears count / 10 times, interleaved. */
static uint8_t *
balanced_labels(uint32_t count)
{
	uint8_t *labels = malloc(count);
	for (uint32_t i = 0; i < count; i++)
		labels[i] = (uint8_t)((i * 7u) % CLASSES);
	return labels;
}

/* A path in the test's temp dir. */
static const char *
tmp_path(const char *name)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof path[0], "%s/%s", harness_tmpdir(), name);
	return p;
}

/* A spec for scheme with defaults that every scheme accepts. */
static struct partition_spec
make_spec(enum partition_scheme scheme, uint64_t seed)
{
	struct partition_spec s = {0};
	s.scheme = scheme;
	s.alpha = 0.5;
	s.shards_per_client = 2;
	s.seed = seed;
	return s;
}

/* Build and open a partition; returns 0 when both worked. */
static int
build_open(const uint8_t *labels, uint32_t count, uint32_t clients,
           const struct partition_spec *spec, const char *path,
           struct partition *p)
{
	struct ipc_error err = {0};
	if (partition_build(labels, count, CLASSES, clients, spec, path,
	                    &err) != 0 ||
	    partition_open(path, p, &err) != 0) {
		fprintf(stderr, "  %s\n", err.message);
		return -1;
	}
	return 0;
}

/* Every index in [0, count) appears exactly once across all clients. */
static void
check_cover(struct partition *p, uint32_t count)
{
	int *seen = calloc(count, sizeof *seen);
	uint64_t total = 0;
	int bad = 0;
	for (uint32_t c = 0; c < p->clients; c++) {
		const uint32_t *tr, *ho;
		size_t nt, nh;
		struct ipc_error err;
		CHECK_EQ_INT(partition_client(p, c, &tr, &nt, &ho, &nh, &err),
		             0);
		CHECK(nt >= 1);
		for (size_t i = 0; i < nt + nh; i++) {
			uint32_t v = i < nt ? tr[i] : ho[i - nt];
			if (v >= count)
				bad++;
			else
				seen[v]++;
		}
		total += nt + nh;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(total, count);
	for (uint32_t i = 0; i < count; i++)
		bad += seen[i] != 1;
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(p->dataset_count, count);
	free(seen);
}

/* Whether two files hold identical bytes. */
static int
same_bytes(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int same = fa != NULL && fb != NULL;
	while (same) {
		int ca = fgetc(fa), cb = fgetc(fb);
		if (ca != cb)
			same = 0;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Cover, same seed -> same bytes, other seed -> other bytes. */
static void
check_scheme_basics(enum partition_scheme scheme, uint32_t count,
                    uint32_t clients)
{
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(scheme, 11);
	spec.holdout_fraction = 0.2;
	const char *a = tmp_path("basics-a"), *b = tmp_path("basics-b"),
	           *c = tmp_path("basics-c");
	struct partition p;
	CHECK_EQ_INT(build_open(labels, count, clients, &spec, a, &p), 0);
	CHECK_EQ_INT(p.clients, clients);
	check_cover(&p, count);
	partition_close(&p);
	struct ipc_error err = {0};
	CHECK_EQ_INT(
	    partition_build(labels, count, CLASSES, clients, &spec, b, &err),
	    0);
	CHECK(same_bytes(a, b));
	spec.seed = 12;
	CHECK_EQ_INT(
	    partition_build(labels, count, CLASSES, clients, &spec, c, &err),
	    0);
	CHECK(!same_bytes(a, c));
	free(labels);
}

static void
test_basics_iid(void)
{
	check_scheme_basics(PARTITION_IID, 6000, 7);
}

static void
test_basics_dirichlet(void)
{
	check_scheme_basics(PARTITION_DIRICHLET, 6000, 13);
}

static void
test_basics_shards(void)
{
	check_scheme_basics(PARTITION_SHARDS, 6000, 9);
}

static void
test_iid_sizes(void)
{
	uint32_t count = 1003, clients = 10;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(PARTITION_IID, 1);
	struct partition p;
	CHECK_EQ_INT(
	    build_open(labels, count, clients, &spec, tmp_path("iid"), &p), 0);
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint32_t c = 0; c < p.clients; c++) {
		uint64_t n = p.offsets[c + 1] - p.offsets[c];
		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
		CHECK_EQ_INT(p.train_end[c], p.offsets[c + 1]);
	}
	CHECK(hi - lo <= 1);
	CHECK_EQ_INT(lo, 100);
	partition_close(&p);
	free(labels);
}

/* Mean over clients of the largest single-class share of its samples. */
static double
mean_max_share(const struct partition *p, const uint8_t *labels)
{
	double sum = 0.0;
	for (uint32_t c = 0; c < p->clients; c++) {
		uint64_t counts[CLASSES] = {0}, n = 0, best = 0;
		for (uint64_t i = p->offsets[c]; i < p->offsets[c + 1]; i++) {
			counts[labels[p->indices[i]]]++;
			n++;
		}
		for (int k = 0; k < CLASSES; k++)
			best = counts[k] > best ? counts[k] : best;
		sum += (double)best / (double)n;
	}
	return sum / p->clients;
}

static void
test_dirichlet_skew(void)
{
	uint32_t count = 6000;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(PARTITION_DIRICHLET, 5);
	struct partition p;
	/* With 50 clients a concentrated prior leaves most clients dominated
	 * by one class (0.73..0.84 over seeds 1..20); with 10 clients the
	 * redraws that give every client a sample pull it to about 0.7. */
	spec.alpha = 0.05;
	CHECK_EQ_INT(
	    build_open(labels, count, 50, &spec, tmp_path("dir-skew"), &p), 0);
	double skewed = mean_max_share(&p, labels);
	partition_close(&p);
	spec.alpha = 1000;
	CHECK_EQ_INT(
	    build_open(labels, count, 10, &spec, tmp_path("dir-flat"), &p), 0);
	double flat = mean_max_share(&p, labels);
	partition_close(&p);
	printf("  mean max-class share: alpha 0.05 -> %.3f, alpha 1000 -> "
	       "%.3f\n",
	       skewed, flat);
	CHECK(skewed > 0.7);
	CHECK(flat < 0.2);

	/* Too many clients for so concentrated a prior: a clear failure. */
	struct ipc_error err = {0};
	spec.alpha = 0.001;
	CHECK_EQ_INT(partition_build(labels, count, CLASSES, 2000, &spec,
	                             tmp_path("dir-extreme"), &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "raise alpha or use fewer clients");
	free(labels);
}

/* Number of distinct classes among a client's samples. */
static int
client_classes(const struct partition *p, const uint8_t *labels, uint32_t c)
{
	int present[CLASSES] = {0}, n = 0;
	for (uint64_t i = p->offsets[c]; i < p->offsets[c + 1]; i++)
		present[labels[p->indices[i]]] = 1;
	for (int k = 0; k < CLASSES; k++)
		n += present[k];
	return n;
}

static void
test_shards_few_classes(void)
{
	uint32_t count = 1000;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(PARTITION_SHARDS, 9);
	struct partition p;
	/* 10 clients x 2 shards: 20 shards of 50 samples; every class holds
	 * 100 samples starting at a multiple of 100 in label order, so each
	 * shard is pure and a client sees at most 2 classes. */
	CHECK_EQ_INT(build_open(labels, count, 10, &spec, tmp_path("sh2"), &p),
	             0);
	for (uint32_t c = 0; c < p.clients; c++)
		CHECK(client_classes(&p, labels, c) <= 2);
	partition_close(&p);
	/* 20 clients x 3 shards: 60 shards of 16 or 17 samples. A shard is a
	 * contiguous run of the label-sorted order shorter than a class (100),
	 * so it crosses at most one class boundary and spans at most 2
	 * classes; 3 shards give at most 6 classes. */
	spec.shards_per_client = 3;
	CHECK_EQ_INT(build_open(labels, count, 20, &spec, tmp_path("sh3"), &p),
	             0);
	int total = 0;
	for (uint32_t c = 0; c < p.clients; c++) {
		int k = client_classes(&p, labels, c);
		CHECK(k >= 1 && k <= 6);
		total += k;
	}
	CHECK((double)total / p.clients < 5.0);
	partition_close(&p);
	free(labels);
}

static void
test_holdout(void)
{
	uint32_t count = 1000;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(PARTITION_IID, 3);
	struct partition p;
	spec.holdout_fraction = 0.25;
	CHECK_EQ_INT(build_open(labels, count, 10, &spec, tmp_path("ho"), &p),
	             0);
	for (uint32_t c = 0; c < p.clients; c++) {
		const uint32_t *tr, *ho;
		size_t nt, nh;
		struct ipc_error err;
		CHECK_EQ_INT(partition_client(&p, c, &tr, &nt, &ho, &nh, &err),
		             0);
		CHECK_EQ_INT(nt, 75);
		CHECK_EQ_INT(nh, 25);
		CHECK(ho == tr + nt);
	}
	partition_close(&p);
	/* One sample per client: nothing can be held out. */
	spec.holdout_fraction = 0.9;
	CHECK_EQ_INT(build_open(labels, 50, 50, &spec, tmp_path("ho1"), &p), 0);
	for (uint32_t c = 0; c < p.clients; c++)
		CHECK_EQ_INT(p.train_end[c] - p.offsets[c], 1);
	partition_close(&p);
	/* 0.995 of 100 rounds down to 99: one training sample stays. */
	spec.holdout_fraction = 0.995;
	CHECK_EQ_INT(build_open(labels, count, 10, &spec, tmp_path("ho2"), &p),
	             0);
	CHECK_EQ_INT(p.train_end[3] - p.offsets[3], 1);
	CHECK_EQ_INT(p.offsets[4] - p.train_end[3], 99);
	struct ipc_error err = {0};
	const uint32_t *tr, *ho;
	size_t nt, nh;
	CHECK_EQ_INT(partition_client(&p, 10, &tr, &nt, &ho, &nh, &err), -1);
	CHECK_STR_CONTAINS(err.message, "only 10 clients");
	partition_close(&p);
	free(labels);
}

/* samples_per_client: a federation far larger than the data, each client
 * a seeded draw of distinct samples, the same at every open, different
 * between clients and seeds, uniform over the data, its last floor(f * k)
 * held out. */
static void
test_sampled(void)
{
	uint32_t count = 6000, k = 60, clients = 1000000;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(PARTITION_IID, 11);
	spec.samples_per_client = k;
	spec.holdout_fraction = 0.1;
	struct partition p, q;
	const char *path = tmp_path("sampled");
	CHECK_EQ_INT(build_open(labels, count, clients, &spec, path, &p), 0);
	struct stat st;
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_size, 40);
	CHECK_EQ_INT(p.clients, clients);
	struct ipc_error err;
	CHECK_EQ_INT(partition_open(path, &q, &err), 0);
	uint32_t *hits = calloc(count, sizeof *hits);
	uint32_t first[60];
	int dup = 0, differ = 0, bad = 0;
	const uint32_t draws = 20000;
	for (uint32_t i = 0; i < draws; i++) {
		uint32_t c = i < draws / 2 ? i : clients - 1 - i;
		const uint32_t *tr, *ho, *tr2, *ho2;
		size_t nt, nh, nt2, nh2;
		CHECK_EQ_INT(partition_client(&p, c, &tr, &nt, &ho, &nh, &err),
		             0);
		CHECK_EQ_INT(
		    partition_client(&q, c, &tr2, &nt2, &ho2, &nh2, &err), 0);
		if (nt != 54 || nh != 6 || ho != tr + nt ||
		    memcmp(tr, tr2, k * sizeof *tr) != 0)
			bad++;
		for (size_t a = 0; a < k; a++) {
			hits[tr[a]]++;
			for (size_t b = 0; b < a; b++)
				dup += tr[a] == tr[b];
		}
		if (i == 0)
			memcpy(first, tr, sizeof first);
		else if (i == 1)
			differ = memcmp(first, tr, sizeof first) != 0;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(dup, 0);
	CHECK(differ);
	/* Each sample is drawn draws * k / count = 200 times on average; a
	 * uniform draw keeps every count within 5 standard deviations. */
	uint32_t lo = UINT32_MAX, hi = 0;
	for (uint32_t i = 0; i < count; i++) {
		lo = hits[i] < lo ? hits[i] : lo;
		hi = hits[i] > hi ? hits[i] : hi;
	}
	CHECK(lo >= 200 - 5 * 14 && hi <= 200 + 5 * 14);
	partition_close(&q);
	/* Another seed, another draw for the same client. */
	spec.seed = 12;
	CHECK_EQ_INT(
	    build_open(labels, count, clients, &spec, tmp_path("s2"), &q), 0);
	const uint32_t *tr, *ho;
	size_t nt, nh;
	CHECK_EQ_INT(partition_client(&q, 0, &tr, &nt, &ho, &nh, &err), 0);
	CHECK(memcmp(first, tr, sizeof first) != 0);
	partition_close(&q);
	/* Every sample of the data, in some order. */
	spec.samples_per_client = count;
	spec.holdout_fraction = 0;
	CHECK_EQ_INT(build_open(labels, count, 3, &spec, tmp_path("s3"), &q),
	             0);
	CHECK_EQ_INT(partition_client(&q, 2, &tr, &nt, &ho, &nh, &err), 0);
	memset(hits, 0, count * sizeof *hits);
	for (size_t i = 0; i < nt; i++)
		hits[tr[i]]++;
	int once = 0;
	for (uint32_t i = 0; i < count; i++)
		once += hits[i] == 1;
	CHECK_EQ_INT(once, (int)count);
	CHECK_EQ_INT(partition_client(&q, 3, &tr, &nt, &ho, &nh, &err), -1);
	partition_close(&q);
	partition_close(&p);
	free(hits);
	free(labels);
}

/* partition_build fails with IPC_E_BAD_VALUE and a message naming field. */
static void
expect_bad(const uint8_t *labels, uint32_t count, uint32_t clients,
           const struct partition_spec *spec, const char *field)
{
	struct ipc_error err = {0};
	CHECK_EQ_INT(partition_build(labels, count, CLASSES, clients, spec,
	                             tmp_path("bad"), &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, field);
}

static void
test_errors(void)
{
	uint32_t count = 100;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec s = make_spec(PARTITION_IID, 1);
	expect_bad(labels, count, 0, &s, "clients: 0");
	expect_bad(labels, count, 101, &s, "use at most 100 clients");
	s.samples_per_client = 101;
	expect_bad(labels, count, 1000, &s, "data.samples_per_client: 101");
	s.samples_per_client = 10;
	s.scheme = PARTITION_DIRICHLET;
	expect_bad(labels, count, 1000, &s, "set data.partition to iid");
	s.scheme = PARTITION_IID;
	s.samples_per_client = 0;
	s.holdout_fraction = 1.0;
	expect_bad(labels, count, 4, &s, "holdout_fraction");
	s.holdout_fraction = -0.1;
	expect_bad(labels, count, 4, &s, "holdout_fraction");
	s.holdout_fraction = NAN;
	expect_bad(labels, count, 4, &s, "holdout_fraction");
	s = make_spec(PARTITION_DIRICHLET, 1);
	s.alpha = 0;
	expect_bad(labels, count, 4, &s, "partition.alpha");
	s.alpha = -1;
	expect_bad(labels, count, 4, &s, "partition.alpha");
	s.alpha = NAN;
	expect_bad(labels, count, 4, &s, "partition.alpha");
	s = make_spec(PARTITION_SHARDS, 1);
	s.shards_per_client = 0;
	expect_bad(labels, count, 4, &s, "shards_per_client: 0");
	s.shards_per_client = 26;
	expect_bad(labels, count, 4, &s, "4 clients x 26 shards");
	labels[7] = CLASSES;
	s = make_spec(PARTITION_IID, 1);
	expect_bad(labels, count, 4, &s, "label 10 of sample 7");
	enum partition_scheme scheme;
	struct ipc_error err = {0};
	CHECK_EQ_INT(partition_scheme_parse("shards", &scheme, &err), 0);
	CHECK_EQ_INT(scheme, PARTITION_SHARDS);
	CHECK_EQ_INT(partition_scheme_parse("dirichlet", &scheme, &err), 0);
	CHECK_EQ_INT(scheme, PARTITION_DIRICHLET);
	CHECK_EQ_INT(partition_scheme_parse("noniid", &scheme, &err), -1);
	CHECK_STR_CONTAINS(err.message, "iid, dirichlet or shards");
	free(labels);
}

/* Copy src to a new file dst, then overwrite size bytes at off (from the
 * end when off < 0) or cut it short by -size bytes when data is NULL. */
static void
damaged_copy(const char *src, const char *dst, off_t off, const void *data,
             long size)
{
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	CHECK(in != NULL && out != NULL);
	if (in == NULL || out == NULL)
		return;
	int ch;
	while ((ch = fgetc(in)) != EOF)
		fputc(ch, out);
	fclose(in);
	fclose(out);
	struct stat st;
	CHECK(stat(dst, &st) == 0);
	if (data == NULL) {
		CHECK(truncate(dst, st.st_size + size) == 0);
		return;
	}
	int fd = open(dst, O_WRONLY);
	CHECK(pwrite(fd, data, (size_t)size,
	             off < 0 ? st.st_size + off : off) == size);
	close(fd);
}

/* partition_open rejects path with a message naming it and containing text. */
static void
expect_rejected(const char *path, const char *text)
{
	struct partition p;
	struct ipc_error err = {0};
	CHECK_EQ_INT(partition_open(path, &p, &err), -1);
	CHECK_STR_CONTAINS(err.message, path);
	CHECK_STR_CONTAINS(err.message, text);
	CHECK(p.map == NULL);
}

static void
test_damaged_files(void)
{
	uint32_t count = 200, clients = 4;
	uint8_t *labels = balanced_labels(count);
	struct partition_spec spec = make_spec(PARTITION_SHARDS, 2);
	const char *good = tmp_path("good.part");
	struct ipc_error err = {0};
	CHECK_EQ_INT(
	    partition_build(labels, count, CLASSES, clients, &spec, good, &err),
	    0);
	const char *bad = tmp_path("bad.part");
	damaged_copy(good, bad, 0, NULL, -4);
	expect_rejected(bad, "truncated");
	damaged_copy(good, bad, 0, NULL, -500);
	expect_rejected(bad, "truncated");
	uint32_t big = 5000;
	damaged_copy(good, bad, -4, &big, sizeof big);
	expect_rejected(bad, "index 5000 at position 199 is not < 200");
	uint32_t dup;
	struct partition p;
	CHECK_EQ_INT(partition_open(good, &p, &err), 0);
	dup = p.indices[0];
	partition_close(&p);
	damaged_copy(good, bad, -4, &dup, sizeof dup);
	expect_rejected(bad, "appears twice");
	uint64_t wild = 1u << 20;
	damaged_copy(good, bad, 32 + 8 * 2, &wild,
	             sizeof wild); /* offsets[2] */
	expect_rejected(bad, "out of order");
	damaged_copy(good, bad, 0, "JUNK", 4);
	expect_rejected(bad, "bad magic");
	damaged_copy(good, bad, 0, NULL, -(long)(200 * 4 + 72 + 20));
	expect_rejected(bad, "shorter than a partition header");
	free(labels);
}

static void
test_speed(void)
{
	uint32_t count = 60000, clients = 1000;
	uint8_t *labels = balanced_labels(count);
	const enum partition_scheme schemes[] = {
	    PARTITION_IID, PARTITION_DIRICHLET, PARTITION_SHARDS};
	const char *names[] = {"iid", "dirichlet(0.5)", "shards(2)"};
	for (int i = 0; i < 3; i++) {
		struct partition_spec spec = make_spec(schemes[i], 4);
		spec.holdout_fraction = 0.1;
		struct partition p;
		double t0 = now_seconds();
		int rc = build_open(labels, count, clients, &spec,
		                    tmp_path("speed"), &p);
		double t1 = now_seconds();
		CHECK_EQ_INT(rc, 0);
		printf("  %s: 60000 samples, 1000 clients: %.1f ms (build + "
		       "open)\n",
		       names[i], 1e3 * (t1 - t0));
		CHECK(t1 - t0 < 2.0);
		if (rc == 0)
			partition_close(&p);
	}
	free(labels);
}

/* Write a plain IDX file: magic, dims (big-endian), then data. */
static void
write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims,
          const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	uint32_t words[4] = {magic, dims[0], ndims > 1 ? dims[1] : 0,
	                     ndims > 2 ? dims[2] : 0};
	for (int i = 0; i <= ndims; i++) {
		uint8_t be[4] = {(uint8_t)(words[i] >> 24),
		                 (uint8_t)(words[i] >> 16),
		                 (uint8_t)(words[i] >> 8), (uint8_t)words[i]};
		fwrite(be, 1, 4, f);
	}
	fwrite(data, 1, len, f);
	fclose(f);
}

/* Run a shell command; its exit status, or -1. */
static int
run_status(const char *cmd)
{
	int st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_tool_histogram(void)
{
	const char *tool = harness_build_path("worker/cohort-partition");
	if (access(tool, X_OK) != 0)
		harness_skip("cohort-partition is not built");
	char tool_path[1024], dir[512], cache[600], cmd[4096];
	snprintf(tool_path, sizeof tool_path, "%s", tool);
	snprintf(dir, sizeof dir, "%s", tmp_path("tool-data"));
	CHECK(mkdir(dir, 0755) == 0);
	uint32_t count = 100, dims[3] = {100, 2, 2};
	uint8_t *labels = balanced_labels(count);
	uint8_t pixels[400] = {0};
	snprintf(cache, sizeof cache, "%s/train-images-idx3-ubyte", dir);
	write_idx(cache, 0x803, dims, 3, pixels, sizeof pixels);
	snprintf(cache, sizeof cache, "%s/train-labels-idx1-ubyte", dir);
	write_idx(cache, 0x801, dims, 1, labels, count);
	struct ipc_error err = {0};
	char data[1024];
	snprintf(cache, sizeof cache, "%s/cache", dir);
	CHECK_EQ_INT(dataset_prepare("mnist", dir, "train", cache, data,
	                             sizeof data, &err),
	             0);
	struct partition_spec spec = make_spec(PARTITION_SHARDS, 3);
	spec.holdout_fraction = 0.2;
	const char *part = tmp_path("tool.part"), *csv = tmp_path("tool.csv");
	CHECK_EQ_INT(
	    partition_build(labels, count, CLASSES, 4, &spec, part, &err), 0);
	snprintf(cmd, sizeof cmd, "%s --show %s --data %s --csv %s >/dev/null",
	         tool_path, part, data, csv);
	CHECK_EQ_INT(run_status(cmd), 0);
	/* The CSV rows match the partition's own counts. */
	struct partition p;
	CHECK_EQ_INT(partition_open(part, &p, &err), 0);
	FILE *f = fopen(csv, "r");
	CHECK(f != NULL);
	char line[512];
	CHECK(f != NULL && fgets(line, sizeof line, f) != NULL);
	CHECK_STR_CONTAINS(line, "client,total,train,holdout,class_0,");
	for (uint32_t c = 0; f != NULL && c < p.clients; c++) {
		char want[512];
		uint64_t k[CLASSES] = {0};
		for (uint64_t i = p.offsets[c]; i < p.offsets[c + 1]; i++)
			k[labels[p.indices[i]]]++;
		int n = snprintf(
		    want, sizeof want, "%u,%llu,%llu,%llu", c,
		    (unsigned long long)(p.offsets[c + 1] - p.offsets[c]),
		    (unsigned long long)(p.train_end[c] - p.offsets[c]),
		    (unsigned long long)(p.offsets[c + 1] - p.train_end[c]));
		for (int j = 0; j < CLASSES; j++)
			n += snprintf(want + n, sizeof want - (size_t)n,
			              ",%llu", (unsigned long long)k[j]);
		CHECK(fgets(line, sizeof line, f) != NULL);
		line[strcspn(line, "\n")] = '\0';
		CHECK(strcmp(line, want) == 0);
	}
	if (f != NULL)
		fclose(f);
	partition_close(&p);
	snprintf(cmd, sizeof cmd, "%s --clients x 2>/dev/null", tool_path);
	CHECK_EQ_INT(run_status(cmd), 2);
	snprintf(cmd, sizeof cmd, "%s --show %s 2>/dev/null", tool_path, part);
	CHECK_EQ_INT(run_status(cmd), 2);
	snprintf(cmd, sizeof cmd,
	         "%s --clients 500 --dataset mnist --data-dir %s --cache-dir "
	         "%s 2>/dev/null",
	         tool_path, dir, cache);
	CHECK_EQ_INT(run_status(cmd), 1);
	free(labels);
}

int
main(void)
{
	RUN(test_basics_iid);
	RUN(test_basics_dirichlet);
	RUN(test_basics_shards);
	RUN(test_iid_sizes);
	RUN(test_dirichlet_skew);
	RUN(test_shards_few_classes);
	RUN(test_holdout);
	RUN(test_sampled);
	RUN(test_errors);
	RUN(test_damaged_files);
	RUN(test_speed);
	RUN(test_tool_histogram);
	return harness_finish();
}
