/* fuzz_safetensors.c: libFuzzer target for the safetensors reader: the
 * header parser on its own, then the whole-file and in-place readers on the
 * input written to a memfd. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse the header the first 8 bytes announce (bounded by the input)
 * against the bytes that follow it. */
static void
fuzz_header(const uint8_t *data, size_t size)
{
	if (size < 8)
		return;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | data[i];
	if (hlen > size - 8)
		hlen = size - 8;
	struct tensor_manifest m;
	struct st_metadata meta;
	struct ipc_error err;
	if (safetensors_parse_header(data + 8, (size_t)hlen, size - 8 - hlen,
	                             &m, &meta, &err) == 0) {
		tensor_manifest_free(&m);
		st_metadata_free(&meta);
	}
}

/* Read the input as a file, then load it again into the layout it had. */
static void
fuzz_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 ||
	    (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("memfd write");
		abort();
	}
	struct tensor_manifest m;
	struct st_metadata meta;
	struct ipc_error err;
	void *region = NULL;
	if (safetensors_read(path, &m, &region, &meta, &err) != 0)
		return;
	if (tensor_manifest_validate(&m, m.total_size, &err) != 0) {
		fprintf(stderr, "read produced an invalid manifest: %s\n",
		        err.message);
		abort();
	}
	void *copy = calloc(1, m.total_size ? m.total_size : 1);
	if (safetensors_read_into(path, &m, copy, NULL, &err) != 0 ||
	    memcmp(copy, region, m.total_size) != 0) {
		fprintf(stderr, "read_into disagrees with read: %s\n",
		        err.message);
		abort();
	}
	for (size_t i = 0; i < m.count; i++) {
		const struct tensor_desc *t = &m.tensors[i];
		size_t n = (size_t)(t->nbytes / 2);
		if (t->dtype != DTYPE_F16 && t->dtype != DTYPE_BF16)
			continue;
		if (n > 4096)
			n = 4096;
		float out[4096];
		const uint16_t *in =
		    (const uint16_t *)((char *)region + t->offset);
		if (t->dtype == DTYPE_F16)
			safetensors_f16_to_f32(in, out, n);
		else
			safetensors_bf16_to_f32(in, out, n);
	}
	free(copy);
	free(region);
	tensor_manifest_free(&m);
	st_metadata_free(&meta);
}

/* One input: both entry points. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_header(data, size);
	fuzz_file(data, size);
	return 0;
}
