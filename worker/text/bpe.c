/* bpe.c: GPT-2's byte-level BPE. Text is split into words by GPT-2's
 * pattern (PCRE2); a word starts as one token per byte, and adjacent tokens
 * are merged by rank, lowest first, until no pair merges. A cache remembers
 * the tokens of the words already seen, which is most words of a text. */
#define _GNU_SOURCE /* memmem */
#include "bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "rng.h"

/* GPT-2's pre-tokenization pattern (openai/gpt-2, src/encoder.py). */
static const char bpe_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
    "|\\s+(?!\\S)|\\s+";

/* One past the highest character of the byte alphabet: 256 + the 68 bytes
 * that do not stand for themselves. */
#define ALPHABET_END 324
/* More tokens than any BPE vocabulary has: ids stay far from UINT32_MAX. */
#define VOCAB_MAX (1u << 24)
#define NO_TOKEN UINT32_MAX
#define MERGE_EMPTY UINT64_MAX
/* Words longer than this are rare (a run of letters or of spaces): they
 * are encoded each time rather than fill the cache. */
#define CACHE_WORD_MAX 64
/* At this many slots (half of them used) the cache starts over. */
#define CACHE_SLOTS_MAX (1u << 19)

/* GPT-2's bytes-to-unicode table: in a vocabulary each byte is written as
 * one character, a printable byte as itself and every other byte (controls,
 * space, 0x7f-0xa0, 0xad) as 256 + n, n counting those bytes in order: so
 * "Ġ" (U+0120) is the space byte. */
struct alphabet {
	uint32_t byte_char[256];
	int16_t char_byte[ALPHABET_END]; /* -1: no byte's character */
};

/* The merge table and the word cache are small open-addressing tables of
 * our own: glibc's hsearch_r keys are NUL-terminated strings (a word may
 * hold NUL bytes, a pair is two integers), and glib would be a dependency
 * for two tables of a few lines each. */

/* The merge of two adjacent tokens, found by the pair. */
struct merge_slot {
	uint64_t pair; /* left << 32 | right; MERGE_EMPTY when free */
	uint32_t rank; /* line of the merges file, from 0: lower merges first */
	uint32_t id;   /* the merged token */
};

/* A cached word: its bytes and its tokens, in the cache's arenas. */
struct cache_slot {
	uint64_t hash;
	uint32_t key, key_len; /* key_len 0: free */
	uint32_t ids, id_count;
};

struct word_cache {
	struct cache_slot *slots;
	size_t mask, count;
	uint8_t *bytes;
	size_t bytes_len, bytes_cap;
	uint32_t *ids;
	size_t ids_len, ids_cap;
};

/* A token of a word being merged, in a list of the word's tokens. */
struct symbol {
	uint32_t id; /* NO_TOKEN once merged into the symbol before it */
	int32_t prev, next;
};

/* A merge that may apply: symbol pos (token left) with the next one (token
 * right). Stale once either side has changed. */
struct candidate {
	uint32_t rank, pos;
	uint32_t left, right, merged;
};

/* A growing array of token ids. */
struct id_buf {
	uint32_t *v;
	size_t n, cap;
};

struct bpe {
	uint32_t vocab_size;
	uint8_t *bytes;   /* every token's bytes, in id order */
	uint32_t *offset; /* token i is bytes[offset[i] .. offset[i + 1]) */
	uint32_t byte_token[256];
	struct merge_slot *merges;
	size_t merge_mask;
	uint32_t *specials; /* ids of the special tokens */
	size_t special_count;
	int64_t eot;
	pcre2_code *pattern;
	pcre2_match_data *match;
	struct word_cache cache;
	struct symbol *sym; /* scratch of word_bpe */
	struct candidate *heap;
	size_t scratch_cap;
};

/* True for the bytes GPT-2 writes as themselves. */
static int
byte_is_printable(int b)
{
	return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) ||
	       (b >= 0xae && b <= 0xff);
}

/* Fill the byte alphabet both ways. */
static void
alphabet_init(struct alphabet *a)
{
	uint32_t next = 256;
	for (int c = 0; c < ALPHABET_END; c++)
		a->char_byte[c] = -1;
	for (int b = 0; b < 256; b++) {
		a->byte_char[b] = byte_is_printable(b) ? (uint32_t)b : next++;
		a->char_byte[a->byte_char[b]] = (int16_t)b;
	}
}

/* Decode the UTF-8 character at s (jansson's strings are valid UTF-8) into
 * *cp; its length in bytes. */
static size_t
utf8_next(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (s[0] < 0xf0) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 |
		      (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	return 4;
}

/* The bytes a vocabulary token's text stands for, into out (room for
 * strlen(text)); their count, or -1 with *bad the first character that
 * stands for no byte. */
static long
token_text_bytes(const struct alphabet *a, const char *text, uint8_t *out,
                 uint32_t *bad)
{
	const unsigned char *s = (const unsigned char *)text;
	long n = 0;
	while (*s != '\0') {
		uint32_t cp;
		s += utf8_next(s, &cp);
		if (cp >= ALPHABET_END || a->char_byte[cp] < 0) {
			*bad = cp;
			return -1;
		}
		out[n++] = (uint8_t)a->char_byte[cp];
	}
	return n;
}

/* Append one id. */
static void
id_push(struct id_buf *buf, uint32_t id)
{
	if (buf->n == buf->cap) {
		buf->cap = buf->cap ? 2 * buf->cap : 64;
		buf->v = xreallocarray(buf->v, buf->cap, sizeof *buf->v);
	}
	buf->v[buf->n++] = id;
}

/* The slot of pair (left, right) in the merge table: the pair's, or the
 * free slot where it would go. */
static struct merge_slot *
merge_slot(const struct bpe *b, uint32_t left, uint32_t right)
{
	uint64_t key = (uint64_t)left << 32 | right;
	size_t i = rng_mix64(key) & b->merge_mask;
	while (b->merges[i].pair != key && b->merges[i].pair != MERGE_EMPTY)
		i = (i + 1) & b->merge_mask;
	return &b->merges[i];
}

/* The merge of left with right, or NULL when the pair does not merge. */
static const struct merge_slot *
merge_get(const struct bpe *b, uint32_t left, uint32_t right)
{
	const struct merge_slot *s = merge_slot(b, left, right);
	return s->pair == MERGE_EMPTY ? NULL : s;
}

/* Read the id of every token of the vocabulary object into text[id]: the
 * ids must be 0 .. count-1, each once. *text_bytes: their texts' length. */
static int
vocab_ids(const json_t *vocab, const char *path, size_t count,
          const char **text, size_t *text_bytes, struct ipc_error *err)
{
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)vocab, key, value)
	{
		json_int_t id =
		    json_is_integer(value) ? json_integer_value(value) : -1;
		if (id < 0 || (size_t)id >= count)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s: token \"%.80s\" has an id %s: ids must be the "
			    "integers 0 to %zu, one per token",
			    path, key,
			    json_is_integer(value) ? "out of range"
			                           : "that is not an integer",
			    count - 1);
		if (text[id] != NULL)
			return ipc_error_set(err, IPC_E_DUPLICATE,
			                     "%s: tokens \"%.80s\" and "
			                     "\"%.80s\" have the same id "
			                     "%lld",
			                     path, text[id], key,
			                     (long long)id);
		text[id] = key;
		*text_bytes += strlen(key);
	}
	return 0;
}

/* Fill every token's bytes (b->bytes, b->offset) and the token of each
 * single byte from the tokens' texts, in id order. */
static int
vocab_bytes(struct bpe *b, const struct alphabet *a, const char *path,
            const char **text, size_t text_bytes, struct ipc_error *err)
{
	b->bytes = xmalloc(text_bytes + 1);
	b->offset = xmalloc((b->vocab_size + 1) * sizeof *b->offset);
	for (int i = 0; i < 256; i++)
		b->byte_token[i] = NO_TOKEN;
	uint32_t at = 0;
	for (uint32_t id = 0; id < b->vocab_size; id++) {
		uint32_t bad = 0;
		long n = token_text_bytes(a, text[id], b->bytes + at, &bad);
		if (n == 0)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s: token %u is empty", path, id);
		if (n < 0)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s: token %u (\"%.80s\") holds U+%04X, which "
			    "stands "
			    "for no byte in GPT-2's byte alphabet: not a "
			    "byte-level BPE vocabulary",
			    path, id, text[id], bad);
		if (n == 1)
			b->byte_token[b->bytes[at]] = id;
		b->offset[id] = at;
		at += (uint32_t)n;
	}
	b->offset[b->vocab_size] = at;
	for (int i = 0; i < 256; i++) {
		if (b->byte_token[i] == NO_TOKEN)
			return ipc_error_set(
			    err, IPC_E_MISSING_KEY,
			    "%s: no token for byte 0x%02x (\"\\u%04x\"): a "
			    "byte-level BPE vocabulary has one for each byte",
			    path, i, a->byte_char[i]);
	}
	return 0;
}

/* Read the vocabulary file: every token's bytes by id, and the token of
 * each single byte. *vocab_out keeps the JSON object for the merges. */
static int
vocab_load(struct bpe *b, const struct alphabet *a, const char *path,
           json_t **vocab_out, struct ipc_error *err)
{
	char *data;
	size_t len;
	if (files_read_all(path, &data, &len, err) != 0)
		return -1;
	json_error_t jerr;
	json_t *vocab = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(data);
	if (vocab == NULL) {
		/* Cut inside a string or escape, jansson names the escape:
		 * an error at the very end is a cut too. */
		int cut = json_error_code(&jerr) ==
		              json_error_premature_end_of_input ||
		          (size_t)jerr.position >= len;
		return ipc_error_set(
		    err, cut ? IPC_E_TRUNCATED : IPC_E_BAD_VALUE,
		    "%s:%d:%d: not valid JSON: %s%s", path, jerr.line,
		    jerr.column, jerr.text,
		    cut ? " (the file is cut short: fetch it again, e.g. with "
		          "tools/fetch-gpt2-bpe.sh)"
		        : "");
	}
	*vocab_out = vocab;
	size_t count = json_object_size(vocab);
	if (!json_is_object(vocab) || count == 0 || count > VOCAB_MAX)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: expected a JSON object of 1 to %u "
		                     "entries \"token\": id",
		                     path, VOCAB_MAX);
	const char **text = xcalloc(count, sizeof *text);
	size_t text_bytes = 0;
	b->vocab_size = (uint32_t)count;
	int rc = vocab_ids(vocab, path, count, text, &text_bytes, err);
	if (rc == 0)
		rc = vocab_bytes(b, a, path, text, text_bytes, err);
	free(text);
	return rc;
}

/* Id of a token's text in the vocabulary, or -1. */
static long
vocab_id(const json_t *vocab, const char *text)
{
	json_t *v = json_object_get(vocab, text);
	return v != NULL ? (long)json_integer_value(v) : -1;
}

/* Add the merge of one line "left right" of the merges file, of the given
 * rank; made[] marks the tokens merges make. */
static int
merge_line(struct bpe *b, const json_t *vocab, const char *vocab_path,
           const char *path, size_t lineno, char *line, uint32_t rank,
           uint8_t *made, struct ipc_error *err)
{
	char *space = strchr(line, ' ');
	if (space == NULL || space == line || space[1] == '\0' ||
	    strchr(space + 1, ' ') != NULL)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "%s:%zu: expected two tokens separated by "
		    "one space (\"left right\"), got \"%.80s\"",
		    path, lineno, line);
	*space = '\0';
	const char *right = space + 1;
	long l = vocab_id(vocab, line), r = vocab_id(vocab, right);
	if (l < 0 || r < 0)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "%s:%zu: token \"%.80s\" is not in %s "
		                     "(are the two files of one tokenizer?)",
		                     path, lineno, l < 0 ? line : right,
		                     vocab_path);
	char *joined = xasprintf("%s%s", line, right);
	long m = vocab_id(vocab, joined);
	free(joined);
	if (m < 0)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "%s:%zu: merging \"%.80s\" and \"%.80s\" "
		                     "makes a token that is not in %s",
		                     path, lineno, line, right, vocab_path);
	struct merge_slot *s = merge_slot(b, (uint32_t)l, (uint32_t)r);
	if (s->pair != MERGE_EMPTY)
		return ipc_error_set(err, IPC_E_DUPLICATE,
		                     "%s:%zu: the pair \"%.80s %.80s\" is "
		                     "listed twice (first as merge %u)",
		                     path, lineno, line, right, s->rank);
	s->pair = (uint64_t)l << 32 | (uint64_t)r;
	s->rank = rank;
	s->id = (uint32_t)m;
	made[m] = 1;
	return 0;
}

/* Read the merges file: one "left right" pair a line, by rank, after an
 * optional "#version" line. */
static int
merges_load(struct bpe *b, const json_t *vocab, const char *vocab_path,
            const char *path, uint8_t *made, struct ipc_error *err)
{
	char *data;
	size_t len;
	if (files_read_all(path, &data, &len, err) != 0)
		return -1;
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += data[i] == '\n';
	size_t slots = 16;
	while (slots < 2 * lines)
		slots *= 2;
	b->merges = xmalloc(slots * sizeof *b->merges);
	for (size_t i = 0; i < slots; i++)
		b->merges[i].pair = MERGE_EMPTY;
	b->merge_mask = slots - 1;

	char *line = data, *end = data + len;
	uint32_t rank = 0;
	for (size_t lineno = 1; line < end; lineno++) {
		char *eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		size_t n = (size_t)(eol - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		int header = lineno == 1 && strncmp(line, "#version", 8) == 0;
		if (!header && n > 0) {
			if (merge_line(b, vocab, vocab_path, path, lineno, line,
			               rank, made, err) != 0) {
				free(data);
				return -1;
			}
			rank++;
		}
		line = eol + 1;
	}
	free(data);
	return 0;
}

/* Find the special tokens: texts "<|name|>" that no merge makes, so BPE
 * never produces them (GPT-2 has one, <|endoftext|>), and the id of
 * <|endoftext|>. */
static void
specials_find(struct bpe *b, const uint8_t *made)
{
	static const char eot[] = "<|endoftext|>";
	b->eot = -1;
	for (uint32_t id = 0; id < b->vocab_size; id++) {
		const uint8_t *t = b->bytes + b->offset[id];
		size_t n = b->offset[id + 1] - b->offset[id];
		if (n == sizeof eot - 1 && memcmp(t, eot, n) == 0)
			b->eot = id;
		if (made[id] || n < 5 || memcmp(t, "<|", 2) != 0 ||
		    memcmp(t + n - 2, "|>", 2) != 0)
			continue;
		b->specials = xreallocarray(b->specials, b->special_count + 1,
		                            sizeof *b->specials);
		b->specials[b->special_count++] = id;
	}
}

/* Compile GPT-2's pattern: Unicode classes (UTF, UCP), and bytes that are
 * not UTF-8 allowed in the subject (MATCH_INVALID_UTF: no part of the
 * pattern matches them, so they fall between matches). */
static int
pattern_compile(struct bpe *b, struct ipc_error *err)
{
	int code;
	PCRE2_SIZE at;
	b->pattern = pcre2_compile(
	    (PCRE2_SPTR)bpe_pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
	if (b->pattern == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof msg);
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "PCRE2 cannot compile GPT-2's pattern "
		                     "(offset %zu: %s): is libpcre2-8 built "
		                     "with Unicode support?",
		                     (size_t)at, (const char *)msg);
	}
	/* Without a JIT the interpreter matches the same, only slower. */
	pcre2_jit_compile(b->pattern, PCRE2_JIT_COMPLETE);
	b->match = pcre2_match_data_create_from_pattern(b->pattern, NULL);
	if (b->match == NULL)
		fatal("out of memory (PCRE2 match data)");
	return 0;
}

struct bpe *
bpe_load(const char *vocab_path, const char *merges_path, struct ipc_error *err)
{
	struct alphabet a;
	alphabet_init(&a);
	struct bpe *b = xcalloc(1, sizeof *b);
	json_t *vocab = NULL;
	uint8_t *made = NULL;
	if (vocab_load(b, &a, vocab_path, &vocab, err) != 0)
		goto fail;
	made = xcalloc(b->vocab_size, 1);
	if (merges_load(b, vocab, vocab_path, merges_path, made, err) != 0)
		goto fail;
	specials_find(b, made);
	if (pattern_compile(b, err) != 0)
		goto fail;
	json_decref(vocab);
	free(made);
	return b;
fail:
	json_decref(vocab);
	free(made);
	bpe_free(b);
	return NULL;
}

struct bpe *
bpe_load_dir(const char *dir, struct ipc_error *err)
{
	static const char *const pairs[][2] = {
	    {"vocab.json", "merges.txt"},
	    {"encoder.json", "vocab.bpe"},
	};
	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		char *vocab = xasprintf("%s/%s", dir, pairs[i][0]);
		char *merges = xasprintf("%s/%s", dir, pairs[i][1]);
		struct bpe *b = NULL;
		int found = files_exist(vocab);
		if (found)
			b = bpe_load(vocab, merges, err);
		free(vocab);
		free(merges);
		if (found)
			return b;
	}
	ipc_error_set(err, IPC_E_IO,
	              "%s: holds neither vocab.json + merges.txt nor "
	              "encoder.json + vocab.bpe (tools/fetch-gpt2-bpe.sh "
	              "fetches GPT-2's)",
	              dir);
	return NULL;
}

/* Free the cache's memory. */
static void
cache_free(struct word_cache *c)
{
	free(c->slots);
	free(c->bytes);
	free(c->ids);
	memset(c, 0, sizeof *c);
}

void
bpe_free(struct bpe *b)
{
	if (b == NULL)
		return;
	free(b->bytes);
	free(b->offset);
	free(b->merges);
	free(b->specials);
	pcre2_match_data_free(b->match);
	pcre2_code_free(b->pattern);
	cache_free(&b->cache);
	free(b->sym);
	free(b->heap);
	free(b);
}

uint32_t
bpe_vocab_size(const struct bpe *b)
{
	return b->vocab_size;
}

int64_t
bpe_eot(const struct bpe *b)
{
	return b->eot;
}

/* FNV-1a of a word. */
static uint64_t
cache_hash(const uint8_t *w, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h;
}

/* The slot of word w in the cache: its own, or the free one where it would
 * go. The cache has at least one free slot. */
static struct cache_slot *
cache_slot(struct word_cache *c, const uint8_t *w, size_t n, uint64_t h)
{
	size_t i = h & c->mask;
	for (;; i = (i + 1) & c->mask) {
		struct cache_slot *s = &c->slots[i];
		if (s->key_len == 0)
			return s;
		if (s->hash == h && s->key_len == n &&
		    memcmp(c->bytes + s->key, w, n) == 0)
			return s;
	}
}

/* Make room for one more word: double the slots while under the cap
 * (rehashing), start over empty at it. */
static void
cache_make_room(struct word_cache *c)
{
	size_t cap = c->slots ? c->mask + 1 : 0;
	if (2 * (c->count + 1) <= cap)
		return;
	if (cap >= CACHE_SLOTS_MAX) {
		memset(c->slots, 0, cap * sizeof *c->slots);
		c->count = c->bytes_len = c->ids_len = 0;
		return;
	}
	struct cache_slot *old = c->slots;
	size_t new_cap = cap ? 2 * cap : 4096;
	c->slots = xcalloc(new_cap, sizeof *c->slots);
	c->mask = new_cap - 1;
	for (size_t i = 0; i < cap; i++) {
		if (old[i].key_len == 0)
			continue;
		size_t j = old[i].hash & c->mask;
		while (c->slots[j].key_len != 0)
			j = (j + 1) & c->mask;
		c->slots[j] = old[i];
	}
	free(old);
}

/* Remember that word w (hash h, not yet cached) encodes to ids. */
static void
cache_insert(struct word_cache *c, const uint8_t *w, size_t n, uint64_t h,
             const uint32_t *ids, size_t count)
{
	cache_make_room(c);
	if (c->bytes_len + n > c->bytes_cap) {
		c->bytes_cap = 2 * (c->bytes_len + n) + 4096;
		c->bytes = xrealloc(c->bytes, c->bytes_cap);
	}
	if (c->ids_len + count > c->ids_cap) {
		c->ids_cap = 2 * (c->ids_len + count) + 1024;
		c->ids = xreallocarray(c->ids, c->ids_cap, sizeof *c->ids);
	}
	struct cache_slot *s = cache_slot(c, w, n, h);
	s->hash = h;
	s->key = (uint32_t)c->bytes_len;
	s->key_len = (uint32_t)n;
	s->ids = (uint32_t)c->ids_len;
	s->id_count = (uint32_t)count;
	memcpy(c->bytes + c->bytes_len, w, n);
	memcpy(c->ids + c->ids_len, ids, count * sizeof *ids);
	c->bytes_len += n;
	c->ids_len += count;
	c->count++;
}

/* True when candidate x merges before y: lower rank, then further left. */
static int
candidate_before(const struct candidate *x, const struct candidate *y)
{
	return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

/* Push the merge of symbol pos with the next one, when that pair merges. */
static void
candidate_push(struct bpe *b, size_t *len, int32_t pos)
{
	if (pos < 0 || b->sym[pos].next < 0)
		return;
	uint32_t left = b->sym[pos].id, right = b->sym[b->sym[pos].next].id;
	const struct merge_slot *m = merge_get(b, left, right);
	if (m == NULL)
		return;
	struct candidate c = {m->rank, (uint32_t)pos, left, right, m->id};
	size_t i = (*len)++;
	while (i > 0 && candidate_before(&c, &b->heap[(i - 1) / 2])) {
		b->heap[i] = b->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	b->heap[i] = c;
}

/* Pop the candidate that merges first. */
static struct candidate
candidate_pop(struct bpe *b, size_t *len)
{
	struct candidate top = b->heap[0], last = b->heap[--*len];
	size_t i = 0;
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= *len)
			break;
		if (child + 1 < *len &&
		    candidate_before(&b->heap[child + 1], &b->heap[child]))
			child++;
		if (!candidate_before(&b->heap[child], &last))
			break;
		b->heap[i] = b->heap[child];
		i = child;
	}
	if (*len > 0)
		b->heap[i] = last;
	return top;
}

/* Append the tokens of one word of n >= 1 bytes: from one token per byte,
 * merge the adjacent pair of lowest rank (leftmost first) until no pair
 * merges. A heap of candidate merges makes a long word cost n log n, not
 * n^2. (GPT-2's merges are consistent, as training makes them: a merge
 * never ranks below the one that made its parts, so this equals encoder.py's
 * merge-every-occurrence loop.) */
static void
word_bpe(struct bpe *b, const uint8_t *w, size_t n, struct id_buf *out)
{
	if (n > b->scratch_cap) {
		b->scratch_cap = n;
		b->sym = xreallocarray(b->sym, n, sizeof *b->sym);
		/* n - 1 pairs, then at most two new ones per merge. */
		b->heap = xreallocarray(b->heap, 3 * n, sizeof *b->heap);
	}
	struct symbol *sym = b->sym;
	for (size_t i = 0; i < n; i++) {
		sym[i].id = b->byte_token[w[i]];
		sym[i].prev = (int32_t)i - 1;
		sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
	}
	size_t len = 0;
	for (size_t i = 0; i + 1 < n; i++)
		candidate_push(b, &len, (int32_t)i);
	while (len > 0) {
		struct candidate c = candidate_pop(b, &len);
		struct symbol *l = &sym[c.pos];
		if (l->id != c.left || l->next < 0 ||
		    sym[l->next].id != c.right)
			continue; /* stale: a side was merged since */
		struct symbol *r = &sym[l->next];
		l->id = c.merged;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = (int32_t)c.pos;
		r->id = NO_TOKEN;
		candidate_push(b, &len, l->prev);
		candidate_push(b, &len, (int32_t)c.pos);
	}
	for (int32_t i = 0; i >= 0; i = sym[i].next)
		id_push(out, sym[i].id);
}

/* Append the tokens of one word (a match of the pattern, or a run of bytes
 * that are not UTF-8), from the cache when it was seen before. */
static void
encode_word(struct bpe *b, const uint8_t *w, size_t n, struct id_buf *out)
{
	if (n == 1) {
		id_push(out, b->byte_token[w[0]]);
		return;
	}
	if (n > CACHE_WORD_MAX) {
		word_bpe(b, w, n, out);
		return;
	}
	uint64_t h = cache_hash(w, n);
	struct word_cache *c = &b->cache;
	if (c->slots != NULL) {
		const struct cache_slot *s = cache_slot(c, w, n, h);
		if (s->key_len != 0) {
			for (uint32_t i = 0; i < s->id_count; i++)
				id_push(out, c->ids[s->ids + i]);
			return;
		}
	}
	size_t first = out->n;
	word_bpe(b, w, n, out);
	cache_insert(c, w, n, h, out->v + first, out->n - first);
}

/* Append the tokens of text that holds no special token: the words are the
 * matches of GPT-2's pattern, and each gap between matches (bytes that are
 * not UTF-8, which no part of the pattern matches) is a word of its own. */
static int
encode_plain(struct bpe *b, const uint8_t *text, size_t len, struct id_buf *out,
             struct ipc_error *err)
{
	size_t at = 0;
	while (at < len) {
		int rc =
		    pcre2_match(b->pattern, text, len, at, 0, b->match, NULL);
		if (rc == PCRE2_ERROR_NOMATCH) {
			encode_word(b, text + at, len - at, out);
			break;
		}
		if (rc < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof msg);
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "bpe: splitting the text into words "
			    "failed at byte %zu: %s",
			    at, (const char *)msg);
		}
		const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(b->match);
		if (ov[1] <= ov[0])
			fatal("bpe: empty match at byte %zu", (size_t)ov[0]);
		if (ov[0] > at)
			encode_word(b, text + at, ov[0] - at, out);
		encode_word(b, text + ov[0], ov[1] - ov[0], out);
		at = ov[1];
	}
	return 0;
}

/* The first special token's text in [p, p + len) (the longest where two
 * start at one byte): where it starts, its id and length; NULL if none. */
static const uint8_t *
special_next(const struct bpe *b, const uint8_t *p, size_t len, uint32_t *id,
             size_t *n)
{
	const uint8_t *best = NULL;
	for (size_t i = 0; i < b->special_count; i++) {
		uint32_t s = b->specials[i];
		size_t sn = b->offset[s + 1] - b->offset[s];
		const uint8_t *at = memmem(p, len, b->bytes + b->offset[s], sn);
		if (at != NULL &&
		    (best == NULL || at < best || (at == best && sn > *n))) {
			best = at;
			*id = s;
			*n = sn;
		}
	}
	return best;
}

int
bpe_encode(struct bpe *b, const char *text, size_t len, int flags,
           uint32_t **ids, size_t *n, struct ipc_error *err)
{
	struct id_buf out = {NULL, 0, 0};
	const uint8_t *p = (const uint8_t *)text, *end = p + len;
	while (p < end) {
		uint32_t special = 0;
		size_t special_len = 0;
		const uint8_t *s = (flags & BPE_SPECIAL)
		                       ? special_next(b, p, (size_t)(end - p),
		                                      &special, &special_len)
		                       : NULL;
		const uint8_t *plain_end = s != NULL ? s : end;
		if (encode_plain(b, p, (size_t)(plain_end - p), &out, err) !=
		    0) {
			free(out.v);
			return -1;
		}
		if (s == NULL)
			break;
		id_push(&out, special);
		p = s + special_len;
	}
	if (out.v == NULL)
		out.v = xmalloc(sizeof *out.v);
	*ids = out.v;
	*n = out.n;
	return 0;
}

int
bpe_decode(const struct bpe *b, const uint32_t *ids, size_t n, char **out,
           size_t *len, struct ipc_error *err)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (ids[i] >= b->vocab_size)
			return ipc_error_set(
			    err, IPC_E_BOUNDS,
			    "bpe: token id %u at position %zu "
			    "is outside the vocabulary (0 to %u)",
			    ids[i], i, b->vocab_size - 1);
		total += b->offset[ids[i] + 1] - b->offset[ids[i]];
	}
	char *buf = xmalloc(total + 1);
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		size_t tn = b->offset[ids[i] + 1] - b->offset[ids[i]];
		memcpy(buf + at, b->bytes + b->offset[ids[i]], tn);
		at += tn;
	}
	buf[total] = '\0';
	*out = buf;
	*len = total;
	return 0;
}
