/* textdata.c: text datasets. A split's file (JSONL with a text field, or one
 * document per line) is tokenized once with GPT-2's BPE into a cache file:
 *
 *   header (80 bytes) | doc_start[count + 1] u64 | tokens[n] u32 |
 *   labels[count] u8
 *
 * each region 64-byte aligned; every document's tokens end with
 * <|endoftext|> when the vocabulary has it. A worker maps the cache and
 * reads a client's documents as one token stream. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "atomicfile.h"
#include "bpe.h"
#include "dataset-impl.h"
#include "mapfile.h"
#include "rng.h"
#include "util.h"

#define TEXT_CACHE_VERSION 1u
#define TEXT_ALIGN 64u
#define MAX_LABELS 256
#define PROGRESS_SECONDS 5.0

/* The cache file starts with this header (native byte order: a local
 * artefact, like the image caches). */
struct text_header {
	char magic[8];
	uint32_t version, count, classes, vocab_size;
	int32_t eot;
	uint32_t reserved;
	uint64_t num_tokens;
	uint64_t docs_offset, tokens_offset, labels_offset, total_size;
	uint64_t reserved2;
};
_Static_assert(sizeof(struct text_header) == 80, "text cache header layout");

/* A split's source file. */
struct text_file {
	char *path;
	int jsonl; /* else one document per line */
};

/* What tokenizing builds: tokens, document offsets, labels. */
struct text_build {
	uint32_t *tokens;
	size_t ntok, cap_tok;
	uint64_t *docs; /* [ndoc + 1] */
	size_t ndoc, cap_doc;
	int *raw; /* per document: an integer label or a name's index */
	int kind; /* labels: 0 none yet, 1 numbers, 2 strings */
	char *names[MAX_LABELS];
	int nnames;
	uint8_t *labels; /* [ndoc], final */
	uint32_t classes;
};

static uint64_t
align_up(uint64_t x)
{
	return (x + TEXT_ALIGN - 1) & ~(uint64_t)(TEXT_ALIGN - 1);
}

/* 1 when path is a regular file. */
static int
is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file of split in dir: train.jsonl or train.txt; for "test"
 * validation.jsonl/.txt, else test.jsonl/.txt. Both kinds for one name is
 * ambiguous. */
static int
find_file(const char *dir, const char *split, struct text_file *f,
          struct ipc_error *err)
{
	static const char *const train[] = {"train", NULL};
	static const char *const test[] = {"validation", "test", NULL};
	int is_train = strcmp(split, "train") == 0;
	if (!is_train && strcmp(split, "test") != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "text split \"%s\": use train or test",
		                     split);
	for (const char *const *stem = is_train ? train : test; *stem; stem++) {
		char *j = xasprintf("%s/%s.jsonl", dir, *stem);
		char *t = xasprintf("%s/%s.txt", dir, *stem);
		int hj = is_file(j), ht = is_file(t);
		if (hj && ht) {
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "%s and %s both exist: keep one (a "
			              "split's documents come from one file)",
			              j, t);
			free(j);
			free(t);
			return -1;
		}
		if (hj || ht) {
			f->path = hj ? j : t;
			f->jsonl = hj;
			free(hj ? t : j);
			return 0;
		}
		free(j);
		free(t);
	}
	return ipc_error_set(
	    err, IPC_E_IO,
	    "data.dir %s has no %s documents: put %s there, one JSON object "
	    "or one document per line (docs/data.md, \"Text datasets\")",
	    dir, is_train ? "training" : "validation",
	    is_train ? "train.jsonl or train.txt"
	             : "validation.jsonl or validation.txt (or test.jsonl, "
	               "test.txt)");
}

/* Mix a string into a digest. */
static uint64_t
mix_string(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = rng_mix64(h ^ (unsigned char)*s);
	return rng_mix64(h ^ 0xff);
}

/* Mix a file's crc32 and size (as the cache index knows them) into h. */
static int
mix_file(const char *cache_dir, const char *path, uint64_t *h,
         struct ipc_error *err)
{
	uint32_t crc;
	uint64_t size;
	if (dataset_source_crc(cache_dir, path, &crc, &size, err) != 0)
		return -1;
	*h = rng_mix64(rng_mix64(*h ^ crc) ^ size);
	return 0;
}

/* The cache path: split and a digest of the source, the tokenizer's two
 * files (the pair bpe_load_dir reads) and the field names. */
static int
cache_path(const struct text_source *src, const struct text_file *f,
           const char *split, const char *cache_dir, char *out, size_t cap,
           struct ipc_error *err)
{
	uint64_t h = rng_derive(TEXT_CACHE_VERSION, "text", 0);
	h = mix_string(h, split);
	h = mix_string(h, f->jsonl ? src->text_field : "");
	h = mix_string(h, f->jsonl ? src->label_field : "");
	if (mix_file(cache_dir, f->path, &h, err) != 0)
		return -1;
	static const char *const pairs[][2] = {{"vocab.json", "merges.txt"},
	                                       {"encoder.json", "vocab.bpe"}};
	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		char *v = xasprintf("%s/%s", src->tokenizer, pairs[i][0]);
		char *m = xasprintf("%s/%s", src->tokenizer, pairs[i][1]);
		int found = is_file(v) && is_file(m);
		int rc = found && (mix_file(cache_dir, v, &h, err) != 0 ||
		                   mix_file(cache_dir, m, &h, err) != 0);
		free(v);
		free(m);
		if (rc)
			return -1;
		if (found)
			break;
	}
	int len = snprintf(out, cap, "%s/text-%s-%016llx.bin", cache_dir, split,
	                   (unsigned long long)h);
	if (len < 0 || (size_t)len >= cap)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "cache path under %s is longer than %zu "
		                     "bytes: use a shorter data.cache_dir",
		                     cache_dir, cap);
	return 0;
}

/* A JSON value's type, for messages. */
static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* The label of one JSONL document into *raw: 0..255, a boolean, or a
 * string (numbered later); one kind per file. */
static int
take_label(struct text_build *b, const json_t *v, const char *where,
           const char *field, int *raw, struct ipc_error *err)
{
	int kind = json_is_string(v) ? 2 : 1;
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);
		if (x < 0 || x >= MAX_LABELS)
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s: label \"%s\" is %lld: an "
			                     "integer label must be 0..255",
			                     where, field, (long long)x);
		*raw = (int)x;
	} else if (json_is_boolean(v)) {
		*raw = json_is_true(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		int i = 0;
		while (i < b->nnames && strcmp(b->names[i], s) != 0)
			i++;
		if (i == b->nnames) {
			if (b->nnames == MAX_LABELS)
				return ipc_error_set(
				    err, IPC_E_BAD_VALUE,
				    "%s: label \"%s\": more than %d distinct "
				    "strings",
				    where, s, MAX_LABELS);
			b->names[b->nnames++] = xstrdup(s);
		}
		*raw = i;
	} else {
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "%s: label field \"%s\" is %s: expected "
		                     "an integer 0..255, a boolean or a string",
		                     where, field, json_type_name(v));
	}
	if (b->kind != 0 && b->kind != kind)
		return ipc_error_set(
		    err, IPC_E_WRONG_TYPE,
		    "%s: label field \"%s\" is %s, the earlier "
		    "documents' are %s: use one kind",
		    where, field, json_type_name(v),
		    b->kind == 2 ? "strings" : "numbers");
	b->kind = kind;
	return 0;
}

/* Tokenize one document and append it (a document without tokens is
 * left out). */
static int
add_document(struct text_build *b, struct bpe *bpe, const char *text,
             size_t len, int raw, struct ipc_error *err)
{
	uint32_t *ids;
	size_t n;
	if (bpe_encode(bpe, text, len, 0, &ids, &n, err) != 0)
		return -1;
	if (n == 0) {
		free(ids);
		return 0;
	}
	int64_t eot = bpe_eot(bpe);
	size_t need = b->ntok + n + 1;
	if (need > b->cap_tok) {
		b->cap_tok = need * 2;
		b->tokens =
		    xreallocarray(b->tokens, b->cap_tok, sizeof(uint32_t));
	}
	memcpy(b->tokens + b->ntok, ids, n * sizeof *ids);
	b->ntok += n;
	if (eot >= 0)
		b->tokens[b->ntok++] = (uint32_t)eot;
	free(ids);
	if (b->ndoc + 2 > b->cap_doc) {
		b->cap_doc = (b->ndoc + 2) * 2;
		b->docs = xreallocarray(b->docs, b->cap_doc, sizeof *b->docs);
		b->raw = xreallocarray(b->raw, b->cap_doc, sizeof *b->raw);
	}
	b->raw[b->ndoc] = raw;
	b->docs[++b->ndoc] = b->ntok;
	return 0;
}

/* One line of the file: a JSON object (its text and label) or a plain
 * document. Blank lines are skipped. */
static int
add_line(struct text_build *b, struct bpe *bpe, const struct text_source *src,
         const struct text_file *f, const char *line, size_t len, size_t lineno,
         struct ipc_error *err)
{
	while (len > 0 && line[len - 1] == '\r')
		len--;
	size_t k = 0;
	while (k < len &&
	       (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
		k++;
	if (k == len)
		return 0;
	if (!f->jsonl)
		return add_document(b, bpe, line, len, 0, err);
	char where[4200];
	snprintf(where, sizeof where, "%s:%zu", f->path, lineno);
	json_error_t jerr;
	json_t *o = json_loadb(line, len, 0, &jerr);
	if (o == NULL || !json_is_object(o)) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: not a JSON object (%s): a .jsonl file "
		              "holds one object per line",
		              where, o == NULL ? jerr.text : json_type_name(o));
		json_decref(o);
		return -1;
	}
	int rc = 0, raw = 0;
	json_t *t = json_object_get(o, src->text_field);
	if (t == NULL)
		rc = ipc_error_set(err, IPC_E_MISSING_KEY,
		                   "%s: field \"%s\" is missing (set "
		                   "data.text_field to the field holding the "
		                   "text)",
		                   where, src->text_field);
	else if (!json_is_string(t))
		rc = ipc_error_set(err, IPC_E_WRONG_TYPE,
		                   "%s: field \"%s\" is %s, expected a string "
		                   "(set data.text_field to the field holding "
		                   "the text)",
		                   where, src->text_field, json_type_name(t));
	if (rc == 0 && src->label_field[0] != '\0') {
		json_t *l = json_object_get(o, src->label_field);
		rc = l == NULL
		         ? ipc_error_set(err, IPC_E_MISSING_KEY,
		                         "%s: label field \"%s\" is missing "
		                         "(every document needs one, or set "
		                         "data.label_field to \"\")",
		                         where, src->label_field)
		         : take_label(b, l, where, src->label_field, &raw, err);
	}
	if (rc == 0)
		rc = add_document(b, bpe, json_string_value(t),
		                  json_string_length(t), raw, err);
	json_decref(o);
	return rc;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Final labels: numbers as they are (classes = largest + 1), strings
 * numbered in sorted order, none: every document 0 of 1 class. */
static void
finish_labels(struct text_build *b)
{
	b->labels = xmalloc(b->ndoc ? b->ndoc : 1);
	int map[MAX_LABELS] = {0};
	if (b->kind == 2) {
		char *sorted[MAX_LABELS];
		memcpy(sorted, b->names, b->nnames * sizeof *sorted);
		qsort(sorted, (size_t)b->nnames, sizeof *sorted, compare_names);
		for (int i = 0; i < b->nnames; i++)
			for (int k = 0; k < b->nnames; k++)
				if (sorted[k] == b->names[i])
					map[i] = k;
	}
	int top = 0;
	for (size_t i = 0; i < b->ndoc; i++) {
		int l = b->kind == 2   ? map[b->raw[i]]
		        : b->kind == 1 ? b->raw[i]
		                       : 0;
		b->labels[i] = (uint8_t)l;
		if (l > top)
			top = l;
	}
	b->classes = b->kind == 2 ? (uint32_t)b->nnames : (uint32_t)top + 1;
}

static void
build_free(struct text_build *b)
{
	free(b->tokens);
	free(b->docs);
	free(b->raw);
	free(b->labels);
	for (int i = 0; i < b->nnames; i++)
		free(b->names[i]);
	memset(b, 0, sizeof *b);
}

/* Tokenize every line of the mapped file, a progress line on stderr every
 * few seconds. */
static int
tokenize_file(struct text_build *b, struct bpe *bpe,
              const struct text_source *src, const struct text_file *f,
              const char *data, size_t size, struct ipc_error *err)
{
	b->cap_doc = 1024;
	b->docs = xcalloc(b->cap_doc, sizeof *b->docs);
	b->raw = xcalloc(b->cap_doc, sizeof *b->raw);
	double last = now_seconds();
	size_t lineno = 0;
	for (size_t at = 0; at < size;) {
		const char *nl = memchr(data + at, '\n', size - at);
		size_t len =
		    nl != NULL ? (size_t)(nl - (data + at)) : size - at;
		if (add_line(b, bpe, src, f, data + at, len, ++lineno, err) !=
		    0)
			return -1;
		if (b->ndoc >= UINT32_MAX)
			return ipc_error_set(err, IPC_E_BOUNDS,
			                     "%s: more than %u documents",
			                     f->path, UINT32_MAX - 1);
		at += len + 1;
		if (now_seconds() - last >= PROGRESS_SECONDS) {
			last = now_seconds();
			fprintf(stderr, "tokenizing %s: %zu/%zu MB\n", f->path,
			        (at < size ? at : size) >> 20, size >> 20);
		}
	}
	if (b->ndoc == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: no document (every line is blank or "
		                     "has no text)",
		                     f->path);
	return 0;
}

/* A build and its header, for the writer. */
struct text_out {
	struct text_header h;
	const struct text_build *b;
};

/* Pad fd from at to target with zeros. */
static int
pad_to(int fd, uint64_t at, uint64_t target)
{
	static const uint8_t zeros[TEXT_ALIGN];
	return at < target ? write_all(fd, zeros, (size_t)(target - at)) : 0;
}

/* Write the header and the three regions. */
static int
text_fill(int fd, const void *arg, struct ipc_error *err)
{
	const struct text_out *o = arg;
	const struct text_header *h = &o->h;
	const struct text_build *b = o->b;
	uint64_t docs_end = h->docs_offset + (b->ndoc + 1) * sizeof(uint64_t);
	uint64_t tok_end = h->tokens_offset + b->ntok * sizeof(uint32_t);
	if (write_all(fd, h, sizeof *h) != 0 ||
	    pad_to(fd, sizeof *h, h->docs_offset) != 0 ||
	    write_all(fd, b->docs, (b->ndoc + 1) * sizeof(uint64_t)) != 0 ||
	    pad_to(fd, docs_end, h->tokens_offset) != 0 ||
	    write_all(fd, b->tokens, b->ntok * sizeof(uint32_t)) != 0 ||
	    pad_to(fd, tok_end, h->labels_offset) != 0 ||
	    write_all(fd, b->labels, b->ndoc) != 0)
		return ipc_error_set(err, IPC_E_IO, "cannot write cache: %s",
		                     strerror(errno));
	return 0;
}

/* Tokenize f with the tokenizer and write the cache at path. */
static int
build_cache(const struct text_source *src, const struct text_file *f,
            const char *path, struct ipc_error *err)
{
	if (!f->jsonl && src->label_field[0] != '\0')
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "%s: data.label_field \"%s\": a .txt file "
		    "has no labels; write JSONL ({\"%s\": ..., "
		    "\"%s\": ...} a line) or set "
		    "data.label_field to \"\"",
		    f->path, src->label_field, src->text_field,
		    src->label_field);
	struct bpe *bpe = bpe_load_dir(src->tokenizer, err);
	if (bpe == NULL) {
		ipc_error_prefix(err, "data.tokenizer: ");
		return -1;
	}
	struct stat st;
	if (stat(f->path, &st) != 0 || st.st_size == 0) {
		bpe_free(bpe);
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: no document (the file is empty)",
		                     f->path);
	}
	void *map;
	size_t size;
	if (mapfile_open(f->path, 1, "", &map, &size, err) != 0) {
		bpe_free(bpe);
		return -1;
	}
	struct text_build b = {0};
	int rc = tokenize_file(&b, bpe, src, f, map, size, err);
	munmap(map, size);
	if (rc == 0) {
		finish_labels(&b);
		struct text_out o = {.b = &b};
		struct text_header *h = &o.h;
		memcpy(h->magic, TEXT_CACHE_MAGIC, sizeof h->magic);
		h->version = TEXT_CACHE_VERSION;
		h->count = (uint32_t)b.ndoc;
		h->classes = b.classes;
		h->vocab_size = bpe_vocab_size(bpe);
		h->eot = (int32_t)bpe_eot(bpe);
		h->num_tokens = b.ntok;
		h->docs_offset = align_up(sizeof *h);
		h->tokens_offset =
		    align_up(h->docs_offset + (b.ndoc + 1) * sizeof(uint64_t));
		h->labels_offset =
		    align_up(h->tokens_offset + b.ntok * sizeof(uint32_t));
		h->total_size = h->labels_offset + b.ndoc;
		rc = atomicfile_write(path, text_fill, &o, err);
	}
	build_free(&b);
	bpe_free(bpe);
	return rc;
}

int
dataset_prepare_text(const struct text_source *src, const char *split,
                     const char *cache_dir, char *path_out, size_t path_cap,
                     struct ipc_error *err)
{
	struct stat st;
	if (stat(src->dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return ipc_error_set(err, IPC_E_IO,
		                     "data.dir %s: not a directory: set it to "
		                     "the directory of train.jsonl (or "
		                     "train.txt) and validation.jsonl",
		                     src->dir);
	struct text_file f = {0};
	if (find_file(src->dir, split, &f, err) != 0)
		return -1;
	int rc = dataset_make_dirs(cache_dir, err);
	if (rc == 0)
		rc = cache_path(src, &f, split, cache_dir, path_out, path_cap,
		                err);
	if (rc == 0) {
		struct dataset ds;
		struct ipc_error stale;
		if (is_file(path_out)) {
			if (dataset_open(path_out, &ds, &stale) == 0) {
				dataset_close(&ds);
				free(f.path);
				return 0;
			}
			log_warn("rebuilding damaged cache: %s", stale.message);
		}
		rc = build_cache(src, &f, path_out, err);
	}
	free(f.path);
	return rc;
}

/* The header's sizes and offsets fit the file. */
static int
check_text_header(const struct text_header *h, size_t size, const char *path,
                  struct ipc_error *err)
{
	const char *bad = NULL;
	/* Every subtraction below follows the check that keeps it >= 0. */
	uint64_t docs_bytes = ((uint64_t)h->count + 1) * 8;
	if (h->version != TEXT_CACHE_VERSION)
		bad = "another cache version";
	else if (h->count == 0 || h->classes == 0 || h->classes > MAX_LABELS ||
	         h->vocab_size == 0 ||
	         (h->eot != -1 &&
	          (h->eot < 0 || (uint32_t)h->eot >= h->vocab_size)))
		bad = "bad counts";
	else if (h->docs_offset % TEXT_ALIGN || h->tokens_offset % TEXT_ALIGN ||
	         h->labels_offset % TEXT_ALIGN)
		bad = "regions not aligned";
	else if (h->total_size != size)
		bad = "its size is not the header's";
	else if (h->docs_offset < sizeof *h || h->docs_offset > size ||
	         docs_bytes > size - h->docs_offset ||
	         h->tokens_offset < h->docs_offset + docs_bytes ||
	         h->tokens_offset > size ||
	         h->num_tokens > (size - h->tokens_offset) / 4 ||
	         h->labels_offset < h->tokens_offset + h->num_tokens * 4 ||
	         h->labels_offset > size || size - h->labels_offset != h->count)
		bad = "regions do not fit";
	if (bad != NULL)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "%s: damaged text cache (%s): delete it and "
		    "prepare again",
		    path, bad);
	return 0;
}

int
dataset_open_text(void *map, size_t size, const char *path, struct dataset *ds,
                  struct ipc_error *err)
{
	const struct text_header *h = map;
	if (check_text_header(h, size, path, err) != 0) {
		munmap(map, size);
		return -1;
	}
	int rc = 0;
	const uint8_t *base = map;
	const uint64_t *docs = (const uint64_t *)(base + h->docs_offset);
	const uint32_t *tokens = (const uint32_t *)(base + h->tokens_offset);
	const uint8_t *labels = base + h->labels_offset;
	for (uint32_t i = 0; rc == 0 && i < h->count; i++)
		if (docs[i] >= docs[i + 1] || labels[i] >= h->classes)
			rc = ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s: damaged text cache (document %u: "
			    "offsets or label): delete it and "
			    "prepare again",
			    path, i);
	if (rc == 0 && (docs[0] != 0 || docs[h->count] != h->num_tokens))
		rc = ipc_error_set(err, IPC_E_BAD_VALUE,
		                   "%s: damaged text cache (document offsets "
		                   "do not span the tokens): delete it and "
		                   "prepare again",
		                   path);
	for (uint64_t i = 0; rc == 0 && i < h->num_tokens; i++)
		if (tokens[i] >= h->vocab_size)
			rc = ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s: damaged text cache (token %llu is "
			    "%u, vocabulary %u): delete it and "
			    "prepare again",
			    path, (unsigned long long)i, tokens[i],
			    h->vocab_size);
	if (rc != 0) {
		munmap(map, size);
		return -1;
	}
	ds->count = h->count;
	ds->classes = h->classes;
	ds->labels = labels;
	ds->text = 1;
	ds->vocab_size = h->vocab_size;
	ds->eot = h->eot;
	ds->num_tokens = h->num_tokens;
	ds->doc_start = docs;
	ds->tokens = tokens;
	ds->map = map;
	ds->map_size = size;
	return 0;
}

uint32_t *
dataset_text_stream(const struct dataset *ds, const uint32_t *idx, size_t n,
                    size_t *len)
{
	if (idx == NULL)
		n = ds->count;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t d = idx != NULL ? idx[i] : (uint32_t)i;
		if (d >= ds->count)
			fatal("dataset_text_stream: document %u of %u", d,
			      ds->count);
		total += ds->doc_start[d + 1] - ds->doc_start[d];
	}
	uint32_t *out = xmalloc((total ? total : 1) * sizeof *out);
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t d = idx != NULL ? idx[i] : (uint32_t)i;
		size_t k = ds->doc_start[d + 1] - ds->doc_start[d];
		memcpy(out + at, ds->tokens + ds->doc_start[d],
		       k * sizeof *out);
		at += k;
	}
	*len = total;
	return out;
}
