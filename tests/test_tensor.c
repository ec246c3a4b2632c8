/* test_tensor.c: manifests place tensors aligned, and validation rejects
 * every malformed table a peer could send, naming the tensor. */
#include "harness.h"
#include "tensor.h"

#include <math.h>
#include <stdlib.h>

/* A manifest of three small tensors: fc1.weight [3,5] F32, fc1.bias [3] F32,
 * step [] I64. */
static void
make_small(struct tensor_manifest *m)
{
	struct ipc_error err;
	uint64_t w[] = {3, 5}, b[] = {3};
	tensor_manifest_init(m);
	CHECK_EQ_INT(
	    tensor_manifest_add(m, "fc1.weight", DTYPE_F32, 2, w, &err), 0);
	CHECK_EQ_INT(tensor_manifest_add(m, "fc1.bias", DTYPE_F32, 1, b, &err),
	             0);
	CHECK_EQ_INT(tensor_manifest_add(m, "step", DTYPE_I64, 0, NULL, &err),
	             0);
}

static void
test_dtypes(void)
{
	struct ipc_error err;
	enum tensor_dtype d;
	CHECK_EQ_INT(tensor_dtype_size(DTYPE_F32), 4);
	CHECK_EQ_INT(tensor_dtype_size(DTYPE_BF16), 2);
	CHECK_EQ_INT(tensor_dtype_size(DTYPE_F64), 8);
	CHECK_EQ_INT(tensor_dtype_size(DTYPE_U8), 1);
	CHECK_EQ_INT(tensor_dtype_size(DTYPE_COUNT), 0);
	for (int i = 0; i < DTYPE_COUNT; i++) {
		CHECK_EQ_INT(tensor_dtype_parse(tensor_dtype_name(i), &d, &err),
		             0);
		CHECK_EQ_INT(d, i);
	}
	CHECK_EQ_INT(tensor_dtype_parse("F8_E4M3", &d, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_DTYPE);
	CHECK_STR_CONTAINS(err.message, "F8_E4M3");
}

static void
test_add_places_aligned(void)
{
	struct tensor_manifest m;
	make_small(&m);
	CHECK_EQ_INT(m.count, 3);
	CHECK_EQ_INT(m.tensors[0].offset, 0);
	CHECK_EQ_INT(m.tensors[0].nbytes, 60);
	CHECK_EQ_INT(m.tensors[1].offset, 64);
	CHECK_EQ_INT(m.tensors[1].nbytes, 12);
	CHECK_EQ_INT(m.tensors[2].offset, 128);
	CHECK_EQ_INT(m.tensors[2].nbytes, 8);
	CHECK_EQ_INT(m.tensors[2].rank, 0);
	CHECK_EQ_INT(m.total_size, 192);
	CHECK_EQ_INT(tensor_manifest_numel(&m), 15 + 3 + 1);
	const struct tensor_desc *t = tensor_manifest_find(&m, "fc1.bias");
	CHECK(t == &m.tensors[1]);
	CHECK(tensor_manifest_find(&m, "fc2.bias") == NULL);
	struct ipc_error err;
	CHECK_EQ_INT(tensor_manifest_validate(&m, m.total_size, &err), 0);
	tensor_manifest_free(&m);
	CHECK_EQ_INT(m.count, 0);
	CHECK(m.tensors == NULL);
}

static void
test_add_rejects(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	make_small(&m);
	uint64_t s[] = {4, 0}, big[] = {1ull << 40, 1ull << 40};
	CHECK_EQ_INT(tensor_manifest_add(&m, "fc1.bias", DTYPE_F32, 1, s, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_DUPLICATE);
	CHECK_EQ_INT(tensor_manifest_add(&m, "", DTYPE_F32, 1, s, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	char longname[TENSOR_MAX_NAME + 1];
	memset(longname, 'a', TENSOR_MAX_NAME);
	longname[TENSOR_MAX_NAME] = '\0';
	CHECK_EQ_INT(tensor_manifest_add(&m, longname, DTYPE_F32, 1, s, &err),
	             -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_EQ_INT(tensor_manifest_add(&m, "z", DTYPE_F32, 2, s, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHAPE);
	CHECK_STR_CONTAINS(err.message, "'z'");
	CHECK_EQ_INT(tensor_manifest_add(&m, "r", DTYPE_F32, 9, s, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SHAPE);
	CHECK_EQ_INT(tensor_manifest_add(&m, "d", DTYPE_COUNT, 1, s, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_DTYPE);
	CHECK_EQ_INT(tensor_manifest_add(&m, "o", DTYPE_F32, 2, big, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_OVERFLOW);
	CHECK_EQ_INT(m.count, 3);
	tensor_manifest_free(&m);
}

/* Validate a copy of the small manifest after edit() changed it; expect code
 * and a message containing needle. */
static void
expect_invalid(void (*edit)(struct tensor_manifest *), uint64_t region,
               enum ipc_code code, const char *needle)
{
	struct tensor_manifest m;
	struct ipc_error err = {0};
	make_small(&m);
	edit(&m);
	CHECK_EQ_INT(tensor_manifest_validate(&m, region, &err), -1);
	CHECK_EQ_INT(err.code, code);
	CHECK_STR_CONTAINS(err.message, needle);
	tensor_manifest_free(&m);
}

static void
edit_none(struct tensor_manifest *m)
{
	(void)m;
}
static void
edit_overlap(struct tensor_manifest *m)
{
	m->tensors[2].offset = 0;
}
static void
edit_unaligned(struct tensor_manifest *m)
{
	m->tensors[1].offset = 68;
}
static void
edit_duplicate(struct tensor_manifest *m)
{
	strcpy(m->tensors[2].name, "fc1.weight");
}
static void
edit_nbytes(struct tensor_manifest *m)
{
	m->tensors[1].nbytes = 16;
}
static void
edit_overflow(struct tensor_manifest *m)
{
	m->tensors[0].rank = 3;
	m->tensors[0].shape[0] = 1ull << 32;
	m->tensors[0].shape[1] = 1ull << 16;
	m->tensors[0].shape[2] = 1ull << 16;
}
static void
edit_bytes_overflow(struct tensor_manifest *m)
{
	/* numel fits in 64 bits, numel * 4 does not */
	m->tensors[0].rank = 1;
	m->tensors[0].shape[0] = 1ull << 63;
}
static void
edit_end_overflow(struct tensor_manifest *m)
{
	m->tensors[0].offset = UINT64_MAX - 63;
	m->tensors[0].shape[1] = 50;
	m->tensors[0].nbytes = 600;
}
static void
edit_unterminated(struct tensor_manifest *m)
{
	memset(m->tensors[1].name, 'x', TENSOR_MAX_NAME);
}
static void
edit_empty_name(struct tensor_manifest *m)
{
	m->tensors[1].name[0] = '\0';
}
static void
edit_dtype(struct tensor_manifest *m)
{
	m->tensors[1].dtype = (enum tensor_dtype)42;
}
static void
edit_rank(struct tensor_manifest *m)
{
	m->tensors[1].rank = -1;
}
static void
edit_zero_dim(struct tensor_manifest *m)
{
	m->tensors[0].shape[1] = 0;
}

static void
test_validate_rejects(void)
{
	expect_invalid(edit_none, 135, IPC_E_BOUNDS, "'step'");
	expect_invalid(edit_none, 135, IPC_E_BOUNDS, "136");
	expect_invalid(edit_overlap, 192, IPC_E_OVERLAP, "'fc1.weight'");
	expect_invalid(edit_overlap, 192, IPC_E_OVERLAP, "'step' [0, 8)");
	expect_invalid(edit_unaligned, 192, IPC_E_ALIGN, "68");
	expect_invalid(edit_duplicate, 192, IPC_E_DUPLICATE, "'fc1.weight'");
	expect_invalid(edit_nbytes, 192, IPC_E_SHAPE, "needs 12");
	expect_invalid(edit_overflow, 192, IPC_E_OVERFLOW, "'fc1.weight'");
	expect_invalid(edit_bytes_overflow, 192, IPC_E_OVERFLOW, "overflows");
	expect_invalid(edit_end_overflow, UINT64_MAX, IPC_E_OVERFLOW,
	               "'fc1.weight'");
	expect_invalid(edit_unterminated, 192, IPC_E_BAD_VALUE,
	               "NUL-terminated");
	expect_invalid(edit_empty_name, 192, IPC_E_BAD_VALUE, "tensor 1");
	expect_invalid(edit_dtype, 192, IPC_E_DTYPE, "'fc1.bias'");
	expect_invalid(edit_rank, 192, IPC_E_SHAPE, "rank -1");
	expect_invalid(edit_zero_dim, 192, IPC_E_SHAPE, "dimension 1 is 0");

	struct tensor_manifest m;
	struct ipc_error err;
	tensor_manifest_init(&m);
	m.count = TENSOR_MAX_COUNT + 1;
	m.tensors = NULL;
	CHECK_EQ_INT(tensor_manifest_validate(&m, 0, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "65537");
}

/* Overlap detection must not depend on the order tensors are listed. */
static void
test_validate_overlap_unsorted(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	tensor_manifest_init(&m);
	uint64_t s[] = {16};
	for (int i = 0; i < 100; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%d", i);
		CHECK_EQ_INT(
		    tensor_manifest_add(&m, name, DTYPE_F32, 1, s, &err), 0);
	}
	/* reverse the table: still valid */
	for (size_t i = 0; i < m.count / 2; i++) {
		struct tensor_desc tmp = m.tensors[i];
		m.tensors[i] = m.tensors[m.count - 1 - i];
		m.tensors[m.count - 1 - i] = tmp;
	}
	CHECK_EQ_INT(tensor_manifest_validate(&m, m.total_size, &err), 0);
	/* t10 now starts inside t9 */
	m.tensors[99 - 10].offset = 9 * 64;
	m.tensors[99 - 10].shape[0] = 32;
	m.tensors[99 - 10].nbytes = 128;
	m.tensors[99 - 9].offset = 8 * 64;
	m.tensors[99 - 9].shape[0] = 32;
	m.tensors[99 - 9].nbytes = 128;
	CHECK_EQ_INT(tensor_manifest_validate(&m, m.total_size, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_OVERLAP);
	tensor_manifest_free(&m);
}

static void
test_equal_and_copy(void)
{
	struct tensor_manifest a, b;
	struct ipc_error err;
	make_small(&a);
	tensor_manifest_copy(&b, &a);
	CHECK(b.tensors != a.tensors);
	CHECK_EQ_INT(tensor_manifest_equal(&a, &b, &err), 0);
	b.tensors[1].shape[0] = 4;
	CHECK_EQ_INT(tensor_manifest_equal(&b, &a, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_MISMATCH);
	CHECK_STR_CONTAINS(err.message, "'fc1.bias' has shape [4] where [3]");
	b.tensors[1].shape[0] = 3;
	b.tensors[2].dtype = DTYPE_I32;
	CHECK_EQ_INT(tensor_manifest_equal(&b, &a, &err), -1);
	CHECK_STR_CONTAINS(err.message, "'step' is I32 where I64");
	strcpy(b.tensors[0].name, "fc0.weight");
	CHECK_EQ_INT(tensor_manifest_equal(&b, &a, &err), -1);
	CHECK_STR_CONTAINS(err.message, "'fc0.weight' where 'fc1.weight'");
	b.count = 2;
	CHECK_EQ_INT(tensor_manifest_equal(&b, &a, &err), -1);
	CHECK_STR_CONTAINS(err.message, "2 tensors where 3");
	b.count = 3;
	tensor_manifest_free(&a);
	tensor_manifest_free(&b);
}

static void
test_check_finite(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	uint64_t s1[] = {10000}, s2[] = {7};
	tensor_manifest_init(&m);
	CHECK_EQ_INT(tensor_manifest_add(&m, "w", DTYPE_F32, 1, s1, &err), 0);
	CHECK_EQ_INT(tensor_manifest_add(&m, "d", DTYPE_F64, 1, s2, &err), 0);
	CHECK_EQ_INT(tensor_manifest_add(&m, "n", DTYPE_I32, 1, s2, &err), 0);
	unsigned char *region = calloc(1, m.total_size);
	float *w = (float *)(region + m.tensors[0].offset);
	double *d = (double *)(region + m.tensors[1].offset);
	int32_t *n = (int32_t *)(region + m.tensors[2].offset);
	for (int i = 0; i < 10000; i++)
		w[i] = (float)i * 1e30f;
	for (int i = 0; i < 7; i++) {
		d[i] = -1e300 * i;
		n[i] = -1; /* 0xffffffff: would be NaN as F32, ignored as I32 */
	}
	CHECK_EQ_INT(tensor_region_check_finite(&m, region, &err), 0);
	w[5000] = NAN;
	w[9999] = INFINITY;
	CHECK_EQ_INT(tensor_region_check_finite(&m, region, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_NONFINITE);
	CHECK_STR_CONTAINS(err.message, "'w': element 5000 is NaN");
	w[5000] = 0;
	CHECK_EQ_INT(tensor_region_check_finite(&m, region, &err), -1);
	CHECK_STR_CONTAINS(err.message, "'w': element 9999 is Inf");
	w[9999] = 0;
	d[6] = -INFINITY;
	CHECK_EQ_INT(tensor_region_check_finite(&m, region, &err), -1);
	CHECK_STR_CONTAINS(err.message, "'d': element 6 is Inf");
	d[6] = 0;
	CHECK_EQ_INT(tensor_region_check_finite(&m, region, &err), 0);
	/* Bounded: finite and within the bound; I32 is not checked. */
	CHECK_EQ_INT(tensor_region_check_bounded(&m, region, 1e304, &err), 0);
	CHECK_EQ_INT(tensor_region_check_bounded(&m, region, 1e33, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "'w': element 1001 is 1.001e+33");
	w[3] = NAN;
	CHECK_EQ_INT(tensor_region_check_bounded(&m, region, 1e304, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_NONFINITE);
	CHECK_STR_CONTAINS(err.message, "'w': element 3 is NaN");
	free(region);
	tensor_manifest_free(&m);
}

int
main(void)
{
	RUN(test_dtypes);
	RUN(test_add_places_aligned);
	RUN(test_add_rejects);
	RUN(test_validate_rejects);
	RUN(test_validate_overlap_unsorted);
	RUN(test_equal_and_copy);
	RUN(test_check_finite);
	return harness_finish();
}
