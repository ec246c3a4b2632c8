/* test_backend.c: the cpu backend is train.h; "auto" falls back to the CPU
 * with one log line saying why; "cuda" that cannot be honoured is an error
 * naming the cause; a CUDA-enabled build's worker does not link CUDA. */
#include "backend.h"
#include "gpuinfo.h"
#include "harness.h"
#include "model.h"
#include "rng.h"
#include "train.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A separable in-memory 1x6x6 dataset of 3 classes (rows 2c, 2c+1 lit). */
struct toy {
	struct dataset ds;
	uint8_t pixels[300 * 36];
	uint8_t labels[300];
};
static struct toy toy;

static void
toy_build(void)
{
	memset(&toy.ds, 0, sizeof toy.ds);
	toy.ds.count = 300;
	toy.ds.channels = 1, toy.ds.height = 6, toy.ds.width = 6;
	toy.ds.classes = 3;
	for (int p = 0; p < 256; p++)
		toy.ds.norm[0][p] = ((float)p / 255.0f - 0.5f) / 0.5f;
	struct rng r;
	rng_seed(&r, 11, 0);
	for (int i = 0; i < 300; i++) {
		int c = (int)rng_below(&r, 3);
		toy.labels[i] = (uint8_t)c;
		for (int j = 0; j < 36; j++)
			toy.pixels[i * 36 + j] =
			    (uint8_t)(rng_below(&r, 100) +
			              (j / 6 / 2 == c ? 120 : 0));
	}
	toy.ds.pixels = toy.pixels;
	toy.ds.labels = toy.labels;
}

/* Run backend_open with stderr captured into buf (the log lines). */
static int
open_capturing(const char *device, struct backend **b, struct ipc_error *err,
               char *buf, size_t cap)
{
	char path[512];
	snprintf(path, sizeof path, "%s/stderr.txt", harness_tmpdir());
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	dup2(fd, 2);
	close(fd);
	int rc = backend_open(device, b, err);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	FILE *f = fopen(path, "r");
	size_t got = f != NULL ? fread(buf, 1, cap - 1, f) : 0;
	buf[got] = '\0';
	if (f != NULL)
		fclose(f);
	return rc;
}

/* Lines in s. */
static int
count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
test_cpu_backend_is_train_local(void)
{
	struct ipc_error err;
	struct backend *b;
	toy_build();
	CHECK(backend_open("cpu", &b, &err) == 0);
	CHECK(strcmp(b->name, "cpu") == 0);
	struct model_shape s = {1, 6, 6, 3};
	struct model *m = model_create("mlp", &s, &err);
	size_t bytes = model_manifest(m)->total_size;
	float *a = malloc(bytes), *c = malloc(bytes);
	model_init(m, a, 3);
	memcpy(c, a, bytes);
	struct train_config cfg;
	train_config_defaults(&cfg);
	cfg.epochs = 2;
	struct train_stats sa, sc;
	CHECK(b->train(b, m, a, NULL, &toy.ds, NULL, 0, &cfg, &sa, NULL, NULL,
	               &err) == 0);
	CHECK(train_local(m, c, NULL, &toy.ds, NULL, 0, &cfg, &sc, NULL, NULL,
	                  &err) == 0);
	CHECK(memcmp(a, c, bytes) == 0);
	CHECK_EQ_INT(sa.steps, sc.steps);
	double la, aa, lc, ac;
	CHECK(b->evaluate(b, m, a, &toy.ds, NULL, 0, 64, &la, &aa, &err) == 0);
	CHECK(model_evaluate(m, a, &toy.ds, NULL, 0, 64, &lc, &ac, &err) == 0);
	CHECK(la == lc && aa == ac);
	CHECK(aa > 0.9);
	/* errors pass through unchanged */
	uint32_t bad[1] = {300};
	CHECK(b->train(b, m, a, NULL, &toy.ds, bad, 1, &cfg, &sa, NULL, NULL,
	               &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_BOUNDS);
	free(a), free(c);
	model_free(m);
	backend_close(b);
	backend_close(NULL);
}

static void
test_bad_device_strings(void)
{
	const char *bad[] = {"gpu",     "cuda:", "cuda:x", "cuda:-1",
	                     "cuda:1x", "CPU",   ""};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct ipc_error err;
		struct backend *b = (struct backend *)&err;
		CHECK(backend_open(bad[i], &b, &err) == -1);
		CHECK(b == NULL);
		CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
		CHECK_STR_CONTAINS(err.message, "auto, cpu, cuda, cuda:N");
	}
}

static void
test_auto_falls_back_when_plugin_missing(void)
{
	struct ipc_error err;
	struct backend *b;
	char log[4096];
	setenv("COHORT_CUDA_PLUGIN", "/nonexistent/libcohort-cuda.so", 1);
	int rc = open_capturing("auto", &b, &err, log, sizeof log);
	unsetenv("COHORT_CUDA_PLUGIN");
	CHECK(rc == 0);
	CHECK(b != NULL && strcmp(b->name, "cpu") == 0);
	CHECK_EQ_INT(count_lines(log), 1);
	CHECK_STR_CONTAINS(log, "device auto: training on the CPU");
	if (access("/dev/nvidiactl", F_OK) != 0) {
		/* No driver: auto gives up before loading any plugin. */
		CHECK_STR_CONTAINS(log, "no NVIDIA driver");
	} else {
		CHECK_STR_CONTAINS(log, "CUDA plugin missing");
		if (backend_cuda_built())
			CHECK_STR_CONTAINS(log,
			                   "/nonexistent/libcohort-cuda.so");
	}
	backend_close(b);
}

static void
test_cuda_unavailable_is_a_clear_error(void)
{
	struct ipc_error err;
	struct backend *b;
	if (!backend_cuda_built())
		harness_skip("CUDA-OFF build: covered by "
		             "test_off_build_reports_plugin_missing");
	setenv("COHORT_CUDA_PLUGIN", "/nonexistent/libcohort-cuda.so", 1);
	CHECK(backend_open("cuda", &b, &err) == -1);
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "device cuda: CUDA plugin missing");
	CHECK_STR_CONTAINS(err.message, "/nonexistent/libcohort-cuda.so");
	/* a library that is not a cohort plugin */
	setenv("COHORT_CUDA_PLUGIN", "libm.so.6", 1);
	CHECK(backend_open("cuda:0", &b, &err) == -1);
	CHECK_STR_CONTAINS(err.message, "no symbol cohort_cuda_plugin");
	unsetenv("COHORT_CUDA_PLUGIN");
}

static void
test_cuda_with_the_built_plugin(void)
{
	struct ipc_error err;
	struct backend *b;
	char log[4096];
	if (!backend_cuda_built())
		harness_skip("CUDA-OFF build: no plugin to load");
	setenv("COHORT_CUDA_PLUGIN",
	       harness_build_path("worker/libcohort-cuda.so"), 1);
	CHECK(backend_cuda_plugin(&err) != NULL);
	if (backend_open("cuda:0", &b, &err) == 0) {
		/* a GPU: auto takes it without a log line */
		CHECK(strcmp(b->name, "cuda:0") == 0);
		backend_close(b);
		CHECK(open_capturing("auto", &b, &err, log, sizeof log) == 0);
		CHECK(strcmp(b->name, "cuda:0") == 0);
		CHECK_EQ_INT(count_lines(log), 0);
		backend_close(b);
		CHECK(backend_open("cuda:1000", &b, &err) == -1);
		CHECK_STR_CONTAINS(err.message, "device 1000 requested");
		return;
	}
	/* no GPU (or no driver): the reason is named, auto falls back */
	CHECK_EQ_INT(err.code, IPC_E_IO);
	CHECK_STR_CONTAINS(err.message, "device cuda:0: ");
	CHECK(strstr(err.message, "no CUDA device") != NULL ||
	      strstr(err.message, "unusable") != NULL);
	CHECK_STR_CONTAINS(err.message, "cuda");
	CHECK(open_capturing("auto", &b, &err, log, sizeof log) == 0);
	CHECK(strcmp(b->name, "cpu") == 0);
	CHECK_EQ_INT(count_lines(log), 1);
	CHECK_STR_CONTAINS(log, "device auto: training on the CPU");
	backend_close(b);
}

static void
test_off_build_reports_plugin_missing(void)
{
	struct ipc_error err;
	struct backend *b;
	if (backend_cuda_built())
		harness_skip("CUDA build: covered by "
		             "test_cuda_unavailable_is_a_clear_error");
	CHECK(backend_open("cuda", &b, &err) == -1);
	CHECK_STR_CONTAINS(err.message, "CUDA plugin missing");
	CHECK_STR_CONTAINS(err.message, "COHORT_CUDA=OFF");
	CHECK(backend_cuda_plugin(&err) == NULL);
}

static void
test_worker_does_not_link_cuda(void)
{
	const char *worker = harness_build_path("worker/cohort-worker");
	if (access(worker, X_OK) != 0)
		harness_skip("cohort-worker not built");
	char cmd[1200], line[512];
	snprintf(cmd, sizeof cmd, "ldd '%s' 2>&1", worker);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL);
	if (p == NULL)
		return;
	int lines = 0;
	while (fgets(line, sizeof line, p) != NULL) {
		lines++;
		CHECK(strstr(line, "libcudart") == NULL);
		CHECK(strstr(line, "libcublas") == NULL);
		CHECK(strstr(line, "libcuda.so") == NULL);
	}
	CHECK(pclose(p) == 0);
	CHECK(lines > 0);
}

static void
test_gpuinfo_reports_devices_or_why_not(void)
{
	struct ipc_error err;
	struct gpuinfo_device d[16];
	unsigned n = 99;
	if (gpuinfo_query(d, ARRAY_LEN(d), &n, &err) != 0) {
		CHECK_EQ_INT(n, 0);
		CHECK_EQ_INT(err.code, IPC_E_IO);
		CHECK_STR_CONTAINS(err.message, "gpuinfo: ");
		CHECK(strstr(err.message, "libnvidia-ml.so.1") != NULL ||
		      strstr(err.message, "nvml") != NULL);
		return;
	}
	for (unsigned i = 0; i < n && i < ARRAY_LEN(d); i++) {
		CHECK(d[i].name[0] != '\0');
		CHECK(d[i].total_bytes > 0);
		CHECK(d[i].free_bytes <= d[i].total_bytes);
	}
}

int
main(void)
{
	log_init("test_backend", LOG_INFO);
	RUN(test_cpu_backend_is_train_local);
	RUN(test_bad_device_strings);
	RUN(test_auto_falls_back_when_plugin_missing);
	RUN(test_cuda_unavailable_is_a_clear_error);
	RUN(test_cuda_with_the_built_plugin);
	RUN(test_off_build_reports_plugin_missing);
	RUN(test_worker_does_not_link_cuda);
	RUN(test_gpuinfo_reports_devices_or_why_not);
	return harness_finish();
}
