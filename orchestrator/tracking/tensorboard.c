/* tensorboard.c: writes TensorBoard event files. Each record is
 * [u64 length LE][masked crc32c of length][data][masked crc32c of data];
 * each data block is an Event protobuf, encoded here by hand since only four
 * fields are needed: wall_time (1, double), step (2, int64), file_version
 * (3, string) and summary (5) { value (1) { tag (1), simple_value (2) } }. */
#include "tensorboard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "files.h"

struct tensorboard {
	FILE *f;
	char *path;
};

/* Protobuf wire types. */
enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

/* A growable byte buffer for one encoded message. */
struct pb {
	uint8_t *data;
	size_t len, cap;
};

/* Append n bytes. */
static void
pb_put(struct pb *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* Append a base-128 varint. */
static void
pb_varint(struct pb *b, uint64_t v)
{
	uint8_t out[10];
	size_t n = 0;
	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			out[n] |= 0x80;
		n++;
	} while (v != 0);
	pb_put(b, out, n);
}

/* Append a field key (number and wire type). */
static void
pb_key(struct pb *b, unsigned field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

/* Append a little-endian integer of n bytes. */
static void
pb_le(struct pb *b, uint64_t v, size_t n)
{
	uint8_t out[8];
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * i));
	pb_put(b, out, n);
}

/* Append a double field (fixed64). */
static void
pb_double(struct pb *b, unsigned field, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	pb_key(b, field, WIRE_FIXED64);
	pb_le(b, bits, 8);
}

/* Append a float field (fixed32). */
static void
pb_float(struct pb *b, unsigned field, float v)
{
	uint32_t bits;
	memcpy(&bits, &v, sizeof bits);
	pb_key(b, field, WIRE_FIXED32);
	pb_le(b, bits, 4);
}

/* Append a length-delimited field (string or sub-message). */
static void
pb_bytes(struct pb *b, unsigned field, const void *p, size_t n)
{
	pb_key(b, field, WIRE_BYTES);
	pb_varint(b, n);
	pb_put(b, p, n);
}

/* The CRC-32C lookup table (reflected polynomial 0x82F63B78). */
static uint32_t crc_table[256];

/* Fill crc_table once. */
static void
crc_init(void)
{
	if (crc_table[1] != 0)
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
tensorboard_crc32c(const void *data, size_t len)
{
	crc_init();
	const uint8_t *p = data;
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++)
		c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

uint32_t
tensorboard_masked_crc(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Write one TFRecord around data. */
static int
write_record(struct tensorboard *tb, const struct pb *data)
{
	struct pb head = {0};
	pb_le(&head, data->len, 8);
	pb_le(&head, tensorboard_masked_crc(tensorboard_crc32c(head.data, 8)),
	      4);
	struct pb tail = {0};
	pb_le(&tail,
	      tensorboard_masked_crc(tensorboard_crc32c(data->data, data->len)),
	      4);
	int ok = fwrite(head.data, 1, head.len, tb->f) == head.len &&
	         fwrite(data->data, 1, data->len, tb->f) == data->len &&
	         fwrite(tail.data, 1, tail.len, tb->f) == tail.len;
	free(head.data);
	free(tail.data);
	return ok ? 0 : -1;
}

/* Wall-clock seconds since the epoch. */
static double
wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct tensorboard *
tensorboard_open(const char *dir, struct ipc_error *err)
{
	if (files_mkdirs(dir, 0777, err) < 0)
		return NULL;
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	double now = wall_now();
	struct tensorboard *tb = xcalloc(1, sizeof *tb);
	tb->path = xasprintf("%s/events.out.tfevents.%lld.%s", dir,
	                     (long long)now, host);
	/* a second writer in the same second gets its own file */
	for (int i = 1; files_exist(tb->path); i++) {
		free(tb->path);
		tb->path = xasprintf("%s/events.out.tfevents.%lld.%s.%d", dir,
		                     (long long)now, host, i);
	}
	tb->f = fopen(tb->path, "wb");
	if (tb->f == NULL) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot create: %s", tb->path,
		              strerror(errno));
		free(tb->path);
		free(tb);
		return NULL;
	}
	struct pb ev = {0};
	pb_double(&ev, 1, now);
	pb_bytes(&ev, 3, "brain.Event:2", strlen("brain.Event:2"));
	int rc = write_record(tb, &ev);
	free(ev.data);
	if (rc < 0 || fflush(tb->f) != 0) {
		ipc_error_set(err, IPC_E_IO, "%s: cannot write: %s", tb->path,
		              strerror(errno));
		tensorboard_close(tb);
		return NULL;
	}
	return tb;
}

int
tensorboard_scalar(struct tensorboard *tb, const char *tag, int64_t step,
                   float value, double wall_time)
{
	struct pb val = {0}, sum = {0}, ev = {0};
	pb_bytes(&val, 1, tag, strlen(tag));
	pb_float(&val, 2, value);
	pb_bytes(&sum, 1, val.data, val.len);
	pb_double(&ev, 1, wall_time);
	pb_key(&ev, 2, WIRE_VARINT);
	pb_varint(&ev, (uint64_t)step);
	pb_bytes(&ev, 5, sum.data, sum.len);
	int rc = write_record(tb, &ev);
	free(val.data);
	free(sum.data);
	free(ev.data);
	return rc;
}

void
tensorboard_flush(struct tensorboard *tb)
{
	fflush(tb->f);
}

const char *
tensorboard_path(const struct tensorboard *tb)
{
	return tb->path;
}

void
tensorboard_close(struct tensorboard *tb)
{
	if (tb == NULL)
		return;
	fclose(tb->f);
	free(tb->path);
	free(tb);
}
