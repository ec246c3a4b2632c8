/* fuzz_dataset.c: libFuzzer target for the dataset caches' reader
 * (worker/data): dataset_open on the input as a file (the text cache's
 * checks above all: offsets, document starts, tokens, labels), then a read
 * of everything it accepted, so an accepted cache is one that cannot make
 * a worker read out of bounds. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-dataset", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct dataset ds;
	struct ipc_error err;
	if (dataset_open(path, &ds, &err) == 0) {
		if (ds.text) {
			size_t len;
			free(dataset_text_stream(&ds, NULL, 0, &len));
		} else if (ds.count > 0) {
			uint32_t first = 0, last = ds.count - 1;
			size_t n = dataset_sample_size(&ds);
			float *x = malloc(n * sizeof *x);
			int32_t y;
			dataset_batch(&ds, &first, 1, x, &y);
			dataset_batch(&ds, &last, 1, x, &y);
			free(x);
		}
		dataset_close(&ds);
	}
	close(fd);
	return 0;
}
