/* test_launcher.c: the launcher with the fake worker: slots, timeouts
 * (SIGTERM then SIGKILL), exit-status accounting (with the last line of
 * the log of a worker that died before connecting), socket close and process
 * exit in both orders, bad hellos and frames, pool mode, stopping, workers
 * that cannot be started, GPU slots
 * (CUDA_VISIBLE_DEVICES and COHORT_DEVICE per worker, workers per GPU);
 * and that no segment or child process is left behind. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "gpuslots.h"
#include "harness.h"
#include "launcher.h"
#include "message.h"
#include "shm.h"

#define MAX_TASKS 16

struct ctx {
	struct event_base *base;
	struct launcher *l;
	char jobkey[32];
	char global[64];
	struct tensor_manifest manifest;
	struct shm_segment g;
	struct shm_segment u[MAX_TASKS]; /* update segments, made when sent */
	int fds_at_setup;                /* descriptors open before setup */
	int kind_evaluate;
	unsigned submitted, results, failures, metrics;
	char reasons[MAX_TASKS][512];
	unsigned max_alive_seen;
};

static int
encode_task(void *arg, uint64_t task_id, pid_t pid, uint8_t **frame,
            size_t *len)
{
	struct ctx *c = arg;
	(void)pid;
	struct msg m;
	msg_init(&m, MSG_TASK);
	m.u.task.task_id = task_id;
	m.u.task.kind = c->kind_evaluate ? TASK_EVALUATE : TASK_FIT;
	m.u.task.round = 1;
	m.u.task.client_id = (int64_t)(task_id % 4);
	m.u.task.params.where = PARAMS_FD;
	m.u.task.params.fd = 0;
	m.u.task.update_fd = c->kind_evaluate ? -1 : 1;
	m.u.task.params.size = c->manifest.total_size;
	tensor_manifest_copy(&m.u.task.params.manifest, &c->manifest);
	int rc = msg_encode_frame(&m, frame, len);
	msg_free(&m);
	return rc;
}

/* The global model, and for a fit the task's update segment. */
static int
task_fds(void *arg, uint64_t task_id, pid_t pid, int *fds, unsigned cap)
{
	(void)pid;
	struct ctx *c = arg;
	struct ipc_error err;
	CHECK(cap >= 2);
	fds[0] = c->g.fd;
	if (c->kind_evaluate)
		return 1;
	if (task_id >= MAX_TASKS)
		return -1;
	if (c->u[task_id].fd < 0 &&
	    shm_segment_create_empty(&c->u[task_id], "update",
	                             c->manifest.total_size, &err) < 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
	fds[1] = c->u[task_id].fd;
	return 2;
}

static void
on_result(void *arg, uint64_t task_id, const struct msg *m)
{
	struct ctx *c = arg;
	c->results++;
	/* The worker unmapped its update before reporting: it seals. */
	if (m->u.result.params.where == PARAMS_FD && task_id < MAX_TASKS) {
		struct ipc_error err;
		CHECK_EQ_INT(shm_segment_seal_write(&c->u[task_id], &err), 0);
		shm_segment_close(&c->u[task_id]);
	}
}

static void
on_metrics(void *arg, uint64_t task_id, const struct msg *m)
{
	struct ctx *c = arg;
	(void)task_id;
	(void)m;
	c->metrics++;
}

static void
on_failed(void *arg, uint64_t task_id, const char *reason)
{
	struct ctx *c = arg;
	if (task_id < MAX_TASKS)
		snprintf(c->reasons[task_id], sizeof c->reasons[0], "%s",
		         reason);
	c->failures++;
}

static void
on_exited(void *arg, pid_t pid)
{
	(void)pid;
	(void)arg;
}

/* GPU slots, COHORT_DEVICE, worker and log directory of the launchers
 * setup() creates (NULL: none, inherited, the fake worker, tmp/logs). */
static const struct gpuslots *setup_gpus;
static const char *setup_device;
static const char *setup_worker;
static const char *setup_logs;

/* Start a launcher on a fresh socket with the fault given in the env. */
static void
setup(struct ctx *c, const char *fault, unsigned max_concurrent,
      unsigned tasks_per_worker, double timeout_s)
{
	static int seq;
	memset(c, 0, sizeof *c);
	c->fds_at_setup = harness_open_fds();
	for (unsigned i = 0; i < MAX_TASKS; i++)
		c->u[i].fd = -1;
	if (fault != NULL)
		setenv("COHORT_FAKE_FAULT", fault, 1);
	else
		unsetenv("COHORT_FAKE_FAULT");
	c->base = event_base_new();
	snprintf(c->jobkey, sizeof c->jobkey, "%ld-t%d", (long)getpid(), ++seq);
	snprintf(c->global, sizeof c->global, "cohort.%s.g1", c->jobkey);
	struct ipc_error err;
	tensor_manifest_init(&c->manifest);
	uint64_t shape[2] = {4, 3};
	tensor_manifest_add(&c->manifest, "a.weight", DTYPE_F32, 2, shape,
	                    &err);
	if (shm_segment_create(&c->g, c->global, c->manifest.total_size, &err) <
	        0 ||
	    shm_segment_seal_readonly(&c->g, &err) < 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
	char sock[512], logs[512];
	snprintf(sock, sizeof sock, "%s/s%d.sock", harness_tmpdir(), seq);
	snprintf(logs, sizeof logs, "%s/logs", harness_tmpdir());
	mkdir(logs, 0755);
	if (setup_logs != NULL)
		snprintf(logs, sizeof logs, "%s", setup_logs);
	struct launcher_options o = {
	    .worker_path =
	        setup_worker != NULL
	            ? setup_worker
	            : harness_build_path("tests/cohort-test-fake-worker"),
	    .socket_path = sock,
	    .jobkey = c->jobkey,
	    .token = "0123456789abcdef",
	    .workspace = harness_tmpdir(),
	    .log_dir = logs,
	    .max_concurrent = max_concurrent,
	    .tasks_per_worker = tasks_per_worker,
	    .task_timeout_s = timeout_s,
	    .kill_grace_s = 0.2,
	    .device = setup_device,
	    .gpus = setup_gpus,
	};
	struct launcher_hooks h = {.encode_task = encode_task,
	                           .task_fds = task_fds,
	                           .result = on_result,
	                           .metrics = on_metrics,
	                           .failed = on_failed,
	                           .exited = on_exited,
	                           .arg = c};
	c->l = launcher_create(c->base, &o, &h, &err);
	if (c->l == NULL)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
}

/* Periodic wake-up so run() can check its deadline. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctx *c = arg;
	(void)fd;
	(void)what;
	if (launcher_alive(c->l) > c->max_alive_seen)
		c->max_alive_seen = launcher_alive(c->l);
}

/* Run the loop until every task ended and every worker was reaped. */
static void
run(struct ctx *c, double limit_s)
{
	struct event *t = event_new(c->base, -1, EV_PERSIST, tick, c);
	struct timeval tv = {0, 10000};
	event_add(t, &tv);
	double end = now_seconds() + limit_s;
	while ((c->results + c->failures < c->submitted ||
	        launcher_alive(c->l) > 0) &&
	       now_seconds() < end)
		event_base_loop(c->base, EVLOOP_ONCE);
	event_free(t);
	CHECK(now_seconds() < end);
}

/* Free the launcher; assert no descriptor and no child remain. */
static void
teardown(struct ctx *c)
{
	launcher_free(c->l);
	for (unsigned i = 0; i < MAX_TASKS; i++)
		shm_segment_close(&c->u[i]);
	shm_segment_close(&c->g);
	tensor_manifest_free(&c->manifest);
	event_base_free(c->base);
	CHECK_EQ_INT(harness_open_fds(), c->fds_at_setup);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	unsetenv("COHORT_FAKE_FAULT");
	unsetenv("COHORT_FAKE_SLEEP_MS");
}

/* Run the loop until n results arrived. */
static void
wait_results(struct ctx *c, unsigned n)
{
	double end = now_seconds() + 10;
	while (c->results < n && now_seconds() < end)
		event_base_loop(c->base, EVLOOP_ONCE);
	CHECK_EQ_INT(c->results, n);
}

static void
submit(struct ctx *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		launcher_submit(c->l, c->submitted++, (int64_t)(i % 4));
}

static void
test_slots(void)
{
	struct ctx c;
	setenv("COHORT_FAKE_SLEEP_MS", "100", 1);
	setup(&c, NULL, 2, 1, 10);
	submit(&c, 6);
	CHECK_EQ_INT(launcher_alive(c.l), 2);
	run(&c, 10);
	CHECK_EQ_INT(c.results, 6);
	CHECK_EQ_INT(c.failures, 0);
	CHECK_EQ_INT(c.metrics, 6);
	const struct launcher_stats *s = launcher_stats(c.l);
	CHECK_EQ_INT(s->spawned, 6);
	CHECK_EQ_INT(s->exited_ok, 6);
	CHECK(s->peak_alive <= 2);
	CHECK(c.max_alive_seen <= 2);
	teardown(&c);
}

static void
test_timeout_term_then_kill(void)
{
	struct ctx c;
	setup(&c, "hang", 1, 1, 0.3);
	double t0 = now_seconds();
	submit(&c, 1);
	run(&c, 10);
	double took = now_seconds() - t0;
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0], "timed out after 0.3 s");
	CHECK_STR_CONTAINS(c.reasons[0], "killed by signal 9");
	const struct launcher_stats *s = launcher_stats(c.l);
	CHECK_EQ_INT(s->timeouts, 1);
	CHECK_EQ_INT(s->sigterms, 1);
	CHECK_EQ_INT(s->sigkills, 1);
	CHECK_EQ_INT(s->signalled, 1);
	CHECK(took >= 0.45);
	teardown(&c);
}

/* Workers that each send a whole 64 MiB frame but its last byte make the
 * launcher hold at most its budget plus one frame, not 64 MiB apiece; the
 * tasks time out as any that never answer. */
static void
test_partial_frames_budget(void)
{
	struct ctx c;
	setup(&c, "bigframe", 4, 1, 3);
	submit(&c, 4);
	run(&c, 30);
	CHECK_EQ_INT(c.failures, 4);
	const struct launcher_stats *s = launcher_stats(c.l);
	CHECK(s->peak_partial > LAUNCHER_PARTIAL_BUDGET);
	CHECK(s->peak_partial <= LAUNCHER_PARTIAL_BUDGET + FRAME_MAX_DEFAULT);
	teardown(&c);
}

static void
test_exit_status(void)
{
	struct ctx c;
	setup(&c, "exit1", 2, 1, 10);
	submit(&c, 3);
	run(&c, 10);
	CHECK_EQ_INT(c.failures, 3);
	CHECK_STR_CONTAINS(c.reasons[2], "worker exited with status 1");
	CHECK_EQ_INT(launcher_stats(c.l)->exited_error, 3);
	teardown(&c);

	setup(&c, "segv", 2, 1, 10);
	submit(&c, 1);
	run(&c, 10);
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0], "killed by signal 11");
	CHECK_EQ_INT(launcher_stats(c.l)->signalled, 1);
	teardown(&c);
}

/* A worker that dies before connecting left its reason only in its log:
 * the task's failure quotes the log's last line and names the log. */
static void
test_exit_before_connecting(void)
{
	struct ctx c;
	setup(&c, "startexit", 1, 1, 10);
	submit(&c, 1);
	run(&c, 10);
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0],
	                   "worker exited with status 1 before connecting; its "
	                   "log ends \"fake: CUDA error: no CUDA-capable "
	                   "device is detected\" (log ");
	CHECK_STR_CONTAINS(c.reasons[0], "/logs/client-0.log)");
	teardown(&c);
}

static void
test_close_then_exit(void)
{
	struct ctx c;
	setup(&c, "noreply", 1, 1, 10);
	submit(&c, 1);
	run(&c, 10);
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0], "connection closed without a result; "
	                                 "worker exited with status 0");
	teardown(&c);
}

static void
test_exit_then_close(void)
{
	struct ctx c;
	setup(&c, "exitfirst", 1, 1, 10);
	submit(&c, 1);
	run(&c, 10);
	/* The socket's other holder, the worker's child, is killed with the
	 * worker's process group once the worker has exited: the task ends
	 * with the exit's reason. */
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0], "worker exited with status 0");
	teardown(&c);
}

static void
test_bad_peers(void)
{
	struct ctx c;
	setup(&c, "badtoken", 1, 1, 10);
	submit(&c, 1);
	run(&c, 10);
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0], "wrong token");
	teardown(&c);

	setup(&c, "garbage", 1, 1, 10);
	submit(&c, 1);
	run(&c, 10);
	CHECK_EQ_INT(c.failures, 1);
	CHECK_STR_CONTAINS(c.reasons[0], "protocol error");
	teardown(&c);
}

static void
test_pool(void)
{
	struct ctx c;
	/* One slot: a new worker starts only when one retires. */
	setup(&c, NULL, 1, 3, 10);
	submit(&c, 6);
	run(&c, 10);
	CHECK_EQ_INT(c.results, 6);
	CHECK_EQ_INT(launcher_stats(c.l)->spawned, 2);
	CHECK_EQ_INT(launcher_stats(c.l)->exited_ok, 2);
	teardown(&c);

	/* Two slots: both used, far fewer processes than tasks; workers
	 * with tasks left idle until stopped. */
	setup(&c, NULL, 2, 5, 10);
	submit(&c, 10);
	wait_results(&c, 10);
	launcher_stop(c.l, 0);
	run(&c, 10);
	CHECK_EQ_INT(c.results, 10);
	CHECK(launcher_stats(c.l)->spawned >= 2);
	CHECK(launcher_stats(c.l)->spawned <= 4);
	CHECK_EQ_INT(launcher_stats(c.l)->peak_alive, 2);
	teardown(&c);

	/* Idle pool workers left after the work are shut down by stop. */
	setup(&c, NULL, 2, 10, 10);
	c.kind_evaluate = 1;
	submit(&c, 3);
	wait_results(&c, 3);
	CHECK(launcher_alive(c.l) > 0);
	launcher_stop(c.l, 0);
	run(&c, 10);
	/* Idle ones exit cleanly; one still starting may be SIGTERMed. */
	const struct launcher_stats *s = launcher_stats(c.l);
	CHECK(s->exited_ok >= 1);
	CHECK_EQ_INT(s->exited_ok + s->signalled, s->spawned);
	CHECK_EQ_INT(s->exited_error, 0);
	teardown(&c);
}

static void
test_stop(void)
{
	struct ctx c;
	setup(&c, "hang", 2, 1, 60);
	submit(&c, 4);
	for (int i = 0; i < 20; i++)
		event_base_loop(c.base, EVLOOP_NONBLOCK);
	launcher_stop(c.l, 0);
	c.submitted = 0;
	run(&c, 10);
	CHECK_EQ_INT(launcher_alive(c.l), 0);
	CHECK_EQ_INT(launcher_stats(c.l)->spawned, 2);
	teardown(&c);
}

/* Tasks whose worker cannot be started (a log that cannot be opened, a
 * worker binary gone since the launcher checked it) fail naming the
 * cause, after a few tries, in a process per task and in a pool alike
 * (the pool loop retried forever); a cause gone by the next try costs
 * nothing. */
static void
test_spawn_failures(void)
{
	char logs[512], exe[512];
	snprintf(exe, sizeof exe, "%s/gone-worker", harness_tmpdir());
	for (unsigned pool = 0; pool < 2; pool++) {
		struct ctx c;
		snprintf(logs, sizeof logs, "%s/no/such/dir", harness_tmpdir());
		setup_logs = logs;
		setup(&c, NULL, 2, pool ? 4 : 1, 10);
		setup_logs = NULL;
		submit(&c, 5);
		run(&c, 10);
		CHECK_EQ_INT(c.failures, 5);
		CHECK_EQ_INT(c.results, 0);
		for (unsigned i = 0; i < 5; i++) {
			CHECK_STR_CONTAINS(c.reasons[i], "cannot start worker");
			CHECK_STR_CONTAINS(c.reasons[i], "no/such/dir/");
			CHECK_STR_CONTAINS(c.reasons[i], "No such file");
		}
		CHECK_EQ_INT(launcher_stats(c.l)->spawned, 0);
		CHECK(launcher_stats(c.l)->spawn_failures >= 3);
		teardown(&c);

		FILE *f = fopen(exe, "w");
		CHECK(f != NULL && fputs("#!/bin/sh\n", f) >= 0 &&
		      fclose(f) == 0 && chmod(exe, 0700) == 0);
		setup_worker = exe;
		setup(&c, NULL, 2, pool ? 4 : 1, 10);
		setup_worker = NULL;
		CHECK_EQ_INT(unlink(exe), 0);
		submit(&c, 3);
		run(&c, 10);
		CHECK_EQ_INT(c.failures, 3);
		for (unsigned i = 0; i < 3; i++)
			CHECK_STR_CONTAINS(c.reasons[i], "gone-worker");
		teardown(&c);

		/* A cause gone before the next try costs nothing. */
		snprintf(logs, sizeof logs, "%s/late-logs-%u", harness_tmpdir(),
		         pool);
		setup_logs = logs;
		setup(&c, NULL, 2, pool ? 4 : 1, 10);
		setup_logs = NULL;
		submit(&c, 4);
		CHECK_EQ_INT(launcher_stats(c.l)->spawn_failures, 1);
		CHECK_EQ_INT(mkdir(logs, 0700), 0);
		wait_results(&c, 4);
		CHECK_EQ_INT(c.failures, 0);
		CHECK_EQ_INT(launcher_stats(c.l)->spawn_failures, 1);
		launcher_stop(c.l, 0);
		run(&c, 10);
		teardown(&c);
	}
}

/* What the fake workers' trace says: per CUDA_VISIBLE_DEVICES value, the
 * workers started and the most alive at once. */
struct trace {
	unsigned starts, ends, ndev;
	char dev[8][96];
	unsigned started[8], peak[8];
	unsigned wrong_device; /* starts whose COHORT_DEVICE was not want */
};

/* Replay the trace file; want is the COHORT_DEVICE every worker needs. */
static void
trace_read(const char *path, const char *want, struct trace *t)
{
	memset(t, 0, sizeof *t);
	unsigned alive[8] = {0};
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	char what[16], cvd[96], dev[96];
	long pid;
	while (f != NULL && fscanf(f, "%15s %ld %95s", what, &pid, cvd) == 3) {
		int start = strcmp(what, "start") == 0;
		if (start && fscanf(f, "%95s", dev) != 1)
			break;
		unsigned d = 0;
		while (d < t->ndev && strcmp(t->dev[d], cvd) != 0)
			d++;
		if (d == t->ndev && t->ndev < 8)
			snprintf(t->dev[t->ndev++], sizeof t->dev[0], "%s",
			         cvd);
		if (d >= 8)
			continue;
		if (start) {
			t->starts++;
			t->started[d]++;
			t->wrong_device += strcmp(dev, want) != 0;
			if (++alive[d] > t->peak[d])
				t->peak[d] = alive[d];
		} else {
			t->ends++;
			alive[d]--;
		}
	}
	if (f != NULL)
		fclose(f);
}

/* Index of a CUDA_VISIBLE_DEVICES value in the trace, -1 if absent. */
static int
trace_dev(const struct trace *t, const char *cvd)
{
	for (unsigned d = 0; d < t->ndev; d++)
		if (strcmp(t->dev[d], cvd) == 0)
			return (int)d;
	return -1;
}

/* Plan slots on GPUs "0" and "1" as listed without NVML. */
static void
plan_two_gpus(struct gpuslots *s, const char *list, unsigned per_gpu)
{
	struct gpuslots_request req = {list, "gpu.devices", -1, per_gpu, 0};
	struct ipc_error err;
	if (gpuslots_plan(NULL, 0, &req, s, &err) < 0)
		harness_fail(__FILE__, __LINE__, "%s", err.message);
}

static void
test_gpu_slots(void)
{
	struct ctx c;
	struct gpuslots s;
	struct trace t;
	char path[512];
	snprintf(path, sizeof path, "%s/trace-gpu", harness_tmpdir());
	setenv("COHORT_FAKE_TRACE", path, 1);
	setenv("COHORT_FAKE_SLEEP_MS", "100", 1);
	/* Inherited values are replaced, never passed on. */
	setenv("CUDA_VISIBLE_DEVICES", "5", 1);
	setenv("COHORT_DEVICE", "cpu", 1);
	plan_two_gpus(&s, "0,1", 2);
	setup_gpus = &s;
	setup_device = "cuda";
	/* 8 allowed by max_concurrent, 4 by the slots. */
	setup(&c, NULL, 8, 1, 10);
	setup_gpus = NULL;
	setup_device = NULL;
	gpuslots_free(&s); /* the launcher keeps its own copy */
	submit(&c, 12);
	CHECK_EQ_INT(launcher_alive(c.l), 4);
	run(&c, 20);
	CHECK_EQ_INT(c.results, 12);
	CHECK_EQ_INT(c.failures, 0);
	const struct launcher_stats *st = launcher_stats(c.l);
	CHECK_EQ_INT(st->peak_alive, 4);
	CHECK_EQ_INT(st->peak_gpu, 2);
	teardown(&c);

	trace_read(path, "cuda", &t);
	CHECK_EQ_INT(t.starts, 12);
	CHECK_EQ_INT(t.ends, 12);
	CHECK_EQ_INT(t.wrong_device, 0);
	CHECK_EQ_INT(t.ndev, 2); /* only "0" and "1", never the inherited 5 */
	int d0 = trace_dev(&t, "0"), d1 = trace_dev(&t, "1");
	CHECK(d0 >= 0 && d1 >= 0);
	if (d0 >= 0 && d1 >= 0) {
		/* The first four went 0 1 0 1; later ones where room was. */
		CHECK(t.started[d0] >= 2 && t.started[d1] >= 2);
		CHECK(t.peak[d0] <= 2 && t.peak[d1] <= 2);
	}
	unsetenv("CUDA_VISIBLE_DEVICES");
	unsetenv("COHORT_DEVICE");
	unsetenv("COHORT_FAKE_TRACE");
}

static void
test_gpu_pool_keeps_its_gpu(void)
{
	struct ctx c;
	struct gpuslots s;
	struct trace t;
	char path[512];
	snprintf(path, sizeof path, "%s/trace-pool", harness_tmpdir());
	setenv("COHORT_FAKE_TRACE", path, 1);
	setenv("COHORT_FAKE_SLEEP_MS", "50", 1);
	plan_two_gpus(&s, "GPU-aaaa,GPU-bbbb", 1);
	setup_gpus = &s;
	setup_device = "auto";
	setup(&c, NULL, 4, 3, 10);
	setup_gpus = NULL;
	setup_device = NULL;
	gpuslots_free(&s);
	submit(&c, 9);
	CHECK_EQ_INT(launcher_alive(c.l), 2);
	wait_results(&c, 9);
	launcher_stop(c.l, 0); /* workers with tasks left are idle */
	run(&c, 20);
	CHECK_EQ_INT(c.results, 9);
	/* A pool worker holds its GPU until it exits: never two on one. */
	CHECK_EQ_INT(launcher_stats(c.l)->peak_gpu, 1);
	CHECK_EQ_INT(launcher_stats(c.l)->peak_alive, 2);
	teardown(&c);
	trace_read(path, "auto", &t);
	CHECK_EQ_INT(t.wrong_device, 0);
	CHECK_EQ_INT(t.ndev, 2);
	CHECK(t.starts >= 3); /* 9 tasks, at most 3 each */
	CHECK_EQ_INT(t.ends, t.starts);
	for (unsigned d = 0; d < t.ndev; d++)
		CHECK_EQ_INT(t.peak[d], 1);
	CHECK(trace_dev(&t, "GPU-aaaa") >= 0 && trace_dev(&t, "GPU-bbbb") >= 0);
	unsetenv("COHORT_FAKE_TRACE");
}

static void
test_cpu_job_environment_unchanged(void)
{
	struct ctx c;
	struct trace t;
	char path[512];
	snprintf(path, sizeof path, "%s/trace-cpu", harness_tmpdir());
	setenv("COHORT_FAKE_TRACE", path, 1);
	setenv("CUDA_VISIBLE_DEVICES", "3,2", 1);
	setenv("COHORT_DEVICE", "cuda:1", 1);
	/* No device configured: the inherited COHORT_DEVICE goes through. */
	setup(&c, NULL, 2, 1, 10);
	submit(&c, 2);
	run(&c, 10);
	CHECK_EQ_INT(c.results, 2);
	CHECK_EQ_INT(launcher_stats(c.l)->peak_gpu, 0);
	teardown(&c);
	trace_read(path, "cuda:1", &t);
	CHECK_EQ_INT(t.starts, 2);
	CHECK_EQ_INT(t.wrong_device, 0);
	CHECK(trace_dev(&t, "3,2") == 0 && t.ndev == 1);

	/* device cpu without slots: COHORT_DEVICE set, CUDA_VISIBLE_DEVICES
	 * passed on as inherited. */
	snprintf(path, sizeof path, "%s/trace-cpu2", harness_tmpdir());
	setenv("COHORT_FAKE_TRACE", path, 1);
	setup_device = "cpu";
	setup(&c, NULL, 2, 1, 10);
	setup_device = NULL;
	submit(&c, 2);
	run(&c, 10);
	CHECK_EQ_INT(c.results, 2);
	teardown(&c);
	trace_read(path, "cpu", &t);
	CHECK_EQ_INT(t.starts, 2);
	CHECK_EQ_INT(t.wrong_device, 0);
	CHECK(trace_dev(&t, "3,2") == 0 && t.ndev == 1);
	unsetenv("CUDA_VISIBLE_DEVICES");
	unsetenv("COHORT_DEVICE");
	unsetenv("COHORT_FAKE_TRACE");
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_slots);
	RUN(test_timeout_term_then_kill);
	RUN(test_exit_status);
	RUN(test_exit_before_connecting);
	RUN(test_partial_frames_budget);
	RUN(test_close_then_exit);
	RUN(test_exit_then_close);
	RUN(test_bad_peers);
	RUN(test_pool);
	RUN(test_stop);
	RUN(test_spawn_failures);
	RUN(test_gpu_slots);
	RUN(test_gpu_pool_keeps_its_gpu);
	RUN(test_cpu_job_environment_unchanged);
	return harness_finish();
}
