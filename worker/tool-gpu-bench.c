/* tool-gpu-bench.c: cohort-gpu-bench: what a task costs on a device, through
 * the backend API a worker uses: backend_open (context creation), each
 * task's wall time and training throughput, in one process (pool mode) or
 * in one fresh process per task (spawn mode, as the launcher runs them).
 * Data are synthetic, Fashion-MNIST-shaped (1x28x28, 10 classes), so
 * timings do not depend on a dataset being installed.
 *
 * usage: cohort-gpu-bench [--device D] [--model mlp|cnn] [--samples N]
 *                         [--batch B] [--epochs E] [--tasks T] [--spawn P]
 * Prints one "key=value ..." line per task and a summary line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "rng.h"
#include "util.h"

struct options {
	const char *device, *model;
	unsigned samples, batch, epochs, tasks, spawn;
};

/* A synthetic Fashion-MNIST-shaped dataset whose class sets a bright band
 * of rows, so training has something to learn. */
static void
synthetic_dataset(struct dataset *ds, unsigned n, uint64_t seed)
{
	const unsigned side = 28, classes = 10, plane = side * side;
	uint8_t *pixels = xmalloc((size_t)n * plane);
	uint8_t *labels = xmalloc(n);
	struct rng r;
	rng_seed(&r, seed, 0);
	for (unsigned i = 0; i < n; i++) {
		unsigned c = (unsigned)rng_below(&r, classes);
		labels[i] = (uint8_t)c;
		for (unsigned j = 0; j < plane; j++) {
			unsigned row = j / side, lit = row / 3 == c;
			pixels[(size_t)i * plane + j] =
			    (uint8_t)(rng_next(&r) % 128 + (lit ? 127 : 0));
		}
	}
	memset(ds, 0, sizeof *ds);
	ds->count = n;
	ds->channels = 1, ds->height = side, ds->width = side;
	ds->classes = classes;
	ds->mean[0] = 0.2860f, ds->std[0] = 0.3530f;
	for (int p = 0; p < 256; p++)
		ds->norm[0][p] = ((float)p / 255.0f - ds->mean[0]) / ds->std[0];
	ds->pixels = pixels;
	ds->labels = labels;
}

/* Parse an unsigned option value >= 1; exits 2 on a bad one. */
static unsigned
parse_count(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 100000000) {
		fprintf(stderr,
		        "cohort-gpu-bench: %s needs a count >= 1, "
		        "not \"%s\"\n",
		        opt, s);
		exit(2);
	}
	return (unsigned)v;
}

/* Read argv into o; exits 2 on a usage error. */
static void
parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){"auto", "mlp", 600, 32, 1, 1, 0};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr,
			        "cohort-gpu-bench: %s needs a value "
			        "(see the usage in tool-gpu-bench.c)\n",
			        a);
			exit(2);
		}
		const char *v = argv[++i];
		if (strcmp(a, "--device") == 0)
			o->device = v;
		else if (strcmp(a, "--model") == 0)
			o->model = v;
		else if (strcmp(a, "--samples") == 0)
			o->samples = parse_count(a, v);
		else if (strcmp(a, "--batch") == 0)
			o->batch = parse_count(a, v);
		else if (strcmp(a, "--epochs") == 0)
			o->epochs = parse_count(a, v);
		else if (strcmp(a, "--tasks") == 0)
			o->tasks = parse_count(a, v);
		else if (strcmp(a, "--spawn") == 0)
			o->spawn = parse_count(a, v);
		else {
			fprintf(stderr, "cohort-gpu-bench: unknown option %s\n",
			        a);
			exit(2);
		}
	}
}

/* Open the backend once and run o->tasks training tasks on it, each from
 * the same initial model, as a pooled worker would. */
static int
run_pool(const struct options *o)
{
	struct ipc_error err;
	struct dataset ds;
	synthetic_dataset(&ds, o->samples, 1);
	double t0 = now_seconds();
	struct backend *b;
	if (backend_open(o->device, &b, &err) != 0) {
		fprintf(stderr, "cohort-gpu-bench: %s\n", err.message);
		return 1;
	}
	double open_s = now_seconds() - t0;
	struct model_shape shape = {1, 28, 28, 10};
	struct model *m = model_create(o->model, &shape, &err);
	if (m == NULL) {
		fprintf(stderr, "cohort-gpu-bench: %s\n", err.message);
		backend_close(b);
		return 2;
	}
	size_t bytes = model_manifest(m)->total_size;
	float *init = xmalloc(bytes), *params = xmalloc(bytes);
	model_init(m, init, 7);
	struct train_config cfg;
	train_config_defaults(&cfg);
	cfg.epochs = o->epochs;
	cfg.batch_size = o->batch;
	int rc = 0;
	double later = 0.0;
	for (unsigned k = 0; k < o->tasks && rc == 0; k++) {
		struct train_stats st;
		double acc = 0.0, loss = 0.0;
		memcpy(params, init, bytes);
		double t1 = now_seconds();
		rc = b->train(b, m, params, NULL, &ds, NULL, 0, &cfg, &st, NULL,
		              NULL, &err);
		double task_s = now_seconds() - t1;
		if (rc == 0)
			rc = b->evaluate(b, m, params, &ds, NULL, 0, 256, &loss,
			                 &acc, &err);
		if (rc != 0) {
			fprintf(stderr, "cohort-gpu-bench: task %u: %s\n", k,
			        err.message);
			break;
		}
		if (k > 0)
			later += task_s;
		printf("task=%u device=%s model=%s samples=%u batch=%u "
		       "epochs=%u open_s=%.6f task_s=%.6f train_s=%.6f "
		       "samples_per_s=%.1f gflops=%.2f loss=%.4f acc=%.4f\n",
		       k, b->name, o->model, o->samples, o->batch, o->epochs,
		       k == 0 ? open_s : 0.0, task_s, st.seconds,
		       (double)o->samples * o->epochs / st.seconds, st.gflops,
		       loss, acc);
	}
	if (rc == 0 && o->tasks > 1)
		printf("summary mode=pool device=%s model=%s tasks=%u "
		       "open_s=%.6f mean_later_task_s=%.6f\n",
		       b->name, o->model, o->tasks, open_s,
		       later / (o->tasks - 1));
	free(init), free(params);
	free((void *)ds.pixels), free((void *)ds.labels);
	model_free(m);
	backend_close(b);
	return rc == 0 ? 0 : 1;
}

/* Run o->spawn child processes of this tool with --tasks 1, one after the
 * other, timing each from fork to exit (process start, context creation,
 * task, teardown), as the launcher's spawn mode costs. */
static int
run_spawn(const struct options *o, int argc, char **argv)
{
	double total = 0.0;
	for (unsigned k = 0; k < o->spawn; k++) {
		char *args[32];
		int n = 0;
		args[n++] = argv[0];
		for (int i = 1; i + 1 < argc && n < 28; i += 2) {
			if (strcmp(argv[i], "--spawn") == 0 ||
			    strcmp(argv[i], "--tasks") == 0)
				continue;
			args[n++] = argv[i];
			args[n++] = argv[i + 1];
		}
		args[n++] = "--tasks";
		args[n++] = "1";
		args[n] = NULL;
		fflush(stdout);
		double t0 = now_seconds();
		pid_t pid = fork();
		if (pid < 0) {
			perror("cohort-gpu-bench: fork");
			return 1;
		}
		if (pid == 0) {
			execv("/proc/self/exe", args);
			perror("cohort-gpu-bench: exec");
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "cohort-gpu-bench: child %u failed\n",
			        k);
			return 1;
		}
		double wall = now_seconds() - t0;
		total += wall;
		printf("spawn=%u process_wall_s=%.6f\n", k, wall);
	}
	printf("summary mode=spawn device=%s model=%s tasks=%u "
	       "mean_process_wall_s=%.6f\n",
	       o->device, o->model, o->spawn, total / o->spawn);
	return 0;
}

/* Pool mode unless --spawn asks for one process per task. */
int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-gpu-bench"))
		return 0;
	struct options o;
	log_init("cohort-gpu-bench", LOG_INFO);
	parse_options(argc, argv, &o);
	if (o.spawn > 0)
		return run_spawn(&o, argc, argv);
	return run_pool(&o);
}
