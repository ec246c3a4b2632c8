/* test_client.c: the test plays the orchestrator against a real
 * cohort-worker process: hello, a fit task through shared memory, metrics
 * frames, the result's update segment, an evaluate task, and the error frame
 * a bad task earns. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "message.h"
#include "safetensors.h"
#include "shm.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define TOKEN "test-token-123"

static char workspace[600], sock_path[100], job[64];
static struct tensor_manifest manifest;
static char train_cache[4096], test_cache[4096], partition_path[700];

/* Run a shell command, returning its exit status. */
static int
run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Read a string field from prepared.json with a tiny scan (the file is ours).
 */
static void
json_field(const char *json, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\": \"", key);
	const char *p = strstr(json, pat);
	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(pat);
	const char *e = strchr(p, '"');
	snprintf(out, cap, "%.*s", (int)(e - p), p);
}

/* Prepare a 100-client workspace on Fashion-MNIST with cohort-worker. */
static int
prepare(void)
{
	snprintf(workspace, sizeof workspace, "%s/ws", harness_tmpdir());
	char cmd[4096];
	snprintf(
	    cmd, sizeof cmd,
	    "mkdir -p %s && printf '%%s' '{\"job\":{\"seed\":7},"
	    "\"federation\":{\"clients\":100},\"model\":{\"name\":\"mlp\"},"
	    "\"data\":{\"dataset\":\"fashion-mnist\",\"dir\":\"%s\","
	    "\"cache_dir\":\"%s/cache\",\"partition\":\"iid\","
	    "\"alpha\":0.5,\"shards_per_client\":2,"
	    "\"holdout\":0.1}}' > %s/config.json && %s --prepare %s",
	    workspace, FMNIST_DIR, harness_tmpdir(), workspace,
	    harness_build_path("worker/cohort-worker"), workspace);
	if (run(cmd) != 0)
		return -1;
	char path[700];
	snprintf(path, sizeof path, "%s/data/prepared.json", workspace);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char json[16384];
	size_t n = fread(json, 1, sizeof json - 1, f);
	json[n] = '\0';
	fclose(f);
	json_field(json, "train", train_cache, sizeof train_cache);
	json_field(json, "test", test_cache, sizeof test_cache);
	json_field(json, "partition", partition_path, sizeof partition_path);
	return 0;
}

/* Listen on a socket in the temp dir. */
static int
listen_socket(void)
{
	/* Unix socket paths are short: use a name in /tmp, not the temp dir. */
	snprintf(sock_path, sizeof sock_path, "/tmp/cohort-test-%d.sock",
	         (int)getpid());
	unlink(sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(fd, 4) != 0)
		return -1;
	return fd;
}

/* Start cohort-worker as client `client` serving up to `tasks` tasks. */
static pid_t
spawn_worker(int client, int tasks)
{
	pid_t pid = fork();
	if (pid == 0) {
		char id[32], nt[32];
		snprintf(id, sizeof id, "%d", client);
		snprintf(nt, sizeof nt, "%d", tasks);
		setenv("COHORT_SOCKET", sock_path, 1);
		setenv("COHORT_TOKEN", TOKEN, 1);
		setenv("COHORT_CLIENT_ID", id, 1);
		setenv("COHORT_JOB", job, 1);
		setenv("COHORT_TASKS", nt, 1);
		execl(harness_build_path("worker/cohort-worker"),
		      "cohort-worker", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Exit status of a child, or -1 if it died of a signal. */
static int
wait_status(pid_t pid)
{
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A task message over the global model in descriptor 0 (and for a fit,
 * its update in descriptor 1). */
static void
make_task(struct msg *m, enum task_kind kind, uint64_t id, int64_t client,
          const char *split)
{
	msg_init(m, MSG_TASK);
	struct msg_task *t = &m->u.task;
	t->task_id = id;
	t->kind = kind;
	t->round = 1;
	t->client_id = client;
	kv_set_str(&t->config, "model", "mlp");
	kv_set_str(&t->config, "train_data", train_cache);
	kv_set_str(&t->config, "test_data", test_cache);
	kv_set_str(&t->config, "partition", partition_path);
	kv_set_num(&t->config, "epochs", 1);
	kv_set_num(&t->config, "batch_size", 32);
	kv_set_num(&t->config, "lr", 0.05);
	kv_set_num(&t->config, "momentum", 0.9);
	kv_set_num(&t->config, "weight_decay", 0);
	kv_set_str(&t->config, "optimizer", "sgd");
	kv_set_num(&t->config, "mu", 0);
	kv_set_num(&t->config, "seed", 11);
	kv_set_num(&t->config, "clients", 100);
	kv_set_num(&t->config, "job_seed", 7);
	kv_set_num(&t->config, "progress_every", 5);
	kv_set_str(&t->config, "split", split);
	tensor_manifest_copy(&t->params.manifest, &manifest);
	t->params.where = PARAMS_FD;
	t->params.fd = 0;
	t->update_fd = kind == TASK_FIT ? 1 : -1;
	t->params.size = manifest.total_size;
}

/* Send task with the global model g and, for a fit, a new update segment
 * into *u. */
static void
send_task(int fd, struct msg *task, const struct shm_segment *g,
          struct shm_segment *u)
{
	struct ipc_error err;
	int fds[2] = {g->fd, -1};
	unsigned n = 1;
	if (task->u.task.kind == TASK_FIT) {
		CHECK(shm_segment_create_empty(u, "update", manifest.total_size,
		                               &err) == 0);
		fds[n++] = u->fd;
	}
	CHECK(msg_send_fds(fd, task, fds, n, &err) == 0);
	msg_free(task);
}

/* The prepared initial model in a new global-model segment, sealed
 * read-only unless sealed is 0; the model's bytes into *region. */
static void
make_global(struct shm_segment *g, void **region, int sealed)
{
	char initial[800];
	struct ipc_error err;
	snprintf(initial, sizeof initial, "%s/checkpoints/initial.safetensors",
	         workspace);
	tensor_manifest_free(&manifest);
	CHECK(safetensors_read(initial, &manifest, region, NULL, &err) == 0);
	CHECK(shm_segment_create_copy(g, "global", manifest.total_size, *region,
	                              &err) == 0);
	if (sealed)
		CHECK(shm_segment_seal_readonly(g, &err) == 0);
}

/* Accept worker pid's connection and check its hello. */
static int
accept_worker(int lfd, pid_t pid, int client)
{
	struct ipc_error err;
	struct msg m;
	int fd = accept(lfd, NULL, NULL);
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_HELLO);
	CHECK_EQ_INT(m.u.hello.client_id, client);
	CHECK_EQ_INT(m.u.hello.pid, pid);
	CHECK(strcmp(m.u.hello.token, TOKEN) == 0);
	msg_free(&m);
	return fd;
}

static void
test_fit_then_evaluate_in_pool_mode(void)
{
	if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0)
		harness_skip("Fashion-MNIST missing (apt-get install "
		             "dataset-fashion-mnist)");
	CHECK(prepare() == 0);

	/* The global model: the prepared initial weights in a segment. */
	void *region = NULL;
	struct ipc_error err;
	snprintf(job, sizeof job, "test%d", (int)getpid());
	struct shm_segment g = {.fd = -1}, u = {.fd = -1};
	make_global(&g, &region, 1);

	int lfd = listen_socket();
	CHECK(lfd >= 0);
	pid_t pid = spawn_worker(3, 3);
	int fd = accept_worker(lfd, pid, 3);
	struct msg m;

	/* fit: metrics frames, then a result naming the update segment. */
	struct msg task;
	make_task(&task, TASK_FIT, 41, 3, "train");
	send_task(fd, &task, &g, &u);
	int metrics_frames = 0;
	for (;;) {
		CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
		if (m.type != MSG_METRICS)
			break;
		CHECK_EQ_INT(m.u.metrics.task_id, 41);
		CHECK(kv_get_num(&m.u.metrics.values, "loss", -1) > 0);
		metrics_frames++;
		msg_free(&m);
	}
	CHECK(m.type == MSG_RESULT);
	CHECK(metrics_frames >= 3); /* 540 samples / 32 = 17 steps, every 5th */
	struct msg_result *r = &m.u.result;
	CHECK_EQ_INT(r->task_id, 41);
	CHECK_EQ_INT(r->num_examples, 540); /* 600 per client, 10% held out */
	CHECK(r->params.where == PARAMS_FD);
	CHECK_EQ_INT(r->params.fd, 1);
	CHECK(tensor_manifest_equal(&r->params.manifest, &manifest, &err) == 0);
	/* The worker unmapped its update before reporting: it seals. */
	CHECK(shm_segment_seal_write(&u, &err) == 0);
	struct shm_segment um = {.fd = -1};
	CHECK(shm_segment_map(&um, "update", dup(u.fd), manifest.total_size,
	                      SHM_READ, &err) == 0);
	CHECK(tensor_region_check_finite(&manifest, um.addr, &err) == 0);
	CHECK(memcmp(um.addr, g.addr, manifest.total_size) != 0);
	CHECK(memcmp(g.addr, region, manifest.total_size) == 0);
	shm_segment_close(&um);
	shm_segment_close(&u);
	msg_free(&m);

	/* evaluate on the held-out slice: no params back, sane metrics. */
	make_task(&task, TASK_EVALUATE, 42, 3, "holdout");
	send_task(fd, &task, &g, NULL);
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_RESULT);
	CHECK_EQ_INT(m.u.result.num_examples, 60);
	CHECK(m.u.result.params.where == PARAMS_NONE);
	double acc = kv_get_num(&m.u.result.metrics, "accuracy", -1);
	CHECK(acc >= 0 && acc <= 1);
	msg_free(&m);

	/* a task whose model does not match the segment earns an error frame.
	 */
	make_task(&task, TASK_FIT, 43, 3, "train");
	kv_set_str(&task.u.task.config, "model", "cnn");
	send_task(fd, &task, &g, &u);
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_ERROR);
	CHECK_EQ_INT(m.u.error.task_id, 43);
	CHECK_STR_CONTAINS(m.u.error.message, "does not fit model cnn");
	msg_free(&m);

	/* A failed task ends the worker with a non-zero status; it holds
	 * nothing of its update any more (the seal would be refused). */
	CHECK(wait_status(pid) == 1);
	CHECK(shm_segment_seal_write(&u, &err) == 0);
	shm_segment_close(&u);
	close(fd);
	close(lfd);
	shm_segment_close(&g);
	free(region);
}

/* Send fit task (progress off) with the global model, a new update
 * segment into *u and, with p, partial sum p as descriptor 2. */
static void
send_fit(int fd, struct msg *task, const struct shm_segment *g,
         struct shm_segment *u, const struct shm_segment *p, uint64_t pid)
{
	struct ipc_error err;
	kv_set_num(&task->u.task.config, "progress_every", 0);
	CHECK(shm_segment_create_empty(u, "update", manifest.total_size,
	                               &err) == 0);
	int fds[3] = {g->fd, u->fd, p ? p->fd : -1};
	if (p != NULL) {
		task->u.task.partial_fd = 2;
		task->u.task.partial_id = pid;
		task->u.task.partial_size = p->size;
		kv_set_num(&task->u.task.config, "flush_every", 0);
	}
	CHECK(msg_send_fds(fd, task, fds, p ? 3 : 2, &err) == 0);
	msg_free(task);
}

/* The result of fit id returned whole: its update, checked and sealed,
 * copied into out. */
static void
returned_update(int fd, uint64_t id, struct shm_segment *u, float *out)
{
	struct ipc_error err;
	struct msg m;
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_RESULT && m.u.result.task_id == id);
	CHECK(m.u.result.folded == -1);
	CHECK(m.u.result.params.where == PARAMS_FD);
	msg_free(&m);
	CHECK(shm_segment_seal_write(u, &err) == 0);
	struct shm_segment um = {.fd = -1};
	CHECK(shm_segment_map(&um, "update", dup(u->fd), manifest.total_size,
	                      SHM_READ, &err) == 0);
	memcpy(out, um.addr, manifest.total_size);
	shm_segment_close(&um);
	shm_segment_close(u);
}

/* Partial sums (docs/protocol.md): a fit given a partial sum is folded
 * into it (weight: its examples) and reported folded; the sum comes once
 * no task follows, holding 540 x the update the same fit returns whole.
 * A fit naming a sum already sent, and one that cannot be weighted, are
 * returned whole, the same update. */
static void
test_partial_sum(void)
{
	if (manifest.count == 0)
		harness_skip("needs the prepared workspace of the first test");
	struct ipc_error err;
	void *region = NULL;
	struct shm_segment g = {.fd = -1}, u = {.fd = -1}, p1 = {.fd = -1},
	                   p2 = {.fd = -1};
	make_global(&g, &region, 1);
	size_t numel = 0, size = manifest.total_size;
	for (size_t i = 0; i < manifest.count; i++)
		numel += manifest.tensors[i].nbytes / 4;
	CHECK(shm_segment_create_empty(&p1, "partial", numel * 8, &err) == 0);
	CHECK(shm_segment_create_empty(&p2, "partial", numel * 8, &err) == 0);
	int lfd = listen_socket();
	pid_t pid = spawn_worker(-1, 4);
	int fd = accept_worker(lfd, pid, -1);
	struct msg task, m;

	make_task(&task, TASK_FIT, 61, 3, "train");
	kv_set_str(&task.u.task.config, "weighting", "examples");
	send_fit(fd, &task, &g, &u, &p1, 1);
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_RESULT && m.u.result.task_id == 61);
	CHECK_EQ_INT(m.u.result.folded, 1);
	CHECK(m.u.result.params.where == PARAMS_NONE);
	CHECK_EQ_INT(m.u.result.num_examples, 540);
	msg_free(&m);
	/* No task follows: the sum comes. */
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_PARTIAL);
	CHECK_EQ_INT(m.u.partial.id, 1);
	CHECK_EQ_INT(m.u.partial.ntasks, 1);
	CHECK(m.u.partial.ntasks == 1 && m.u.partial.tasks[0] == 61);
	CHECK(m.u.partial.weight == 540.0);
	msg_free(&m);
	/* It unmapped the sum before sending it. */
	CHECK(shm_segment_seal_write(&p1, &err) == 0);

	float *b = xmalloc(size), *c = xmalloc(size), *d = xmalloc(size);
	make_task(&task, TASK_FIT, 62, 3, "train");
	send_fit(fd, &task, &g, &u, NULL, 0);
	returned_update(fd, 62, &u, b);
	/* The sum already sent, named again: not folded into. */
	make_task(&task, TASK_FIT, 63, 3, "train");
	kv_set_str(&task.u.task.config, "weighting", "examples");
	send_fit(fd, &task, &g, &u, &p1, 1);
	returned_update(fd, 63, &u, c);
	/* A weighting the worker does not know: returned whole through its
	 * segment, from the private memory it trained in. */
	make_task(&task, TASK_FIT, 64, 3, "train");
	kv_set_str(&task.u.task.config, "weighting", "bogus");
	send_fit(fd, &task, &g, &u, &p2, 2);
	returned_update(fd, 64, &u, d);
	CHECK(memcmp(b, c, size) == 0);
	CHECK(memcmp(b, d, size) == 0);
	CHECK(memcmp(b, region, size) != 0);

	struct shm_segment pm = {.fd = -1};
	CHECK(shm_segment_map(&pm, "partial", dup(p1.fd), numel * 8, SHM_READ,
	                      &err) == 0);
	const double *sum = pm.addr;
	size_t k = 0, wrong = 0;
	for (size_t i = 0; i < manifest.count; i++) {
		const float *f = (const float *)((const char *)b +
		                                 manifest.tensors[i].offset);
		for (size_t e = 0; e < manifest.tensors[i].nbytes / 4; e++)
			wrong += sum[k++] != 540.0 * (double)f[e];
	}
	CHECK_EQ_INT(wrong, 0);
	shm_segment_close(&pm);
	CHECK(wait_status(pid) == 0);
	free(b);
	free(c);
	free(d);
	close(fd);
	close(lfd);
	shm_segment_close(&p1);
	shm_segment_close(&p2);
	shm_segment_close(&g);
	free(region);
}

/* The worker pid on fd answers its task with an error frame whose message
 * holds want, then exits 1; fd is closed. */
static void
expect_refused(int fd, pid_t pid, const char *want)
{
	struct ipc_error err;
	struct msg m;
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	CHECK(m.type == MSG_ERROR);
	CHECK_STR_CONTAINS(m.u.error.message, want);
	msg_free(&m);
	CHECK(wait_status(pid) == 1);
	close(fd);
}

/* A worker maps only what is sealed as it expects: a global model others
 * could still write, or a task frame without its descriptors, is a failed
 * task with a reason, not a mapping. */
static void
test_refuses_unsealed_or_missing_memory(void)
{
	if (manifest.count == 0)
		harness_skip("needs the prepared workspace of the first test");
	struct ipc_error err;
	void *region = NULL;
	struct shm_segment g = {.fd = -1}, u = {.fd = -1};
	make_global(&g, &region, 0);
	int lfd = listen_socket();
	for (int c = 0; c < 2; c++) {
		pid_t pid = spawn_worker(1, 1);
		int fd = accept_worker(lfd, pid, 1);
		struct msg task;
		make_task(&task, TASK_FIT, 50 + (uint64_t)c, 1, "train");
		if (c == 0) {
			send_task(fd, &task, &g, &u);
		} else {
			CHECK(msg_send(fd, &task, &err) == 0);
			msg_free(&task);
		}
		expect_refused(fd, pid,
		               c == 0 ? "not sealed against writes"
		                      : "carried no descriptor");
		shm_segment_close(&u);
	}
	close(lfd);
	shm_segment_close(&g);
	free(region);
}

/* A task whose config lacks a key its kind needs, or holds one of another
 * type or out of range, fails naming the key: the worker has no defaults
 * of its own to fall back on (a fit without lr trained at 0.01). */
static void
test_task_config_checked(void)
{
	if (manifest.count == 0)
		harness_skip("needs the prepared workspace of the first test");
	void *region = NULL;
	struct shm_segment g = {.fd = -1}, u = {.fd = -1};
	make_global(&g, &region, 1);
	int lfd = listen_socket();
	static const char *const want[] = {
	    "task 60: config.lr is missing",
	    "task 61: config.lr: expected a number",
	    "task 62: config.batch_size: 0 is outside [1, 1e+06]",
	    "task 63: config.split is missing",
	};
	for (int c = 0; c < 4; c++) {
		pid_t pid = spawn_worker(1, 1);
		int fd = accept_worker(lfd, pid, 1);
		struct msg task;
		make_task(&task, c == 3 ? TASK_EVALUATE : TASK_FIT,
		          60 + (uint64_t)c, 1, "train");
		struct kv_list *kv = &task.u.task.config;
		struct kv_list fixed = {0};
		for (size_t i = 0; i < kv->count; i++) {
			const struct kv_entry *e = &kv->entries[i];
			const char *drop = c == 0 || c == 1 ? "lr"
			                   : c == 3         ? "split"
			                                    : "";
			if (strcmp(e->key, drop) == 0)
				continue;
			if (c == 2 && strcmp(e->key, "batch_size") == 0)
				kv_set_num(&fixed, e->key, 0);
			else if (e->type == KV_NUM)
				kv_set_num(&fixed, e->key, e->num);
			else
				kv_set_str(&fixed, e->key, e->str);
		}
		if (c == 1)
			kv_set_str(&fixed, "lr", "0.1");
		kv_free(kv);
		*kv = fixed;
		send_task(fd, &task, &g, &u);
		expect_refused(fd, pid, want[c]);
		shm_segment_close(&u);
	}
	close(lfd);
	shm_segment_close(&g);
	free(region);
}

/* The prepare step reads every key it needs from config.json and names
 * one that is missing instead of assuming a default. */
static void
test_prepare_names_missing_key(void)
{
	char ws[700], cmd[4096], out[800];
	snprintf(ws, sizeof ws, "%s/ws-missing", harness_tmpdir());
	snprintf(out, sizeof out, "%s/prepare.err", harness_tmpdir());
	snprintf(cmd, sizeof cmd,
	         "mkdir -p %s && printf '%%s' '{\"job\":{\"seed\":7},"
	         "\"federation\":{\"clients\":4},\"model\":{\"name\":"
	         "\"mlp\"},\"data\":{\"dataset\":\"fashion-mnist\"}}' > "
	         "%s/config.json && %s --prepare %s 2>%s",
	         ws, ws, harness_build_path("worker/cohort-worker"), ws, out);
	CHECK(run(cmd) != 0);
	char msg[2048] = "";
	FILE *f = fopen(out, "r");
	CHECK(f != NULL);
	if (f != NULL) {
		msg[fread(msg, 1, sizeof msg - 1, f)] = '\0';
		fclose(f);
	}
	CHECK_STR_CONTAINS(msg, "config.json: data.dir is missing");
}

static void
test_shutdown_and_missing_environment(void)
{
	if (manifest.count == 0)
		harness_skip("needs the prepared workspace of the first test");
	int lfd = listen_socket();
	pid_t pid = spawn_worker(0, 5);
	int fd = accept(lfd, NULL, NULL);
	struct msg m;
	struct ipc_error err;
	CHECK(msg_recv(fd, FRAME_MAX_DEFAULT, &m, &err) == 0);
	msg_free(&m);
	msg_init(&m, MSG_TASK);
	m.u.task.kind = TASK_SHUTDOWN;
	m.u.task.task_id = 1;
	CHECK(msg_send(fd, &m, &err) == 0);
	msg_free(&m);
	CHECK(wait_status(pid) == 0);
	close(fd);
	close(lfd);

	/* Started by hand without the orchestrator's environment: exit 2 and
	 * a message saying how it is meant to be run. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
	         "env -u COHORT_SOCKET %s 2>&1 | grep -q 'started by "
	         "cohort-orchestrator'",
	         harness_build_path("worker/cohort-worker"));
	CHECK(run(cmd) == 0);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_fit_then_evaluate_in_pool_mode);
	RUN(test_refuses_unsealed_or_missing_memory);
	RUN(test_partial_sum);
	RUN(test_task_config_checked);
	RUN(test_prepare_names_missing_key);
	RUN(test_shutdown_and_missing_environment);
	tensor_manifest_free(&manifest);
	unlink(sock_path);
	return harness_finish();
}
