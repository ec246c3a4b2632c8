/* bpe.h: GPT-2's byte-level BPE tokenizer: text (any bytes) to token ids and
 * back, from the standard vocabulary and merges files (docs/text.md).
 *
 *   struct bpe *b = bpe_load_dir(dir, &err);
 *   bpe_encode(b, text, len, 0, &ids, &n, &err);   ids: malloc'd, n ids
 *   bpe_decode(b, ids, n, &bytes, &len, &err);     bytes: malloc'd
 *   bpe_free(b);
 *
 * A struct bpe keeps a cache of encoded words and scratch space: encode
 * with one per thread. */
#ifndef COHORT_BPE_H
#define COHORT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct bpe;

/* bpe_encode flag: an occurrence of a special token's text in the input
 * ("<|endoftext|>") is that token. Without it, such text is plain text and
 * encodes as its characters do (7 tokens for "<|endoftext|>"). */
#define BPE_SPECIAL 0x1

/* Load a vocabulary (JSON object: token -> id, Hugging Face's vocab.json or
 * OpenAI's encoder.json) and its merges (one "left right" pair a line, by
 * rank: merges.txt or vocab.bpe). A damaged file gives an error naming the
 * file, the line and what is wrong. */
struct bpe *bpe_load(const char *vocab_path, const char *merges_path,
                     struct ipc_error *err);
/* bpe_load from a directory holding vocab.json + merges.txt or encoder.json
 * + vocab.bpe (what tools/fetch-gpt2-bpe.sh writes). */
struct bpe *bpe_load_dir(const char *dir, struct ipc_error *err);
void bpe_free(struct bpe *b);

/* Number of token ids (50257 for GPT-2). */
uint32_t bpe_vocab_size(const struct bpe *b);
/* Id of <|endoftext|> (50256 for GPT-2), or -1 when the vocabulary has
 * none. */
int64_t bpe_eot(const struct bpe *b);

/* Encode len bytes of text (any bytes: invalid UTF-8 is kept, see
 * docs/text.md) into *ids (malloc'd, free it) and *n. flags: 0 or
 * BPE_SPECIAL. */
int bpe_encode(struct bpe *b, const char *text, size_t len, int flags,
               uint32_t **ids, size_t *n, struct ipc_error *err);
/* The bytes of n ids into *out (malloc'd and NUL-terminated, free it) and
 * *len. An id outside the vocabulary is an error. */
int bpe_decode(const struct bpe *b, const uint32_t *ids, size_t n, char **out,
               size_t *len, struct ipc_error *err);

#endif
