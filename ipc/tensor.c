/* tensor.c: tensor manifests: building, validating and comparing the table
 * of named tensors that describes a flat region, and the finite check run
 * over every update before it is aggregated. */
#include "tensor.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elements checked per block by the finite scan before looking closer. */
#define FINITE_BLOCK 4096

static const struct {
	const char *name;
	size_t size;
} dtype_info[DTYPE_COUNT] = {
    [DTYPE_F32] = {"F32", 4},   [DTYPE_F16] = {"F16", 2},
    [DTYPE_BF16] = {"BF16", 2}, [DTYPE_F64] = {"F64", 8},
    [DTYPE_I64] = {"I64", 8},   [DTYPE_I32] = {"I32", 4},
    [DTYPE_U8] = {"U8", 1},
};

/* Size in bytes of one element (0 for an invalid dtype). */
size_t
tensor_dtype_size(enum tensor_dtype dtype)
{
	if ((unsigned)dtype >= DTYPE_COUNT)
		return 0;
	return dtype_info[dtype].size;
}

/* Safetensors name of a dtype ("?" for an invalid one). */
const char *
tensor_dtype_name(enum tensor_dtype dtype)
{
	if ((unsigned)dtype >= DTYPE_COUNT)
		return "?";
	return dtype_info[dtype].name;
}

/* Parse a safetensors dtype name. */
int
tensor_dtype_parse(const char *name, enum tensor_dtype *out,
                   struct ipc_error *err)
{
	if (name != NULL) {
		for (int i = 0; i < DTYPE_COUNT; i++) {
			if (strcmp(name, dtype_info[i].name) == 0) {
				*out = (enum tensor_dtype)i;
				return 0;
			}
		}
	}
	return ipc_error_set(err, IPC_E_DTYPE,
	                     "unknown dtype '%s' (supported: F32, F16, BF16, "
	                     "F64, I64, I32, U8)",
	                     name ? name : "(null)");
}

/* Element count of a shape, overflow-checked. */
int
tensor_numel(const uint64_t *shape, int rank, uint64_t *out,
             struct ipc_error *err)
{
	if (rank < 0 || rank > TENSOR_MAX_RANK)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "rank %d is outside 0..%d", rank,
		                     TENSOR_MAX_RANK);
	uint64_t n = 1;
	for (int i = 0; i < rank; i++) {
		if (__builtin_mul_overflow(n, shape[i], &n))
			return ipc_error_set(err, IPC_E_OVERFLOW,
			                     "element count overflows 64 bits "
			                     "at dimension %d (%" PRIu64 ")",
			                     i, shape[i]);
	}
	*out = n;
	return 0;
}

/* Format a shape as "[2, 3]" into buf. */
const char *
tensor_shape_text(char *buf, size_t len, const uint64_t *shape, int rank)
{
	size_t used = 0;
	buf[0] = '\0';
	used += (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < rank && i < TENSOR_MAX_RANK && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%" PRIu64,
		                         i ? ", " : "", shape[i]);
	if (used < len)
		snprintf(buf + used, len - used, "]");
	return buf;
}

/* Byte size of dtype x shape, with every rule a tensor must follow. */
static int
tensor_bytes(const char *name, enum tensor_dtype dtype, int rank,
             const uint64_t *shape, uint64_t *nbytes, struct ipc_error *err)
{
	size_t esize = tensor_dtype_size(dtype);
	if (esize == 0)
		return ipc_error_set(err, IPC_E_DTYPE,
		                     "tensor '%s': invalid dtype %d", name,
		                     (int)dtype);
	if (rank < 0 || rank > TENSOR_MAX_RANK)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "tensor '%s': rank %d is outside 0..%d",
		                     name, rank, TENSOR_MAX_RANK);
	for (int i = 0; i < rank; i++) {
		if (shape[i] == 0)
			return ipc_error_set(err, IPC_E_SHAPE,
			                     "tensor '%s': dimension %d is 0 "
			                     "(empty tensors are not allowed)",
			                     name, i);
	}
	uint64_t numel = 0;
	if (tensor_numel(shape, rank, &numel, err) != 0 ||
	    __builtin_mul_overflow(numel, (uint64_t)esize, nbytes)) {
		char sb[256];
		return ipc_error_set(
		    err, IPC_E_OVERFLOW,
		    "tensor '%s': shape %s of %s overflows "
		    "64-bit byte sizes",
		    name, tensor_shape_text(sb, sizeof sb, shape, rank),
		    tensor_dtype_name(dtype));
	}
	return 0;
}

/* Empty manifest. */
void
tensor_manifest_init(struct tensor_manifest *m)
{
	memset(m, 0, sizeof *m);
}

/* Release the tensor table and reset to empty. */
void
tensor_manifest_free(struct tensor_manifest *m)
{
	free(m->tensors);
	tensor_manifest_init(m);
}

/* Deep copy of src into dst (dst's old contents are not freed). */
void
tensor_manifest_copy(struct tensor_manifest *dst,
                     const struct tensor_manifest *src)
{
	tensor_manifest_init(dst);
	dst->count = src->count;
	dst->total_size = src->total_size;
	if (src->count > 0) {
		dst->tensors =
		    xreallocarray(NULL, src->count, sizeof *dst->tensors);
		memcpy(dst->tensors, src->tensors,
		       src->count * sizeof *dst->tensors);
	}
}

/* Append a tensor at the next aligned offset. */
int
tensor_manifest_add(struct tensor_manifest *m, const char *name,
                    enum tensor_dtype dtype, int rank, const uint64_t *shape,
                    struct ipc_error *err)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor name is empty");
	if (len >= TENSOR_MAX_NAME)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor name '%.40s...' is %zu bytes "
		                     "(limit %d)",
		                     name, len, TENSOR_MAX_NAME - 1);
	if (m->count >= TENSOR_MAX_COUNT)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor '%s': a manifest holds at most "
		                     "%d tensors",
		                     name, TENSOR_MAX_COUNT);
	if (tensor_manifest_find(m, name) != NULL)
		return ipc_error_set(err, IPC_E_DUPLICATE,
		                     "tensor '%s' is already in the manifest",
		                     name);
	uint64_t nbytes, end, total;
	if (tensor_bytes(name, dtype, rank, shape, &nbytes, err) != 0)
		return -1;
	uint64_t offset = m->total_size;
	if (__builtin_add_overflow(offset, nbytes, &end) ||
	    __builtin_add_overflow(end, (uint64_t)TENSOR_ALIGN - 1, &total))
		return ipc_error_set(err, IPC_E_OVERFLOW,
		                     "tensor '%s': region size overflows 64 "
		                     "bits",
		                     name);
	total &= ~(uint64_t)(TENSOR_ALIGN - 1);

	m->tensors =
	    xreallocarray(m->tensors, m->count + 1, sizeof *m->tensors);
	struct tensor_desc *t = &m->tensors[m->count];
	memset(t, 0, sizeof *t);
	memcpy(t->name, name, len + 1);
	t->dtype = dtype;
	t->rank = rank;
	for (int i = 0; i < rank; i++)
		t->shape[i] = shape[i];
	t->offset = offset;
	t->nbytes = nbytes;
	m->count++;
	m->total_size = total;
	return 0;
}

/* Find a tensor by name. */
const struct tensor_desc *
tensor_manifest_find(const struct tensor_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->count; i++) {
		if (strncmp(m->tensors[i].name, name, TENSOR_MAX_NAME) == 0)
			return &m->tensors[i];
	}
	return NULL;
}

struct span {
	uint64_t begin, end;
	size_t index;
};

/* qsort order of spans: by start offset. */
static int
span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->index < y->index ? -1 : (x->index > y->index);
}

/* qsort order of tensor pointers: by name. */
static int
name_cmp(const void *a, const void *b)
{
	const struct tensor_desc *const *x = a, *const *y = b;
	return strncmp((*x)->name, (*y)->name, TENSOR_MAX_NAME);
}

/* Check one tensor's own fields against a region of region_size bytes. */
static int
validate_one(const struct tensor_desc *t, size_t i, uint64_t region_size,
             struct ipc_error *err)
{
	if (memchr(t->name, '\0', TENSOR_MAX_NAME) == NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor %zu: name is not NUL-terminated "
		                     "within %d bytes",
		                     i, TENSOR_MAX_NAME);
	if (t->name[0] == '\0')
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor %zu: name is empty", i);
	uint64_t nbytes, end;
	if (tensor_bytes(t->name, t->dtype, t->rank, t->shape, &nbytes, err) !=
	    0)
		return -1;
	if (nbytes != t->nbytes) {
		char sb[256];
		return ipc_error_set(
		    err, IPC_E_SHAPE,
		    "tensor '%s': nbytes is %" PRIu64 " but shape %s of %s "
		    "needs %" PRIu64,
		    t->name, t->nbytes,
		    tensor_shape_text(sb, sizeof sb, t->shape, t->rank),
		    tensor_dtype_name(t->dtype), nbytes);
	}
	if (t->offset % TENSOR_ALIGN != 0)
		return ipc_error_set(err, IPC_E_ALIGN,
		                     "tensor '%s': offset %" PRIu64
		                     " is not a multiple of %d",
		                     t->name, t->offset, TENSOR_ALIGN);
	if (__builtin_add_overflow(t->offset, t->nbytes, &end))
		return ipc_error_set(err, IPC_E_OVERFLOW,
		                     "tensor '%s': offset %" PRIu64
		                     " + nbytes %" PRIu64 " overflows 64 bits",
		                     t->name, t->offset, t->nbytes);
	if (end > region_size)
		return ipc_error_set(err, IPC_E_BOUNDS,
		                     "tensor '%s': bytes [%" PRIu64 ", %" PRIu64
		                     ") lie outside the %" PRIu64
		                     "-byte region",
		                     t->name, t->offset, end, region_size);
	return 0;
}

/* Reject duplicate names: sort pointers by name, compare neighbours. */
static int
validate_unique(const struct tensor_manifest *m, struct ipc_error *err)
{
	if (m->count < 2)
		return 0;
	const struct tensor_desc **by_name =
	    xreallocarray(NULL, m->count, sizeof *by_name);
	for (size_t i = 0; i < m->count; i++)
		by_name[i] = &m->tensors[i];
	qsort(by_name, m->count, sizeof *by_name, name_cmp);
	int rc = 0;
	for (size_t i = 1; i < m->count; i++) {
		if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
			rc = ipc_error_set(err, IPC_E_DUPLICATE,
			                   "tensor name '%s' appears twice",
			                   by_name[i]->name);
			break;
		}
	}
	free(by_name);
	return rc;
}

/* Reject overlapping byte ranges: sort spans by offset, compare neighbours. */
static int
validate_disjoint(const struct tensor_manifest *m, struct ipc_error *err)
{
	if (m->count < 2)
		return 0;
	struct span *spans = xreallocarray(NULL, m->count, sizeof *spans);
	for (size_t i = 0; i < m->count; i++) {
		spans[i].begin = m->tensors[i].offset;
		spans[i].end = m->tensors[i].offset + m->tensors[i].nbytes;
		spans[i].index = i;
	}
	qsort(spans, m->count, sizeof *spans, span_cmp);
	int rc = 0;
	for (size_t i = 1; i < m->count; i++) {
		const struct span *a = &spans[i - 1], *b = &spans[i];
		if (b->begin < a->end) {
			rc = ipc_error_set(
			    err, IPC_E_OVERLAP,
			    "tensors '%s' [%" PRIu64 ", %" PRIu64
			    ") and '%s' [%" PRIu64 ", %" PRIu64 ") overlap",
			    m->tensors[a->index].name, a->begin, a->end,
			    m->tensors[b->index].name, b->begin, b->end);
			break;
		}
	}
	free(spans);
	return rc;
}

/* Check a peer's manifest against a region of region_size bytes. */
int
tensor_manifest_validate(const struct tensor_manifest *m, uint64_t region_size,
                         struct ipc_error *err)
{
	if (m->count > TENSOR_MAX_COUNT)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "manifest lists %zu tensors (limit %d)",
		                     m->count, TENSOR_MAX_COUNT);
	if (m->count > 0 && m->tensors == NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "manifest lists %zu tensors but has no "
		                     "table",
		                     m->count);
	for (size_t i = 0; i < m->count; i++) {
		if (validate_one(&m->tensors[i], i, region_size, err) != 0)
			return -1;
	}
	if (validate_unique(m, err) != 0)
		return -1;
	return validate_disjoint(m, err);
}

/* Same names, dtypes, shapes and offsets in the same order. */
int
tensor_manifest_equal(const struct tensor_manifest *a,
                      const struct tensor_manifest *b, struct ipc_error *err)
{
	if (a->count != b->count)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "%zu tensors where %zu were expected",
		                     a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		const struct tensor_desc *x = &a->tensors[i],
		                         *y = &b->tensors[i];
		char sa[256], sb[256];
		if (strncmp(x->name, y->name, TENSOR_MAX_NAME) != 0)
			return ipc_error_set(
			    err, IPC_E_MISMATCH,
			    "tensor %zu is '%.*s' where '%.*s' "
			    "was expected",
			    i, TENSOR_MAX_NAME, x->name, TENSOR_MAX_NAME,
			    y->name);
		if (x->dtype != y->dtype)
			return ipc_error_set(err, IPC_E_MISMATCH,
			                     "tensor '%s' is %s where %s was "
			                     "expected",
			                     y->name,
			                     tensor_dtype_name(x->dtype),
			                     tensor_dtype_name(y->dtype));
		int same_shape = x->rank == y->rank;
		for (int d = 0;
		     same_shape && d < x->rank && d < TENSOR_MAX_RANK; d++)
			same_shape = x->shape[d] == y->shape[d];
		if (!same_shape)
			return ipc_error_set(
			    err, IPC_E_MISMATCH,
			    "tensor '%s' has shape %s where %s was "
			    "expected",
			    y->name,
			    tensor_shape_text(sa, sizeof sa, x->shape, x->rank),
			    tensor_shape_text(sb, sizeof sb, y->shape,
			                      y->rank));
		if (x->offset != y->offset || x->nbytes != y->nbytes)
			return ipc_error_set(err, IPC_E_MISMATCH,
			                     "tensor '%s' lies at [%" PRIu64
			                     ", +%" PRIu64 ") where [%" PRIu64
			                     ", +%" PRIu64 ") was expected",
			                     y->name, x->offset, x->nbytes,
			                     y->offset, y->nbytes);
	}
	return 0;
}

/* Total number of elements over all tensors. */
uint64_t
tensor_manifest_numel(const struct tensor_manifest *m)
{
	uint64_t total = 0;
	for (size_t i = 0; i < m->count; i++) {
		size_t esize = tensor_dtype_size(m->tensors[i].dtype);
		if (esize != 0)
			total += m->tensors[i].nbytes / esize;
	}
	return total;
}

/* Nonzero if any of n F32 words has an all-ones exponent (NaN or Inf).
 * Branch-free over fixed 64-word chunks, so the compiler vectorises it even
 * at -O2's cheap cost model. */
static int
f32_block_bad(const unsigned char *p, size_t n)
{
	uint32_t bad = 0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		for (size_t k = 0; k < 64; k++) {
			uint32_t w;
			memcpy(&w, p + (i + k) * 4, 4);
			bad |= (w & 0x7f800000u) == 0x7f800000u;
		}
	}
	for (; i < n; i++) {
		uint32_t w;
		memcpy(&w, p + i * 4, 4);
		bad |= (w & 0x7f800000u) == 0x7f800000u;
	}
	return bad != 0;
}

/* Same for n F64 words. */
static int
f64_block_bad(const unsigned char *p, size_t n)
{
	uint64_t bad = 0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		for (size_t k = 0; k < 32; k++) {
			uint64_t w;
			memcpy(&w, p + (i + k) * 8, 8);
			bad |= (w & 0x7ff0000000000000u) == 0x7ff0000000000000u;
		}
	}
	for (; i < n; i++) {
		uint64_t w;
		memcpy(&w, p + i * 8, 8);
		bad |= (w & 0x7ff0000000000000u) == 0x7ff0000000000000u;
	}
	return bad != 0;
}

/* Index of the first non-finite element in a block known to hold one. */
static size_t
first_bad(const unsigned char *p, size_t n, size_t esize)
{
	for (size_t i = 0; i < n; i++) {
		if (esize == 4 ? f32_block_bad(p + i * 4, 1)
		               : f64_block_bad(p + i * 8, 1))
			return i;
	}
	return n;
}

/* Element i of F32 (esize 4) or F64 values at p, as a double. */
static double
element_value(const unsigned char *p, size_t i, size_t esize)
{
	if (esize == 8) {
		double v;
		memcpy(&v, p + i * 8, 8);
		return v;
	}
	float f;
	memcpy(&f, p + i * 4, 4);
	return f;
}

/* Check one F32/F64 tensor's values (data points at its first byte). */
int
tensor_check_finite(const struct tensor_desc *d, const void *data,
                    struct ipc_error *err)
{
	if (d->dtype != DTYPE_F32 && d->dtype != DTYPE_F64)
		return 0;
	size_t esize = tensor_dtype_size(d->dtype);
	const unsigned char *p = data;
	size_t n = (size_t)(d->nbytes / esize);
	for (size_t i = 0; i < n; i += FINITE_BLOCK) {
		size_t len = n - i < FINITE_BLOCK ? n - i : FINITE_BLOCK;
		const unsigned char *b = p + i * esize;
		int bad =
		    esize == 4 ? f32_block_bad(b, len) : f64_block_bad(b, len);
		if (!bad)
			continue;
		size_t at = i + first_bad(b, len, esize);
		double v = element_value(p, at, esize);
		return ipc_error_set(err, IPC_E_NONFINITE,
		                     "tensor '%s': element %zu is %s", d->name,
		                     at, isnan(v) ? "NaN" : "Inf");
	}
	return 0;
}

/* Check every F32/F64 tensor in region is finite. */
int
tensor_region_check_finite(const struct tensor_manifest *m, const void *region,
                           struct ipc_error *err)
{
	for (size_t t = 0; t < m->count; t++) {
		const struct tensor_desc *d = &m->tensors[t];
		if (tensor_check_finite(
		        d, (const unsigned char *)region + d->offset, err) != 0)
			return -1;
	}
	return 0;
}

int
tensor_region_check_bounded(const struct tensor_manifest *m, const void *region,
                            double bound, struct ipc_error *err)
{
	for (size_t t = 0; t < m->count; t++) {
		const struct tensor_desc *d = &m->tensors[t];
		if (d->dtype != DTYPE_F32 && d->dtype != DTYPE_F64)
			continue;
		const unsigned char *p =
		    (const unsigned char *)region + d->offset;
		size_t esize = tensor_dtype_size(d->dtype);
		for (size_t i = 0; i < d->nbytes / esize; i++) {
			double v = element_value(p, i, esize);
			if (!isfinite(v))
				return ipc_error_set(
				    err, IPC_E_NONFINITE,
				    "tensor '%s': element %zu is %s", d->name,
				    i, isnan(v) ? "NaN" : "Inf");
			if (fabs(v) > bound)
				return ipc_error_set(
				    err, IPC_E_BAD_VALUE,
				    "tensor '%s': element %zu is "
				    "%g, beyond %g",
				    d->name, i, v, bound);
		}
	}
	return 0;
}
