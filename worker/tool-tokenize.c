/* tool-tokenize.c: cohort-tokenize, GPT-2's BPE from the command line: text
 * to token ids (one per line) and back, with the tokenizer a job uses
 * (data.tokenizer). For checking what a dataset becomes, and for tests
 * that feed a reference the tokens cohort trains on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "files.h"
#include "gpt2shape.h"
#include "util.h"

#define EXIT_USAGE 2

/* Print the usage text to f. */
static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: cohort-tokenize [--tokenizer DIR] [--special] FILE\n"
	        "       cohort-tokenize [--tokenizer DIR] --decode FILE\n"
	        "Encodes FILE (- = stdin) into GPT-2 token ids, one per "
	        "line; --decode\n"
	        "turns such a list back into text. DIR holds vocab.json + "
	        "merges.txt or\n"
	        "encoder.json + vocab.bpe (default: tools/fetch-gpt2-bpe.sh's "
	        "directory).\n"
	        "--special reads \"<|endoftext|>\" in the text as that "
	        "token.\n");
}

/* All of path (- = stdin) into *data. */
static int
read_input(const char *path, char **data, size_t *len, struct ipc_error *err)
{
	if (strcmp(path, "-") != 0)
		return files_read_all(path, data, len, err);
	size_t cap = 1 << 16, n = 0, got;
	char *buf = xmalloc(cap);
	while ((got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
		n += got;
		if (n + 1 == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

/* Ids one per line (decimal) back into n ids. */
static int
parse_ids(const char *text, uint32_t **ids, size_t *n, struct ipc_error *err)
{
	size_t cap = 1024, k = 0, line = 1;
	uint32_t *v = xmalloc(cap * sizeof *v);
	const char *p = text;
	while (*p != '\0') {
		char *end;
		unsigned long id = strtoul(p, &end, 10);
		if (end == p || (*end != '\n' && *end != '\0') ||
		    id > UINT32_MAX) {
			free(v);
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "line %zu: expected one token id",
			                     line);
		}
		if (k == cap)
			v = xrealloc(v, (cap *= 2) * sizeof *v);
		v[k++] = (uint32_t)id;
		p = *end == '\n' ? end + 1 : end;
		line++;
	}
	*ids = v;
	*n = k;
	return 0;
}

int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-tokenize"))
		return 0;
	const char *dir = "", *file = NULL;
	int decode = 0, flags = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--decode") == 0)
			decode = 1;
		else if (strcmp(argv[i], "--special") == 0)
			flags = BPE_SPECIAL;
		else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (file == NULL &&
		           (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
			file = argv[i];
		else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (file == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char path[4096];
	gpt2_bpe_dir(dir, path, sizeof path);
	struct ipc_error err;
	struct bpe *b = bpe_load_dir(path, &err);
	char *text = NULL;
	size_t len;
	int rc = 1;
	if (b == NULL || read_input(file, &text, &len, &err) != 0)
		goto out;
	if (decode) {
		uint32_t *ids = NULL;
		size_t n = 0;
		char *out;
		size_t outlen;
		if (parse_ids(text, &ids, &n, &err) != 0) {
			ipc_error_prefix(&err, "%s: ", file);
			goto out;
		}
		rc = bpe_decode(b, ids, n, &out, &outlen, &err) != 0;
		free(ids);
		if (rc == 0) {
			fwrite(out, 1, outlen, stdout);
			free(out);
		}
	} else {
		uint32_t *ids = NULL;
		size_t n = 0;
		rc = bpe_encode(b, text, len, flags, &ids, &n, &err) != 0;
		for (size_t i = 0; rc == 0 && i < n; i++)
			printf("%u\n", ids[i]);
		if (rc == 0)
			free(ids);
	}
out:
	if (rc != 0)
		fprintf(stderr, "cohort-tokenize: %s\n", err.message);
	free(text);
	bpe_free(b);
	return rc;
}
