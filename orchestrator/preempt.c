/* preempt.c: what a job does when its batch system announces the end of its
 * allocation (Slurm's --signal, a pre-emption notice): no new round, the
 * round in progress finished if it fits before the deadline, else abandoned,
 * then exit JOB_EXIT_PREEMPTED with the last checkpoint kept. */
#include "job.h"

#include <signal.h>
#include <string.h>

#include "console.h"

/* The signal seen before the event loop could take it (0 = none). */
static volatile sig_atomic_t early_signal;

/* Remember a pre-emption signal that came before preempt_arm. */
static void
on_early_signal(int sig)
{
	early_signal = sig;
}

/* The signal number of a preempt.signal name (the schema limits them). */
static int
signal_number(const char *name)
{
	if (strcmp(name, "USR2") == 0)
		return SIGUSR2;
	if (strcmp(name, "TERM") == 0)
		return SIGTERM;
	if (strcmp(name, "INT") == 0)
		return SIGINT;
	return SIGUSR1;
}

/* Rounds completed and checkpointed so far. */
static size_t
rounds_done(const struct job *j)
{
	return json_array_size(j->history);
}

/* Give up the round in progress: its workers are stopped and its partial
 * aggregate is never published, so the last checkpoint stands. */
static void
abandon(struct job *j, const char *why)
{
	console_err("pre-empted: abandoning round %u (%s); the last checkpoint "
	            "(round %zu) is kept",
	            j->round, why, rounds_done(j));
	job_finish(j, JOB_EXIT_PREEMPTED);
}

/* preempt.deadline_s passed with the round still running. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	(void)fd;
	(void)what;
	if (!round_stopped(j))
		abandon(j, "preempt.deadline_s passed before it ended");
}

/* The pre-emption signal, when preempt.c owns its event. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	preempt_begin(arg);
}

/* A signal caught before the loop existed, replayed inside it. */
static void
on_replay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	preempt_begin(arg);
}

void
preempt_init(struct job *j)
{
	j->preempt.signo = signal_number(j->cfg->preempt.signal);
	early_signal = 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_early_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(j->preempt.signo, &sa, NULL);
}

void
preempt_arm(struct job *j)
{
	struct preempt *p = &j->preempt;
	if (p->signo != SIGINT && p->signo != SIGTERM) {
		p->sig = evsignal_new(j->base, p->signo, on_signal, j);
		evsignal_add(p->sig, NULL);
	}
	if (early_signal != 0) {
		struct timeval now = {0, 0};
		event_base_once(j->base, -1, EV_TIMEOUT, on_replay, j, &now);
	}
}

int
preempt_is_signal(const struct job *j, int sig)
{
	return sig == j->preempt.signo;
}

enum preempt_action
preempt_decide(const struct preempt *p, double elapsed_s, double deadline_s,
               char *why, size_t size)
{
	if (p->requested) {
		snprintf(why, size, "a second pre-emption signal");
		return PREEMPT_ABANDON;
	}
	if (deadline_s <= 0) {
		snprintf(why, size, "preempt.deadline_s is 0");
		return PREEMPT_ABANDON;
	}
	/* The last round's wall time estimates this one's; without one (the
	 * first round of a run) the round gets the whole deadline. */
	if (p->last_round_s > 0 && p->last_round_s - elapsed_s > deadline_s) {
		snprintf(why, size,
		         "it needs about %.0f s more, preempt.deadline_s is "
		         "%g s",
		         p->last_round_s - elapsed_s, deadline_s);
		return PREEMPT_ABANDON;
	}
	return PREEMPT_FINISH_ROUND;
}

void
preempt_begin(struct job *j)
{
	struct preempt *p = &j->preempt;
	double deadline = j->cfg->preempt.deadline_s;
	if (round_stopped(j))
		return;
	double now = now_seconds();
	char why[160];
	enum preempt_action a =
	    preempt_decide(p, now - j->r.start, deadline, why, sizeof why);
	if (!p->requested) {
		p->requested = 1;
		p->since = now;
	}
	if (a == PREEMPT_ABANDON) {
		abandon(j, why);
		return;
	}
	console_err("pre-empted (SIG%s): finishing round %u within "
	            "preempt.deadline_s (%g s), then stopping",
	            j->cfg->preempt.signal, j->round, deadline);
	struct timeval tv = {
	    (time_t)deadline,
	    (suseconds_t)((deadline - (double)(time_t)deadline) * 1e6)};
	p->timer = evtimer_new(j->base, on_deadline, j);
	evtimer_add(p->timer, &tv);
}

int
preempt_round_completed(struct job *j)
{
	struct preempt *p = &j->preempt;
	p->last_round_s = now_seconds() - j->r.start;
	if (!p->requested)
		return 0;
	console_err("pre-empted: round %u finished and checkpointed %.1f s "
	            "after the signal",
	            j->round, now_seconds() - p->since);
	job_finish(j, JOB_EXIT_PREEMPTED);
	return 1;
}

void
preempt_report(const struct job *j)
{
	console_err("pre-empted: %zu of %lld rounds are checkpointed in %s; "
	            "continue with the same command and --workspace %s, or "
	            "with cohort-orchestrator --resume %s",
	            rounds_done(j), (long long)j->cfg->federation.rounds,
	            j->ws.dir, j->ws.dir, j->ws.dir);
}

void
preempt_free(struct job *j)
{
	struct preempt *p = &j->preempt;
	if (p->sig != NULL)
		event_free(p->sig);
	if (p->timer != NULL)
		event_free(p->timer);
	p->sig = p->timer = NULL;
}
