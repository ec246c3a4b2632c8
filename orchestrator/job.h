/* job.h: one federated job from start to exit: workspace, preparation,
 * launcher, event loop, rounds, signals, checkpoints and final results.
 * job.c owns the job's lifecycle; round.c (the round engine) owns struct
 * round, the round in progress, and reports each round's end through
 * job_round_ended. */
#ifndef COHORT_JOB_H
#define COHORT_JOB_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "clientstats.h"
#include "closer.h"
#include "config.h"
#include "fedavg.h"
#include "fedeval.h"
#include "launcher.h"
#include "metrics.h"
#include "preempt.h"
#include "shm.h"
#include "strategy.h"
#include "stream.h"
#include "tracking.h"
#include "partials.h"
#include "updates.h"
#include "workspace.h"

/* Exit statuses of cohort-orchestrator. */
enum {
	JOB_EXIT_OK = 0,
	JOB_EXIT_FAILED = 1,
	JOB_EXIT_USAGE = 2,
	JOB_EXIT_PREEMPTED = 75, /* EX_TEMPFAIL: continue with --workspace */
	JOB_EXIT_SIGINT = 130,
	JOB_EXIT_SIGTERM = 143,
};

/* Where the job's current round stands; round_set_phase allows:
 *   IDLE -> FIT          round_start (round 1, or the first after a resume)
 *   FIT -> FIT           a retry with a new sample (federation.round_retries)
 *   FIT -> EVALUATE      enough fits ended: the new global model is published
 *                        and the central and federated evaluations run
 *   FIT -> DONE          too few clients available and
 *                        federation.on_unavailable skip: recorded as skipped
 *   EVALUATE -> DONE     reported, recorded and checkpointed
 *   DONE -> FIT          the next round
 *   any -> STOPPED       job_finish: no task is started any more; the loop
 *                        ends once every worker is gone */
enum round_phase {
	ROUND_IDLE,
	ROUND_FIT,
	ROUND_EVALUATE,
	ROUND_DONE,
	ROUND_STOPPED,
};

/* A fit task of the current round attempt. */
struct job_task {
	uint64_t task_id;
	int64_t client;
	int done;
	/* shm transport: the memfd its update goes into, made when its task
	 * frame is sent to worker update_pid and closed when it ends (fd -1:
	 * none), or that worker's own segment update_slot (updates.h; -1:
	 * not one) */
	struct shm_segment update;
	pid_t update_pid;
	int update_slot;
	int64_t metric_lines; /* progress metric lines it added */
	/* Reported folded into its worker's partial sum (partials.h), which
	 * has not come yet: not done, not in flight. */
	int folded;
};

/* The round in progress: round.c's own state (the job holds it, the
 * round engine alone reads and writes it; pre-emption reads its start). */
struct round {
	enum round_phase phase;
	unsigned attempt;
	double start;           /* now_seconds() when round_start ran */
	struct job_task *tasks; /* the attempt's fits */
	unsigned ntasks, done, ok, failed;
	unsigned retried;   /* relay: failed tries of a hop that were retried */
	unsigned draw;      /* the availability draw the attempt uses */
	unsigned available; /* clients available, offline and excluded */
	unsigned offline, excluded;
	unsigned relay_pos;  /* relay strategies: the hop in flight */
	int central_pending; /* EVALUATE: the central evaluate task runs */
	uint64_t eval_task_id;
	double test_loss, test_acc;   /* central evaluation of the round */
	struct fedeval fedeval;       /* evaluate.fraction tasks of the round */
	double loss_sum, loss_weight; /* examples-weighted train loss */
	/* output.client_metrics summary: the attempt's per-client numbers */
	struct clientstats stats;
	int stats_full;           /* said that a key was dropped */
	char failure_notes[1024]; /* reasons seen in this round */
};

struct job {
	struct config *cfg;
	struct workspace ws;
	struct event_base *base;
	struct launcher *launcher;
	struct metrics metrics;
	struct event *sigint, *sigterm;
	struct preempt preempt;
	struct stream stream;   /* transport.mode stream: chunks, staging */
	struct closer closer;   /* closes folded update segments off the loop */
	struct updates updates; /* pool workers' own update segments */
	struct partials partials; /* pool workers' partial sums */
	char *worker_path;
	/* worker.command split (cmd_argv points into cmd_words) and its
	 * program's path; NULL: the built-in worker runs the tasks. */
	char *cmd_words, **cmd_argv, *cmd_program;
	json_t *prepared; /* data/prepared.json */
	/* Where the round engine sends tasks: the launcher's queue
	 * (start_launcher), or a test's stand-in (tests/test_round.c). */
	void (*submit)(struct job *j, uint64_t task_id, int64_t client);

	struct tensor_manifest model;
	struct shm_segment
	    global; /* /cohort.<jobkey>.g<round>: this round's model */
	struct strategy strategy;       /* aggregation (strategy.name) */
	uint32_t *consecutive_failures; /* per client */
	int summary;                    /* output.client_metrics summary */

	unsigned round; /* current (1-based) */
	uint64_t next_task_id;
	struct round r;            /* the round in progress (round.c's) */
	json_t *history;           /* array of per-round summaries */
	struct tracking *tracking; /* MLflow, TensorBoard, report */

	int exit_code;
	unsigned sigints;
};

/* Run a new job (resume_dir NULL, or the empty directory of --workspace)
 * or resume one (resumed); command (the command line as a JSON array, or
 * NULL) goes into config-history.jsonl. Returns the exit status. */
int job_run(struct config *cfg, const char *resume_dir, int resumed,
            const json_t *command);
/* What job_run does before it starts the launcher: open or create the
 * workspace, run the prepare step, load the model (the capacity check and
 * the transport included) and open metrics; -1 when one failed (reported
 * on the console). job_close releases what it and the run made. The round
 * engine's tests run rounds on such a job with a stand-in submit. */
int job_open(struct job *j, struct config *cfg, const char *resume_dir);
void job_close(struct job *j);

/* round.c */
/* Start round job->round (attempt 0). */
void round_start(struct job *j);
/* Move the round to phase to, naming why (logged at debug level); a move
 * the table above does not allow is a bug (fatal). */
void round_set_phase(struct job *j, enum round_phase to, const char *why);
/* The job is finishing: no task may start. */
int round_stopped(const struct job *j);
/* Launcher hooks. */
int round_encode_task(void *arg, uint64_t task_id, pid_t pid, uint8_t **frame,
                      size_t *len);
int round_task_fds(void *arg, uint64_t task_id, pid_t pid, int *fds,
                   unsigned cap);
/* Close the update segments of the round's tasks and free them. */
void round_tasks_free(struct job *j);
void round_on_result(void *arg, uint64_t task_id, const struct msg *m);
void round_on_metrics(void *arg, uint64_t task_id, const struct msg *m);
void round_on_failed(void *arg, uint64_t task_id, const char *reason);
int round_on_partial(void *arg, pid_t pid, const struct msg *m,
                     struct ipc_error *err);
/* Worker process pid is gone: the fits folded into its partial sum that
 * never came run again. */
void round_worker_gone(struct job *j, pid_t pid);

/* How a round ended, as round.c tells the job. */
enum round_outcome {
	ROUND_COMPLETED, /* reported and recorded in the history */
	ROUND_FAILED,    /* the reason is on the console */
};

/* job.c, called by round.c */
/* The one report of the round engine: a completed round is checkpointed,
 * then the job ends (last round, pre-emption) or starts the next one; a
 * failed round fails the job. */
void job_round_ended(struct job *j, enum round_outcome outcome);
/* The label of round's global model (its memfd's name, seen in
 * /proc/PID/fd and /proc/PID/maps). */
void job_global_name(const struct job *j, unsigned round, char *buf,
                     size_t size);
/* Stop launching and end the loop once every worker is gone. */
void job_finish(struct job *j, int exit_code);

#endif
