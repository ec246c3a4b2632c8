/* test_safetensors.c: checkpoints round-trip, match the format's exact byte
 * layout, are readable by an independent parser, and every corrupt file is
 * rejected with a specific code and a message naming it. */
#include "harness.h"
#include "safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Path of a file in the test's temporary directory; static buffer. */
static const char *
tmp_path(const char *name)
{
	static char buf[4][512];
	static int which;
	which = (which + 1) % 4;
	snprintf(buf[which], sizeof buf[which], "%s/%s", harness_tmpdir(),
	         name);
	return buf[which];
}

/* Whole contents of a file (NULL if unreadable); *len gets its size. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, got;
	do {
		cap = cap * 2 + 4096;
		buf = xrealloc(buf, cap);
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (n == cap);
	fclose(f);
	*len = n;
	return buf;
}

/* Write bytes to path, replacing it. */
static void
spit(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK_EQ_INT(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A file made of an explicit header length, header text and data bytes. */
static void
spit_raw(const char *path, uint64_t hlen, const char *json, const void *data,
         size_t dlen)
{
	size_t jlen = strlen(json);
	unsigned char *buf = xmalloc(8 + jlen + dlen + 1);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(hlen >> (8 * i));
	memcpy(buf + 8, json, jlen);
	if (dlen > 0)
		memcpy(buf + 8 + jlen, data, dlen);
	spit(path, buf, 8 + jlen + dlen);
	free(buf);
}

/* fc1.weight [3,5] F32, fc1.bias [3] F32, emb [2,2] F16, step [] I64 with
 * recognisable values; *region is malloc'd. */
static void
make_model(struct tensor_manifest *m, void **region)
{
	struct ipc_error err;
	uint64_t w[] = {3, 5}, b[] = {3}, e[] = {2, 2};
	tensor_manifest_init(m);
	CHECK_EQ_INT(
	    tensor_manifest_add(m, "fc1.weight", DTYPE_F32, 2, w, &err), 0);
	CHECK_EQ_INT(tensor_manifest_add(m, "fc1.bias", DTYPE_F32, 1, b, &err),
	             0);
	CHECK_EQ_INT(tensor_manifest_add(m, "emb", DTYPE_F16, 2, e, &err), 0);
	CHECK_EQ_INT(tensor_manifest_add(m, "step", DTYPE_I64, 0, NULL, &err),
	             0);
	unsigned char *r = xcalloc(1, m->total_size);
	float *fw = (float *)(r + m->tensors[0].offset);
	for (int i = 0; i < 15; i++)
		fw[i] = 0.25f * (float)i - 1.0f;
	float *fb = (float *)(r + m->tensors[1].offset);
	fb[0] = 1e-3f;
	fb[1] = -7.5f;
	fb[2] = 3.0e7f;
	uint16_t *h = (uint16_t *)(r + m->tensors[2].offset);
	h[0] = 0x3c00; /* 1.0 */
	h[1] = 0xc000; /* -2.0 */
	h[2] = 0x7bff; /* 65504 */
	h[3] = 0x3555; /* 0.333251953 */
	int64_t step = -123456789012345;
	memcpy(r + m->tensors[3].offset, &step, 8);
	*region = r;
}

static void
test_round_trip(void)
{
	struct tensor_manifest m, got;
	void *region, *back;
	struct st_metadata meta = {0}, meta_back;
	struct ipc_error err;
	make_model(&m, &region);
	st_metadata_set(&meta, "format", "pt");
	st_metadata_set(&meta, "cohort.round", "3");
	st_metadata_set(&meta, "cohort.round", "4");
	CHECK_EQ_INT(meta.count, 2);
	const char *path = tmp_path("model.safetensors");
	CHECK_EQ_INT(safetensors_write(path, &m, region, &meta, &err), 0);
	CHECK_EQ_INT(safetensors_read(path, &got, &back, &meta_back, &err), 0);
	CHECK_EQ_INT(tensor_manifest_equal(&got, &m, &err), 0);
	CHECK_EQ_INT(got.total_size, m.total_size);
	CHECK(((uintptr_t)back % TENSOR_ALIGN) == 0);
	CHECK(memcmp(back, region, m.total_size) == 0);
	CHECK_EQ_INT(meta_back.count, 2);
	CHECK_STR_CONTAINS(st_metadata_get(&meta_back, "format"), "pt");
	CHECK_STR_CONTAINS(st_metadata_get(&meta_back, "cohort.round"), "4");
	CHECK(st_metadata_get(&meta_back, "nothing") == NULL);
	free(back);
	tensor_manifest_free(&got);
	st_metadata_free(&meta_back);

	/* without metadata, and reading with meta == NULL */
	CHECK_EQ_INT(safetensors_write(path, &m, region, NULL, &err), 0);
	CHECK_EQ_INT(safetensors_read(path, &got, &back, NULL, &err), 0);
	CHECK(memcmp(back, region, m.total_size) == 0);
	free(back);
	tensor_manifest_free(&got);

	/* the same tensors in another layout, loaded in place */
	struct tensor_manifest other;
	tensor_manifest_init(&other);
	for (size_t i = m.count; i-- > 0;) {
		const struct tensor_desc *t = &m.tensors[i];
		CHECK_EQ_INT(tensor_manifest_add(&other, t->name, t->dtype,
		                                 t->rank, t->shape, &err),
		             0);
	}
	unsigned char *dst = xcalloc(1, other.total_size);
	CHECK_EQ_INT(safetensors_read_into(path, &other, dst, NULL, &err), 0);
	for (size_t i = 0; i < m.count; i++) {
		const struct tensor_desc *t = &m.tensors[i];
		const struct tensor_desc *o =
		    tensor_manifest_find(&other, t->name);
		CHECK(memcmp(dst + o->offset, (char *)region + t->offset,
		             t->nbytes) == 0);
	}
	/* a different shape, a missing tensor, an extra tensor */
	other.tensors[1].shape[0] = 4;
	other.tensors[1].nbytes = 16;
	CHECK_EQ_INT(safetensors_read_into(path, &other, dst, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_MISMATCH);
	CHECK_STR_CONTAINS(err.message, "model.safetensors: ");
	CHECK_STR_CONTAINS(err.message, "'emb' has shape [2, 2] where [4, 2]");
	other.tensors[1].shape[0] = 2;
	other.tensors[1].nbytes = 8;
	strcpy(other.tensors[0].name, "global_step");
	CHECK_EQ_INT(safetensors_read_into(path, &other, dst, NULL, &err), -1);
	CHECK_STR_CONTAINS(err.message, "'global_step' is missing");
	strcpy(other.tensors[0].name, "step");
	other.count--;
	CHECK_EQ_INT(safetensors_read_into(path, &other, dst, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_MISMATCH);
	CHECK_STR_CONTAINS(err.message, "'fc1.weight' is not expected");
	other.count++;
	free(dst);
	tensor_manifest_free(&other);
	st_metadata_free(&meta);
	free(region);
	tensor_manifest_free(&m);
}

/* The whole of path, malloc'd; *len its size. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f == NULL)
		return xcalloc(1, 1);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = xcalloc(1, (size_t)(n > 0 ? n : 1));
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

/* Written from a file descriptor (a shm segment, a plain file) the file is
 * byte for byte the one written from memory; a source shorter than its
 * manifest is an error that leaves the old file in place. */
static void
test_write_from_fd(void)
{
	struct tensor_manifest m;
	void *region;
	struct ipc_error err;
	make_model(&m, &region);
	const char *a = tmp_path("from-region.safetensors");
	const char *b = tmp_path("from-fd.safetensors");
	CHECK_EQ_INT(safetensors_write(a, &m, region, NULL, &err), 0);
	char name[64];
	snprintf(name, sizeof name, "/cohort-test-stfd.%d", (int)getpid());
	int shm = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(shm >= 0);
	shm_unlink(name);
	CHECK_EQ_INT(write(shm, region, m.total_size), (long)m.total_size);
	const char *src = tmp_path("source.bin");
	int plain = open(src, O_CREAT | O_TRUNC | O_RDWR, 0600);
	CHECK(plain >= 0);
	CHECK_EQ_INT(write(plain, region, m.total_size), (long)m.total_size);
	int fds[] = {shm, plain};
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(safetensors_write_fd(b, &m, fds[i], NULL, &err),
		             0);
		size_t la, lb;
		char *ca = read_file(a, &la), *cb = read_file(b, &lb);
		CHECK(la == lb && memcmp(ca, cb, la) == 0);
		free(ca);
		free(cb);
	}
	const struct tensor_desc *last = &m.tensors[m.count - 1];
	CHECK_EQ_INT(ftruncate(plain, (off_t)(last->offset + 4)), 0);
	CHECK_EQ_INT(safetensors_write_fd(b, &m, plain, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	size_t la, lb;
	char *ca = read_file(a, &la), *cb = read_file(b, &lb);
	CHECK(la == lb && memcmp(ca, cb, la) == 0);
	free(ca);
	free(cb);
	close(shm);
	close(plain);
	free(region);
	tensor_manifest_free(&m);
}

/* A file without tensors is valid: an empty state. */
static void
test_empty_file(void)
{
	struct tensor_manifest m, got;
	void *region;
	struct ipc_error err;
	tensor_manifest_init(&m);
	const char *path = tmp_path("empty.safetensors");
	CHECK_EQ_INT(safetensors_write(path, &m, NULL, NULL, &err), 0);
	size_t len = 0;
	unsigned char *f = slurp(path, &len);
	CHECK(f != NULL && len == 16 && memcmp(f + 8, "{}      ", 8) == 0);
	free(f);
	CHECK_EQ_INT(safetensors_read(path, &got, &region, NULL, &err), 0);
	CHECK_EQ_INT(got.count, 0);
	CHECK_EQ_INT(got.total_size, 0);
	CHECK(region != NULL);
	free(region);
	tensor_manifest_free(&got);
}

/* The format spec, by hand: a = [1.0, -2.0] F32, b = [0.5] F32. */
static void
test_exact_layout(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	uint64_t two[] = {2}, one[] = {1};
	tensor_manifest_init(&m);
	CHECK_EQ_INT(tensor_manifest_add(&m, "a", DTYPE_F32, 1, two, &err), 0);
	CHECK_EQ_INT(tensor_manifest_add(&m, "b", DTYPE_F32, 1, one, &err), 0);
	float *r = xcalloc(1, m.total_size);
	r[0] = 1.0f;
	r[1] = -2.0f;
	r[16] = 0.5f; /* b sits at offset 64 in the region */
	struct st_metadata meta = {0};
	st_metadata_set(&meta, "format", "pt");
	const char *path = tmp_path("exact.safetensors");
	CHECK_EQ_INT(safetensors_write(path, &m, r, &meta, &err), 0);

	const char *want =
	    "{\"__metadata__\":{\"format\":\"pt\"},"
	    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
	size_t wlen = strlen(want); /* 139 bytes, padded to 144 */
	CHECK_EQ_INT(wlen, 139);
	size_t len = 0;
	unsigned char *f = slurp(path, &len);
	CHECK(f != NULL);
	if (f == NULL)
		goto out;
	CHECK_EQ_INT(len, 8 + 144 + 12);
	const unsigned char hlen[8] = {144, 0, 0, 0, 0, 0, 0, 0};
	CHECK(memcmp(f, hlen, 8) == 0);
	json_error_t jerr;
	json_t *got = json_loadb((const char *)f + 8, 144, 0, &jerr);
	json_t *exp = json_loads(want, 0, &jerr);
	CHECK(got != NULL && exp != NULL && json_equal(got, exp));
	json_decref(got);
	json_decref(exp);
	CHECK(memcmp(f + 8, want, wlen) == 0);
	for (size_t i = wlen; i < 144; i++)
		CHECK_EQ_INT(f[8 + i], ' ');
	const unsigned char data[12] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
	                                0x00, 0xc0, 0x00, 0x00, 0x00, 0x3f};
	CHECK(memcmp(f + 8 + 144, data, 12) == 0);
	free(f);
out:
	st_metadata_free(&meta);
	free(r);
	tensor_manifest_free(&m);
}

static void
test_half_conversions(void)
{
	const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff,
	                      0x0400, 0x7c00, 0xfc00, 0x8000, 0x7e00};
	float f[ARRAY_LEN(h)];
	safetensors_f16_to_f32(h, f, ARRAY_LEN(h));
	CHECK(f[0] == 1.0f);
	CHECK(f[1] == -2.0f);
	CHECK(f[2] == 65504.0f);
	CHECK(f[3] == 0x1p-24f);           /* smallest subnormal */
	CHECK(f[4] == 1023.0f * 0x1p-24f); /* largest subnormal */
	CHECK(f[5] == 0x1p-14f);           /* smallest normal */
	CHECK(isinf(f[6]) && f[6] > 0);
	CHECK(isinf(f[7]) && f[7] < 0);
	CHECK(f[8] == 0.0f && signbit(f[8]));
	CHECK(isnan(f[9]));

	const uint16_t b[] = {0x3f80, 0xc000, 0x477f, 0x0001, 0x7f80, 0x7fc0};
	float g[ARRAY_LEN(b)];
	safetensors_bf16_to_f32(b, g, ARRAY_LEN(b));
	CHECK(g[0] == 1.0f);
	CHECK(g[1] == -2.0f);
	CHECK(g[2] == 65280.0f);
	CHECK(g[3] == 0x1p-133f);
	CHECK(isinf(g[4]) && g[4] > 0);
	CHECK(isnan(g[5]));
}

/* A BF16 file written by hand reads back with its dtype and converts. */
static void
test_read_bf16_file(void)
{
	const char *json = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],"
	                   "\"data_offsets\":[0,4]}}   ";
	const unsigned char data[4] = {0x80, 0x3f, 0x00, 0xc0};
	const char *path = tmp_path("bf16.safetensors");
	spit_raw(path, strlen(json), json, data, 4);
	struct tensor_manifest m;
	void *region;
	struct ipc_error err;
	CHECK_EQ_INT(safetensors_read(path, &m, &region, NULL, &err), 0);
	CHECK_EQ_INT(m.count, 1);
	CHECK_EQ_INT(m.tensors[0].dtype, DTYPE_BF16);
	float out[2] = {0, 0};
	if (region != NULL)
		safetensors_bf16_to_f32(region, out, 2);
	CHECK(out[0] == 1.0f && out[1] == -2.0f);
	free(region);
	tensor_manifest_free(&m);
}

/* Read path and expect code with a message naming the file and needle. */
static void
expect_bad(const char *path, enum ipc_code code, const char *needle)
{
	struct tensor_manifest m;
	struct st_metadata meta;
	void *region = (void *)1;
	struct ipc_error err = {0};
	CHECK_EQ_INT(safetensors_read(path, &m, &region, &meta, &err), -1);
	if (err.code != code)
		fprintf(stderr, "  for %s: %s\n", path, err.message);
	CHECK_EQ_INT(err.code, code);
	CHECK_STR_CONTAINS(err.message, path);
	CHECK_STR_CONTAINS(err.message, needle);
	CHECK(region == NULL);
	CHECK_EQ_INT(m.count, 0);
	CHECK_EQ_INT(meta.count, 0);
}

/* Write a one-header file and expect code and needle on reading it. */
static void
expect_bad_header(const char *json, size_t dlen, enum ipc_code code,
                  const char *needle)
{
	unsigned char data[256] = {0};
	const char *path = tmp_path("bad.safetensors");
	spit_raw(path, strlen(json), json, data, dlen);
	expect_bad(path, code, needle);
}

static void
test_corrupt_files(void)
{
	struct tensor_manifest m;
	void *region;
	struct ipc_error err;
	make_model(&m, &region);
	const char *good = tmp_path("good.safetensors");
	CHECK_EQ_INT(safetensors_write(good, &m, region, NULL, &err), 0);
	size_t len = 0;
	unsigned char *bytes = slurp(good, &len);
	CHECK(bytes != NULL && len > 100);
	if (bytes == NULL)
		goto out;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | bytes[i];

	/* truncated: inside the length, inside the header, inside the data */
	const size_t cuts[] = {
	    0, 5, 8, 8 + (size_t)hlen / 2, 8 + (size_t)hlen, len - 1};
	for (size_t i = 0; i < ARRAY_LEN(cuts); i++) {
		const char *p = tmp_path("cut.safetensors");
		spit(p, bytes, cuts[i]);
		expect_bad(p, IPC_E_ST_FILE, "truncated");
	}
	/* extra bytes after the buffer */
	unsigned char *longer = xcalloc(1, len + 3);
	memcpy(longer, bytes, len);
	const char *p = tmp_path("long.safetensors");
	spit(p, longer, len + 3);
	expect_bad(p, IPC_E_ST_FILE, "3 extra bytes");
	free(longer);

	/* header length larger than the file, and absurdly large */
	spit_raw(p, 1000, "{}", NULL, 0);
	expect_bad(p, IPC_E_ST_FILE, "header length 1000");
	spit_raw(p, 1ull << 40, "{}", NULL, 0);
	expect_bad(p, IPC_E_ST_HEADER, "limit");

	expect_bad_header("{\"a\": ", 0, IPC_E_ST_HEADER, "not valid JSON");
	expect_bad_header("[1, 2]", 0, IPC_E_ST_HEADER, "not a JSON object");
	expect_bad_header("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
	                  IPC_E_MISSING_KEY, "'w': missing \"dtype\"");
	expect_bad_header("{\"w\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],"
	                  "\"data_offsets\":[0,1]}}",
	                  1, IPC_E_DTYPE, "F8_E5M2");
	expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],"
	                  "\"data_offsets\":[0,4]}}",
	                  4, IPC_E_SHAPE, "shape[0] is -1");
	expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],"
	                  "\"data_offsets\":[0,4]}}",
	                  4, IPC_E_WRONG_TYPE, "shape[0] is not an integer");
	expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
	                  "\"data_offsets\":[4,0]}}",
	                  4, IPC_E_BAD_VALUE, "reversed");
	expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
	                  "\"data_offsets\":[0,8]},"
	                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
	                  "\"data_offsets\":[12,16]}}",
	                  16, IPC_E_ST_HEADER, "bytes [8, 12)");
	expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
	                  "\"data_offsets\":[0,8]},"
	                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
	                  "\"data_offsets\":[4,12]}}",
	                  12, IPC_E_OVERLAP, "'a' and 'b' overlap");
	expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[10,4],"
	                  "\"data_offsets\":[0,100]}}",
	                  100, IPC_E_SHAPE,
	                  "tensor 'w': data_offsets [0, 100] span 100 bytes "
	                  "but shape [10, 4] of F32 needs 160");
	expect_bad_header("{\"__metadata__\":{\"epoch\":3}}", 0,
	                  IPC_E_WRONG_TYPE, "\"epoch\" must be a string");
	expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
	                  "\"data_offsets\":[0,1]},"
	                  "\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
	                  "\"data_offsets\":[1,2]}}",
	                  2, IPC_E_DUPLICATE, "w");
	expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,"
	                  "1,1],\"data_offsets\":[0,1]}}",
	                  1, IPC_E_SHAPE, "rank 9");
	expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,"
	                  "4294967296],\"data_offsets\":[0,1]}}",
	                  1, IPC_E_OVERFLOW, "'w'");
	free(bytes);
out:
	free(region);
	tensor_manifest_free(&m);
}

static void
test_parse_header_bounds(void)
{
	const char *json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],"
	                   "\"data_offsets\":[0,16]}}";
	struct tensor_manifest m;
	struct st_metadata meta;
	struct ipc_error err;
	CHECK_EQ_INT(safetensors_parse_header((const uint8_t *)json,
	                                      strlen(json), 16, &m, &meta,
	                                      &err),
	             0);
	CHECK_EQ_INT(m.count, 1);
	CHECK_EQ_INT(m.total_size, 16);
	tensor_manifest_free(&m);
	st_metadata_free(&meta);
	CHECK_EQ_INT(safetensors_parse_header((const uint8_t *)json,
	                                      strlen(json), 12, &m, NULL, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_BOUNDS);
	CHECK_STR_CONTAINS(err.message, "12-byte data buffer");
	CHECK_EQ_INT(safetensors_parse_header((const uint8_t *)json,
	                                      strlen(json), 20, &m, NULL, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_ST_FILE);
}

/* Names of leftover temporary files ("*.tmp.*") in dir. */
static int
count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".tmp.") != NULL;
	closedir(d);
	return n;
}

static void
test_atomic_write(void)
{
	struct tensor_manifest m;
	void *region;
	struct ipc_error err;
	make_model(&m, &region);
	const char *dir = tmp_path("ckpt");
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	char path[600];
	snprintf(path, sizeof path, "%s/round-0001.safetensors", dir);
	spit(path, "old contents", 12);

	/* the write cannot complete: the file-size limit stops it midway */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = {200, 200};
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		struct ipc_error cerr;
		int rc = safetensors_write(path, &m, region, NULL, &cerr);
		_exit(rc == -1 && cerr.code == IPC_E_IO ? 0 : 1);
	}
	int status = -1;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	size_t len = 0;
	unsigned char *old = slurp(path, &len);
	CHECK(old != NULL && len == 12 && memcmp(old, "old contents", 12) == 0);
	free(old);
	CHECK_EQ_INT(count_tmp_files(dir), 0);

	/* the target is a directory: the rename fails, nothing is left */
	char sub[700];
	snprintf(sub, sizeof sub, "%s/subdir", dir);
	CHECK_EQ_INT(mkdir(sub, 0700), 0);
	CHECK_EQ_INT(safetensors_write(sub, &m, region, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "subdir");
	struct stat st;
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ_INT(count_tmp_files(dir), 0);

	/* the directory does not exist */
	char missing[700];
	snprintf(missing, sizeof missing, "%s/nodir/x.safetensors", dir);
	CHECK_EQ_INT(safetensors_write(missing, &m, region, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);

	/* a read-only directory (root ignores permissions) */
	if (geteuid() != 0) {
		CHECK_EQ_INT(chmod(dir, 0500), 0);
		CHECK_EQ_INT(safetensors_write(path, &m, region, NULL, &err),
		             -1);
		CHECK_EQ_INT(err.code, IPC_E_IO);
		old = slurp(path, &len);
		CHECK(old != NULL && len == 12);
		free(old);
		chmod(dir, 0700);
	}

	/* and the successful write replaces it */
	CHECK_EQ_INT(safetensors_write(path, &m, region, NULL, &err), 0);
	CHECK_EQ_INT(count_tmp_files(dir), 0);
	free(region);
	tensor_manifest_free(&m);
}

static void
test_python_reader(void)
{
	if (system("python3 -c 'import json, struct' >/dev/null 2>&1") != 0)
		harness_skip("python3 is not available");
	struct tensor_manifest m;
	void *region;
	struct ipc_error err;
	struct st_metadata meta = {0};
	make_model(&m, &region);
	st_metadata_set(&meta, "format", "pt");
	const char *path = tmp_path("interop.safetensors");
	CHECK_EQ_INT(safetensors_write(path, &m, region, &meta, &err), 0);

	/* what an independent reader must print, values as "%.9g" */
	char want[2048];
	size_t used = (size_t)snprintf(want, sizeof want, "meta format=pt\n");
	const unsigned char *r = region;
	for (size_t i = 0; i < m.count; i++) {
		const struct tensor_desc *t = &m.tensors[i];
		char dims[64] = "";
		for (int d = 0; d < t->rank; d++)
			snprintf(dims + strlen(dims),
			         sizeof dims - strlen(dims), "%s%llu",
			         d ? "," : "", (unsigned long long)t->shape[d]);
		used += (size_t)snprintf(want + used, sizeof want - used,
		                         "tensor %s %s [%s]", t->name,
		                         tensor_dtype_name(t->dtype), dims);
		uint64_t n = t->nbytes / tensor_dtype_size(t->dtype);
		for (uint64_t k = 0; k < n && k < 4; k++) {
			const unsigned char *e =
			    r + t->offset + k * tensor_dtype_size(t->dtype);
			float f;
			int64_t q;
			if (t->dtype == DTYPE_F32) {
				memcpy(&f, e, 4);
			} else if (t->dtype == DTYPE_F16) {
				safetensors_f16_to_f32((const uint16_t *)e, &f,
				                       1);
			} else {
				memcpy(&q, e, 8);
				used += (size_t)snprintf(want + used,
				                         sizeof want - used,
				                         " %lld", (long long)q);
				continue;
			}
			used +=
			    (size_t)snprintf(want + used, sizeof want - used,
			                     " %.9g", (double)f);
		}
		used += (size_t)snprintf(want + used, sizeof want - used, "\n");
	}

	char script[1024], cmd[2048];
	snprintf(script, sizeof script, "%s", __FILE__);
	char *slash = strrchr(script, '/');
	snprintf(slash ? slash + 1 : script,
	         sizeof script - (size_t)(slash ? slash + 1 - script : 0),
	         "safetensors_check.py");
	snprintf(cmd, sizeof cmd, "python3 '%s' '%s' 2>&1", script, path);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	char got[2048] = "";
	size_t n = p ? fread(got, 1, sizeof got - 1, p) : 0;
	got[n] = '\0';
	int status = p ? pclose(p) : -1;
	CHECK_EQ_INT(status, 0);
	if (strcmp(got, want) != 0)
		harness_fail(__FILE__, __LINE__,
		             "python reader printed:\n%s\nexpected:\n%s", got,
		             want);
	CHECK_STR_CONTAINS(got, "tensor fc1.weight F32 [3,5] -1 -0.75 -0.5");
	CHECK_STR_CONTAINS(got, "tensor emb F16 [2,2] 1 -2 65504 0.333251953");
	st_metadata_free(&meta);
	free(region);
	tensor_manifest_free(&m);
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_write_from_fd);
	RUN(test_empty_file);
	RUN(test_exact_layout);
	RUN(test_half_conversions);
	RUN(test_read_bf16_file);
	RUN(test_corrupt_files);
	RUN(test_parse_header_bounds);
	RUN(test_atomic_write);
	RUN(test_python_reader);
	return harness_finish();
}
