/* preempt.h: pre-emption of a batch job. On preempt.signal the job samples
 * no new round; the round in progress is finished (and checkpointed) when it
 * can end before preempt.deadline_s, else abandoned; the job then exits
 * JOB_EXIT_PREEMPTED with its last checkpoint kept, to be continued with
 * --workspace or --resume. */
#ifndef COHORT_PREEMPT_H
#define COHORT_PREEMPT_H

#include <stddef.h>

struct event;
struct job;

struct preempt {
	int signo;           /* the signal that pre-empts (preempt.signal) */
	struct event *sig;   /* its event; NULL when job.c owns it (INT/TERM) */
	struct event *timer; /* preempt.deadline_s after the signal */
	int requested;       /* the signal arrived */
	double since;        /* when it arrived */
	double last_round_s; /* wall time of this run's last completed round */
};

/* What to do about the round in progress when the signal comes. */
enum preempt_action {
	PREEMPT_FINISH_ROUND, /* it can end before the deadline: let it */
	PREEMPT_ABANDON,      /* it cannot, or a second signal came */
};

/* The decision alone, from what p knows (a signal already seen, the last
 * round's wall time), the seconds the round has run and the deadline: a
 * pure function, so it is unit tested (test_preempt); why (size bytes)
 * says why when abandoning. */
enum preempt_action preempt_decide(const struct preempt *p, double elapsed_s,
                                   double deadline_s, char *why, size_t size);

/* Catch the pre-emption signal from now on, before the event loop exists,
 * so an early one is remembered instead of killing the process. */
void preempt_init(struct job *j);
/* Route the signal into the event loop (after the base exists). */
void preempt_arm(struct job *j);
/* True when sig is the configured pre-emption signal. */
int preempt_is_signal(const struct job *j, int sig);
/* The pre-emption signal arrived: stop after this round or abandon it. */
void preempt_begin(struct job *j);
/* A round was completed and checkpointed; returns 1 when the job stops
 * there because it is being pre-empted. */
int preempt_round_completed(struct job *j);
/* Tell the user what was kept and how to continue. */
void preempt_report(const struct job *j);
void preempt_free(struct job *j);

#endif
