/* dataset.h: datasets decoded once into a raw cache file that every worker
 * maps read-only, so a worker starts in milliseconds.
 *
 * Images: Fashion-MNIST and MNIST (IDX files, optionally gzip'd, read via
 * zlib) and CIFAR-10 (binary batches). Pixels stay uint8 (N x C x H x W,
 * row-major); batches are normalised to float on the fly.
 *
 * Text (data.dataset text, worker/data/textdata.c): documents of a JSONL or
 * plain-text file tokenized with GPT-2's BPE; a document is a sample (it
 * has a label, so partitions split documents as they split images). */
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
	/* Text datasets (dataset_prepare_text): count documents; pixels
	 * NULL, channels/height/width 0. */
	int text;                  /* 1: a text dataset */
	uint32_t vocab_size;       /* the tokenizer's */
	int32_t eot;               /* <|endoftext|> ending each document, -1 */
	uint64_t num_tokens;       /* doc_start[count] */
	const uint64_t *doc_start; /* count + 1 offsets into tokens */
	const uint32_t *tokens;    /* every document's, its eot included */
};

/* Where a text dataset comes from (data.dataset text). */
struct text_source {
	const char *dir;         /* train.jsonl|.txt, validation.jsonl|.txt */
	const char *text_field;  /* JSONL: the field of the text ("text") */
	const char *label_field; /* JSONL: a label's field, "" = none */
	const char *tokenizer;   /* bpe_load_dir's directory */
};

/* Decode split "train" or "test" of dataset name ("fashion-mnist", "mnist",
 * "cifar10") found in dir into a cache file in cache_dir, named from the
 * source files' checksums, unless a valid one is there already. Writes the
 * cache path to path_out. Damaged sources give an error naming the file and
 * what is wrong (truncated, bad magic, label out of range, count mismatch). */
int dataset_prepare(const char *name, const char *dir, const char *split,
                    const char *cache_dir, char *path_out, size_t path_cap,
                    struct ipc_error *err);
/* Tokenize split "train" or "test" (the validation file) of src once into a
 * cache file in cache_dir named from the checksums of the source, the
 * tokenizer's files and the field names (a valid one there is reused, not
 * tokenized again); the path goes to path_out. Every error names the file
 * (and line) and the fix. */
int dataset_prepare_text(const struct text_source *src, const char *split,
                         const char *cache_dir, char *path_out, size_t path_cap,
                         struct ipc_error *err);
/* The tokens of documents idx[0..n) (idx NULL: all) concatenated in that
 * order: malloc'd (free it), *len tokens. */
uint32_t *dataset_text_stream(const struct dataset *ds, const uint32_t *idx,
                              size_t n, size_t *len);
/* Map a cache file written by dataset_prepare or dataset_prepare_text
 * (validated: magic, sizes). */
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
