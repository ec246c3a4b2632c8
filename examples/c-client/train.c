/* train.c: a user's own training program in C on libcohort-client
 * (cohort/client.h): federated linear regression. Every client draws its
 * own samples y = x . w* + b* + noise from a generator seeded by the job
 * and its id (a true w* shared by all, each client's x shifted by its id,
 * so the clients' data differ); a fit runs epochs of full-batch gradient
 * descent on the mean squared error from the global model; an evaluate
 * reports the mean squared error of the global model on fresh samples.
 * The job's initial model (model.name custom, no model.init) is this
 * program's answer to the init task: zeros.
 *
 * Build: cc -O2 train.c $(pkg-config --cflags --libs cohort-client) -lm
 * (README.md beside it). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cohort/client.h>

#define DIM 8       /* features */
#define SAMPLES 256 /* per client */

/* splitmix64: a small generator for the samples. */
static uint64_t
next_u64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
uniform(uint64_t *s)
{
	return (double)(next_u64(s) >> 11) * 0x1p-53 * 2.0 - 1.0;
}

/* The client's samples (x: SAMPLES x DIM, y: SAMPLES); eval draws others. */
static void
client_data(uint64_t job_seed, int64_t client, int eval, float *x, float *y)
{
	uint64_t truth = job_seed;
	float w[DIM];
	for (int j = 0; j < DIM; j++)
		w[j] = (float)uniform(&truth);
	float b = (float)uniform(&truth);
	uint64_t s = job_seed ^ (uint64_t)(client + 1) * 0x2545f4914f6cdd1dull ^
	             (eval ? 0xe7a1ull : 0);
	for (int i = 0; i < SAMPLES; i++) {
		double dot = b;
		for (int j = 0; j < DIM; j++) {
			x[i * DIM + j] = (float)(uniform(&s) + 0.1 * client);
			dot += w[j] * x[i * DIM + j];
		}
		y[i] = (float)(dot + 0.01 * uniform(&s));
	}
}

/* Mean squared error of (w, b) on the samples. */
static double
mse(const float *w, float b, const float *x, const float *y)
{
	double sum = 0;
	for (int i = 0; i < SAMPLES; i++) {
		double e = b - y[i];
		for (int j = 0; j < DIM; j++)
			e += w[j] * x[i * DIM + j];
		sum += e * e;
	}
	return sum / SAMPLES;
}

/* The model's two tensors in the task (global or update): w [DIM], b [1]. */
static int
model_tensors(struct cohort_task *t, int update, float **w, float **b)
{
	struct cohort_tensor tw, tb;
	size_t iw = 0, ib = 1;
	if (cohort_task_tensors(t) != 2)
		return cohort_fail(t, "model", "expected 2 tensors, w and b"),
		       -1;
	struct cohort_tensor first;
	cohort_task_tensor(t, 0, &first);
	if (strcmp(first.name, "w") != 0)
		iw = 1, ib = 0;
	int rc = update ? cohort_task_update_tensor(t, iw, &tw) |
	                      cohort_task_update_tensor(t, ib, &tb)
	                : cohort_task_tensor(t, iw, &tw) |
	                      cohort_task_tensor(t, ib, &tb);
	if (rc != 0 || strcmp(tw.name, "w") != 0 || strcmp(tb.name, "b") != 0 ||
	    tw.dtype != COHORT_F32 || tb.dtype != COHORT_F32 ||
	    tw.nbytes != DIM * sizeof(float) || tb.nbytes != sizeof(float))
		return cohort_fail(t, "model",
		                   "expected F32 tensors w [%d] and b [1]",
		                   DIM),
		       -1;
	*w = tw.data;
	*b = tb.data;
	return 0;
}

static void
fit(struct cohort_task *t, const float *x, const float *y)
{
	float *w, *b;
	if (model_tensors(t, 1, &w, &b) != 0)
		return;
	int epochs = (int)cohort_task_num(t, "epochs", 1);
	double lr = cohort_task_num(t, "lr", 0.1);
	for (int e = 0; e < epochs; e++) {
		double gw[DIM] = {0}, gb = 0;
		for (int i = 0; i < SAMPLES; i++) {
			double err = *b - y[i];
			for (int j = 0; j < DIM; j++)
				err += w[j] * x[i * DIM + j];
			for (int j = 0; j < DIM; j++)
				gw[j] += 2 * err * x[i * DIM + j] / SAMPLES;
			gb += 2 * err / SAMPLES;
		}
		for (int j = 0; j < DIM; j++)
			w[j] -= (float)(lr * gw[j]);
		*b -= (float)(lr * gb);
		struct cohort_value v = {"loss", mse(w, *b, x, y)};
		cohort_log(t, (uint64_t)e + 1, &v, 1);
	}
	struct cohort_value m = {"loss", mse(w, *b, x, y)};
	cohort_done(t, SAMPLES, &m, 1);
}

static void
evaluate(struct cohort_task *t, const float *x, const float *y)
{
	float *w, *b;
	if (model_tensors(t, 0, &w, &b) != 0)
		return;
	double loss = mse(w, *b, x, y);
	struct cohort_value m[] = {{"loss", loss},
	                           {"accuracy", 1.0 / (1.0 + loss)}};
	cohort_done(t, SAMPLES, m, 2);
}

static void
init(struct cohort_task *t)
{
	float w[DIM] = {0}, b = 0;
	struct cohort_tensor model[] = {
	    {.name = "w",
	     .dtype = COHORT_F32,
	     .rank = 1,
	     .shape = {DIM},
	     .data = w},
	    {.name = "b",
	     .dtype = COHORT_F32,
	     .rank = 1,
	     .shape = {1},
	     .data = &b},
	};
	cohort_done_init(t, model, 2);
}

int
main(void)
{
	char err[256];
	struct cohort_client *cl = cohort_open(err, sizeof err);
	if (cl == NULL) {
		fprintf(stderr, "train: %s\n", err);
		return 2;
	}
	static float x[SAMPLES * DIM], y[SAMPLES];
	struct cohort_task *t;
	while (cohort_next(cl, &t) > 0) {
		uint64_t seed = (uint64_t)cohort_task_num(t, "job_seed", 0);
		int64_t client = cohort_task_client(t);
		switch (cohort_task_kind(t)) {
		case COHORT_INIT:
			init(t);
			break;
		case COHORT_FIT:
			client_data(seed, client, 0, x, y);
			fit(t, x, y);
			break;
		case COHORT_EVALUATE:
			client_data(seed, client, 1, x, y);
			evaluate(t, x, y);
			break;
		}
	}
	return cohort_close(cl);
}
