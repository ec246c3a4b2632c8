/* test_dataset.c: IDX/CIFAR-10 decoding, damaged sources, the raw cache and
 * batch normalisation. */
#include "dataset.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Options of a synthetic IDX pair: what to break. */
struct idx_spec {
	int gz;
	uint32_t count, rows, cols;
	uint32_t label_count; /* count declared in the labels file */
	uint32_t image_magic; /* 0x803 unless testing bad magic */
	long image_cut;       /* bytes dropped from the image data */
	long label_cut;       /* bytes dropped from the label data */
	int trailing;         /* extra bytes after the image data */
	int bad_label;        /* write label 10 for the last sample */
};

/* The pixel value synthetic image i has at offset j. */
static uint8_t
synth_pixel(uint32_t i, uint32_t j)
{
	return (uint8_t)(i * 37u + j * 11u + (j * j) % 7u);
}

/* Write a big-endian 32-bit word into buf. */
static void
put_be32(uint8_t *buf, uint32_t v)
{
	buf[0] = (uint8_t)(v >> 24);
	buf[1] = (uint8_t)(v >> 16);
	buf[2] = (uint8_t)(v >> 8);
	buf[3] = (uint8_t)v;
}

/* Write bytes to path through zlib, gzip'd or plain ("T"). */
static void
write_file(const char *path, int gz, const uint8_t *data, size_t len)
{
	gzFile f = gzopen(path, gz ? "wb" : "wbT");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	if (len > 0)
		CHECK(gzwrite(f, data, (unsigned)len) == (int)len);
	CHECK(gzclose(f) == Z_OK);
}

/* Write a train IDX image+label pair in dir following spec. */
static void
write_idx_pair(const char *dir, const struct idx_spec *s)
{
	const char *ext = s->gz ? ".gz" : "";
	size_t npix = (size_t)s->count * s->rows * s->cols;
	size_t ilen = 16 + npix + (size_t)s->trailing;
	uint8_t *img = calloc(ilen, 1);
	put_be32(img, s->image_magic ? s->image_magic : 0x803);
	put_be32(img + 4, s->count);
	put_be32(img + 8, s->rows);
	put_be32(img + 12, s->cols);
	for (uint32_t i = 0; i < s->count; i++)
		for (uint32_t j = 0; j < s->rows * s->cols; j++)
			img[16 + (size_t)i * s->rows * s->cols + j] =
			    synth_pixel(i, j);
	size_t llen = 8 + s->count;
	uint8_t *lbl = calloc(llen, 1);
	put_be32(lbl, 0x801);
	put_be32(lbl + 4, s->label_count ? s->label_count : s->count);
	for (uint32_t i = 0; i < s->count; i++)
		lbl[8 + i] = (uint8_t)((i * 3) % 10);
	if (s->bad_label)
		lbl[8 + s->count - 1] = 10;
	char path[1024];
	snprintf(path, sizeof path, "%s/train-images-idx3-ubyte%s", dir, ext);
	write_file(path, s->gz, img, ilen - (size_t)s->image_cut);
	snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte%s", dir, ext);
	write_file(path, s->gz, lbl, llen - (size_t)s->label_cut);
	free(img);
	free(lbl);
}

/* A fresh subdirectory of the test's temp dir. */
static const char *
subdir(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", harness_tmpdir(), name);
	CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
	return path;
}

/* A valid small spec: 5 images of 3x4. */
static struct idx_spec
small_spec(int gz)
{
	struct idx_spec s = {0};
	s.gz = gz;
	s.count = 5;
	s.rows = 3;
	s.cols = 4;
	return s;
}

/* Prepare+open a synthetic set and check every pixel and label. */
static void
check_synthetic_idx(int gz)
{
	char dir[512], cache[600], path[1024];
	snprintf(dir, sizeof dir, "%s", subdir(gz ? "idx-gz" : "idx-plain"));
	snprintf(cache, sizeof cache, "%s/cache", dir);
	struct idx_spec s = small_spec(gz);
	write_idx_pair(dir, &s);
	struct ipc_error err = {0};
	int rc = dataset_prepare("mnist", dir, "train", cache, path,
	                         sizeof path, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err.message);
		return;
	}
	CHECK_STR_CONTAINS(path, "/mnist-train-");
	struct dataset ds;
	CHECK_EQ_INT(dataset_open(path, &ds, &err), 0);
	CHECK_EQ_INT(ds.count, 5);
	CHECK_EQ_INT(ds.channels, 1);
	CHECK_EQ_INT(ds.height, 3);
	CHECK_EQ_INT(ds.width, 4);
	CHECK_EQ_INT(ds.classes, 10);
	CHECK_EQ_INT(dataset_sample_size(&ds), 12);
	CHECK_EQ_INT((uintptr_t)ds.pixels % 64, 0);
	int bad = 0;
	for (uint32_t i = 0; i < 5; i++) {
		bad += ds.labels[i] != (i * 3) % 10;
		for (uint32_t j = 0; j < 12; j++)
			bad += ds.pixels[i * 12 + j] != synth_pixel(i, j);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_NEAR(ds.mean[0], 0.1307, 1e-6);
	CHECK_NEAR(ds.std[0], 0.3081, 1e-6);
	dataset_close(&ds);
}

static void
test_synthetic_idx_gz(void)
{
	check_synthetic_idx(1);
}

static void
test_synthetic_idx_plain(void)
{
	check_synthetic_idx(0);
}

/* Prepare a damaged train set and check the error names want_file and
 * contains want_text. */
static void
expect_damage(const char *name, const struct idx_spec *s,
              enum ipc_code want_code, const char *want_file,
              const char *want_text)
{
	char dir[512], cache[600], path[1024];
	snprintf(dir, sizeof dir, "%s", subdir(name));
	snprintf(cache, sizeof cache, "%s/cache", dir);
	if (s != NULL)
		write_idx_pair(dir, s);
	struct ipc_error err = {0};
	int rc = dataset_prepare("fashion-mnist", dir, "train", cache, path,
	                         sizeof path, &err);
	CHECK_EQ_INT(rc, -1);
	CHECK_EQ_INT(err.code, want_code);
	CHECK_STR_CONTAINS(err.message, dir);
	CHECK_STR_CONTAINS(err.message, want_file);
	CHECK_STR_CONTAINS(err.message, want_text);
}

static void
test_truncated_images(void)
{
	struct idx_spec s = small_spec(1);
	s.image_cut = 7;
	expect_damage("trunc-img", &s, IPC_E_TRUNCATED,
	              "train-images-idx3-ubyte.gz",
	              "expected 76 bytes, file holds 69");
}

static void
test_truncated_labels(void)
{
	struct idx_spec s = small_spec(0);
	s.label_cut = 2;
	expect_damage("trunc-lbl", &s, IPC_E_TRUNCATED,
	              "train-labels-idx1-ubyte",
	              "expected 13 bytes, file holds 11");
}

static void
test_bad_magic(void)
{
	struct idx_spec s = small_spec(1);
	s.image_magic = 0x801;
	expect_damage("magic", &s, IPC_E_BAD_VALUE, "train-images-idx3-ubyte",
	              "bad IDX magic 0x00000801");
}

static void
test_label_out_of_range(void)
{
	struct idx_spec s = small_spec(1);
	s.bad_label = 1;
	expect_damage("label10", &s, IPC_E_BAD_VALUE, "train-labels-idx1-ubyte",
	              "label 10 of sample 4");
}

static void
test_count_mismatch(void)
{
	struct idx_spec s = small_spec(1);
	s.label_count = 4;
	s.label_cut = 1;
	expect_damage("mismatch", &s, IPC_E_MISMATCH, "train-images-idx3-ubyte",
	              "holds 4 labels");
}

static void
test_trailing_garbage(void)
{
	struct idx_spec s = small_spec(1);
	s.trailing = 3;
	expect_damage("trailing", &s, IPC_E_TRAILING, "train-images-idx3-ubyte",
	              "trailing bytes");
}

static void
test_missing_file(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s", subdir("missing"));
	struct idx_spec s = small_spec(1);
	write_idx_pair(dir, &s);
	char path[1024];
	snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
	CHECK(unlink(path) == 0);
	expect_damage("missing", NULL, IPC_E_IO, "train-labels-idx1-ubyte",
	              "apt-get install dataset-fashion-mnist");
	struct ipc_error err = {0};
	char out[256];
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", "/nonexistent/fm",
	                             "train", "/tmp", out, sizeof out, &err),
	             -1);
	CHECK_STR_CONTAINS(err.message, "/nonexistent/fm");
	CHECK_STR_CONTAINS(err.message, "data.dir");
	CHECK_EQ_INT(dataset_prepare("imagenet", dir, "train", "/tmp", out,
	                             sizeof out, &err),
	             -1);
	CHECK_STR_CONTAINS(err.message, "fashion-mnist, mnist or cifar10");
}

static void
test_corrupt_gzip(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s", subdir("corrupt-gz"));
	struct idx_spec s = small_spec(1);
	s.count = 200;
	s.rows = 28;
	s.cols = 28;
	write_idx_pair(dir, &s);
	char path[1024];
	snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	/* Overwrite the middle of the deflate stream: header and trailer stay
	 * intact, so only the decoder or the CRC check can notice. */
	uint8_t junk[64];
	memset(junk, 0xa5, sizeof junk);
	CHECK(pwrite(fd, junk, sizeof junk, st.st_size / 2) ==
	      (ssize_t)sizeof junk);
	close(fd);
	expect_damage("corrupt-gz", NULL, IPC_E_IO,
	              "train-images-idx3-ubyte.gz", "corrupt gzip data");
}

/* Write a CIFAR batch of n records whose planes are filled with known values.
 */
static void
write_cifar(const char *path, uint32_t first, uint32_t n)
{
	uint8_t *buf = malloc((size_t)n * 3073);
	for (uint32_t r = 0; r < n; r++) {
		uint8_t *rec = buf + (size_t)r * 3073;
		uint32_t id = first + r;
		rec[0] = (uint8_t)(id % 10);
		for (uint32_t c = 0; c < 3; c++)
			memset(rec + 1 + c * 1024, (int)(id * 3 + c), 1024);
		rec[1] = (uint8_t)(200 + id); /* top-left red pixel */
	}
	write_file(path, 0, buf, (size_t)n * 3073);
	free(buf);
}

static void
test_cifar(void)
{
	char dir[512], bins[600], cache[600], path[1024];
	snprintf(dir, sizeof dir, "%s", subdir("cifar"));
	snprintf(bins, sizeof bins, "%s/cifar-10-batches-bin", dir);
	CHECK(mkdir(bins, 0755) == 0);
	snprintf(cache, sizeof cache, "%s/cache", dir);
	for (uint32_t b = 0; b < 5; b++) {
		snprintf(path, sizeof path, "%s/data_batch_%u.bin", bins,
		         b + 1);
		write_cifar(path, b * 3, 3);
	}
	snprintf(path, sizeof path, "%s/test_batch.bin", bins);
	write_cifar(path, 50, 2);
	struct ipc_error err = {0};
	struct dataset ds;
	int rc = dataset_prepare("cifar10", dir, "train", cache, path,
	                         sizeof path, &err);
	if (rc == 0)
		rc = dataset_open(path, &ds, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err.message);
		return;
	}
	CHECK_EQ_INT(ds.count, 15);
	CHECK_EQ_INT(ds.channels, 3);
	CHECK_EQ_INT(ds.height, 32);
	CHECK_EQ_INT(ds.width, 32);
	int bad = 0;
	for (uint32_t i = 0; i < 15; i++) {
		const uint8_t *p = ds.pixels + (size_t)i * 3072;
		bad += ds.labels[i] != i % 10;
		bad += p[0] != (uint8_t)(200 + i);
		for (uint32_t c = 0; c < 3; c++)
			bad += p[c * 1024 + 1023] != (uint8_t)(i * 3 + c);
	}
	CHECK_EQ_INT(bad, 0);
	/* Batch: channel c of sample 4 is ((4*3+c)/255 - mean_c) / std_c. */
	uint32_t idx[1] = {4};
	float x[3072];
	int32_t y[1];
	dataset_batch(&ds, idx, 1, x, y);
	CHECK_EQ_INT(y[0], 4);
	CHECK_NEAR(x[1024 + 5], ((13.0 / 255.0) - 0.4822) / 0.2435, 1e-5);
	CHECK_NEAR(x[2048 + 5], ((14.0 / 255.0) - 0.4465) / 0.2616, 1e-5);
	dataset_close(&ds);
	CHECK_EQ_INT(dataset_prepare("cifar10", bins, "test", cache, path,
	                             sizeof path, &err),
	             0);
	CHECK_EQ_INT(dataset_open(path, &ds, &err), 0);
	CHECK_EQ_INT(ds.count, 2);
	CHECK_EQ_INT(ds.labels[1], 1);
	dataset_close(&ds);
	/* A batch that is not a whole number of records is rejected. */
	snprintf(path, sizeof path, "%s/data_batch_3.bin", bins);
	int fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	CHECK_EQ_INT(dataset_prepare("cifar10", dir, "train", cache, path,
	                             sizeof path, &err),
	             -1);
	CHECK_STR_CONTAINS(err.message, "data_batch_3.bin");
	CHECK_STR_CONTAINS(err.message, "whole number of 3073-byte");
}

/* Overwrite size bytes at offset off of path. */
static void
patch_file(const char *path, off_t off, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, data, size, off) == (ssize_t)size);
	close(fd);
}

static void
test_cache_reuse_and_damage(void)
{
	char dir[512], cache[600], p1[1024], p2[1024];
	snprintf(dir, sizeof dir, "%s", subdir("reuse"));
	snprintf(cache, sizeof cache, "%s/deep/er/cache", dir);
	struct idx_spec s = small_spec(1);
	write_idx_pair(dir, &s);
	struct ipc_error err = {0};
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", dir, "train", cache, p1,
	                             sizeof p1, &err),
	             0);
	struct stat a, b;
	CHECK(stat(p1, &a) == 0);
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", dir, "train", cache, p2,
	                             sizeof p2, &err),
	             0);
	CHECK(strcmp(p1, p2) == 0);
	CHECK(stat(p2, &b) == 0);
	CHECK_EQ_INT(a.st_ino, b.st_ino);
	CHECK_EQ_INT(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
	CHECK_EQ_INT(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);

	/* A corrupted header is rejected by open, and prepare rebuilds it. */
	struct dataset ds;
	patch_file(p1, 0, "XXXX", 4);
	CHECK_EQ_INT(dataset_open(p1, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, p1);
	CHECK_STR_CONTAINS(err.message, "bad magic");
	uint32_t big = 1000;
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", dir, "train", cache, p2,
	                             sizeof p2, &err),
	             0);
	CHECK_EQ_INT(dataset_open(p2, &ds, &err), 0);
	dataset_close(&ds);
	patch_file(p1, 12, &big, sizeof big); /* count */
	CHECK_EQ_INT(dataset_open(p1, &ds, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BOUNDS);
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", dir, "train", cache, p2,
	                             sizeof p2, &err),
	             0);
	/* A label byte beyond classes is caught too. */
	CHECK_EQ_INT(dataset_open(p2, &ds, &err), 0);
	off_t label_at =
	    (off_t)((const uint8_t *)ds.labels - (const uint8_t *)ds.map);
	dataset_close(&ds);
	patch_file(p2, label_at + 2, "\x0b", 1);
	CHECK_EQ_INT(dataset_open(p2, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, "label 11 of sample 2");

	/* Changed sources get a new cache file. */
	s.count = 6;
	write_idx_pair(dir, &s);
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", dir, "train", cache, p2,
	                             sizeof p2, &err),
	             0);
	CHECK(strcmp(p1, p2) != 0);
	CHECK_EQ_INT(dataset_open(p2, &ds, &err), 0);
	CHECK_EQ_INT(ds.count, 6);
	dataset_close(&ds);
}

static void
test_batch_normalisation(void)
{
	char dir[512], cache[600], path[1024];
	snprintf(dir, sizeof dir, "%s", subdir("norm"));
	snprintf(cache, sizeof cache, "%s/cache", dir);
	struct idx_spec s = small_spec(0);
	write_idx_pair(dir, &s);
	struct ipc_error err = {0};
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", dir, "train", cache, path,
	                             sizeof path, &err),
	             0);
	struct dataset ds;
	CHECK_EQ_INT(dataset_open(path, &ds, &err), 0);
	uint32_t idx[3] = {4, 0, 2};
	float x[36];
	int32_t y[3];
	dataset_batch(&ds, idx, 3, x, y);
	for (int k = 0; k < 3; k++) {
		CHECK_EQ_INT(y[k], (idx[k] * 3) % 10);
		for (uint32_t j = 0; j < 12; j++) {
			double p = synth_pixel(idx[k], j);
			CHECK_NEAR(x[k * 12 + j], (p / 255.0 - 0.2860) / 0.3530,
			           1e-5);
		}
	}
	CHECK_NEAR(ds.norm[0][0], -0.2860 / 0.3530, 1e-6);
	CHECK_NEAR(ds.norm[0][255], (1.0 - 0.2860) / 0.3530, 1e-6);
	dataset_close(&ds);
}

/* The first label of the real training set, read straight from the IDX. */
static int
first_real_label(void)
{
	gzFile f = gzopen(FMNIST_DIR "/train-labels-idx1-ubyte.gz", "rb");
	if (f == NULL)
		return -1;
	uint8_t head[9];
	int got = gzread(f, head, sizeof head);
	gzclose(f);
	return got == 9 ? head[8] : -1;
}

static void
test_real_fashion_mnist(void)
{
	if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0)
		harness_skip("dataset-fashion-mnist is not installed "
		             "(apt-get install dataset-fashion-mnist)");
	char cache[512], path[1024];
	snprintf(cache, sizeof cache, "%s/fm-cache", harness_tmpdir());
	struct ipc_error err = {0};
	double t0 = now_seconds();
	int rc = dataset_prepare("fashion-mnist", FMNIST_DIR, "train", cache,
	                         path, sizeof path, &err);
	double t1 = now_seconds();
	CHECK_EQ_INT(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  %s\n", err.message);
		return;
	}
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", FMNIST_DIR, "train",
	                             cache, path, sizeof path, &err),
	             0);
	double t2 = now_seconds();
	struct dataset ds;
	CHECK_EQ_INT(dataset_open(path, &ds, &err), 0);
	double t3 = now_seconds();
	printf("  fashion-mnist train: first prepare %.1f ms, second prepare "
	       "%.3f ms, open %.3f ms\n",
	       1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2));
	CHECK_EQ_INT(ds.count, 60000);
	CHECK_EQ_INT(ds.channels, 1);
	CHECK_EQ_INT(ds.height, 28);
	CHECK_EQ_INT(ds.width, 28);
	CHECK_EQ_INT(ds.labels[0], first_real_label());
	int counts[10] = {0}, bad = 0;
	for (uint32_t i = 0; i < ds.count; i++) {
		bad += ds.labels[i] >= 10;
		if (ds.labels[i] < 10)
			counts[ds.labels[i]]++;
	}
	CHECK_EQ_INT(bad, 0);
	for (int c = 0; c < 10; c++)
		CHECK_EQ_INT(counts[c], 6000);
	dataset_close(&ds);
	CHECK_EQ_INT(dataset_prepare("fashion-mnist", FMNIST_DIR, "test", cache,
	                             path, sizeof path, &err),
	             0);
	CHECK_EQ_INT(dataset_open(path, &ds, &err), 0);
	CHECK_EQ_INT(ds.count, 10000);
	dataset_close(&ds);
}

int
main(void)
{
	RUN(test_synthetic_idx_gz);
	RUN(test_synthetic_idx_plain);
	RUN(test_truncated_images);
	RUN(test_truncated_labels);
	RUN(test_bad_magic);
	RUN(test_label_out_of_range);
	RUN(test_count_mismatch);
	RUN(test_trailing_garbage);
	RUN(test_missing_file);
	RUN(test_corrupt_gzip);
	RUN(test_cifar);
	RUN(test_cache_reuse_and_damage);
	RUN(test_batch_normalisation);
	RUN(test_real_fashion_mnist);
	return harness_finish();
}
