/* test_round.c: the round engine on a real job (workspace, fake worker's
 * prepare step, model, metrics, checkpoints) with a stand-in for the
 * launcher: the test receives every task the engine submits, gets each
 * task's frame and shared memory through the launcher hooks, writes the
 * updates and answers results and failures itself, in any order. It checks
 * the phases a round goes through, the FedAvg of the updates, central
 * evaluation, checkpoints, retries with a new sample, the job failing after
 * its retries, what federation.on_unavailable does with too few clients
 * available, and that answers for tasks of another attempt or phase
 * change nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "job.h"
#include "taskconf.h"

#define MAX_SUBMITTED 64

static struct {
	uint64_t task[MAX_SUBMITTED];
	int64_t client[MAX_SUBMITTED];
	unsigned n;
} sub;

static void
fake_submit(struct job *j, uint64_t task_id, int64_t client)
{
	(void)j;
	CHECK(sub.n < MAX_SUBMITTED);
	if (sub.n < MAX_SUBMITTED) {
		sub.task[sub.n] = task_id;
		sub.client[sub.n] = client;
	}
	sub.n++;
}

/* A job of 4 clients, 3 rounds, on the fake worker's model, opened but
 * not started. */
static void
open_job(struct job *j, struct config *cfg, const char *name,
         const char *const *sets)
{
	struct ipc_error err;
	config_defaults(cfg);
	char root[600], worker[600];
	snprintf(root, sizeof root, "job.workspace_root=%s/%s",
	         harness_tmpdir(), name);
	snprintf(worker, sizeof worker, "launcher.worker=%s",
	         harness_build_path("tests/cohort-test-fake-worker"));
	const char *base[] = {"federation.clients=4",
	                      "federation.min_clients=2",
	                      "federation.fit_clients=4",
	                      "federation.rounds=3",
	                      "output.progress=never",
	                      "tracking.tensorboard=false",
	                      "tracking.report=false",
	                      root,
	                      worker};
	for (size_t i = 0; i < sizeof base / sizeof *base; i++)
		CHECK_EQ_INT(config_set(cfg, base[i], &err), 0);
	for (size_t i = 0; sets != NULL && sets[i] != NULL; i++)
		CHECK_EQ_INT(config_set(cfg, sets[i], &err), 0);
	CHECK_EQ_INT(config_check(cfg, &err), 0);
	CHECK_EQ_INT(job_open(j, cfg, NULL), 0);
	j->submit = fake_submit;
	sub.n = 0;
}

/* What the engine's hooks give a worker for task: its frame decodes, names
 * a fit's keys, and comes with the global model and an update segment. */
static int
take_task(struct job *j, uint64_t task_id, int fit)
{
	uint8_t *frame;
	size_t len;
	CHECK_EQ_INT(round_encode_task(j, task_id, getpid(), &frame, &len), 0);
	struct msg m;
	struct ipc_error err;
	CHECK_EQ_INT(msg_decode(frame + FRAME_HEADER_SIZE,
	                        len - FRAME_HEADER_SIZE, &m, &err),
	             0);
	free(frame);
	CHECK_EQ_INT(m.u.task.kind, fit ? TASK_FIT : TASK_EVALUATE);
	CHECK_EQ_INT(taskconf_check(&m.u.task, &err), 0);
	msg_free(&m);
	int fds[FRAME_FDS_MAX];
	int n = round_task_fds(j, task_id, getpid(), fds, FRAME_FDS_MAX);
	CHECK_EQ_INT(n, fit ? 2 : 1);
	return fit && n == 2 ? fds[1] : -1;
}

/* Answer fit task_id of client with an update of every weight v, for
 * examples examples. */
static void
answer_fit(struct job *j, uint64_t task_id, float v, uint64_t examples)
{
	int fd = take_task(j, task_id, 1);
	size_t nf = j->model.total_size / sizeof(float);
	float *u = xcalloc(nf, sizeof *u);
	for (size_t i = 0; i < j->model.count; i++) {
		const struct tensor_desc *t = &j->model.tensors[i];
		for (size_t k = 0; k < t->nbytes / sizeof(float); k++)
			u[t->offset / sizeof(float) + k] = v;
	}
	CHECK(pwrite(fd, u, j->model.total_size, 0) ==
	      (ssize_t)j->model.total_size);
	free(u);
	struct msg m;
	msg_init(&m, MSG_RESULT);
	m.u.result.task_id = task_id;
	m.u.result.num_examples = examples;
	m.u.result.params.where = PARAMS_FD;
	m.u.result.params.fd = 1;
	m.u.result.params.size = j->model.total_size;
	tensor_manifest_copy(&m.u.result.params.manifest, &j->model);
	kv_set_num(&m.u.result.metrics, "loss", 0.5);
	round_on_result(j, task_id, &m);
	msg_free(&m);
}

/* Answer the central evaluation. */
static void
answer_eval(struct job *j, uint64_t task_id, double acc)
{
	take_task(j, task_id, 0);
	struct msg m;
	msg_init(&m, MSG_RESULT);
	m.u.result.task_id = task_id;
	m.u.result.num_examples = 100;
	kv_set_num(&m.u.result.metrics, "loss", 0.25);
	kv_set_num(&m.u.result.metrics, "accuracy", acc);
	round_on_result(j, task_id, &m);
	msg_free(&m);
}

/* Every weight of the current global model equals v. */
static int
global_is(struct job *j, float v)
{
	size_t nf = j->model.total_size / sizeof(float);
	float *g = xcalloc(nf, sizeof *g);
	CHECK(pread(j->global.fd, g, j->model.total_size, 0) ==
	      (ssize_t)j->model.total_size);
	int ok = 1;
	for (size_t i = 0; i < j->model.count; i++) {
		const struct tensor_desc *t = &j->model.tensors[i];
		for (size_t k = 0; k < t->nbytes / sizeof(float); k++)
			ok &=
			    fabsf(g[t->offset / sizeof(float) + k] - v) < 1e-6f;
	}
	free(g);
	return ok;
}

/* A file of the job's workspace exists. */
static int
ws_has(struct job *j, const char *rel)
{
	char *p = workspace_path(&j->ws, rel);
	struct stat st;
	int ok = stat(p, &st) == 0;
	free(p);
	return ok;
}

/* Round 1 in full: 4 fits, FedAvg by examples, the central evaluation,
 * the checkpoint, round 2 started; then round 2 fails its retry and the
 * job. Answers in the wrong phase or attempt change nothing. */
static void
test_rounds_retry_and_failure(void)
{
	struct job j;
	struct config cfg;
	const char *sets[] = {"federation.min_fit=2",
	                      "federation.round_retries=1", NULL};
	open_job(&j, &cfg, "a", sets);
	CHECK_EQ_INT(j.r.phase, ROUND_IDLE);
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(j.r.phase, ROUND_FIT);
	CHECK_EQ_INT(sub.n, 4);
	int seen[4] = {0};
	for (unsigned i = 0; i < 4; i++)
		if (sub.client[i] >= 0 && sub.client[i] < 4)
			seen[sub.client[i]]++;
	CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1);

	/* Client c sends weights c + 1 for 10 (c + 1) examples: the mean
	 * is sum (c+1)^2 / sum (c+1) = 30 / 10 = 3. Answered out of order. */
	uint64_t fits[4];
	memcpy(fits, sub.task, sizeof fits);
	int64_t clients[4];
	memcpy(clients, sub.client, sizeof clients);
	for (int k = 3; k >= 0; k--) {
		float v = (float)(clients[k] + 1);
		answer_fit(&j, fits[k], v, 10 * (uint64_t)(clients[k] + 1));
		if (k > 0)
			CHECK_EQ_INT(j.r.phase, ROUND_FIT);
	}
	CHECK_EQ_INT(j.r.ok, 4);
	CHECK_EQ_INT(j.r.phase, ROUND_EVALUATE);
	CHECK(global_is(&j, 3.0f));
	CHECK_EQ_INT(sub.n, 5);
	CHECK_EQ_INT(sub.client[4], -1); /* the central evaluation */
	/* A fit answered twice changes nothing. */
	round_on_failed(&j, fits[0], "late");
	CHECK_EQ_INT(j.r.ok, 4);
	CHECK_EQ_INT(j.r.failed, 0);

	answer_eval(&j, sub.task[4], 0.75);
	CHECK(ws_has(&j, "checkpoints/round-0001.safetensors"));
	CHECK(ws_has(&j, "checkpoints/state.json"));
	CHECK_EQ_INT(json_array_size(j.history), 1);
	CHECK_NEAR(json_real_value(json_object_get(json_array_get(j.history, 0),
	                                           "test_accuracy")),
	           0.75, 1e-12);
	/* Round 2 started at once. */
	CHECK_EQ_INT(j.round, 2);
	CHECK_EQ_INT(j.r.phase, ROUND_FIT);
	CHECK_EQ_INT(sub.n, 9);

	/* Round 2: one fit in, three fail: below min_fit, so a retry with a
	 * new sample and new task ids. */
	uint64_t r2[4];
	memcpy(r2, sub.task + 5, sizeof r2);
	answer_fit(&j, r2[0], 1.0f, 10);
	for (int k = 1; k < 4; k++)
		round_on_failed(&j, r2[k], "worker exited with status 1");
	CHECK_EQ_INT(j.r.attempt, 1);
	CHECK_EQ_INT(j.r.phase, ROUND_FIT);
	CHECK_EQ_INT(sub.n, 13);
	CHECK(sub.task[9] > r2[3]);
	CHECK_STR_CONTAINS(j.r.failure_notes, "worker exited with status 1");
	/* The first attempt's tasks are gone: the launcher could not even
	 * encode them, and their answers are ignored. */
	uint8_t *frame;
	size_t len;
	CHECK_EQ_INT(round_encode_task(&j, r2[1], getpid(), &frame, &len), -1);
	struct msg late;
	msg_init(&late, MSG_RESULT);
	late.u.result.task_id = r2[1];
	late.u.result.num_examples = 10;
	late.u.result.params.where = PARAMS_FD;
	late.u.result.params.fd = 1;
	round_on_result(&j, r2[1], &late);
	msg_free(&late);
	CHECK_EQ_INT(j.r.ok, 0);
	CHECK_EQ_INT(j.r.done, 0);

	/* The retry fails too: the job stops, the checkpoint of round 1
	 * stands. */
	for (int k = 9; k < 13; k++)
		round_on_failed(&j, sub.task[k], "killed");
	CHECK_EQ_INT(j.r.phase, ROUND_STOPPED);
	CHECK_EQ_INT(j.exit_code, JOB_EXIT_FAILED);
	CHECK(global_is(&j, 3.0f));
	CHECK_EQ_INT(sub.n, 13);
	/* Nothing moves a stopped job. */
	round_on_failed(&j, sub.task[12], "again");
	struct msg eval;
	msg_init(&eval, MSG_RESULT);
	eval.u.result.task_id = sub.task[4];
	eval.u.result.num_examples = 100;
	kv_set_num(&eval.u.result.metrics, "accuracy", 0.5);
	round_on_result(&j, sub.task[4], &eval);
	msg_free(&eval);
	CHECK_EQ_INT(j.r.phase, ROUND_STOPPED);
	CHECK_EQ_INT(json_array_size(j.history), 1);
	CHECK_EQ_INT(sub.n, 13);
	job_close(&j);
	config_free(&cfg);
}

/* The last round ends the job with exit 0 after its checkpoint; a failed
 * central evaluation is reported and the round still completes. */
static void
test_last_round_and_failed_evaluation(void)
{
	struct job j;
	struct config cfg;
	const char *sets[] = {"federation.rounds=1", NULL};
	open_job(&j, &cfg, "b", sets);
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(sub.n, 4);
	for (unsigned k = 0; k < 4; k++)
		answer_fit(&j, sub.task[k], 2.0f, 5);
	CHECK_EQ_INT(j.r.phase, ROUND_EVALUATE);
	CHECK(global_is(&j, 2.0f));
	round_on_failed(&j, sub.task[4], "worker killed by signal 9");
	CHECK_EQ_INT(j.r.phase, ROUND_STOPPED);
	CHECK_EQ_INT(j.exit_code, JOB_EXIT_OK);
	CHECK_EQ_INT(json_array_size(j.history), 1);
	CHECK(json_is_null(
	    json_object_get(json_array_get(j.history, 0), "test_accuracy")));
	CHECK(ws_has(&j, "checkpoints/round-0001.safetensors"));
	job_close(&j);
	config_free(&cfg);
}

/* Fewer clients available than min_clients: the job fails at the start
 * of the round without submitting anything. */
static void
test_too_few_clients(void)
{
	struct job j;
	struct config cfg;
	const char *sets[] = {"federation.availability=0", NULL};
	open_job(&j, &cfg, "c", sets);
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(sub.n, 0);
	CHECK_EQ_INT(j.r.phase, ROUND_STOPPED);
	CHECK_EQ_INT(j.exit_code, JOB_EXIT_FAILED);
	job_close(&j);
	config_free(&cfg);
}

/* federation.on_unavailable: wait draws availability again until
 * min_clients are (4 of 4 online with p 0.5: a 1 in 16 draw) and samples
 * exactly fit_clients; skip records rounds without clients as skipped and
 * the job ends well; fail ends it at once; too few clients left after
 * exclusions fail the job whatever the policy, as no draw brings them back. */
static void
test_unavailable_policies(void)
{
	struct job j;
	struct config cfg;
	const char *wait[] = {"federation.min_clients=4",
	                      "federation.availability=0.5", NULL};
	open_job(&j, &cfg, "w", wait);
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(j.r.phase, ROUND_FIT);
	CHECK_EQ_INT(sub.n, 4);
	job_close(&j);
	config_free(&cfg);

	const char *skip[] = {"federation.availability=0",
	                      "federation.on_unavailable=skip",
	                      "federation.rounds=2", NULL};
	open_job(&j, &cfg, "s", skip);
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(sub.n, 0);
	CHECK_EQ_INT(j.r.phase, ROUND_STOPPED);
	CHECK_EQ_INT(j.exit_code, JOB_EXIT_OK);
	CHECK_EQ_INT(json_array_size(j.history), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *h = json_array_get(j.history, i);
		CHECK(json_is_true(json_object_get(h, "skipped")));
		CHECK_EQ_INT(json_integer_value(json_object_get(h, "sampled")),
		             0);
	}
	CHECK(ws_has(&j, "checkpoints/round-0002.safetensors"));
	job_close(&j);
	config_free(&cfg);

	const char *fail[] = {"federation.availability=0",
	                      "federation.on_unavailable=fail", NULL};
	open_job(&j, &cfg, "f", fail);
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(sub.n, 0);
	CHECK_EQ_INT(j.exit_code, JOB_EXIT_FAILED);
	job_close(&j);
	config_free(&cfg);

	const char *gone[] = {"federation.min_clients=4",
	                      "federation.on_unavailable=skip", NULL};
	open_job(&j, &cfg, "x", gone);
	j.consecutive_failures[2] = 3;
	j.round = 1;
	round_start(&j);
	CHECK_EQ_INT(sub.n, 0);
	CHECK_EQ_INT(j.exit_code, JOB_EXIT_FAILED);
	CHECK_EQ_INT(json_array_size(j.history), 0);
	job_close(&j);
	config_free(&cfg);
}

int
main(void)
{
	RUN(test_rounds_retry_and_failure);
	RUN(test_last_round_and_failed_evaluation);
	RUN(test_too_few_clients);
	RUN(test_unavailable_policies);
	return harness_finish();
}
