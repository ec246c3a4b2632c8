/* dataset.h: image-classification datasets decoded once into a raw cache file
 * that every worker maps read-only, so a worker starts in milliseconds.
 *
 * Sources: Fashion-MNIST and MNIST (IDX files, optionally gzip'd, read via
 * zlib) and CIFAR-10 (binary batches). Pixels stay uint8 (N x C x H x W,
 * row-major); batches are normalised to float on the fly. */
#ifndef COHORT_DATASET_H
#define COHORT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct dataset {
	uint32_t count;
	uint32_t channels, height, width;
	uint32_t classes;
	const uint8_t *pixels; /* count * channels * height * width */
	const uint8_t *labels; /* count, each < classes */
	float mean[3], std[3]; /* per-channel normalisation of pixel/255 */
	void *map;             /* the mapped cache file */
	size_t map_size;
	float norm[3][256]; /* per channel: normalised value of each byte */
};

/* Decode split "train" or "test" of dataset name ("fashion-mnist", "mnist",
 * "cifar10") found in dir into a cache file in cache_dir, named from the
 * source files' checksums, unless a valid one is there already. Writes the
 * cache path to path_out. Damaged sources give an error naming the file and
 * what is wrong (truncated, bad magic, label out of range, count mismatch). */
int dataset_prepare(const char *name, const char *dir, const char *split,
                    const char *cache_dir, char *path_out, size_t path_cap,
                    struct ipc_error *err);
/* Map a cache file written by dataset_prepare (validated: magic, sizes). */
int dataset_open(const char *cache_path, struct dataset *ds,
                 struct ipc_error *err);
void dataset_close(struct dataset *ds);
/* Floats per sample: channels * height * width. */
size_t dataset_sample_size(const struct dataset *ds);
/* Gather samples idx[0..n) as normalised floats into x (n * sample_size)
 * and their labels into y. */
void dataset_batch(const struct dataset *ds, const uint32_t *idx, size_t n,
                   float *x, int32_t *y);

#endif
