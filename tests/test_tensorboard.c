/* test_tensorboard.c: TensorBoard event files: CRC-32C against its test
 * vector and an independent bitwise implementation, every record's framing,
 * the Event fields read back in C and (when python3 exists) by the
 * stdlib-only tests/tensorboard_check.py, and the tracking feed. */
#include <dirent.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "tensorboard.h"
#include "tracking.h"
#include "util.h"

/* Bitwise CRC-32C, written independently of the table-driven one. */
static uint32_t
crc32c_bitwise(const uint8_t *p, size_t n)
{
	uint32_t crc = ~0u;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Masked CRC as TFRecord defines it. */
static uint32_t
mask(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Little-endian integer of n bytes. */
static uint64_t
le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Decode a varint at *pos. */
static uint64_t
varint(const uint8_t *p, size_t *pos)
{
	uint64_t v = 0;
	for (int shift = 0;; shift += 7) {
		uint8_t b = p[(*pos)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
}

/* One decoded event. */
struct event_read {
	double wall_time;
	int64_t step;
	char version[32];
	char tag[64];
	float value;
	int has_value;
};

/* Decode the fields cohort writes; unknown wire types fail the check. */
static void
decode_event(const uint8_t *p, size_t n, struct event_read *e)
{
	size_t pos = 0;
	memset(e, 0, sizeof *e);
	while (pos < n) {
		uint64_t key = varint(p, &pos);
		unsigned field = (unsigned)(key >> 3), wire = key & 7;
		if (field == 1 && wire == 1) {
			uint64_t bits = le(p + pos, 8);
			memcpy(&e->wall_time, &bits, 8);
			pos += 8;
		} else if (field == 2 && wire == 0) {
			e->step = (int64_t)varint(p, &pos);
		} else if (field == 3 && wire == 2) {
			size_t len = varint(p, &pos);
			snprintf(e->version, sizeof e->version, "%.*s",
			         (int)len, (const char *)p + pos);
			pos += len;
		} else if (field == 5 && wire == 2) {
			size_t end = varint(p, &pos);
			end += pos;
			CHECK_EQ_INT(varint(p, &pos), 1 << 3 | 2); /* value */
			size_t vend = varint(p, &pos);
			vend += pos;
			CHECK_EQ_INT(varint(p, &pos), 1 << 3 | 2); /* tag */
			size_t tl = varint(p, &pos);
			snprintf(e->tag, sizeof e->tag, "%.*s", (int)tl,
			         (const char *)p + pos);
			pos += tl;
			CHECK_EQ_INT(varint(p, &pos), 2 << 3 | 5); /* float */
			uint32_t bits = (uint32_t)le(p + pos, 4);
			memcpy(&e->value, &bits, 4);
			e->has_value = 1;
			pos += 4;
			CHECK_EQ_INT(pos, vend);
			CHECK_EQ_INT(pos, end);
		} else {
			harness_fail(__FILE__, __LINE__, "field %u wire %u",
			             field, wire);
			return;
		}
	}
}

/* Read every record of an event file, checking both CRCs of each. */
static size_t
read_events(const char *path, struct event_read *out, size_t max)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f == NULL)
		return 0;
	size_t count = 0;
	uint8_t head[12];
	while (fread(head, 1, 12, f) == 12 && count < max) {
		CHECK_EQ_INT(le(head + 8, 4), mask(crc32c_bitwise(head, 8)));
		size_t len = le(head, 8);
		uint8_t *data = xmalloc(len + 4);
		CHECK_EQ_INT(fread(data, 1, len + 4, f), len + 4);
		CHECK_EQ_INT(le(data + len, 4),
		             mask(crc32c_bitwise(data, len)));
		decode_event(data, len, &out[count++]);
		free(data);
	}
	fclose(f);
	return count;
}

/* CRC-32C: the standard check value and agreement with a bitwise CRC. */
static void
test_crc32c(void)
{
	CHECK_EQ_INT(tensorboard_crc32c("123456789", 9), 0xE3069283u);
	CHECK_EQ_INT(crc32c_bitwise((const uint8_t *)"123456789", 9),
	             0xE3069283u);
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	for (size_t n = 0; n < sizeof buf; n += 37)
		CHECK_EQ_INT(tensorboard_crc32c(buf, n),
		             crc32c_bitwise(buf, n));
	CHECK_EQ_INT(tensorboard_masked_crc(0), 0xa282ead8u);
}

/* Scalars written, read back with every field and CRC checked. */
static void
test_scalars(void)
{
	char *dir = xasprintf("%s/tb", harness_tmpdir());
	struct ipc_error err;
	struct tensorboard *tb = tensorboard_open(dir, &err);
	CHECK(tb != NULL);
	if (tb == NULL)
		return;
	char *path = xstrdup(tensorboard_path(tb));
	CHECK_STR_CONTAINS(path, "/tb/events.out.tfevents.");
	for (int step = 1; step <= 300; step++)
		CHECK(tensorboard_scalar(
		          tb, step % 2 ? "test_accuracy" : "loss/train", step,
		          0.001f * (float)step, 1700000000.25 + step) == 0);
	tensorboard_close(tb);
	struct event_read ev[400];
	size_t n = read_events(path, ev, 400);
	CHECK_EQ_INT(n, 301);
	CHECK_STR_CONTAINS(ev[0].version, "brain.Event:2");
	CHECK(ev[0].wall_time > 1.6e9);
	CHECK(!ev[0].has_value);
	for (size_t i = 1; i < n; i++) {
		CHECK_EQ_INT(ev[i].step, i);
		CHECK(strcmp(ev[i].tag,
		             i % 2 ? "test_accuracy" : "loss/train") == 0);
		CHECK_NEAR(ev[i].value, 0.001 * (double)i, 1e-6);
		CHECK_NEAR(ev[i].wall_time, 1700000000.25 + (double)i, 1e-6);
	}

	/* the same file through the independent Python reader */
	if (system("python3 -c 'import struct' >/dev/null 2>&1") != 0) {
		free(path);
		free(dir);
		harness_skip("python3 not found: tensorboard_check.py not run");
	}
	char *src = xstrdup(__FILE__);
	char *cmd = xasprintf("python3 %s/tensorboard_check.py '%s'",
	                      dirname(src), path);
	FILE *p = popen(cmd, "r");
	char line[256];
	int lines = 0, ok = 1;
	while (fgets(line, sizeof line, p)) {
		if (lines == 0)
			ok &=
			    strcmp(line, "file_version\tbrain.Event:2\n") == 0;
		else if (lines == 300)
			ok &= strcmp(line, "300\tloss/train\t0.3\n") == 0;
		lines++;
	}
	CHECK_EQ_INT(pclose(p), 0);
	CHECK(ok);
	CHECK_EQ_INT(lines, 301);
	free(cmd);
	free(src);
	free(path);
	free(dir);
}

/* Tracking feeds round-level metrics (not per-client ones) as scalars. */
static void
test_tracking_feed(void)
{
	char *ws = xasprintf("%s/ws", harness_tmpdir());
	char *mdir = xasprintf("%s/metrics", ws);
	mkdir(ws, 0755);
	mkdir(mdir, 0755);
	char *mpath = xasprintf("%s/metrics.jsonl", mdir);
	struct tracking_config tc = {.run_name = "tb", .tensorboard = 1};
	unsetenv("MLFLOW_TRACKING_URI");
	struct ipc_error err;
	struct tracking *t = tracking_open(NULL, ws, &tc, NULL, NULL, &err);
	CHECK(t != NULL);
	for (unsigned r = 1; r <= 4; r++) {
		FILE *f = fopen(mpath, "a");
		fprintf(f,
		        "{\"round\":%u,\"client\":3,\"task\":9,\"key\":"
		        "\"loss\",\"value\":9,\"time\":1700000000}\n"
		        "{\"round\":%u,\"key\":\"test_accuracy\",\"value\":"
		        "%g,\"time\":1700000000.5}\n",
		        r, r, 0.2 * r);
		fclose(f);
		tracking_round(t, r);
	}
	CHECK_EQ_INT(tracking_finish(t, "FINISHED", 1), 1);
	tracking_free(t);
	char *tbdir = xasprintf("%s/tensorboard", ws);
	DIR *d = opendir(tbdir);
	CHECK(d != NULL);
	struct dirent *de;
	char *file = NULL;
	while (d && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "events.out.tfevents.", 20) == 0)
			file = xasprintf("%s/%s", tbdir, de->d_name);
	if (d)
		closedir(d);
	CHECK(file != NULL);
	struct event_read ev[16];
	size_t n = file ? read_events(file, ev, 16) : 0;
	CHECK_EQ_INT(n, 5);
	for (size_t i = 1; i < n; i++) {
		CHECK_STR_CONTAINS(ev[i].tag, "test_accuracy");
		CHECK_EQ_INT(ev[i].step, i);
		CHECK_NEAR(ev[i].value, 0.2 * (double)i, 1e-6);
	}
	free(file);
	free(tbdir);
	free(mpath);
	free(mdir);
	free(ws);
}

int
main(void)
{
	RUN(test_crc32c);
	RUN(test_scalars);
	RUN(test_tracking_feed);
	return harness_finish();
}
