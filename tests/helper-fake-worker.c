/* helper-fake-worker.c: cohort-test-fake-worker, a stand-in for cohort-worker
 * that speaks protocol v2 from the same environment but "trains"
 * deterministically, so tests can check FedAvg results exactly, and that
 * misbehaves on request.
 *
 *   --prepare WORKSPACE: writes checkpoints/initial.safetensors (a.weight
 *     [4,3] and a.bias [4], element i = i * 0.1) and data/prepared.json.
 *   fit: update = global + 0.01 * (client_id + 1), num_examples =
 *     100 * (client_id + 1), loss = 1 / (round + 1) + 0.01 * client_id.
 *   evaluate (split "test"): num_examples 1000, loss = 1 / (round + 1),
 *     accuracy = round * 0.1 (1 from round 10 on).
 *   evaluate (split "holdout", client c): num_examples 10 * (c + 1), loss =
 *     1 + 0.125 * c + 0.5 * round, accuracy = 0.03125 * (c + 1) + 0.0078125
 *     * round (binary fractions: an example-weighted mean of them is exact
 *     in any order); COHORT_FAKE_FAULT=evalexit makes it exit 1 instead.
 *
 * COHORT_FAKE_FAULT picks a misbehaviour on fit tasks (restricted to one
 * client by COHORT_FAKE_FAULT_CLIENT): startexit (prints a CUDA error and
 * exits 1 before connecting), exit1, segv, hang (ignores SIGTERM),
 * garbage, badtoken (in the hello), nan, wrongshape, noreply (closes the
 * socket, then exits), exitfirst (exits while a child keeps the socket open;
 * the launcher kills the child with the worker's process group),
 * orphan (forks a child that sleeps 60 s, then succeeds), bigexamples
 * (claims 2^64 - 1 examples), huge (one weight of its update 3e38, finite
 * but absurd), flood (50,000 progress metrics frames); evalrange makes a
 * central evaluation report accuracy 1e308; slow (sleeps COHORT_FAKE_SLEEP_MS,
 * default 500, then succeeds), cutstream (stream transport: takes the global
 * model's chunks, sends a streamed result and half of the update's first
 * tensor, then is killed by SIGKILL), slowstream (stream transport: the fit's
 * update streamed back in four quarters of chunks of at most 1 MiB,
 * COHORT_FAKE_SLEEP_MS, default 500, before each quarter). Attacks on the
 * shared memory (shm transport), each of which must cost at most its own
 * task: shrink (after its result, a child shrinks and regrows the update
 * and the global model in a loop for 0.3 s, from a session of its own so
 * that it outlives the worker), writeglobal (tries to write
 * into the global model every way it can: write(), a writable mapping, a
 * punched hole, reopening the orchestrator's descriptors through /proc;
 * logs each refusal, and writes NaN wherever it got in), keepmapped (keeps
 * its update mapped writable after the result, a child writing NaN into
 * it), bigframe (sends a 64 MiB frame but for its last byte, then hangs).
 * A fit offered a partial sum (pool mode) is folded into it when the
 * client has no fault or a fold fault: foldkill (the first worker of the
 * job to hold 3 folded fits is killed by SIGKILL before sending its sum),
 * foldnan (a NaN written into the sum before it is sent), foldlie (the
 * job's first sum of two or more fits lists one too few), foldhold (the
 * job's first sum is never sent; the worker waits to be killed).
 * "prepare" makes
 * --prepare fail. COHORT_FAKE_SLEEP_MS alone delays every fit. With
 * COHORT_FAKE_EXEC=PATH every process whose client has no fault, and --prepare
 * unless the fault is "prepare", execs PATH instead, so a real worker prepares
 * the job and serves the other clients. With COHORT_FAKE_TRACE=FILE each worker
 * appends "start PID CUDA_VISIBLE_DEVICES COHORT_DEVICE" after its hello and
 * "end PID CUDA_VISIBLE_DEVICES" when it exits normally ("-" for unset), so
 * tests can replay which workers overlapped on which GPU. */
#define _GNU_SOURCE /* fallocate */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "message.h"
#include "safetensors.h"
#include "shm.h"
#include "tensor.h"
#include "transfer.h"
#include "util.h"
#include "wsum.h"

/* Sleep for ms milliseconds. */
static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Append one line "WHAT PID CUDA_VISIBLE_DEVICES [COHORT_DEVICE]" to
 * $COHORT_FAKE_TRACE, in one write so lines of workers never mix. */
static void
trace(const char *what)
{
	const char *path = getenv("COHORT_FAKE_TRACE");
	if (path == NULL)
		return;
	const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
	const char *dev = getenv("COHORT_DEVICE");
	char line[512];
	int n = snprintf(line, sizeof line, "%s %ld %s%s%s\n", what,
	                 (long)getpid(), cvd != NULL ? cvd : "-",
	                 strcmp(what, "start") == 0 ? " " : "",
	                 strcmp(what, "start") != 0 ? ""
	                 : dev != NULL              ? dev
	                                            : "-");
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		fatal("%s: %s", path, strerror(errno));
	if (write_all(fd, line, (size_t)n) < 0)
		fatal("%s: %s", path, strerror(errno));
	close(fd);
}

/* atexit: the worker is about to leave. */
static void
trace_end(void)
{
	trace("end");
}

/* The fault to act out for this client, or "". */
static const char *
fault_for(int64_t client_id)
{
	const char *fault = getenv("COHORT_FAKE_FAULT");
	const char *only = getenv("COHORT_FAKE_FAULT_CLIENT");
	if (fault == NULL)
		return "";
	if (only != NULL && atoll(only) != client_id)
		return "";
	return fault;
}

/* The fault once per job: the first process to act it out leaves a mark
 * in the workspace; later ones (the fits it ran again) do not. */
static int
first_time(const char *fault)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.once",
	         getenv("COHORT_WORKSPACE") ? getenv("COHORT_WORKSPACE") : ".",
	         fault);
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static void send_or_die(int fd, struct msg *m);

/* The partial sum this pool worker folds its fits into (docs/protocol.md,
 * "Partial sums"), written here apart from libcohort-client: a second
 * implementation of the protocol's worker side. */
static struct {
	struct shm_segment seg; /* fd -1: none */
	uint64_t id, sent;
	uint64_t tasks[4096];
	size_t n;
	double weight;
	const char *fault; /* of a fit folded into it, "" if none */
} P = {.seg = {.fd = -1}, .fault = ""};

/* Send the partial sum held (foldlie: listing one fit too few; foldhold:
 * never, the worker stays). */
static void
partial_send(int fd)
{
	if (P.seg.fd < 0 || P.n == 0)
		return;
	if (strcmp(P.fault, "foldnan") == 0)
		((double *)P.seg.addr)[0] = NAN;
	if (strcmp(P.fault, "foldhold") == 0 && first_time("foldhold")) {
		fprintf(stderr, "fake: holds its partial sum\n");
		for (;;)
			pause();
	}
	shm_segment_close(&P.seg);
	P.seg.fd = -1;
	struct msg m;
	msg_init(&m, MSG_PARTIAL);
	m.u.partial.id = P.id;
	m.u.partial.tasks = xcalloc(P.n, sizeof *P.tasks);
	memcpy(m.u.partial.tasks, P.tasks, P.n * sizeof *P.tasks);
	m.u.partial.ntasks = P.n - (strcmp(P.fault, "foldlie") == 0 &&
	                            P.n > 1 && first_time("foldlie"));
	m.u.partial.weight = P.weight;
	P.sent = P.id;
	P.n = 0;
	P.weight = 0;
	P.fault = "";
	send_or_die(fd, &m);
	msg_free(&m);
}

/* Take fit t's partial sum: 1 when its update is to be folded. */
static int
partial_take(const struct msg_task *t, struct frame_fds *fds)
{
	struct ipc_error err;
	int pfd = frame_fds_take(fds, (unsigned)t->partial_fd);
	if (pfd < 0)
		fatal("fit: no partial sum descriptor");
	if (P.seg.fd >= 0 && t->partial_id == P.id) {
		close(pfd);
		return 1;
	}
	if (P.seg.fd >= 0 || t->partial_id <= P.sent ||
	    P.n == sizeof P.tasks / sizeof *P.tasks) {
		close(pfd);
		return 0;
	}
	if (shm_segment_from_fd(&P.seg, pfd, "partial", SHM_SEALED_SIZE,
	                        SHM_WRITE, t->partial_size, &err) < 0)
		fatal("%s", err.message);
	P.id = t->partial_id;
	return 1;
}

/* Whether a frame comes within 2 ms (the protocol's wait before a
 * worker sends its sum). */
static int
frame_waiting(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, 2) > 0;
}

/* --prepare: the deterministic initial model and prepared.json. */
static int
prepare(const char *ws)
{
	if (strcmp(fault_for(-1), "prepare") == 0) {
		fprintf(stderr, "fake prepare failure: dataset not found\n");
		return 1;
	}
	struct tensor_manifest m;
	struct ipc_error err;
	tensor_manifest_init(&m);
	uint64_t ws_shape[2] = {4, 3}, b_shape[1] = {4};
	if (tensor_manifest_add(&m, "a.weight", DTYPE_F32, 2, ws_shape, &err) <
	        0 ||
	    tensor_manifest_add(&m, "a.bias", DTYPE_F32, 1, b_shape, &err) < 0)
		fatal("%s", err.message);
	unsigned char *region = xcalloc(1, m.total_size);
	for (size_t t = 0; t < m.count; t++) {
		float *f = (float *)(region + m.tensors[t].offset);
		for (size_t i = 0; i < m.tensors[t].nbytes / 4; i++)
			f[i] = (float)i * 0.1f;
	}
	char *path = xasprintf("%s/checkpoints/initial.safetensors", ws);
	int rc = safetensors_write(path, &m, region, NULL, &err);
	free(path);
	free(region);
	tensor_manifest_free(&m);
	if (rc < 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	path = xasprintf("%s/data/prepared.json", ws);
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		free(path);
		return 1;
	}
	fprintf(f,
	        "{\"train\": \"/dev/null\", \"test\": \"/dev/null\", "
	        "\"partition\": \"/dev/null\", \"model\": \"fake\", "
	        "\"initial\": \"%s/checkpoints/initial.safetensors\", "
	        "\"num_train\": 100000000, \"num_test\": 1000}\n",
	        ws);
	fclose(f);
	free(path);
	return 0;
}

/* Connect to the orchestrator's socket. */
static int
connect_socket(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		fatal("connect %s: %s", path, strerror(errno));
	return fd;
}

/* Send m or die. */
static void
send_or_die(int fd, struct msg *m)
{
	struct ipc_error err;
	if (msg_send(fd, m, &err) < 0)
		fatal("send: %s", err.message);
}

/* bigframe: a frame declaring the largest payload allowed, sent but for
 * its last byte; then wait to be killed. */
static void
big_frame(int fd)
{
	uint32_t len = FRAME_MAX_DEFAULT;
	uint8_t head[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
	                   (uint8_t)(len >> 8), (uint8_t)len};
	size_t piece = 1u << 20;
	uint8_t *junk = xcalloc(1, piece);
	if (write_all(fd, head, sizeof head) < 0)
		exit(1);
	for (size_t sent = 0; sent + 1 < len;) {
		size_t n = len - 1 - sent < piece ? len - 1 - sent : piece;
		if (write_all(fd, junk, n) < 0)
			exit(1);
		sent += n;
	}
	signal(SIGTERM, SIG_IGN);
	for (;;)
		pause();
}

/* Act out a fault that replaces the reply; returns only for faults that
 * still answer (nan, wrongshape, slow). */
static void
act_out(const char *fault, int fd)
{
	if (strcmp(fault, "exit1") == 0) {
		fprintf(stderr, "fake: exiting with status 1\n");
		exit(1);
	} else if (strcmp(fault, "segv") == 0) {
		/* Die by the signal even under a sanitizer's handler. */
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	} else if (strcmp(fault, "hang") == 0) {
		signal(SIGTERM, SIG_IGN);
		for (;;)
			pause();
	} else if (strcmp(fault, "garbage") == 0) {
		unsigned char junk[64];
		for (size_t i = 0; i < sizeof junk; i++)
			junk[i] = (unsigned char)(i * 37 + 11);
		junk[0] = 0xff; /* a length far over the frame limit */
		(void)!write(fd, junk, sizeof junk);
		char c;
		while (read(fd, &c, 1) > 0)
			;
		exit(1);
	} else if (strcmp(fault, "noreply") == 0) {
		close(fd);
		sleep_ms(100);
		exit(0);
	} else if (strcmp(fault, "orphan") == 0) {
		if (fork() == 0) {
			sleep_ms(60000);
			_exit(0);
		}
	} else if (strcmp(fault, "exitfirst") == 0) {
		if (fork() == 0) {
			sleep_ms(300);
			_exit(0);
		}
		exit(0);
	} else if (strcmp(fault, "slow") == 0) {
		const char *ms = getenv("COHORT_FAKE_SLEEP_MS");
		sleep_ms(ms ? atol(ms) : 500);
	} else if (strcmp(fault, "bigframe") == 0) {
		big_frame(fd);
	}
}

/* cutstream: take the streamed global model, announce a streamed result,
 * send the update up to the middle of its first tensor, then half of the
 * next chunk frame, and die. */
static void
cut_stream(int fd, const struct msg_task *t)
{
	struct ipc_error err;
	const struct tensor_manifest *m = &t->params.manifest;
	if (t->params.where != PARAMS_STREAM || m->count == 0)
		fatal("cutstream needs transport.mode=stream");
	uint8_t *buf = xmalloc(m->total_size);
	if (transfer_receive(fd, t->task_id, buf, m->total_size, &err) < 0)
		fatal("%s", err.message);
	struct msg r;
	msg_init(&r, MSG_RESULT);
	r.u.result.task_id = t->task_id;
	r.u.result.num_examples = (uint64_t)(t->client_id + 1);
	r.u.result.params.where = PARAMS_STREAM;
	r.u.result.params.size = m->total_size;
	tensor_manifest_copy(&r.u.result.params.manifest, m);
	send_or_die(fd, &r);
	msg_free(&r);
	uint64_t cut = m->tensors[0].offset + m->tensors[0].nbytes / 2 + 2;
	if (transfer_send(fd, t->task_id, buf, 0, cut, 4096, &err) < 0)
		fatal("%s", err.message);
	/* and the next chunk frame only up to the middle of its data */
	struct msg c;
	msg_init(&c, MSG_CHUNK);
	c.u.chunk.task_id = t->task_id;
	c.u.chunk.offset = cut;
	c.u.chunk.len =
	    m->total_size - cut < 65536 ? m->total_size - cut : 65536;
	uint8_t *head;
	size_t hlen;
	if (msg_encode_chunk_head(&c, &head, &hlen) < 0 ||
	    frame_write_parts(fd, head, hlen, buf + cut, c.u.chunk.len / 2,
	                      &err) < 0)
		fatal("cutstream: cannot send the cut chunk");
	free(head);
	free(buf);
	raise(SIGKILL);
}

/* The fit's update: every value of region + 0.01 * (client + 1). */
static void
perturb(uint8_t *region, const struct tensor_manifest *m, int64_t client)
{
	float delta = 0.01f * (float)(client + 1);
	for (size_t i = 0; i < m->count; i++) {
		float *f = (float *)(region + m->tensors[i].offset);
		for (size_t k = 0; k < m->tensors[i].nbytes / 4; k++)
			f[k] += delta;
	}
}

/* A fit's result frame without its params. */
static void
fit_result(struct msg *r, const struct msg_task *t)
{
	msg_init(r, MSG_RESULT);
	r->u.result.task_id = t->task_id;
	r->u.result.num_examples =
	    strcmp(fault_for(t->client_id), "bigexamples") == 0
	        ? UINT64_MAX
	        : 100 * (uint64_t)(t->client_id + 1);
	kv_set_num(&r->u.result.metrics, "loss",
	           1.0 / (t->round + 1) + 0.01 * (double)t->client_id);
	kv_set_num(&r->u.result.metrics, "accuracy", 0.5);
}

/* slowstream: take the streamed global model, send the fit's update back
 * as a streamed result in four chunks, sleeping before each. */
static void
slow_stream(int fd, const struct msg_task *t)
{
	struct ipc_error err;
	const struct tensor_manifest *m = &t->params.manifest;
	if (t->params.where != PARAMS_STREAM)
		fatal("slowstream needs transport.mode=stream");
	uint8_t *buf = xmalloc(m->total_size);
	if (transfer_receive(fd, t->task_id, buf, m->total_size, &err) < 0)
		fatal("%s", err.message);
	perturb(buf, m, t->client_id);
	struct msg r;
	fit_result(&r, t);
	r.u.result.params.where = PARAMS_STREAM;
	r.u.result.params.size = m->total_size;
	tensor_manifest_copy(&r.u.result.params.manifest, m);
	send_or_die(fd, &r);
	msg_free(&r);
	const char *ms = getenv("COHORT_FAKE_SLEEP_MS");
	size_t quarter = (m->total_size + 3) / 4;
	for (uint64_t off = 0; off < m->total_size; off += quarter) {
		sleep_ms(ms ? atol(ms) : 500);
		uint64_t end = off + quarter < m->total_size ? off + quarter
		                                             : m->total_size;
		if (transfer_send(fd, t->task_id, buf, off, end, 1u << 20,
		                  &err) < 0)
			fatal("%s", err.message);
	}
	free(buf);
}

/* Fork a child in a session of its own (so that it outlives the worker's
 * process group, killed when the worker exits): 0 in the child, 1 in the
 * parent once the child has left the group. */
static int
fork_escaped(void)
{
	int p[2];
	if (pipe(p) != 0)
		fatal("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		close(p[0]);
		close(p[1]);
		return 0;
	}
	close(p[1]);
	char c;
	while (read(p[0], &c, 1) < 0 && errno == EINTR)
		;
	close(p[0]);
	return 1;
}

/* shrink: a child truncates the update and the global model to 0 and
 * back, over and over, for 0.3 s (the seals refuse it: F_SEAL_SHRINK). */
static void
shrink_loop(int ufd, int gfd)
{
	if (fork_escaped())
		return;
	unsigned refused = 0, done = 0;
	double end = now_seconds() + 0.3;
	off_t usize = lseek(ufd, 0, SEEK_END), gsize = lseek(gfd, 0, SEEK_END);
	while (now_seconds() < end) {
		int fds[2] = {ufd, gfd};
		off_t sizes[2] = {usize, gsize};
		for (int i = 0; i < 2; i++) {
			int ok = ftruncate(fds[i], 0) == 0;
			ok += ftruncate(fds[i], sizes[i] + 4096) == 0;
			ok += ftruncate(fds[i], sizes[i]) == 0 && ok;
			done += ok;
			refused += ok == 0;
		}
	}
	fprintf(stderr, "fake: shrink: %u truncations done, %u refused\n", done,
	        refused);
	_exit(0);
}

/* Log whether an attempt to write into the global model was refused. */
static int
attempt(const char *how, int ok)
{
	fprintf(stderr, "fake: writeglobal: %s %s%s\n", how,
	        ok ? "succeeded" : "refused: ", ok ? "" : strerror(errno));
	return ok;
}

/* writeglobal: write NaN into the global model every way there is. */
static void
write_global(int gfd, uint64_t size)
{
	float nan = NAN;
	attempt("pwrite", pwrite(gfd, &nan, sizeof nan, 4) == sizeof nan);
	void *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	if (attempt("a writable mapping", w != MAP_FAILED)) {
		((float *)w)[1] = nan;
		munmap(w, size);
	}
	attempt("punching a hole",
	        fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
	                  4096) == 0);
	attempt("ftruncate", ftruncate(gfd, 0) == 0);
	/* The orchestrator's own descriptors, reopened read-write (refused
	 * unless this worker may ptrace it: root can). Only the global
	 * model's is written to: the seal is the inode's, whoever opens it. */
	struct stat gst, st;
	fstat(gfd, &gst);
	for (int i = 0; i < 64; i++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)getppid(),
		         i);
		int fd = open(path, O_RDWR);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (!attempt(path, fd >= 0))
			continue;
		if (fstat(fd, &st) == 0 && st.st_ino == gst.st_ino)
			attempt("pwrite through the reopened global model",
			        pwrite(fd, &nan, sizeof nan, 4) == sizeof nan);
		close(fd);
	}
}

/* keepmapped: the update stays mapped writable after the result; a child
 * writes NaN into it for 0.5 s. */
static void
scribble(void *u, const struct tensor_manifest *m)
{
	if (fork_escaped())
		return;
	double end = now_seconds() + 0.5;
	while (now_seconds() < end)
		((volatile float *)((char *)u + m->tensors[0].offset))[1] = NAN;
	_exit(0);
}

/* A fit task: the deterministic update in the task's update segment. */
static void
fit(int fd, const struct msg_task *t, struct frame_fds *fds, const char *fault)
{
	struct ipc_error err;
	const char *delay = getenv("COHORT_FAKE_SLEEP_MS");
	if (delay != NULL && strcmp(fault, "slow") != 0 &&
	    strcmp(fault, "slowstream") != 0)
		sleep_ms(atol(delay));
	act_out(fault, fd);
	if (strcmp(fault, "cutstream") == 0)
		cut_stream(fd, t);
	if (strcmp(fault, "slowstream") == 0) {
		slow_stream(fd, t);
		return;
	}
	if (t->params.where != PARAMS_FD || t->update_fd < 0)
		fatal("fit: the task carries no shared memory");
	struct shm_segment g, u;
	int gfd = frame_fds_take(fds, t->params.fd);
	int ufd = frame_fds_take(fds, (unsigned)t->update_fd);
	if (gfd < 0 || ufd < 0)
		fatal("fit: the task frame carried no descriptors");
	if (strcmp(fault, "writeglobal") == 0)
		write_global(gfd, t->params.size);
	if (shm_segment_from_fd(&g, gfd, "global", SHM_SEALED_READONLY,
	                        SHM_READ, t->params.size, &err) < 0 ||
	    shm_segment_from_fd(&u, ufd, "update", SHM_SEALED_SIZE, SHM_WRITE,
	                        t->params.size, &err) < 0)
		fatal("%s", err.message);
	memcpy(u.addr, g.addr, t->params.size);
	const struct tensor_manifest *m = &t->params.manifest;
	perturb(u.addr, m, t->client_id);
	if (strcmp(fault, "nan") == 0)
		((float *)((char *)u.addr + m->tensors[0].offset))[1] = NAN;
	if (strcmp(fault, "huge") == 0)
		((float *)((char *)u.addr + m->tensors[0].offset))[1] = 3e38f;
	int fold = t->partial_fd >= 0 &&
	           (fault[0] == '\0' || strncmp(fault, "fold", 4) == 0) &&
	           partial_take(t, fds);
	if (fold) {
		struct msg r;
		fit_result(&r, t);
		double w;
		if (tensor_region_check_finite(m, u.addr, &err) != 0 ||
		    wsum_weight(kv_get_str(&t->config, "weighting", ""),
		                r.u.result.num_examples, NAN, &w, &err) != 0)
			fatal("fold: %s", err.message);
		wsum_add(P.seg.addr, m, u.addr, w, P.n == 0);
		P.tasks[P.n++] = t->task_id;
		P.weight += w;
		if (fault[0] != '\0')
			P.fault = fault;
		shm_segment_close(&u);
		shm_segment_close(&g);
		r.u.result.folded = (int64_t)P.id;
		send_or_die(fd, &r);
		msg_free(&r);
		if (strcmp(fault, "foldkill") == 0 && P.n >= 3 &&
		    first_time(fault)) {
			fprintf(stderr, "fake: killed holding %zu fits\n", P.n);
			raise(SIGKILL);
		}
		return;
	}
	int keep_u = dup(u.fd), keep_g = dup(g.fd);
	if (strcmp(fault, "keepmapped") == 0)
		scribble(u.addr, m);
	else
		shm_segment_close(&u);
	shm_segment_close(&g);

	struct msg step;
	msg_init(&step, MSG_METRICS);
	step.u.metrics.task_id = t->task_id;
	step.u.metrics.step = 1;
	kv_set_num(&step.u.metrics.values, "loss", 2.0);
	send_or_die(fd, &step);
	for (int i = 0; strcmp(fault, "flood") == 0 && i < 50000; i++) {
		step.u.metrics.step = (uint64_t)i + 2;
		send_or_die(fd, &step);
	}
	msg_free(&step);

	struct msg r;
	fit_result(&r, t);
	r.u.result.params.where = PARAMS_FD;
	r.u.result.params.fd = (uint32_t)t->update_fd;
	r.u.result.params.size = t->params.size;
	tensor_manifest_copy(&r.u.result.params.manifest, m);
	if (strcmp(fault, "wrongshape") == 0) {
		/* a.weight [4,3] is reported as [3,4]. */
		struct tensor_desc *d = &r.u.result.params.manifest.tensors[0];
		uint64_t s0 = d->shape[0];
		d->shape[0] = d->shape[d->rank - 1];
		d->shape[d->rank - 1] = s0;
	}
	send_or_die(fd, &r);
	msg_free(&r);
	if (strcmp(fault, "shrink") == 0)
		shrink_loop(keep_u, keep_g);
	close(keep_u);
	close(keep_g);
}

/* An evaluate task: metrics only. */
static void
evaluate(int fd, const struct msg_task *t, const char *fault)
{
	struct msg r;
	msg_init(&r, MSG_RESULT);
	r.u.result.task_id = t->task_id;
	if (strcmp(kv_get_str(&t->config, "split", "test"), "holdout") == 0) {
		if (strcmp(fault, "evalexit") == 0) {
			fprintf(stderr, "fake: evaluate exits with 1\n");
			exit(1);
		}
		double c = (double)t->client_id;
		r.u.result.num_examples = 10 * (uint64_t)(t->client_id + 1);
		kv_set_num(&r.u.result.metrics, "loss",
		           1 + 0.125 * c + 0.5 * t->round);
		kv_set_num(&r.u.result.metrics, "accuracy",
		           0.03125 * (c + 1) + 0.0078125 * t->round);
		send_or_die(fd, &r);
		msg_free(&r);
		return;
	}
	r.u.result.num_examples = 1000;
	kv_set_num(&r.u.result.metrics, "loss", 1.0 / (t->round + 1));
	kv_set_num(&r.u.result.metrics, "accuracy",
	           strcmp(fault, "evalrange") == 0 ? 1e308
	           : t->round < 10                 ? t->round * 0.1
	                                           : 1.0);
	send_or_die(fd, &r);
	msg_free(&r);
}

int
main(int argc, char **argv)
{
	log_init("fake-worker", LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	const char *real = getenv("COHORT_FAKE_EXEC");
	const char *own = getenv("COHORT_CLIENT_ID");
	const char *fault = fault_for(own != NULL ? atoll(own) : -1);
	int preparing = argc == 3 && strcmp(argv[1], "--prepare") == 0;
	if (real != NULL &&
	    (preparing ? strcmp(fault, "prepare") != 0 : fault[0] == '\0')) {
		execv(real, argv);
		fatal("exec %s: %s", real, strerror(errno));
	}
	if (argc == 3 && strcmp(argv[1], "--prepare") == 0)
		return prepare(argv[2]);
	const char *sock = getenv("COHORT_SOCKET");
	const char *token = getenv("COHORT_TOKEN");
	const char *job = getenv("COHORT_JOB");
	const char *cid = getenv("COHORT_CLIENT_ID");
	const char *ntasks = getenv("COHORT_TASKS");
	if (sock == NULL || token == NULL || job == NULL || cid == NULL)
		fatal("COHORT_SOCKET, COHORT_TOKEN, COHORT_JOB and "
		      "COHORT_CLIENT_ID must be set");
	die_with_parent();
	keep_private();
	int64_t client_id = atoll(cid);
	long max_tasks = ntasks ? atol(ntasks) : 1;
	if (strcmp(fault_for(client_id), "startexit") == 0) {
		fprintf(stderr, "fake: loading the model\n"
		                "fake: CUDA error: no CUDA-capable device is "
		                "detected\n\n");
		return 1;
	}
	int fd = connect_socket(sock);

	struct msg hello;
	msg_init(&hello, MSG_HELLO);
	int badtoken = strcmp(fault_for(client_id), "badtoken") == 0;
	snprintf(hello.u.hello.token, sizeof hello.u.hello.token, "%s",
	         badtoken ? "not-the-token" : token);
	hello.u.hello.client_id = client_id;
	hello.u.hello.pid = (int32_t)getpid();
	snprintf(hello.u.hello.device, sizeof hello.u.hello.device, "fake");
	send_or_die(fd, &hello);
	msg_free(&hello);
	trace("start");
	atexit(trace_end);

	struct frame_fds fds;
	frame_fds_init(&fds);
	for (long done = 0; done < max_tasks; done++) {
		struct msg m;
		struct ipc_error err;
		frame_fds_close(&fds);
		if (msg_recv_fds(fd, FRAME_MAX_DEFAULT, &m, &fds, &err) < 0) {
			fprintf(stderr, "fake: receive: %s\n", err.message);
			return 1;
		}
		if (m.type == MSG_ERROR) {
			fprintf(stderr, "fake: orchestrator says %s: %s\n",
			        m.u.error.code, m.u.error.message);
			msg_free(&m);
			return 1;
		}
		if (m.type != MSG_TASK)
			fatal("expected a task, got %s", msg_type_name(m.type));
		const struct msg_task *t = &m.u.task;
		if (t->kind != TASK_FIT)
			partial_send(fd);
		if (t->kind == TASK_SHUTDOWN) {
			msg_free(&m);
			return 0;
		}
		if (t->kind == TASK_FIT)
			fit(fd, t, &fds, fault_for(t->client_id));
		else
			evaluate(fd, t, fault_for(t->client_id));
		msg_free(&m);
		if (done + 1 == max_tasks || !frame_waiting(fd))
			partial_send(fd);
	}
	partial_send(fd);
	close(fd);
	return 0;
}
