/* safetensors.c: the safetensors checkpoint format: a bounded, validated
 * header parser, whole-file and in-place readers that pread straight into
 * the destination region, an atomic writer, and F16/BF16 widening. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"

#define METADATA_KEY "__metadata__"

/* Append key = value without looking for an existing key. */
static void
metadata_append(struct st_metadata *meta, const char *key, const char *value)
{
	meta->keys =
	    xreallocarray(meta->keys, meta->count + 1, sizeof *meta->keys);
	meta->values =
	    xreallocarray(meta->values, meta->count + 1, sizeof *meta->values);
	meta->keys[meta->count] = xstrdup(key);
	meta->values[meta->count] = xstrdup(value);
	meta->count++;
}

/* Set key to value, replacing an existing value. */
void
st_metadata_set(struct st_metadata *meta, const char *key, const char *value)
{
	for (size_t i = 0; i < meta->count; i++) {
		if (strcmp(meta->keys[i], key) == 0) {
			free(meta->values[i]);
			meta->values[i] = xstrdup(value);
			return;
		}
	}
	metadata_append(meta, key, value);
}

/* Value of key, or NULL. */
const char *
st_metadata_get(const struct st_metadata *meta, const char *key)
{
	for (size_t i = 0; i < meta->count; i++) {
		if (strcmp(meta->keys[i], key) == 0)
			return meta->values[i];
	}
	return NULL;
}

/* Free every entry and reset to empty. */
void
st_metadata_free(struct st_metadata *meta)
{
	for (size_t i = 0; i < meta->count; i++) {
		free(meta->keys[i]);
		free(meta->values[i]);
	}
	free(meta->keys);
	free(meta->values);
	memset(meta, 0, sizeof *meta);
}

/* Read a non-negative JSON integer; -1 if value is not one. */
static int
json_u64(const json_t *value, uint64_t *out)
{
	if (!json_is_integer(value) || json_integer_value(value) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(value);
	return 0;
}

/* Parse one "__metadata__" object into meta (NULL: validate only). */
static int
parse_metadata(const json_t *obj, struct st_metadata *meta,
               struct ipc_error *err)
{
	if (!json_is_object(obj))
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "\"" METADATA_KEY
		                     "\" must be an object of "
		                     "strings");
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)obj, key, value)
	{
		if (!json_is_string(value))
			return ipc_error_set(err, IPC_E_WRONG_TYPE,
			                     "\"" METADATA_KEY
			                     "\".\"%.64s\" must be a string",
			                     key);
		if (meta != NULL)
			metadata_append(meta, key, json_string_value(value));
	}
	return 0;
}

/* Fill t from one tensor entry of the header; data_offsets are checked
 * against limit (IPC_E_BOUNDS past it). */
static int
parse_tensor(const char *name, const json_t *obj, uint64_t limit,
             struct tensor_desc *t, struct ipc_error *err)
{
	size_t nlen = strlen(name);
	if (nlen == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "a tensor has an empty name");
	if (nlen >= TENSOR_MAX_NAME)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor '%.40s...': name is %zu bytes "
		                     "(limit %d)",
		                     name, nlen, TENSOR_MAX_NAME - 1);
	memset(t, 0, sizeof *t);
	memcpy(t->name, name, nlen + 1);
	if (!json_is_object(obj))
		return ipc_error_set(
		    err, IPC_E_WRONG_TYPE,
		    "tensor '%s': entry must be an object with "
		    "dtype, shape and data_offsets",
		    name);

	const json_t *dtype = json_object_get(obj, "dtype");
	if (dtype == NULL)
		return ipc_error_set(err, IPC_E_MISSING_KEY,
		                     "tensor '%s': missing \"dtype\"", name);
	if (!json_is_string(dtype))
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "tensor '%s': \"dtype\" must be a string",
		                     name);
	if (tensor_dtype_parse(json_string_value(dtype), &t->dtype, err) != 0) {
		ipc_error_prefix(err, "tensor '%s': ", name);
		return -1;
	}

	const json_t *shape = json_object_get(obj, "shape");
	if (shape == NULL)
		return ipc_error_set(err, IPC_E_MISSING_KEY,
		                     "tensor '%s': missing \"shape\"", name);
	if (!json_is_array(shape))
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "tensor '%s': \"shape\" must be an array",
		                     name);
	if (json_array_size(shape) > TENSOR_MAX_RANK)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "tensor '%s': rank %zu is over the limit "
		                     "of %d",
		                     name, json_array_size(shape),
		                     TENSOR_MAX_RANK);
	t->rank = (int)json_array_size(shape);
	for (int i = 0; i < t->rank; i++) {
		const json_t *d = json_array_get(shape, (size_t)i);
		if (!json_is_integer(d))
			return ipc_error_set(err, IPC_E_WRONG_TYPE,
			                     "tensor '%s': shape[%d] is not an "
			                     "integer",
			                     name, i);
		if (json_u64(d, &t->shape[i]) != 0 || t->shape[i] == 0)
			return ipc_error_set(
			    err, IPC_E_SHAPE,
			    "tensor '%s': shape[%d] is %" JSON_INTEGER_FORMAT
			    " (dimensions must be positive)",
			    name, i, json_integer_value(d));
	}

	const json_t *offs = json_object_get(obj, "data_offsets");
	uint64_t begin, end;
	if (offs == NULL)
		return ipc_error_set(err, IPC_E_MISSING_KEY,
		                     "tensor '%s': missing \"data_offsets\"",
		                     name);
	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    json_u64(json_array_get(offs, 0), &begin) != 0 ||
	    json_u64(json_array_get(offs, 1), &end) != 0)
		return ipc_error_set(err, IPC_E_WRONG_TYPE,
		                     "tensor '%s': \"data_offsets\" must be "
		                     "[begin, end] with non-negative integers",
		                     name);
	if (end < begin)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "tensor '%s': data_offsets [%" PRIu64
		                     ", %" PRIu64 "] are reversed",
		                     name, begin, end);

	uint64_t numel;
	char sb[256];
	if (tensor_numel(t->shape, t->rank, &numel, err) != 0 ||
	    __builtin_mul_overflow(numel, (uint64_t)tensor_dtype_size(t->dtype),
	                           &t->nbytes))
		return ipc_error_set(
		    err, IPC_E_OVERFLOW,
		    "tensor '%s': shape %s of %s overflows 64-bit sizes", name,
		    tensor_shape_text(sb, sizeof sb, t->shape, t->rank),
		    tensor_dtype_name(t->dtype));
	if (end - begin != t->nbytes)
		return ipc_error_set(
		    err, IPC_E_SHAPE,
		    "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
		    "] span %" PRIu64
		    " bytes but shape %s of %s needs %" PRIu64,
		    name, begin, end, end - begin,
		    tensor_shape_text(sb, sizeof sb, t->shape, t->rank),
		    tensor_dtype_name(t->dtype), t->nbytes);
	if (end > limit)
		return ipc_error_set(err, IPC_E_BOUNDS,
		                     "tensor '%s': data_offsets [%" PRIu64
		                     ", %" PRIu64 "] lie past the end of the "
		                     "%" PRIu64 "-byte data buffer",
		                     name, begin, end, limit);
	t->offset = begin;
	return 0;
}

/* qsort order of tensors: by data offset. */
static int
offset_cmp(const void *a, const void *b)
{
	const struct tensor_desc *x = a, *y = b;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Parse the header JSON; tensors end up sorted by offset, covering
 * [0, *end_out) of the buffer exactly. Nothing is returned on error. */
static int
parse_header(const uint8_t *json, size_t len, uint64_t limit,
             struct tensor_manifest *m, struct st_metadata *meta,
             uint64_t *end_out, struct ipc_error *err)
{
	tensor_manifest_init(m);
	if (meta != NULL)
		memset(meta, 0, sizeof *meta);
	if (len > SAFETENSORS_MAX_HEADER)
		return ipc_error_set(err, IPC_E_ST_HEADER,
		                     "header is %zu bytes, over the %u-byte "
		                     "limit",
		                     len, SAFETENSORS_MAX_HEADER);
	if (len == 0 || json[0] != '{')
		return ipc_error_set(err, IPC_E_ST_HEADER,
		                     "header is not a JSON object (it must "
		                     "start with '{')");
	json_error_t jerr;
	json_t *root =
	    json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			return ipc_error_set(err, IPC_E_DUPLICATE, "header: %s",
			                     jerr.text);
		return ipc_error_set(err, IPC_E_ST_HEADER,
		                     "header is not valid JSON: %s (line %d, "
		                     "column %d)",
		                     jerr.text, jerr.line, jerr.column);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return ipc_error_set(err, IPC_E_ST_HEADER,
		                     "header is not a JSON object");
	}

	const json_t *md = json_object_get(root, METADATA_KEY);
	size_t count = json_object_size(root) - (md != NULL);
	if (count > TENSOR_MAX_COUNT) {
		json_decref(root);
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "header lists %zu tensors (limit %d)",
		                     count, TENSOR_MAX_COUNT);
	}
	if (count > 0)
		m->tensors = xcalloc(count, sizeof *m->tensors);

	int rc = 0;
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value)
	{
		if (strcmp(key, METADATA_KEY) == 0)
			rc = parse_metadata(value, meta, err);
		else
			rc = parse_tensor(key, value, limit,
			                  &m->tensors[m->count++], err);
		if (rc != 0)
			break;
	}
	json_decref(root);

	uint64_t expected = 0;
	if (rc == 0) {
		if (m->count > 1)
			qsort(m->tensors, m->count, sizeof *m->tensors,
			      offset_cmp);
		for (size_t i = 0; i < m->count && rc == 0; i++) {
			const struct tensor_desc *t = &m->tensors[i];
			if (t->offset < expected)
				rc = ipc_error_set(
				    err, IPC_E_OVERLAP,
				    "tensors '%s' and '%s' overlap: '%s' "
				    "starts at %" PRIu64
				    " before '%s' ends at %" PRIu64,
				    m->tensors[i - 1].name, t->name, t->name,
				    t->offset, m->tensors[i - 1].name,
				    expected);
			else if (t->offset > expected)
				rc = ipc_error_set(
				    err, IPC_E_ST_HEADER,
				    "bytes [%" PRIu64 ", %" PRIu64
				    ") of the data buffer belong to no "
				    "tensor (a hole before '%s')",
				    expected, t->offset, t->name);
			expected = t->offset + t->nbytes;
		}
	}
	if (rc != 0) {
		tensor_manifest_free(m);
		if (meta != NULL)
			st_metadata_free(meta);
		return -1;
	}
	m->total_size = expected;
	*end_out = expected;
	return 0;
}

/* Parse and validate a header against a buffer of buffer_size bytes. */
int
safetensors_parse_header(const uint8_t *json, size_t len, uint64_t buffer_size,
                         struct tensor_manifest *m_out,
                         struct st_metadata *meta, struct ipc_error *err)
{
	uint64_t end;
	if (parse_header(json, len, buffer_size, m_out, meta, &end, err) != 0)
		return -1;
	if (end != buffer_size) {
		tensor_manifest_free(m_out);
		if (meta != NULL)
			st_metadata_free(meta);
		return ipc_error_set(err, IPC_E_ST_FILE,
		                     "the tensors end at byte %" PRIu64
		                     " but the data buffer has %" PRIu64
		                     " bytes",
		                     end, buffer_size);
	}
	m_out->total_size = buffer_size;
	return 0;
}

/* pread exactly len bytes at offset; IPC_E_ST_FILE on early end of file. */
static int
pread_full(int fd, void *buf, uint64_t len, uint64_t offset,
           struct ipc_error *err)
{
	unsigned char *p = buf;
	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = pread(fd, p, chunk, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ipc_error_set(err, IPC_E_IO,
			                     "read at byte %" PRIu64 ": %s",
			                     offset, strerror(errno));
		if (n == 0)
			return ipc_error_set(err, IPC_E_ST_FILE,
			                     "file ends at byte %" PRIu64
			                     " (truncated while reading?)",
			                     offset);
		p += n;
		len -= (uint64_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

/* An open, parsed file: tensors sorted by their offset in the data buffer,
 * which starts at data_start. */
struct st_file {
	int fd;
	uint64_t data_start;
	struct tensor_manifest m;
};

/* Open path and parse its header, checking the file's size against it. */
static int
st_open(const char *path, struct st_file *f, struct st_metadata *meta,
        struct ipc_error *err)
{
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	tensor_manifest_init(&f->m);
	if (f->fd < 0)
		return ipc_error_set(err, IPC_E_IO, "cannot open: %s",
		                     strerror(errno));
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		ipc_error_set(err, IPC_E_IO, "fstat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ipc_error_set(err, IPC_E_IO, "not a regular file");
		goto fail;
	}
	uint64_t size = (uint64_t)st.st_size;
	unsigned char lenbuf[8];
	if (size < 8) {
		ipc_error_set(err, IPC_E_ST_FILE,
		              "file is %" PRIu64 " bytes, too short for the "
		              "8-byte header length (truncated?)",
		              size);
		goto fail;
	}
	if (pread_full(f->fd, lenbuf, 8, 0, err) != 0)
		goto fail;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenbuf[i];
	if (hlen > SAFETENSORS_MAX_HEADER) {
		ipc_error_set(err, IPC_E_ST_HEADER,
		              "header length %" PRIu64 " is over the %u-byte "
		              "limit (not a safetensors file?)",
		              hlen, SAFETENSORS_MAX_HEADER);
		goto fail;
	}
	if (hlen > size - 8) {
		ipc_error_set(err, IPC_E_ST_FILE,
		              "header length %" PRIu64 " is larger than the "
		              "%" PRIu64 " bytes that follow it (truncated?)",
		              hlen, size - 8);
		goto fail;
	}
	unsigned char *hdr = xmalloc(hlen ? hlen : 1);
	uint64_t end = 0;
	int rc = pread_full(f->fd, hdr, hlen, 8, err);
	if (rc == 0)
		rc =
		    parse_header(hdr, hlen, UINT64_MAX, &f->m, meta, &end, err);
	free(hdr);
	if (rc != 0)
		goto fail;
	f->data_start = 8 + hlen;
	if (end != size - f->data_start) {
		const char *last =
		    f->m.count ? f->m.tensors[f->m.count - 1].name : "";
		if (end > size - f->data_start)
			ipc_error_set(err, IPC_E_ST_FILE,
			              "file is %" PRIu64 " bytes but its "
			              "header needs %" PRIu64
			              " (truncated, or data_offsets of '%s' "
			              "point past the end)",
			              size, f->data_start + end, last);
		else
			ipc_error_set(err, IPC_E_ST_FILE,
			              "file has %" PRIu64 " extra bytes after "
			              "the last tensor ends at byte %" PRIu64,
			              size - f->data_start - end,
			              f->data_start + end);
		tensor_manifest_free(&f->m);
		if (meta != NULL)
			st_metadata_free(meta);
		goto fail;
	}
	return 0;

fail:
	close(f->fd);
	f->fd = -1;
	return -1;
}

/* Close an opened file and free its manifest. */
static void
st_close(struct st_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	tensor_manifest_free(&f->m);
}

/* Read a whole file into a fresh 64-byte aligned region. */
int
safetensors_read(const char *path, struct tensor_manifest *m, void **region,
                 struct st_metadata *meta, struct ipc_error *err)
{
	struct st_file f;
	tensor_manifest_init(m);
	*region = NULL;
	if (meta != NULL)
		memset(meta, 0, sizeof *meta);
	if (st_open(path, &f, meta, err) != 0) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	/* The file's bytes are bounded by its size; alignment adds at most
	 * 63 bytes per tensor, so these sums cannot overflow. */
	tensor_manifest_copy(m, &f.m);
	uint64_t pos = 0;
	for (size_t i = 0; i < m->count; i++) {
		pos = (pos + TENSOR_ALIGN - 1) & ~(uint64_t)(TENSOR_ALIGN - 1);
		m->tensors[i].offset = pos;
		pos += m->tensors[i].nbytes;
	}
	m->total_size =
	    (pos + TENSOR_ALIGN - 1) & ~(uint64_t)(TENSOR_ALIGN - 1);
	if (posix_memalign(region, TENSOR_ALIGN,
	                   m->total_size ? m->total_size : TENSOR_ALIGN) != 0)
		fatal("out of memory for a %" PRIu64 "-byte tensor region",
		      m->total_size);
	unsigned char *r = *region;
	int rc = 0;
	pos = 0;
	for (size_t i = 0; i < m->count && rc == 0; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		memset(r + pos, 0, t->offset - pos);
		rc = pread_full(f.fd, r + t->offset, t->nbytes,
		                f.data_start + f.m.tensors[i].offset, err);
		pos = t->offset + t->nbytes;
	}
	memset(r + pos, 0, m->total_size - pos);
	st_close(&f);
	if (rc != 0) {
		ipc_error_prefix(err, "%s: ", path);
		free(*region);
		*region = NULL;
		tensor_manifest_free(m);
		if (meta != NULL)
			st_metadata_free(meta);
		return -1;
	}
	return 0;
}

/* qsort order of tensor pointers: by name. */
static int
name_ptr_cmp(const void *a, const void *b)
{
	const struct tensor_desc *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

/* Tensor pointers of m sorted by name, for lookups with find_sorted(). */
static const struct tensor_desc **
sort_by_name(const struct tensor_manifest *m)
{
	const struct tensor_desc **v =
	    xreallocarray(NULL, m->count ? m->count : 1, sizeof *v);
	for (size_t i = 0; i < m->count; i++)
		v[i] = &m->tensors[i];
	qsort(v, m->count, sizeof *v, name_ptr_cmp);
	return v;
}

/* Binary search of a name in sort_by_name()'s output. */
static const struct tensor_desc *
find_sorted(const struct tensor_desc **v, size_t n, const char *name)
{
	struct tensor_desc key;
	const struct tensor_desc *kp = &key;
	snprintf(key.name, sizeof key.name, "%s", name);
	const struct tensor_desc **hit =
	    bsearch(&kp, v, n, sizeof *v, name_ptr_cmp);
	return hit ? *hit : NULL;
}

/* Compare the file's tensors with the expected layout, in expect's order. */
static int
match_layout(const struct tensor_manifest *file,
             const struct tensor_manifest *expect, struct ipc_error *err)
{
	const struct tensor_desc **by_name = sort_by_name(file);
	int rc = 0;
	for (size_t i = 0; i < expect->count && rc == 0; i++) {
		const struct tensor_desc *e = &expect->tensors[i];
		const struct tensor_desc *t =
		    find_sorted(by_name, file->count, e->name);
		char sa[256], sb[256];
		int same = t != NULL && t->rank == e->rank;
		for (int d = 0; same && d < e->rank; d++)
			same = t->shape[d] == e->shape[d];
		if (t == NULL)
			rc = ipc_error_set(err, IPC_E_MISMATCH,
			                   "tensor '%s' is missing", e->name);
		else if (t->dtype != e->dtype)
			rc = ipc_error_set(err, IPC_E_MISMATCH,
			                   "tensor '%s' is %s where %s was "
			                   "expected",
			                   e->name, tensor_dtype_name(t->dtype),
			                   tensor_dtype_name(e->dtype));
		else if (!same)
			rc = ipc_error_set(
			    err, IPC_E_MISMATCH,
			    "tensor '%s' has shape %s where %s was "
			    "expected",
			    e->name,
			    tensor_shape_text(sa, sizeof sa, t->shape, t->rank),
			    tensor_shape_text(sb, sizeof sb, e->shape,
			                      e->rank));
	}
	if (rc == 0 && file->count != expect->count) {
		/* every expected tensor is present, so the file has extras */
		const struct tensor_desc **exp_names = sort_by_name(expect);
		for (size_t i = 0; i < file->count; i++) {
			const char *n = file->tensors[i].name;
			if (find_sorted(exp_names, expect->count, n) == NULL) {
				rc = ipc_error_set(err, IPC_E_MISMATCH,
				                   "tensor '%s' is not "
				                   "expected (file has %zu "
				                   "tensors, expected %zu)",
				                   n, file->count,
				                   expect->count);
				break;
			}
		}
		free(exp_names);
	}
	free(by_name);
	return rc;
}

/* Load a file into an existing layout. */
int
safetensors_read_into(const char *path, const struct tensor_manifest *expect,
                      void *region, struct st_metadata *meta,
                      struct ipc_error *err)
{
	if (tensor_manifest_validate(expect, expect->total_size, err) != 0) {
		ipc_error_prefix(err, "%s: expected layout: ", path);
		return -1;
	}
	struct st_file f;
	if (st_open(path, &f, meta, err) != 0) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	int rc = match_layout(&f.m, expect, err);
	if (rc == 0) {
		/* read in file order, so the disk sees one sequential pass */
		const struct tensor_desc **exp_names = sort_by_name(expect);
		for (size_t i = 0; i < f.m.count && rc == 0; i++) {
			const struct tensor_desc *t = &f.m.tensors[i];
			const struct tensor_desc *e =
			    find_sorted(exp_names, expect->count, t->name);
			rc = pread_full(
			    f.fd, (unsigned char *)region + e->offset,
			    t->nbytes, f.data_start + t->offset, err);
		}
		free(exp_names);
	}
	st_close(&f);
	if (rc != 0)
		ipc_error_prefix(err, "%s: ", path);
	return rc;
}

/* The tensor list of a file, its header alone read. */
int
safetensors_list(const char *path, struct tensor_manifest *m,
                 struct ipc_error *err)
{
	struct st_file f;
	tensor_manifest_init(m);
	if (st_open(path, &f, NULL, err) != 0) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	tensor_manifest_copy(m, &f.m);
	st_close(&f);
	return 0;
}

/* Load a file whose names the caller maps into an existing layout. */
int
safetensors_read_renamed(const char *path, const struct tensor_manifest *expect,
                         void *region, st_rename_fn rename, void *ctx,
                         struct ipc_error *err)
{
	if (tensor_manifest_validate(expect, expect->total_size, err) != 0) {
		ipc_error_prefix(err, "%s: expected layout: ", path);
		return -1;
	}
	struct st_file f;
	if (st_open(path, &f, NULL, err) != 0) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	/* The kept tensors under their new names, widened to F32. */
	struct tensor_manifest r;
	tensor_manifest_init(&r);
	size_t *from = xcalloc(f.m.count + 1, sizeof *from);
	int rc = 0;
	for (size_t i = 0; i < f.m.count && rc == 0; i++) {
		const struct tensor_desc *t = &f.m.tensors[i];
		char name[TENSOR_MAX_NAME];
		int keep = rename(t->name, name, sizeof name, ctx, err);
		enum tensor_dtype d =
		    t->dtype == DTYPE_F16 || t->dtype == DTYPE_BF16 ? DTYPE_F32
		                                                    : t->dtype;
		if (keep < 0)
			rc = -1;
		else if (keep > 0) {
			from[r.count] = i;
			rc = tensor_manifest_add(&r, name, d, t->rank, t->shape,
			                         err);
		}
	}
	if (rc == 0)
		rc = match_layout(&r, expect, err);
	const struct tensor_desc **exp_names =
	    rc == 0 ? sort_by_name(expect) : NULL;
	for (size_t k = 0; k < r.count && rc == 0; k++) {
		const struct tensor_desc *t = &f.m.tensors[from[k]];
		const struct tensor_desc *e =
		    find_sorted(exp_names, expect->count, r.tensors[k].name);
		unsigned char *dst = (unsigned char *)region + e->offset;
		if (t->dtype == e->dtype) {
			rc = pread_full(f.fd, dst, t->nbytes,
			                f.data_start + t->offset, err);
			continue;
		}
		uint16_t *half = xmalloc(t->nbytes ? t->nbytes : 1);
		rc = pread_full(f.fd, half, t->nbytes, f.data_start + t->offset,
		                err);
		if (rc == 0 && t->dtype == DTYPE_F16)
			safetensors_f16_to_f32(half, (float *)dst,
			                       t->nbytes / 2);
		else if (rc == 0)
			safetensors_bf16_to_f32(half, (float *)dst,
			                        t->nbytes / 2);
		free(half);
	}
	free(exp_names);
	free(from);
	tensor_manifest_free(&r);
	st_close(&f);
	if (rc != 0)
		ipc_error_prefix(err, "%s: ", path);
	return rc;
}

/* Build the header JSON text for m packed in order, plus meta. */
static char *
build_header(const struct tensor_manifest *m, const struct st_metadata *meta,
             struct ipc_error *err)
{
	json_t *root = json_object();
	int bad = 0;
	if (meta != NULL && meta->count > 0) {
		json_t *md = json_object();
		for (size_t i = 0; i < meta->count && !bad; i++)
			bad = json_object_set_new(
			          md, meta->keys[i],
			          json_string(meta->values[i])) != 0;
		json_object_set_new(root, METADATA_KEY, md);
		if (bad) {
			json_decref(root);
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "metadata entry is not valid UTF-8");
			return NULL;
		}
	}
	uint64_t pos = 0;
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		if (strcmp(t->name, METADATA_KEY) == 0) {
			json_decref(root);
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "a tensor cannot be named '%s'",
			              METADATA_KEY);
			return NULL;
		}
		json_t *shape = json_array();
		for (int d = 0; d < t->rank; d++)
			json_array_append_new(
			    shape, json_integer((json_int_t)t->shape[d]));
		json_t *entry = json_pack(
		    "{s:s, s:o, s:[I, I]}", "dtype",
		    tensor_dtype_name(t->dtype), "shape", shape, "data_offsets",
		    (json_int_t)pos, (json_int_t)(pos + t->nbytes));
		pos += t->nbytes;
		if (entry == NULL ||
		    json_object_set_new(root, t->name, entry) != 0) {
			json_decref(root);
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "tensor name '%s' is not valid UTF-8",
			              t->name);
			return NULL;
		}
	}
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		fatal("out of memory encoding a safetensors header");
	return text;
}

/* Copy len bytes of src_fd from offset off to the end of fd inside the
 * kernel (sendfile: no user-space copy, and the source's pages are never
 * mapped into this process); a plain read/write loop where sendfile
 * cannot take the pair. */
static int
copy_range(int fd, int src_fd, uint64_t off, uint64_t len)
{
	off_t pos = (off_t)off;
	while (len > 0) {
		size_t want = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = sendfile(fd, src_fd, &pos, want);
		if (n > 0) {
			len -= (uint64_t)n;
			continue;
		}
		if (n == 0) {
			errno =
			    EIO; /* the source is shorter than its manifest */
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		/* Not sendfile-able: through a bounce buffer. */
		size_t bsize = 1u << 20;
		unsigned char *buf = xmalloc(bsize);
		int rc = 0;
		while (rc == 0 && len > 0) {
			size_t part = len < bsize ? (size_t)len : bsize;
			ssize_t r = pread(src_fd, buf, part, pos);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				if (r == 0)
					errno = EIO;
				rc = -1;
				break;
			}
			rc = write_all(fd, buf, (size_t)r);
			pos += r;
			len -= (uint64_t)r;
		}
		free(buf);
		return rc;
	}
	return 0;
}

/* What safetensors_write hands to the atomic writer: the header and where
 * the tensor bytes come from (region, or src_fd when region is NULL). */
struct body {
	const char *header;
	const struct tensor_manifest *m;
	const void *region;
	int src_fd;
};

/* Write the header and the packed tensors of arg (a struct body) to fd. */
static int
fill_body(int fd, const void *arg, struct ipc_error *err)
{
	const struct body *b = arg;
	size_t len = strlen(b->header);
	size_t padded = (len + 7) & ~(size_t)7;
	unsigned char lenbuf[8];
	for (int i = 0; i < 8; i++)
		lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	char *text = xmalloc(padded);
	memcpy(text, b->header, len);
	memset(text + len, ' ', padded - len);
	int rc =
	    write_all(fd, lenbuf, 8) != 0 || write_all(fd, text, padded) != 0;
	free(text);
	for (size_t i = 0; i < b->m->count && rc == 0; i++) {
		const struct tensor_desc *t = &b->m->tensors[i];
		if (b->region != NULL)
			rc = write_all(fd,
			               (const unsigned char *)b->region +
			                   t->offset,
			               (size_t)t->nbytes) != 0;
		else
			rc = copy_range(fd, b->src_fd, t->offset, t->nbytes) !=
			     0;
	}
	if (rc != 0)
		return ipc_error_set(err, IPC_E_IO, "write: %s",
		                     strerror(errno));
	return 0;
}

/* Validate m for writing and write it to path atomically from b. */
static int
write_file(const char *path, const struct tensor_manifest *m,
           const struct st_metadata *meta, struct body *b,
           struct ipc_error *err)
{
	if (tensor_manifest_validate(m, m->total_size, err) != 0) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	for (size_t i = 0; i < m->count; i++) {
		const struct tensor_desc *t = &m->tensors[i];
		for (int d = 0; d < t->rank; d++) {
			if (t->shape[d] > INT64_MAX)
				return ipc_error_set(
				    err, IPC_E_OVERFLOW,
				    "%s: tensor '%s': dimension %d is too "
				    "large for JSON",
				    path, t->name, d);
		}
	}
	if (m->total_size > INT64_MAX)
		return ipc_error_set(err, IPC_E_OVERFLOW,
		                     "%s: %" PRIu64 " bytes of tensors are too "
		                     "many for one file",
		                     path, m->total_size);
	char *header = build_header(m, meta, err);
	if (header == NULL) {
		ipc_error_prefix(err, "%s: ", path);
		return -1;
	}
	b->header = header;
	b->m = m;
	int rc = atomicfile_write(path, fill_body, b, err);
	free(header);
	return rc;
}

/* Write m's tensors to path atomically. */
int
safetensors_write(const char *path, const struct tensor_manifest *m,
                  const void *region, const struct st_metadata *meta,
                  struct ipc_error *err)
{
	static const unsigned char none[1];
	struct body b = {.region = region != NULL ? region : none,
	                 .src_fd = -1};
	return write_file(path, m, meta, &b, err);
}

/* safetensors_write with the tensor bytes read from src_fd. */
int
safetensors_write_fd(const char *path, const struct tensor_manifest *m,
                     int src_fd, const struct st_metadata *meta,
                     struct ipc_error *err)
{
	struct body b = {.region = NULL, .src_fd = src_fd};
	return write_file(path, m, meta, &b, err);
}

/* Widen n IEEE half-precision values to float. */
void
safetensors_f16_to_f32(const uint16_t *in, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t h = in[i];
		uint32_t sign = (h & 0x8000u) << 16;
		uint32_t exp = (h >> 10) & 0x1f;
		uint32_t mant = h & 0x3ff;
		uint32_t bits;
		if (exp == 0x1f) {
			bits = sign | 0x7f800000u | mant << 13;
		} else if (exp != 0) {
			bits = sign | (exp + 112) << 23 | mant << 13;
		} else {
			/* zero or subnormal: mant * 2^-24, exact in float */
			float v = (float)mant * 0x1p-24f;
			memcpy(&bits, &v, 4);
			bits |= sign;
		}
		memcpy(&out[i], &bits, 4);
	}
}

/* Widen n bfloat16 values to float: bfloat16 is float's upper half. */
void
safetensors_bf16_to_f32(const uint16_t *in, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t bits = (uint32_t)in[i] << 16;
		memcpy(&out[i], &bits, 4);
	}
}
