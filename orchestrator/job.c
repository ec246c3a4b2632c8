/* job.c: a job's lifecycle around the round engine: workspace and log,
 * preparation, the initial or checkpointed model in shared memory, the
 * launcher and event loop, signals, checkpoints, final results and the
 * cleanup every exit path goes through. */
#include "job.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "capacity.h"
#include "checkpoint.h"
#include "console.h"
#include "files.h"
#include "gpt2shape.h"
#include "gpuplan.h"
#include "hub.h"
#include "init-run.h"
#include "modelmeta.h"
#include "models.h"
#include "prepare-run.h"
#include "rng.h"
#include "safetensors.h"
#include "taskconf.h"
#include "wsum.h"

/* The executable name in a directory of PATH, or NULL. */
static char *
find_on_path(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", d, name);
		if (access(p, X_OK) == 0) {
			free(copy);
			return p;
		}
		free(p);
	}
	free(copy);
	return NULL;
}

/* <this binary's directory>/rel when it exists with access mode, else
 * NULL: how the programs of a build tree or an installed prefix find each
 * other. */
static char *
beside_self(const char *rel, int mode)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	char *p = xasprintf("%s/%s", dirname(self), rel);
	if (access(p, mode) == 0)
		return p;
	free(p);
	return NULL;
}

/* The worker binary: launcher.worker, else cohort-worker beside this
 * binary in the build tree (<dir>/../worker/cohort-worker) or in an
 * installed prefix (<dir>/COHORT_WORKER_FROM_BIN/cohort-worker, e.g.
 * bin/../libexec/cohort), else from PATH. */
static char *
resolve_worker(const char *configured)
{
	if (configured[0] != '\0')
		return xstrdup(configured);
	char *p = beside_self("../worker/cohort-worker", X_OK);
	if (p == NULL)
		p = beside_self(COHORT_WORKER_FROM_BIN "/cohort-worker", X_OK);
	if (p == NULL)
		p = find_on_path("cohort-worker");
	return p != NULL ? p : xstrdup("cohort-worker");
}

void
job_finish(struct job *j, int exit_code)
{
	if (!round_stopped(j)) {
		j->exit_code = exit_code;
		char why[32];
		snprintf(why, sizeof why, "exit status %d", exit_code);
		round_set_phase(j, ROUND_STOPPED, why);
	}
	if (j->launcher == NULL)
		return;
	launcher_stop(j->launcher, 0);
	if (launcher_alive(j->launcher) == 0)
		event_base_loopbreak(j->base);
}

/* The directory of the Python package cohort: installed beside this
 * binary (share/cohort/python), else the source tree's python/. */
static char *
python_dir(void)
{
	char *p = beside_self(COHORT_PYTHON_FROM_BIN, R_OK);
	return p != NULL ? p : xstrdup(COHORT_PYTHON_SOURCE_DIR);
}

/* worker.command split at spaces: argv (NULL-terminated, pointing into
 * *words; the caller frees both), or NULL when it is empty. */
static char **
command_argv(const char *command, char **words)
{
	*words = xstrdup(command);
	size_t n = 0, cap = 8;
	char **argv = xcalloc(cap, sizeof *argv);
	char *save = NULL;
	for (char *w = strtok_r(*words, " \t", &save); w != NULL;
	     w = strtok_r(NULL, " \t", &save)) {
		if (n + 2 > cap)
			argv = xrealloc(argv, (cap *= 2) * sizeof *argv);
		argv[n++] = w;
	}
	argv[n] = NULL;
	if (n == 0) {
		free(argv);
		free(*words);
		*words = NULL;
		return NULL;
	}
	return argv;
}

/* worker.command: the program and its arguments, with the Python package
 * cohort put first on PYTHONPATH (for every process this one starts). */
static void
resolve_command(struct job *j)
{
	const struct config *c = j->cfg;
	j->cmd_argv = command_argv(c->worker.command, &j->cmd_words);
	if (j->cmd_argv == NULL)
		return;
	char *found = strchr(j->cmd_argv[0], '/') != NULL
	                  ? NULL
	                  : find_on_path(j->cmd_argv[0]);
	j->cmd_program = found != NULL ? found : xstrdup(j->cmd_argv[0]);
	char *py = python_dir();
	/* worker.adapter nvflare: its stand-in package nvflare first. */
	if (strcmp(c->worker.adapter, "nvflare") == 0) {
		char *both = xasprintf("%s/adapters:%s", py, py);
		free(py);
		py = both;
	}
	const char *old = getenv("PYTHONPATH");
	char *pp = old != NULL && old[0] != '\0' ? xasprintf("%s:%s", py, old)
	                                         : xstrdup(py);
	setenv("PYTHONPATH", pp, 1);
	console_log("worker.command: %s (PYTHONPATH %s)", c->worker.command,
	            pp);
	free(pp);
	free(py);
}

/* Model custom without model.init: the initial model is the one
 * worker.command's program answers an init task with, written where the
 * prepare step named it (once: a resumed job has it). */
static int
init_custom_model(struct job *j)
{
	const struct config *c = j->cfg;
	const struct model_info *mi = models_find(c->model.name);
	const char *initial =
	    json_string_value(json_object_get(j->prepared, "initial"));
	if (mi == NULL || !mi->own || c->model.init[0] != '\0' ||
	    initial == NULL || files_exist(initial))
		return 0;
	struct kv_list kv = {0};
	taskconf_set_str(&kv, TK_MODEL, c->model.name);
	const char *keys[][2] = {
	    {"train", NULL}, {"test", NULL}, {"partition", NULL}};
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		keys[i][1] =
		    json_string_value(json_object_get(j->prepared, keys[i][0]));
		if (keys[i][1] == NULL)
			keys[i][1] = "";
	}
	taskconf_set_str(&kv, TK_TRAIN_DATA, keys[0][1]);
	taskconf_set_str(&kv, TK_TEST_DATA, keys[1][1]);
	taskconf_set_str(&kv, TK_PARTITION, keys[2][1]);
	taskconf_set_num(&kv, TK_CLIENTS, (double)c->federation.clients);
	taskconf_set_num(&kv, TK_JOB_SEED, (double)c->job.seed);
	taskconf_set_num(
	    &kv, TK_SEED,
	    (double)(rng_derive((uint64_t)c->job.seed, "init", 0) >> 11));
	taskconf_set_num(&kv, TK_CHUNK_BYTES,
	                 (double)((size_t)c->transport.chunk_mb << 20));
	char *log = workspace_path(&j->ws, "logs/clients/init.log");
	struct init_run r = {
	    .program = j->cmd_program,
	    .argv = (const char *const *)j->cmd_argv,
	    .socket_path = j->ws.socket_path,
	    .token = j->ws.token,
	    .jobkey = j->ws.jobkey,
	    .workspace = j->ws.dir,
	    .log_path = log,
	    .out_path = initial,
	    .timeout_s = c->launcher.task_timeout_s,
	    .config = &kv,
	};
	struct ipc_error err;
	int rc = init_run(&r, &err);
	if (rc < 0)
		console_err("%s", err.message);
	else
		console_log("initial model from %s's init task, in %s",
		            j->cmd_program, initial);
	free(log);
	kv_free(&kv);
	return rc;
}

/* The round engine's submit: the launcher's queue. */
static void
submit_to_launcher(struct job *j, uint64_t task_id, int64_t client)
{
	launcher_submit(j->launcher, task_id, client);
}

/* A worker was reaped: leave the loop once finished and none is left. */
static void
on_exited(void *arg, pid_t pid)
{
	struct job *j = arg;
	round_worker_gone(j, pid);
	updates_worker_gone(&j->updates, pid, &j->closer);
	if (round_stopped(j) && launcher_alive(j->launcher) == 0)
		event_base_loopbreak(j->base);
}

/* SIGINT/SIGTERM: stop in order; a second SIGINT stops at once. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct job *j = arg;
	(void)what;
	if (preempt_is_signal(j, (int)sig)) {
		preempt_begin(j);
		return;
	}
	if (sig == SIGINT && ++j->sigints > 1) {
		console_err("second interrupt: killing workers now");
		launcher_stop(j->launcher, 1);
		event_base_loopbreak(j->base);
		return;
	}
	if (round_stopped(j))
		return;
	console_err("%s: stopping workers (again to kill them at once)",
	            sig == SIGINT ? "interrupted" : "terminated");
	job_finish(j, sig == SIGINT ? JOB_EXIT_SIGINT : JOB_EXIT_SIGTERM);
}

/* Checkpoint the global model after the round just completed. */
static int
job_checkpoint(struct job *j)
{
	json_t *state = json_object();
	json_object_set_new(state, "seed", json_integer(j->cfg->job.seed));
	json_object_set_new(state, "next_task",
	                    json_integer((json_int_t)j->next_task_id));
	struct ipc_error err;
	json_t *strategy = strategy_save(&j->strategy, j->round, &err);
	if (strategy == NULL) {
		console_err("round %u: checkpoint failed: %s", j->round,
		            err.message);
		json_decref(state);
		return -1;
	}
	json_object_set_new(state, "strategy", strategy);
	/* Clients with failures only: {"client": count} (a federation of a
	 * million is mostly zeros). */
	json_t *fails = json_object();
	for (int64_t c = 0; c < j->cfg->federation.clients; c++)
		if (j->consecutive_failures[c] != 0) {
			char id[24];
			snprintf(id, sizeof id, "%lld", (long long)c);
			json_object_set_new(
			    fails, id,
			    json_integer(j->consecutive_failures[c]));
		}
	json_object_set_new(state, "consecutive_failures", fails);
	json_object_set(state, "history", j->history);
	/* What the job was when checkpointed: a resume says what changed. */
	json_object_set_new(state, "config", config_to_json(j->cfg));
	char *dir = workspace_path(&j->ws, "checkpoints");
	int rc =
	    checkpoint_save(dir, j->round, &j->model, j->global.fd, state,
	                    (unsigned)j->cfg->output.keep_checkpoints, &err);
	free(dir);
	json_decref(state);
	if (rc < 0)
		console_err("round %u: checkpoint failed: %s", j->round,
		            err.message);
	return rc;
}

/* The global models' label without the round (a memfd's, whatever the
 * transport: the stream transport's global model was a file of run/ that
 * a worker of the same uid could truncate under the orchestrator's
 * mapping). */
static void
global_prefix(const struct job *j, char *buf, size_t size)
{
	snprintf(buf, size, "cohort.%s.g", j->ws.jobkey);
}

/* Restore counters and history from a checkpoint's state.json. */
static void
restore_state(struct job *j, json_t *state)
{
	j->round =
	    (unsigned)json_integer_value(json_object_get(state, "round"));
	j->next_task_id =
	    (uint64_t)json_integer_value(json_object_get(state, "next_task"));
	/* {"client": count}, or one count per client (older checkpoints) */
	json_t *fails = json_object_get(state, "consecutive_failures");
	for (size_t i = 0; i < json_array_size(fails) &&
	                   i < (size_t)j->cfg->federation.clients;
	     i++)
		j->consecutive_failures[i] =
		    (uint32_t)json_integer_value(json_array_get(fails, i));
	const char *id;
	json_t *count;
	json_object_foreach(fails, id, count)
	{
		/* ids checked by checkpoint_load: below federation.clients */
		j->consecutive_failures[strtoll(id, NULL, 10)] =
		    (uint32_t)json_integer_value(count);
	}
	json_t *h = json_object_get(state, "history");
	if (json_is_array(h)) {
		json_decref(j->history);
		j->history = json_incref(h);
	}
}

void
job_global_name(const struct job *j, unsigned round, char *buf, size_t size)
{
	global_prefix(j, buf, size);
	size_t n = strlen(buf);
	snprintf(buf + n, size - n, "%u", round);
}

/* A model file at least this big gets progress lines when it is read or
 * written (seconds of disk). */
#define LARGE_WRITE_BYTES (256ULL << 20)

/* Load the model to start from (checkpoint or initial), let the capacity
 * check choose the transport, and write the model into the global segment
 * of the first round to run. */
static int
load_model(struct job *j, int resuming)
{
	struct ipc_error err;
	void *region = NULL;
	json_t *state = NULL;
	tensor_manifest_init(&j->model);
	/* The initial model gives the layout; a checkpoint must match it. */
	const char *initial =
	    json_string_value(json_object_get(j->prepared, "initial"));
	struct stat st;
	if (initial != NULL && stat(initial, &st) == 0 &&
	    (uint64_t)st.st_size >= LARGE_WRITE_BYTES)
		console_out("reading the initial model %s (%.2f GiB)", initial,
		            (double)st.st_size / (1 << 30));
	if (safetensors_read(initial, &j->model, &region, NULL, &err) < 0) {
		console_err("initial model: %s", err.message);
		return -1;
	}
	j->round = 0;
	const char *init = j->cfg->model.init;
	const struct model_info *mi = models_find(j->cfg->model.name);
	int hub = mi != NULL && mi->text; /* a Hugging Face GPT-2 file */
	if (!resuming && init[0] != '\0') {
		if ((hub ? hub_gpt2_read_into(init, &j->model, region, &err)
		         : safetensors_read_into(init, &j->model, region, NULL,
		                                 &err)) < 0 ||
		    tensor_region_check_finite(&j->model, region, &err) < 0) {
			console_err("model.init: %s", err.message);
			free(region);
			return -1;
		}
		console_log("initial model from model.init %s", init);
	}
	if (resuming) {
		char *dir = workspace_path(&j->ws, "checkpoints");
		struct checkpoint_expect want = {
		    &j->model, j->cfg->federation.clients, j->cfg->job.seed};
		int rc = checkpoint_load(dir, &want, &state, region, &err);
		free(dir);
		if (rc < 0) {
			console_err("cannot resume: %s", err.message);
			free(region);
			return -1;
		}
	}
	if (state != NULL) {
		restore_state(j, state);
		console_out("resuming after round %u", j->round);
		json_t *saved = json_object_get(state, "config");
		json_t *now = config_to_json(j->cfg);
		char diff[1024] = "";
		int n = saved ? config_job_differences(saved, now, diff,
		                                       sizeof diff)
		              : 0;
		if (n > 0)
			console_err(
			    "warning: the job's configuration changed "
			    "since its checkpoint (%d key%s: %s%s); the "
			    "rounds to come run with the new one",
			    n, n == 1 ? "" : "s", diff, n > 4 ? "; ..." : "");
		json_decref(now);
	}
	int rc = 0;
	char *ckpt = workspace_path(&j->ws, "checkpoints");
	struct strategy_env env = {j->cfg, &j->model, j->ws.jobkey, ckpt};
	if (strategy_init(&j->strategy, &env, &err) < 0 ||
	    (resuming &&
	     strategy_load(&j->strategy, json_object_get(state, "strategy"),
	                   &err) < 0)) {
		console_err("strategy %s: %s", j->cfg->strategy.name,
		            err.message);
		rc = -1;
	}
	free(ckpt);
	json_decref(state);
	/* The transport decides where the global model lives. */
	if (rc == 0)
		rc = capacity_plan(j);
	if (rc == 0) {
		/* A workspace of an older version may hold the stream
		 * transport's global models as files ("run/global.g"). */
		char name[sizeof j->global.name];
		int n =
		    snprintf(name, sizeof name, "%s/run/global.g", j->ws.dir);
		if (n > 0 && (size_t)n < sizeof name)
			shm_remove_prefix(name, NULL, NULL);
		job_global_name(j, j->round + 1, name, sizeof name);
		rc = shm_segment_create_copy(&j->global, name,
		                             j->model.total_size, region, &err);
		if (rc == 0)
			rc = stream_seal_global(j, &j->global, &err);
		if (rc == 0) {
			stream_release_global(j);
		} else {
			console_err("global model: %s", err.message);
		}
	}
	free(region);
	return rc;
}

/* Peak resident set of this process image in kB (VmHWM). Unlike
 * ru_maxrss it is not inherited across execve from the parent, so a
 * launcher written in Python does not inflate it. */
static long
peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	long kb = -1;
	char line[256];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

/* model.init of a new job is there before anything is prepared (a GPT-2
 * prepares hundreds of MiB first). */
static int
init_precheck(const struct config *c)
{
	const char *init = c->model.init;
	const struct model_info *mi = models_find(c->model.name);
	if (init[0] == '\0' || files_exist(init))
		return 0;
	console_err("model.init %s: no such file%s", init,
	            mi != NULL && mi->text
	                ? " (a GPT-2 from the Hugging Face hub: docs/gpt2.md "
	                  "says where to get model.safetensors; or set "
	                  "model.init to \"\" to start from a new model)"
	                : "");
	return -1;
}

/* A text model's results/huggingface/ (orchestrator/hub.h), beside
 * model, the final model just written: an extra copy in another layout, so
 * a failure is reported but does not fail the results. */
static void
write_hub_dir(struct job *j, const char *model)
{
	const struct model_info *mi = models_find(j->cfg->model.name);
	if (mi == NULL || !mi->text)
		return;
	struct gpt2_config g;
	struct ipc_error err;
	char tok[4096];
	if (config_gpt2(j->cfg, &g, &err) < 0)
		fatal("%s", err.message); /* config_check accepted it */
	gpt2_bpe_dir(j->cfg->data.tokenizer, tok, sizeof tok);
	char *dir = workspace_path(&j->ws, "results/huggingface");
	int warned;
	if (hub_gpt2_write_dir(dir, &j->model, g.num_heads, model, tok, &warned,
	                       &err) < 0)
		console_err("results: %s not written: %s (the final model is "
		            "in results/global_model.safetensors)",
		            dir, err.message);
	free(dir);
}

/* Write results/ and print the final summary of a finished job; -1 (and
 * no summary) when a file of results/ could not be written. */
static int
write_results(struct job *j, double wall)
{
	int rc = 0;
	struct ipc_error err;
	char *model =
	    workspace_path(&j->ws, "results/global_model.safetensors");
	struct st_metadata meta = {0};
	modelmeta_fill(&meta, j->cfg, &j->model, j->round);
	/* a large model's write takes seconds: say so */
	int large = j->model.total_size >= LARGE_WRITE_BYTES;
	double t0 = now_seconds();
	if (large)
		console_out("writing %s (%.2f GiB)", model,
		            (double)j->model.total_size / (1 << 30));
	if (safetensors_write_fd(model, &j->model, j->global.fd, &meta, &err) <
	    0) {
		console_err("results: %s", err.message);
		rc = -1;
	} else if (large) {
		console_out("written in %.1f s", now_seconds() - t0);
	}
	st_metadata_free(&meta);
	if (rc == 0)
		write_hub_dir(j, model);
	json_t *last =
	    json_array_get(j->history, json_array_size(j->history) - 1);
	double acc = json_number_value(json_object_get(last, "test_accuracy"));
	json_t *acc_j = json_object_get(last, "test_accuracy");
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
	const struct launcher_stats *s = launcher_stats(j->launcher);
	json_t *sum = json_object();
	json_object_set_new(sum, "workspace", json_string(j->ws.dir));
	json_object_set_new(sum, "model", json_string(model));
	json_object_set_new(sum, "rounds", json_integer(j->round));
	json_object_set_new(sum, "final_test_accuracy",
	                    acc_j && json_is_number(acc_j) ? json_real(acc)
	                                                   : json_null());
	json_object_set(sum, "history", j->history);
	json_object_set_new(sum, "tasks",
	                    json_integer((json_int_t)j->next_task_id));
	json_object_set_new(sum, "workers_spawned", json_integer(s->spawned));
	json_object_set_new(sum, "wall_seconds", json_real(wall));
	json_object_set_new(sum, "orchestrator_cpu_seconds", json_real(cpu));
	json_object_set_new(sum, "orchestrator_peak_rss_kb",
	                    json_integer(peak_rss_kb()));
	char *text = json_dumps(sum, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	char *path = workspace_path(&j->ws, "results/summary.json");
	if (atomicfile_write_buffer(path, text, strlen(text), &err) < 0) {
		console_err("results: %s", err.message);
		rc = -1;
	}
	free(path);
	free(text);
	json_decref(sum);
	if (rc < 0) {
		console_err("every round is checkpointed; --resume %s writes "
		            "the results again",
		            j->ws.dir);
	} else if (acc_j && json_is_number(acc_j))
		console_out("done: %u rounds, test_acc %.4f, model %s, "
		            "workspace %s",
		            j->round, acc, model, j->ws.dir);
	else
		console_out("done: %u rounds, model %s, workspace %s", j->round,
		            model, j->ws.dir);
	free(model);
	return rc;
}

/* Create the launcher and the signal events. */
/* The most a model may be for launcher.partial_sums auto: each pool
 * worker's sum is twice its size. */
#define PARTIAL_SUMS_AUTO_MAX (64u << 20)

/* Whether pool workers send partial sums (launcher.partial_sums) into
 * *on; -1 with err when it is on but the job cannot have them. */
static int
partial_sums_on(const struct job *j, unsigned tasks_per_worker, int *on,
                struct ipc_error *err)
{
	const char *mode = j->cfg->launcher.partial_sums;
	const char *why = NULL;
	*on = 0;
	if (strcmp(mode, "off") == 0)
		return 0;
	if (tasks_per_worker < 2)
		why =
		    "a worker runs one task (launcher.tasks_per_worker 1): it "
		    "has nothing to add up";
	else if (j->stream.enabled)
		why = "the stream transport returns every update (partial sums "
		      "need transport.mode shm)";
	else if (!strategy_folds_sums(&j->strategy) ||
	         strategy_is_relay(&j->strategy))
		why = "the strategy needs every update (partial sums are for "
		      "fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad)";
	if (why != NULL && strcmp(mode, "on") == 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "launcher.partial_sums is on, but %s; set "
		                     "launcher.partial_sums=auto",
		                     why);
	*on = why == NULL && (strcmp(mode, "on") == 0 ||
	                      j->model.total_size <= PARTIAL_SUMS_AUTO_MAX);
	return 0;
}

static int
start_launcher(struct job *j)
{
	const struct config *c = j->cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char *logs = workspace_path(&j->ws, "logs/clients");
	struct launcher_options o = {
	    .worker_path = j->worker_path,
	    .socket_path = j->ws.socket_path,
	    .jobkey = j->ws.jobkey,
	    .token = j->ws.token,
	    .workspace = j->ws.dir,
	    .log_dir = logs,
	    .max_concurrent = c->launcher.max_concurrent > 0
	                          ? (unsigned)c->launcher.max_concurrent
	                          : (unsigned)(cpus > 0 ? cpus : 1),
	    .tasks_per_worker = (unsigned)c->launcher.tasks_per_worker,
	    .fork_server = strcmp(c->launcher.mode, "fork-server") == 0,
	    .send_ahead = !j->stream.enabled,
	    .task_timeout_s = c->launcher.task_timeout_s,
	    .kill_grace_s = c->launcher.kill_grace_s,
	    .chunk_bytes = (size_t)c->transport.chunk_mb << 20,
	};
	struct launcher_hooks h = {.encode_task = round_encode_task,
	                           .task_fds = round_task_fds,
	                           .result = round_on_result,
	                           .metrics = round_on_metrics,
	                           .failed = round_on_failed,
	                           .exited = on_exited,
	                           .partial = round_on_partial,
	                           .arg = j,
	                           .task_stream = stream_task_source,
	                           .result_chunk = stream_on_chunk,
	                           .result_abort = stream_on_abort};
	struct ipc_error err;
	struct gpuslots gpus;
	if (gpuplan_make(c, o.max_concurrent, &gpus, &o.device, &err) < 0) {
		console_err("%s", err.message);
		free(logs);
		return -1;
	}
	o.gpus = &gpus;
	int sums;
	if (partial_sums_on(j, o.tasks_per_worker, &sums, &err) < 0) {
		console_err("%s", err.message);
		gpuslots_free(&gpus);
		free(logs);
		return -1;
	}
	partials_init(&j->partials, wsum_numel(&j->model), sums,
	              (unsigned)c->launcher.partial_flush_every, j->ws.jobkey);
	/* Pool workers keep update segments of their own (updates.h). */
	updates_init(&j->updates, j->model.total_size,
	             o.tasks_per_worker > 1 && !j->stream.enabled &&
	                 j->model.total_size <= SHM_POPULATE_MAX &&
	                 stream_folds_mean(&j->strategy) &&
	                 !strategy_is_relay(&j->strategy));
	if (closer_start(&j->closer, &err) < 0)
		console_log("update segments are closed on the event loop: %s",
		            err.message);
	/* worker.command: the user's program runs the tasks, with the Python
	 * package on its PYTHONPATH; the prepare step ran the built-in
	 * worker. */
	if (j->cmd_argv != NULL) {
		o.worker_path = j->cmd_program;
		o.worker_args = (const char *const *)j->cmd_argv + 1;
	}
	j->launcher = launcher_create(j->base, &o, &h, &err);
	j->submit = submit_to_launcher;
	gpuslots_free(&gpus);
	free(logs);
	if (j->launcher == NULL) {
		console_err("%s", err.message);
		return -1;
	}
	if (j->ws.socket_tmpdir != NULL)
		console_err("workspace path too long for a Unix socket; using "
		            "%s",
		            j->ws.socket_path);
	j->sigint = evsignal_new(j->base, SIGINT, on_signal, j);
	j->sigterm = evsignal_new(j->base, SIGTERM, on_signal, j);
	evsignal_add(j->sigint, NULL);
	evsignal_add(j->sigterm, NULL);
	preempt_arm(j);
	return 0;
}

/* Start the tracking sinks; a failure is reported and the job goes on
 * (metrics.jsonl stays the source of truth). */
static void
start_tracking(struct job *j)
{
	const struct config *c = j->cfg;
	struct tracking_config tc = {
	    .mlflow_uri = c->tracking.mlflow_uri,
	    .experiment =
	        c->tracking.experiment[0] ? c->tracking.experiment : NULL,
	    .run_name = strrchr(j->ws.dir, '/') ? strrchr(j->ws.dir, '/') + 1
	                                        : j->ws.dir,
	    .child_runs = c->tracking.child_runs,
	    .tensorboard = c->tracking.tensorboard,
	    .report = c->tracking.report,
	};
	char seed[32];
	snprintf(seed, sizeof seed, "%lld", (long long)c->job.seed);
	struct tracking_tags tags = {
	    .version = COHORT_VERSION,
	    .seed = seed,
	    .strategy = c->strategy.name,
	    .git_revision = getenv("COHORT_GIT_REVISION"),
	};
	json_t *resolved = config_to_json(c);
	struct ipc_error err;
	j->tracking =
	    tracking_open(j->base, j->ws.dir, &tc, resolved, &tags, &err);
	json_decref(resolved);
	if (j->tracking == NULL)
		console_err("tracking off: %s", err.message);
	else /* the MLflow run exists (and starts) with the job */
		tracking_round(j->tracking, j->round);
}

/* The MLflow run status a job's exit status maps to. */
static const char *
tracking_status(int code)
{
	if (code == JOB_EXIT_OK)
		return "FINISHED";
	if (code == JOB_EXIT_SIGINT || code == JOB_EXIT_SIGTERM ||
	    code == JOB_EXIT_PREEMPTED)
		return "KILLED";
	return "FAILED";
}

/* Open or create the workspace and its log; run preparation if needed. */
static int
open_workspace(struct job *j, const char *resume_dir)
{
	struct ipc_error err;
	const struct config *c = j->cfg;
	int rc = resume_dir ? workspace_open(&j->ws, resume_dir, &err)
	                    : workspace_create(&j->ws, c->job.workspace_root,
	                                       c->job.name, &err);
	if (rc < 0) {
		console_err("%s", err.message);
		return -1;
	}
	char *log = workspace_path(&j->ws, "logs/orchestrator.log");
	rc = console_open_log(log, &err);
	free(log);
	if (rc < 0 || workspace_start_run(&j->ws, &err) < 0) {
		console_err("%s", err.message);
		return -1;
	}
	console_log("pid %ld, job key %s, socket %s, worker %s", (long)getpid(),
	            j->ws.jobkey, j->ws.socket_path, j->worker_path);
	if (j->ws.stale_temps > 0)
		console_log("removed %u temporary files of interrupted writes",
		            j->ws.stale_temps);
	if (!resume_dir) {
		char *cfg = workspace_path(&j->ws, "config.json");
		rc = config_save(c, cfg, &err);
		free(cfg);
		if (rc < 0) {
			console_err("%s", err.message);
			return -1;
		}
	}
	console_out("job %s: %lld clients, %lld sampled per round, %lld "
	            "rounds; workspace %s",
	            c->job.name, (long long)c->federation.clients,
	            (long long)c->federation.fit_clients,
	            (long long)c->federation.rounds, j->ws.dir);
	char *prepared = workspace_path(&j->ws, "data/prepared.json");
	int need_prepare = !resume_dir || !files_exist(prepared);
	free(prepared);
	if (need_prepare) {
		if (capacity_precheck(c) < 0 || init_precheck(c) < 0)
			return -1;
		char *plog = workspace_path(&j->ws, "logs/prepare.log");
		console_out("preparing the data and the initial model (log: "
		            "%s)",
		            plog);
		double t0 = now_seconds();
		rc = prepare_run(j->worker_path, j->ws.dir, plog, &err);
		free(plog);
		if (rc < 0) {
			console_err("%s", err.message);
			return -1;
		}
		console_out("prepared in %.1f s", now_seconds() - t0);
	}
	if (prepare_load(j->ws.dir, &j->prepared, &err) < 0) {
		console_err("%s", err.message);
		return -1;
	}
	return 0;
}

void
job_close(struct job *j)
{
	if (j->launcher != NULL)
		launcher_free(j->launcher);
	if (j->sigint != NULL)
		event_free(j->sigint);
	if (j->sigterm != NULL)
		event_free(j->sigterm);
	preempt_free(j);
	stream_free(&j->stream);
	shm_segment_close(&j->global);
	metrics_close(&j->metrics, NULL);
	strategy_free(&j->strategy);
	tensor_manifest_free(&j->model);
	round_tasks_free(j);
	updates_free(&j->updates, &j->closer);
	partials_free(&j->partials, &j->closer);
	closer_stop(&j->closer);
	fedeval_free(&j->r.fedeval);
	clientstats_free(&j->r.stats);
	free(j->consecutive_failures);
	free(j->worker_path);
	free(j->cmd_words);
	free(j->cmd_argv);
	free(j->cmd_program);
	json_decref(j->prepared);
	json_decref(j->history);
	if (j->base != NULL)
		event_base_free(j->base);
	workspace_close(&j->ws);
	console_close_log();
}

void
job_round_ended(struct job *j, enum round_outcome outcome)
{
	if (outcome == ROUND_FAILED || job_checkpoint(j) < 0) {
		job_finish(j, JOB_EXIT_FAILED);
		return;
	}
	if (j->round >= (unsigned)j->cfg->federation.rounds) {
		job_finish(j, JOB_EXIT_OK);
		return;
	}
	if (preempt_round_completed(j))
		return;
	j->round++;
	round_start(j);
}

int
job_open(struct job *j, struct config *cfg, const char *resume_dir)
{
	memset(j, 0, sizeof *j);
	j->cfg = cfg;
	j->history = json_array();
	j->global.fd = -1;
	j->consecutive_failures =
	    xcalloc((size_t)cfg->federation.clients, sizeof(uint32_t));
	j->worker_path = resolve_worker(cfg->launcher.worker);
	const char *progress = cfg->output.progress;
	console_set_progress(
	    strcmp(progress, "always") == 0 ||
	    (strcmp(progress, "auto") == 0 && isatty(STDOUT_FILENO)));
	signal(SIGPIPE, SIG_IGN);
	preempt_init(j);
	if (open_workspace(j, resume_dir) < 0)
		return -1;
	resolve_command(j);
	if (init_custom_model(j) < 0 || load_model(j, resume_dir != NULL) < 0)
		return -1;
	struct ipc_error err;
	char *mpath = workspace_path(&j->ws, "metrics/metrics.jsonl");
	int rc = metrics_open(&j->metrics, mpath,
	                      resume_dir ? (long)j->round : -1, &err);
	free(mpath);
	if (rc < 0) {
		console_err("%s", err.message);
		return -1;
	}
	j->summary = strcmp(cfg->output.client_metrics, "summary") == 0;
	return 0;
}

/* Keys whose values differ between two saved configs, as
 * {"section.key": [was, now]}. */
static json_t *
config_changes(const json_t *was, const json_t *now)
{
	json_t *out = json_object();
	const char *section, *key;
	json_t *sv, *v;
	json_object_foreach((json_t *)now, section, sv)
	{
		json_t *old_section = json_object_get(was, section);
		json_object_foreach(sv, key, v)
		{
			json_t *old = json_object_get(old_section, key);
			if (old != NULL && json_equal(old, v))
				continue;
			char *name = xasprintf("%s.%s", section, key);
			json_object_set_new(
			    out, name,
			    json_pack("[OO]", old ? old : json_null(), v));
			free(name);
		}
	}
	return out;
}

/* Append this start of the job to WORKSPACE/config-history.jsonl (when,
 * new or resumed after which round, the command line, the settings it
 * changed). A resume that changed settings (--set) also saves the
 * effective configuration as config.json, so that the next resume, the
 * report and cohort-mlflow-sync start from what really ran. */
static int
record_start(struct job *j, const json_t *command, int resumed,
             struct ipc_error *err)
{
	char *path = workspace_path(&j->ws, "config.json");
	json_t *now = config_to_json(j->cfg);
	json_t *was = resumed ? json_load_file(path, 0, NULL) : NULL;
	json_t *changes = was ? config_changes(was, now) : json_object();
	int rc = 0;
	if (json_object_size(changes) > 0) {
		rc = config_save(j->cfg, path, err);
		const char *key;
		json_t *v;
		json_object_foreach(changes, key, v)
		{
			char *a = json_dumps(json_array_get(v, 0),
			                     JSON_ENCODE_ANY | JSON_COMPACT);
			char *b = json_dumps(json_array_get(v, 1),
			                     JSON_ENCODE_ANY | JSON_COMPACT);
			console_log("resume: %s %s -> %s (config.json updated)",
			            key, a, b);
			free(a);
			free(b);
		}
	}
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *line = json_pack(
	    "{s:s,s:s,s:I,s:O,s:o}", "time", stamp, "start",
	    resumed ? "resume" : "new", "after_round", (json_int_t)j->round,
	    "command", command ? command : json_null(), "changed", changes);
	char *text = json_dumps(line, JSON_COMPACT);
	char *hist = workspace_path(&j->ws, "config-history.jsonl");
	FILE *f = fopen(hist, "a");
	int bad = f == NULL;
	if (f != NULL) {
		bad = fprintf(f, "%s\n", text) < 0;
		bad |= fclose(f) != 0;
	}
	if (bad)
		console_err("%s: cannot append: %s", hist, strerror(errno));
	free(hist);
	free(text);
	json_decref(line);
	json_decref(was);
	json_decref(now);
	free(path);
	return rc;
}

/* A new job refused before its first round keeps config.json and logs/
 * (to read why), not what it prepared: data/ and the initial model in
 * checkpoints/, gigabytes for a large model, of a job that never ran. */
static void
drop_prepared(struct job *j)
{
	if (j->ws.dir == NULL)
		return;
	static const char *const made[] = {"data", "checkpoints"};
	unsigned long long bytes = 0;
	for (size_t i = 0; i < ARRAY_LEN(made); i++) {
		char *dir = workspace_path(&j->ws, made[i]);
		bytes += files_remove_tree(dir);
		free(dir);
	}
	if (bytes > 0)
		console_err("removed what the refused job prepared (data/ and "
		            "checkpoints/ of %s, %.1f MiB)",
		            j->ws.dir, (double)bytes / (1024.0 * 1024));
}

int
job_run(struct config *cfg, const char *resume_dir, int resumed,
        const json_t *command)
{
	struct job j;
	double t0 = now_seconds();
	int code = JOB_EXIT_FAILED;
	struct ipc_error err;
	if (job_open(&j, cfg, resume_dir) < 0)
		goto refused;
	if (record_start(&j, command, resumed, &err) < 0) {
		console_err("%s", err.message);
		goto out;
	}
	j.base = event_base_new();
	if (j.base == NULL)
		fatal("cannot create an event base");
	if (start_launcher(&j) < 0)
		goto refused;
	start_tracking(&j);
	if (j.round >= (unsigned)cfg->federation.rounds) {
		j.exit_code = JOB_EXIT_OK;
	} else {
		j.round++;
		round_start(&j);
		if (!round_stopped(&j) || launcher_alive(j.launcher) > 0)
			event_base_dispatch(j.base);
	}
	code = j.exit_code;
	/* Every metric line is written by now: nothing is reported done
	 * that is not on disk. */
	if (metrics_close(&j.metrics, &err) < 0 && code == JOB_EXIT_OK) {
		console_err("%s", err.message);
		code = JOB_EXIT_FAILED;
	}
	if (code == JOB_EXIT_OK && write_results(&j, now_seconds() - t0) < 0)
		code = JOB_EXIT_FAILED;
	else if (code == JOB_EXIT_SIGINT || code == JOB_EXIT_SIGTERM ||
	         j.sigints > 1)
		console_err("stopped; completed rounds are checkpointed. "
		            "Resume with: cohort-orchestrator --resume %s",
		            j.ws.dir);
	else if (code == JOB_EXIT_PREEMPTED)
		preempt_report(&j);
	if (j.sigints > 1)
		code = JOB_EXIT_SIGINT;
	if (j.tracking != NULL) {
		tracking_finish(j.tracking, tracking_status(code),
		                j.sigints > 1 ? 0 : cfg->tracking.drain_s);
		tracking_free(j.tracking);
		j.tracking = NULL;
	}
	goto out;
refused:
	if (!resumed)
		drop_prepared(&j);
out:
	job_close(&j);
	return code;
}
