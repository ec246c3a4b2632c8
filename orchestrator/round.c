/* round.c: the round engine: which clients are available, seeded sampling,
 * one fit task per sampled client, streaming FedAvg of the results, retries
 * of rounds below min_fit, central and federated evaluation, and the
 * per-round report. */
#include "job.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "dp.h"
#include "gpt2shape.h"
#include "models.h"
#include "prepare-run.h"
#include "taskconf.h"
#include "rng.h"

/* A string field of prepared.json ("" if absent). */
static const char *
prepared_str(const struct job *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j->prepared, key));
	return s ? s : "";
}

/* Per-task seed: a function of (job seed, round, client) only, so a resumed
 * job hands the same seeds to the same clients. */
static uint64_t
task_seed(const struct job *j, int64_t client)
{
	return rng_derive((uint64_t)j->cfg->job.seed, "task",
	                  (uint64_t)j->round * 1000003u +
	                      (uint64_t)(client + 1));
}

/* Fill ids with the clients available in availability draw j->r.draw of
 * this round; counts why others are not. Draw 0 depends on (seed, round)
 * only, a later one (federation.on_unavailable wait) on its number too:
 * never on the attempt, so a resumed job draws the same. */
static unsigned
available_clients(const struct job *j, uint32_t *ids, unsigned *excluded,
                  unsigned *offline)
{
	const struct config *c = j->cfg;
	struct rng r;
	uint64_t key =
	    rng_derive((uint64_t)c->job.seed, "availability", j->round);
	if (j->r.draw > 0)
		key = rng_derive(key, "wait", j->r.draw);
	rng_seed(&r, key, 0);
	unsigned n = 0;
	*excluded = *offline = 0;
	for (uint32_t id = 0; id < (uint32_t)c->federation.clients; id++) {
		double draw = rng_uniform(&r);
		if (j->consecutive_failures[id] >=
		    (uint32_t)c->federation.max_consecutive_failures)
			(*excluded)++;
		else if (draw >= c->federation.availability)
			(*offline)++;
		else
			ids[n++] = id;
	}
	return n;
}

/* Append a failure reason to the round's notes. */
static void
note_failure(struct job *j, int64_t client, uint64_t task, const char *why)
{
	size_t len = strlen(j->r.failure_notes);
	if (len + 4 >= sizeof j->r.failure_notes)
		return;
	snprintf(j->r.failure_notes + len, sizeof j->r.failure_notes - len,
	         "%sclient %lld task %llu: %s", len ? "; " : "",
	         (long long)client, (unsigned long long)task, why);
}

static const char *const phase_names[] = {
    "idle", "fit", "evaluate", "done", "stopped",
};
#define TO(p) (1u << (p))
static const unsigned phase_moves[] = {
    [ROUND_IDLE] = TO(ROUND_FIT) | TO(ROUND_STOPPED),
    [ROUND_FIT] =
        TO(ROUND_FIT) | TO(ROUND_EVALUATE) | TO(ROUND_DONE) | TO(ROUND_STOPPED),
    [ROUND_EVALUATE] = TO(ROUND_DONE) | TO(ROUND_STOPPED),
    [ROUND_DONE] = TO(ROUND_FIT) | TO(ROUND_STOPPED),
    [ROUND_STOPPED] = 0,
};

void
round_set_phase(struct job *j, enum round_phase to, const char *why)
{
	if (!(phase_moves[j->r.phase] & TO(to)))
		fatal("round %u: phase %s -> %s is not a move the round "
		      "allows (%s)",
		      j->round, phase_names[j->r.phase], phase_names[to], why);
	log_debug("round %u: %s -> %s: %s", j->round, phase_names[j->r.phase],
	          phase_names[to], why);
	j->r.phase = to;
}

int
round_stopped(const struct job *j)
{
	return j->r.phase == ROUND_STOPPED;
}

static void fits_done(struct job *j);
static struct shm_segment *task_update(struct job *j, struct job_task *t);
static void task_update_release(struct job *j, struct job_task *t);
static void round_record(struct job *j, json_t *h);

/* Draws of federation.on_unavailable wait before the job gives up. */
#define AVAILABILITY_DRAWS 100u

/* This attempt's available clients into ids, their counts into j->r: the
 * round's first availability draw or, with federation.on_unavailable
 * wait, the first later one where min_clients are available (at most
 * AVAILABILITY_DRAWS; none when exclusions alone leave too few). */
static unsigned
draw_available(struct job *j, uint32_t *ids)
{
	const struct config *c = j->cfg;
	unsigned clients = (unsigned)c->federation.clients;
	unsigned min = (unsigned)c->federation.min_clients;
	int wait = strcmp(c->federation.on_unavailable, "wait") == 0;
	j->r.draw = 0;
	unsigned n = available_clients(j, ids, &j->r.excluded, &j->r.offline);
	if (n < min && wait && clients - j->r.excluded >= min)
		console_log(
		    "round %u: only %u of %u clients available (%u "
		    "excluded after %lld consecutive failures, %u "
		    "offline), fewer than federation.min_clients %u; "
		    "drew availability again (federation.on_unavailable "
		    "wait)",
		    j->round, n, clients, j->r.excluded,
		    (long long)c->federation.max_consecutive_failures,
		    j->r.offline, min);
	while (n < min && wait && clients - j->r.excluded >= min &&
	       j->r.draw + 1 < AVAILABILITY_DRAWS) {
		j->r.draw++;
		n = available_clients(j, ids, &j->r.excluded, &j->r.offline);
	}
	if (j->r.draw > 0 && n >= min)
		console_log("round %u: %u of %u clients available in "
		            "availability draw %u",
		            j->round, n, clients, j->r.draw + 1);
	j->r.available = n;
	return n;
}

/* The round line and metrics show who was available when some client is
 * offline or excluded. */
static int
availability_shown(const struct job *j)
{
	return j->cfg->federation.availability < 1 || j->r.excluded > 0;
}

/* Skip the round (federation.on_unavailable skip): the model stays as it
 * is; the round is reported, recorded as skipped and checkpointed. Its
 * history entry keeps the last round's test numbers: same model. */
static void
round_skip(struct job *j)
{
	const struct config *c = j->cfg;
	round_set_phase(j, ROUND_DONE, "too few clients available: skipped");
	double secs = now_seconds() - j->r.start;
	console_out("round %u/%lld  skipped  available %u  offline %u  "
	            "excluded %u  (federation.min_clients %lld)  %.2fs",
	            j->round, (long long)c->federation.rounds, j->r.available,
	            j->r.offline, j->r.excluded,
	            (long long)c->federation.min_clients, secs);
	metrics_round(&j->metrics, j->round, "round_skipped", 1);
	metrics_round(&j->metrics, j->round, "clients_available",
	              j->r.available);
	metrics_round(&j->metrics, j->round, "clients_offline", j->r.offline);
	metrics_round(&j->metrics, j->round, "clients_excluded", j->r.excluded);
	metrics_round(&j->metrics, j->round, "round_seconds", secs);
	json_t *last =
	    json_array_get(j->history, json_array_size(j->history) - 1);
	json_t *h = json_pack(
	    "{s:I,s:b,s:i,s:i,s:i,s:I,s:I,s:I}", "round", (json_int_t)j->round,
	    "skipped", 1, "sampled", 0, "ok", 0, "failed", 0, "available",
	    (json_int_t)j->r.available, "offline", (json_int_t)j->r.offline,
	    "excluded", (json_int_t)j->r.excluded);
	const char *carried[] = {"test_loss", "test_accuracy"};
	for (size_t i = 0; i < ARRAY_LEN(carried); i++) {
		json_t *v = json_object_get(last, carried[i]);
		json_object_set_new(h, carried[i],
		                    v ? json_deep_copy(v) : json_null());
	}
	round_record(j, h);
}

/* round_skip from the event loop: a run of skipped rounds must not nest
 * one report inside the last. */
static void
round_skip_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct job *j = arg;
	if (!round_stopped(j))
		round_skip(j);
}

/* Fewer than min_clients are available: skip the round
 * (federation.on_unavailable skip) or fail the job, saying why: too few
 * clients left after exclusions (no draw brings them back), the policy is
 * fail, or wait ran out of draws. */
static void
too_few_clients(struct job *j)
{
	const struct config *c = j->cfg;
	const char *policy = c->federation.on_unavailable;
	unsigned min = (unsigned)c->federation.min_clients;
	unsigned clients = (unsigned)c->federation.clients;
	char counts[192];
	snprintf(counts, sizeof counts,
	         "only %u of %u clients available (%u excluded after %lld "
	         "consecutive failures, %u offline)",
	         j->r.available, clients, j->r.excluded,
	         (long long)c->federation.max_consecutive_failures,
	         j->r.offline);
	int gone = clients - j->r.excluded < min;
	if (!gone && strcmp(policy, "skip") == 0) {
		static const struct timeval now = {0, 0};
		if (j->base == NULL ||
		    event_base_once(j->base, -1, EV_TIMEOUT, round_skip_cb, j,
		                    &now) < 0)
			round_skip(j);
		return;
	}
	if (gone)
		console_err("round %u: %s; federation.min_clients is %u, and "
		            "excluded clients do not come back: lower "
		            "federation.min_clients or raise "
		            "federation.max_consecutive_failures",
		            j->round, counts, min);
	else if (strcmp(policy, "fail") == 0)
		console_err("round %u: %s; federation.min_clients is %u and "
		            "federation.on_unavailable is fail (wait draws "
		            "availability again, skip skips the round)",
		            j->round, counts, min);
	else
		console_err("round %u: %s after %u availability draws; "
		            "federation.availability %g is too low for "
		            "federation.min_clients %u of %u clients: raise "
		            "federation.availability, lower "
		            "federation.min_clients or set "
		            "federation.on_unavailable=skip",
		            j->round, counts, j->r.draw + 1,
		            c->federation.availability, min, clients);
	job_round_ended(j, ROUND_FAILED);
}

/* Relay strategies: submit the fit of hop j->r.relay_pos under a fresh task
 * id, or end the fits after the last hop. */
static void
relay_submit(struct job *j)
{
	if (j->r.relay_pos >= j->r.ntasks) {
		fits_done(j);
		return;
	}
	struct job_task *t = &j->r.tasks[j->r.relay_pos];
	t->task_id = j->next_task_id++;
	t->done = 0;
	t->metric_lines = 0;
	j->submit(j, t->task_id, t->client);
}

/* Relay strategies: start at the first hop, or where a checkpointed cycle
 * of this round stopped. */
static void
relay_start(struct job *j)
{
	j->r.relay_pos = strategy_relay_position(&j->strategy, &j->r.ok,
	                                         &j->r.failed, &j->r.retried);
	for (unsigned i = 0; i < j->r.relay_pos; i++)
		j->r.tasks[i].done = 1;
	j->r.done = j->r.relay_pos;
	relay_submit(j);
}

/* Start (or retry) the current round: sample clients and submit fits. */
static void
start_attempt(struct job *j)
{
	const struct config *c = j->cfg;
	round_set_phase(j, ROUND_FIT,
	                j->r.attempt ? "retry with a new sample" : "started");
	unsigned clients = (unsigned)c->federation.clients;
	uint32_t *ids = xcalloc(clients, sizeof *ids);
	unsigned avail = draw_available(j, ids);
	if (avail < (unsigned)c->federation.min_clients) {
		free(ids);
		round_tasks_free(j);
		too_few_clients(j);
		return;
	}
	unsigned want = (unsigned)c->federation.fit_clients;
	if (want > avail)
		want = avail;
	struct rng r;
	uint64_t key = rng_derive((uint64_t)c->job.seed, "sample", j->round);
	if (j->r.attempt > 0)
		key = rng_derive(key, "attempt", j->r.attempt);
	rng_seed(&r, key, 0);
	rng_sample_u32(&r, ids, avail, want);

	uint32_t *order = xcalloc(clients, sizeof *order);
	unsigned n =
	    strategy_configure(&j->strategy, j->round, j->r.attempt, ids, want,
	                       ids, avail, j->global.addr, order);
	stream_release_global(j);
	round_tasks_free(j);
	j->r.tasks = xcalloc(n ? n : 1, sizeof *j->r.tasks);
	j->r.ntasks = n;
	j->r.done = j->r.ok = j->r.failed = j->r.retried = 0;
	j->r.loss_sum = j->r.loss_weight = 0;
	clientstats_clear(&j->r.stats);
	j->r.central_pending = 0;
	for (unsigned i = 0; i < n; i++) {
		j->r.tasks[i].task_id = j->next_task_id++;
		j->r.tasks[i].client = order[i];
		j->r.tasks[i].update.fd = -1;
		j->r.tasks[i].update_slot = -1;
	}
	free(order);
	free(ids);
	console_log("round %u%s: sampled %u of %u available clients", j->round,
	            j->r.attempt ? " (retry)" : "", n, avail);
	console_progress("round %u/%lld  tasks 0/%u", j->round,
	                 (long long)c->federation.rounds, n);
	if (strategy_is_relay(&j->strategy)) {
		relay_start(j);
		return;
	}
	for (unsigned i = 0; i < n && !round_stopped(j); i++)
		j->submit(j, j->r.tasks[i].task_id, j->r.tasks[i].client);
}

void
round_start(struct job *j)
{
	j->r.attempt = 0;
	j->r.failure_notes[0] = '\0';
	j->r.start = now_seconds();
	start_attempt(j);
}

/* The fit task with this id in the current attempt, or NULL. */
static struct job_task *
find_task(struct job *j, uint64_t task_id)
{
	if (strategy_is_relay(&j->strategy)) {
		if (j->r.relay_pos >= j->r.ntasks)
			return NULL;
		struct job_task *t = &j->r.tasks[j->r.relay_pos];
		return t->task_id == task_id && !t->done ? t : NULL;
	}
	if (j->r.ntasks == 0 || task_id < j->r.tasks[0].task_id ||
	    task_id >= j->r.tasks[0].task_id + j->r.ntasks)
		return NULL;
	struct job_task *t = &j->r.tasks[task_id - j->r.tasks[0].task_id];
	return t->done ? NULL : t;
}

/* The round line's client counts after "failed": retried relay hops,
 * and who was available when some client is offline or excluded. */
static void
client_counts(const struct job *j, char *buf, size_t size)
{
	int n = 0;
	buf[0] = '\0';
	if (j->r.retried > 0)
		n = snprintf(buf, size, "  retried %u", j->r.retried);
	if (availability_shown(j))
		n += snprintf(buf + n, size - (size_t)n,
		              "  available %u  offline %u  excluded %u",
		              j->r.available, j->r.offline, j->r.excluded);
	if (availability_shown(j) && j->r.draw > 0)
		snprintf(buf + n, size - (size_t)n, "  redrawn %u", j->r.draw);
}

/* Record a reported round: its metric lines flushed, its history entry h
 * appended; then the job checkpoints it and goes on or finishes. */
static void
round_record(struct job *j, json_t *h)
{
	struct ipc_error err;
	if (metrics_flush(&j->metrics, &err) < 0) {
		/* Not checkpointed: a resume runs this round again and drops
		 * whatever of it reached the file. */
		console_err("round %u: %s; the job stops before checkpointing "
		            "the round (free space, then --resume %s)",
		            j->round, err.message, j->ws.dir);
		json_decref(h);
		job_round_ended(j, ROUND_FAILED);
		return;
	}
	if (j->tracking != NULL)
		tracking_round(j->tracking, j->round);
	json_array_append_new(j->history, h);
	job_round_ended(j, ROUND_COMPLETED);
}

/* Print, record and checkpoint a completed round; go on or finish. */
static void
round_complete(struct job *j, double test_loss, double test_acc)
{
	const struct config *c = j->cfg;
	round_set_phase(j, ROUND_DONE, "evaluations ended");
	double train_loss =
	    j->r.loss_weight > 0 ? j->r.loss_sum / j->r.loss_weight : NAN;
	double secs = now_seconds() - j->r.start;
	char tl[32] = "-", ta[32] = "-", tr[32] = "-", fed[64] = "";
	char counts[128];
	client_counts(j, counts, sizeof counts);
	int fed_on = c->evaluate.fraction > 0 && j->r.fedeval.ntasks > 0;
	double fed_loss = fedeval_loss(&j->r.fedeval);
	double fed_acc = fedeval_accuracy(&j->r.fedeval);
	if (fed_on && isfinite(fed_acc))
		snprintf(fed, sizeof fed, "  fed_acc %.4f", fed_acc);
	else if (fed_on)
		snprintf(fed, sizeof fed, "  fed_acc -");
	if (isfinite(train_loss))
		snprintf(tr, sizeof tr, "%.4f", train_loss);
	if (isfinite(test_loss))
		snprintf(tl, sizeof tl, "%.4f", test_loss);
	if (isfinite(test_acc))
		snprintf(ta, sizeof ta, "%.4f", test_acc);
	/* A language model's test loss as a perplexity too. */
	const struct model_info *mi = models_find(c->model.name);
	int text = mi != NULL && mi->text;
	double ppl = exp(test_loss);
	char tp[48] = "";
	if (text && isfinite(ppl))
		snprintf(tp, sizeof tp, "  test_ppl %.2f", ppl);
	/* privacy.dp central: the epsilon spent so far (inf: no noise) */
	struct dp_round_info dpi = {0};
	int dp = strategy_dp_info(&j->strategy, &dpi);
	char priv[64] = "";
	if (dp && dpi.adaptive)
		snprintf(priv, sizeof priv, "  eps %.3f  clip %.4g",
		         dpi.epsilon, dpi.clip);
	else if (dp)
		snprintf(priv, sizeof priv, "  eps %.3f", dpi.epsilon);
	console_out("round %u/%lld  sampled %u  ok %u  failed %u%s  train_loss "
	            "%s  test_loss %s  test_acc %s%s%s%s  %.2fs",
	            j->round, (long long)c->federation.rounds, j->r.ntasks,
	            j->r.ok, j->r.failed, counts, tr, tl, ta, tp, fed, priv,
	            secs);
	/* The round's values, as metrics.jsonl lines (metric) and as its
	 * entry of state.json's history (key); NULL: not there. */
	/* on: written at all (federated evaluation, a relay strategy's
	 * retries, availability counts only where they apply). */
	int relay = strategy_is_relay(&j->strategy);
	int avail = availability_shown(j);
	struct {
		const char *metric, *key;
		double v;
		int integer, on;
	} vals[] = {
	    {NULL, "sampled", j->r.ntasks, 1, 1},
	    {"train_loss", "train_loss", train_loss, 0, 1},
	    {"test_loss", "test_loss", test_loss, 0, 1},
	    {"test_accuracy", "test_accuracy", test_acc, 0, 1},
	    {"test_perplexity", NULL, ppl, 0, text},
	    {"fit_ok", "ok", j->r.ok, 1, 1},
	    {"fit_failed", "failed", j->r.failed, 1, 1},
	    {"fit_retried", "retried", j->r.retried, 1, relay},
	    {"clients_available", "available", j->r.available, 1, avail},
	    {"clients_offline", "offline", j->r.offline, 1, avail},
	    {"clients_excluded", "excluded", j->r.excluded, 1, avail},
	    {"fed_eval_loss", "fed_eval_loss", fed_loss, 0, fed_on},
	    {"fed_eval_accuracy", "fed_eval_accuracy", fed_acc, 0, fed_on},
	    {"fed_eval_ok", "fed_eval_ok", j->r.fedeval.ok, 1, fed_on},
	    {"fed_eval_failed", "fed_eval_failed", j->r.fedeval.failed, 1,
	     fed_on},
	    {"dp_epsilon", "dp_epsilon", dpi.epsilon, 0, dp},
	    {"dp_clipped", "dp_clipped", dpi.clipped, 1, dp},
	    {"dp_clip_norm", NULL, dpi.clip, 0, dp},
	    {"dp_norm_max", NULL, dpi.norm_max, 0, dp},
	    {"round_seconds", NULL, secs, 0, 1},
	};
	json_t *h = json_object();
	json_object_set_new(h, "round", json_integer(j->round));
	for (size_t i = 0; i < ARRAY_LEN(vals); i++) {
		if (!vals[i].on)
			continue;
		if (vals[i].metric != NULL)
			metrics_round(&j->metrics, j->round, vals[i].metric,
			              vals[i].v);
		if (vals[i].key == NULL)
			continue;
		json_t *v = vals[i].integer
		                ? json_integer((json_int_t)vals[i].v)
		            : isfinite(vals[i].v) ? json_real(vals[i].v)
		                                  : json_null();
		json_object_set_new(h, vals[i].key, v);
	}
	clientstats_write(&j->r.stats, &j->metrics, j->round);
	round_record(j, h);
}

/* Replace the global model with the aggregate of this round's updates. */
static int
publish_global(struct job *j)
{
	struct shm_segment next;
	struct ipc_error err;
	char name[sizeof j->global.name];
	job_global_name(j, j->round + 1, name, sizeof name);
	if (stream_recycle_global(j, name)) {
		if (stream_finish_global(j, &err) < 0) {
			console_err("round %u: %s", j->round, err.message);
			return -1;
		}
		strategy_released(&j->strategy);
		return 0;
	}
	if (shm_segment_create(&next, name, j->model.total_size, &err) < 0) {
		console_err("round %u: cannot publish the new global model: %s",
		            j->round, err.message);
		return -1;
	}
	if (strategy_finish(&j->strategy, j->global.addr, next.addr, &err) <
	        0 ||
	    stream_seal_global(j, &next, &err) < 0) {
		console_err("round %u: %s", j->round, err.message);
		shm_segment_unlink(next.name, NULL);
		shm_segment_close(&next);
		return -1;
	}
	/* Workers still mapping the old model keep their mapping. */
	shm_segment_unlink(j->global.name, NULL);
	shm_segment_close(&j->global);
	j->global = next;
	stream_release_global(j);
	strategy_released(&j->strategy);
	return 0;
}

/* Once the central and every federated evaluation ended: the report. */
static void
evals_ended(struct job *j)
{
	if (j->r.phase != ROUND_EVALUATE || j->r.central_pending ||
	    fedeval_pending(&j->r.fedeval))
		return;
	round_complete(j, j->r.test_loss, j->r.test_acc);
}

/* The new global model is published: evaluate it centrally on the test
 * set and (evaluate.fraction) on a seeded share of the available clients'
 * held-out slices, all at once; the report waits for every one. */
static void
evaluate_round(struct job *j)
{
	const struct config *c = j->cfg;
	const struct model_info *mi = models_find(c->model.name);
	int data = mi != NULL && mi->has_data;
	j->r.test_loss = j->r.test_acc = NAN;
	j->r.central_pending = data && c->evaluate.central;
	if (j->r.central_pending)
		j->r.eval_task_id = j->next_task_id++;
	unsigned n = 0;
	uint32_t *ids = NULL;
	if (data && c->evaluate.fraction > 0) {
		unsigned clients = (unsigned)c->federation.clients;
		unsigned excluded, offline;
		uint32_t *avail = xcalloc(clients, sizeof *avail);
		unsigned navail =
		    available_clients(j, avail, &excluded, &offline);
		ids = xcalloc(clients, sizeof *ids);
		n = fedeval_sample((uint64_t)c->job.seed, j->round,
		                   c->evaluate.fraction, avail, navail, ids);
		free(avail);
	}
	fedeval_begin(&j->r.fedeval, ids, n, &j->next_task_id);
	free(ids);
	if (!j->r.central_pending && n == 0) {
		evals_ended(j);
		return;
	}
	console_progress("round %u/%lld  evaluating", j->round,
	                 (long long)c->federation.rounds);
	if (j->r.central_pending)
		j->submit(j, j->r.eval_task_id, -1);
	for (unsigned i = 0; i < n && !round_stopped(j); i++)
		j->submit(j, j->r.fedeval.tasks[i].task_id,
		          j->r.fedeval.tasks[i].client);
}

/* Every fit of the attempt ended: aggregate, retry or fail. */
static void
fits_done(struct job *j)
{
	const struct config *c = j->cfg;
	int64_t min_fit = config_min_fit(c);
	if ((int64_t)j->r.ok >= min_fit && j->r.ok > 0) {
		if (publish_global(j) < 0) {
			job_round_ended(j, ROUND_FAILED);
			return;
		}
		char why[64];
		snprintf(why, sizeof why, "%u of %u fits in, model published",
		         j->r.ok, j->r.ntasks);
		round_set_phase(j, ROUND_EVALUATE, why);
		evaluate_round(j);
		return;
	}
	if ((int64_t)j->r.attempt < c->federation.round_retries) {
		console_err("round %u: only %u of %u fits succeeded "
		            "(federation.min_fit is %lld); retrying with a new "
		            "sample",
		            j->round, j->r.ok, j->r.ntasks, (long long)min_fit);
		j->r.attempt++;
		start_attempt(j);
		return;
	}
	console_err("round %u failed: only %u of %u fits succeeded in the last "
	            "of %u attempts (federation.min_fit is %lld); failures: %s",
	            j->round, j->r.ok, j->r.ntasks, j->r.attempt + 1,
	            (long long)min_fit,
	            j->r.failure_notes[0] ? j->r.failure_notes : "none");
	job_round_ended(j, ROUND_FAILED);
}

/* Count client's ended fit (for a relay, its hop: the retries of a hop
 * are one fit): ok resets its consecutive failures; a failure adds one,
 * and at federation.max_consecutive_failures the client is excluded (not
 * available from the next attempt on). */
static void
count_fit(struct job *j, int64_t client, int ok)
{
	uint32_t *fails = &j->consecutive_failures[client];
	if (ok) {
		j->r.ok++;
		*fails = 0;
		return;
	}
	j->r.failed++;
	(*fails)++;
	if (*fails == (uint32_t)j->cfg->federation.max_consecutive_failures)
		console_err("client %lld excluded after %u consecutive "
		            "failures",
		            (long long)client, *fails);
}

/* Relay strategies: a hop's task ended; go on, retry the hop (a retried
 * try is counted apart, not as a failed hop) or fail the job. */
static void
relay_next(struct job *j, const struct job_task *t, int ok)
{
	enum strategy_hop hop = strategy_relay_hop(&j->strategy, t->client, ok);
	if (hop == STRATEGY_HOP_RETRY) {
		j->r.retried++;
		j->r.done--;
	} else {
		count_fit(j, t->client, ok);
	}
	if (hop == STRATEGY_HOP_ABORT) {
		job_round_ended(j, ROUND_FAILED);
		return;
	}
	if (hop == STRATEGY_HOP_NEXT)
		j->r.relay_pos++;
	relay_submit(j);
}

/* One per-client number of task (client) into metrics.jsonl, or into the
 * round's summaries (output.client_metrics summary). */
static void
client_metric(struct job *j, int64_t client, uint64_t task, const char *key,
              double value)
{
	if (!j->summary) {
		metrics_task(&j->metrics, j->round, client, task, key, value);
		return;
	}
	if (clientstats_add(&j->r.stats, key, value) < 0 && !j->r.stats_full) {
		j->r.stats_full = 1;
		console_log("round %u: more than %d keys of client metrics; "
		            "'%s' and later new keys are not summarised",
		            j->round, CLIENTSTATS_MAX_KEYS, key);
	}
}

/* Account one ended fit task. */
static void
fit_ended(struct job *j, struct job_task *t, int ok, const char *reason)
{
	const struct config *c = j->cfg;
	t->done = 1;
	j->r.done++;
	task_update_release(j, t);
	if (!ok) {
		console_err("round %u: client %lld task %llu failed: %s",
		            j->round, (long long)t->client,
		            (unsigned long long)t->task_id, reason);
		note_failure(j, t->client, t->task_id, reason);
		metrics_task(&j->metrics, j->round, t->client, t->task_id,
		             "failed", 1);
	}
	if (!strategy_is_relay(&j->strategy))
		count_fit(j, t->client, ok);
	console_progress("round %u/%lld  tasks %u/%u", j->round,
	                 (long long)c->federation.rounds, j->r.done,
	                 j->r.ntasks);
	if (strategy_is_relay(&j->strategy)) {
		if (j->r.phase == ROUND_FIT)
			relay_next(j, t, ok);
		return;
	}
	if (j->r.done == j->r.ntasks && j->r.phase == ROUND_FIT)
		fits_done(j);
}

/* The keys of a text model's tasks (taskconf.h's TASKCONF_TEXT*): its
 * heads and sequence length, for a fit its schedule, for an evaluation
 * its token cap. */
static void
task_text_keys(const struct config *c, struct kv_list *kv, int fit)
{
	const struct model_info *mi = models_find(c->model.name);
	struct gpt2_config g;
	struct ipc_error err;
	if (mi == NULL || !mi->text)
		return;
	/* config_check accepted these sizes. */
	if (config_gpt2(c, &g, &err) < 0)
		fatal("%s", err.message);
	taskconf_set_num(kv, TK_N_HEAD, g.num_heads);
	taskconf_set_num(kv, TK_SEQ_LEN,
	                 c->train.seq_len > 0 ? (double)c->train.seq_len
	                                      : g.max_seq_len);
	if (!fit) {
		taskconf_set_num(kv, TK_MAX_TOKENS,
		                 (double)c->evaluate.max_tokens);
		return;
	}
	taskconf_set_num(kv, TK_GRAD_ACCUM, (double)c->train.grad_accum);
	taskconf_set_num(kv, TK_WARMUP_STEPS, (double)c->train.warmup_steps);
	taskconf_set_str(kv, TK_LR_SCHEDULE, c->train.lr_schedule);
	taskconf_set_num(kv, TK_MIN_LR, c->train.min_lr);
	taskconf_set_num(kv, TK_MAX_GRAD_NORM, c->train.max_grad_norm);
}

/* A fit for worker pid folds into its partial sum (launcher.partial_sums):
 * the frame names the sum, its weighting and flush_every (round_task_fds
 * sends its descriptor). */
static void
task_partial(struct job *j, struct msg_task *t, pid_t pid)
{
	struct ipc_error err;
	struct worker_partial *w = partials_get(&j->partials, pid, 1, &err);
	if (w == NULL) {
		if (j->partials.on)
			console_log("round %u: task %llu returns its update: "
			            "%s",
			            j->round, (unsigned long long)t->task_id,
			            err.message);
		return;
	}
	t->partial_fd = 2;
	t->partial_id = w->id;
	t->partial_size = j->partials.numel * sizeof(double);
	taskconf_set_str(&t->config, TK_WEIGHTING, j->cfg->strategy.weighting);
	taskconf_set_num(&t->config, TK_FLUSH_EVERY,
	                 (double)j->partials.flush_every);
}

int
round_encode_task(void *arg, uint64_t task_id, pid_t pid, uint8_t **frame,
                  size_t *len)
{
	struct job *j = arg;
	const struct config *c = j->cfg;
	struct msg m;
	msg_init(&m, MSG_TASK);
	struct msg_task *t = &m.u.task;
	t->task_id = task_id;
	t->round = j->round;
	struct kv_list *kv = &t->config;
	taskconf_set_str(kv, TK_MODEL, prepared_str(j, "model"));
	taskconf_set_str(kv, TK_TRAIN_DATA, prepared_str(j, "train"));
	taskconf_set_str(kv, TK_TEST_DATA, prepared_str(j, "test"));
	taskconf_set_str(kv, TK_PARTITION, prepared_str(j, "partition"));
	taskconf_set_num(kv, TK_BATCH_SIZE, (double)c->train.batch_size);
	taskconf_set_num(kv, TK_CLIENTS, (double)c->federation.clients);
	taskconf_set_num(kv, TK_JOB_SEED, (double)c->job.seed);
	const struct fedeval_task *fe = fedeval_find(&j->r.fedeval, task_id);
	if (j->r.central_pending && task_id == j->r.eval_task_id) {
		t->kind = TASK_EVALUATE;
		t->client_id = -1;
		taskconf_set_str(kv, TK_SPLIT, "test");
		taskconf_set_num(kv, TK_SEED, (double)(task_seed(j, -1) >> 11));
	} else if (fe != NULL) {
		t->kind = TASK_EVALUATE;
		t->client_id = fe->client;
		taskconf_set_str(kv, TK_SPLIT, "holdout");
		taskconf_set_num(kv, TK_SEED,
		                 (double)(task_seed(j, fe->client) >> 11));
	} else {
		struct job_task *jt = find_task(j, task_id);
		if (jt == NULL) {
			msg_free(&m);
			return -1;
		}
		t->kind = TASK_FIT;
		t->client_id = jt->client;
		taskconf_set_str(kv, TK_SPLIT, "train");
		taskconf_set_num(kv, TK_EPOCHS, (double)c->train.epochs);
		taskconf_set_num(kv, TK_LR, c->train.lr);
		taskconf_set_num(kv, TK_MOMENTUM, c->train.momentum);
		taskconf_set_num(kv, TK_WEIGHT_DECAY, c->train.weight_decay);
		taskconf_set_str(kv, TK_OPTIMIZER, c->train.optimizer);
		taskconf_set_num(kv, TK_MU, c->train.mu);
		/* 53 bits: the seed travels as a msgpack double. */
		taskconf_set_num(kv, TK_SEED,
		                 (double)(task_seed(j, jt->client) >> 11));
		taskconf_set_num(kv, TK_PROGRESS_EVERY, 100);
	}
	task_text_keys(c, kv, t->kind == TASK_FIT);
	/* Shared memory: descriptor 0 is the global model, 1 the update
	 * (round_task_fds). */
	t->params.where = PARAMS_FD;
	t->params.fd = 0;
	if (t->kind == TASK_FIT)
		t->update_fd = 1;
	t->params.size = j->model.total_size;
	tensor_manifest_copy(&t->params.manifest, &j->model);
	if (j->stream.enabled) {
		t->params.where = PARAMS_STREAM;
		t->update_fd = -1;
		taskconf_set_num(kv, TK_CHUNK_BYTES,
		                 (double)j->stream.chunk_bytes);
	} else if (t->kind == TASK_FIT && j->partials.on) {
		task_partial(j, t, pid);
	}
	int rc = msg_encode_frame(&m, frame, len);
	msg_free(&m);
	return rc;
}

/* The update segment of task t: its own, or its worker's. */
static struct shm_segment *
task_update(struct job *j, struct job_task *t)
{
	if (t->update_slot >= 0)
		return updates_get(&j->updates, t->update_pid, t->update_slot);
	return &t->update;
}

/* Task t is done with its update segment: close its own, give its
 * worker's back. */
static void
task_update_release(struct job *j, struct job_task *t)
{
	if (t->update_slot >= 0)
		updates_put(&j->updates, t->update_pid, t->update_slot);
	t->update_slot = -1;
	closer_close(&j->closer, &t->update);
}

int
round_task_fds(void *arg, uint64_t task_id, pid_t pid, int *fds, unsigned cap)
{
	struct job *j = arg;
	if (j->stream.enabled || cap < 2)
		return 0;
	fds[0] = j->global.fd;
	if ((j->r.central_pending && task_id == j->r.eval_task_id) ||
	    fedeval_find(&j->r.fedeval, task_id) != NULL)
		return 1;
	struct job_task *t = find_task(j, task_id);
	if (t == NULL)
		return -1;
	if (strategy_is_relay(&j->strategy))
		fds[0] = strategy_relay_fd(&j->strategy);
	/* A task sent again (its first worker died) gets another segment:
	 * whatever the first worker passed on may still write the old one. */
	if (t->update_pid != pid)
		task_update_release(j, t);
	t->update_pid = pid;
	struct ipc_error err;
	struct shm_segment *mine = NULL;
	if (t->update_slot < 0 && t->update.fd < 0)
		mine = updates_take(&j->updates, pid, &t->update_slot, &err);
	if (mine == NULL && t->update_slot < 0 && t->update.fd < 0) {
		char label[96];
		snprintf(label, sizeof label, "cohort.%s.u%llu", j->ws.jobkey,
		         (unsigned long long)task_id);
		if (shm_segment_create_empty(&t->update, label,
		                             j->model.total_size, &err) < 0) {
			console_err("round %u: task %llu: %s", j->round,
			            (unsigned long long)task_id, err.message);
			return -1;
		}
	}
	struct shm_segment *u = task_update(j, t);
	if (u == NULL)
		return -1;
	fds[1] = u->fd;
	/* round_encode_task made the frame name it. */
	struct worker_partial *w = partials_get(&j->partials, pid, 0, NULL);
	if (w == NULL || w->seg.fd < 0 || cap < 3)
		return 2;
	fds[2] = w->seg.fd;
	return 3;
}

void
round_tasks_free(struct job *j)
{
	for (unsigned i = 0; j->r.tasks != NULL && i < j->r.ntasks; i++)
		task_update_release(j, &j->r.tasks[i]);
	free(j->r.tasks);
	j->r.tasks = NULL;
	j->r.ntasks = 0;
}

/* A federated evaluate task failed: logged and counted, never fatal. */
static void
fed_eval_failed(struct job *j, struct fedeval_task *fe, const char *reason)
{
	console_err("round %u: client %lld evaluate task %llu failed: %s",
	            j->round, (long long)fe->client,
	            (unsigned long long)fe->task_id, reason);
	metrics_task(&j->metrics, j->round, fe->client, fe->task_id,
	             "fed_eval_failed", 1);
	fedeval_failed(&j->r.fedeval, fe);
	evals_ended(j);
}

/* A federated evaluate task reported: record and count its numbers. */
static void
fed_eval_ended(struct job *j, struct fedeval_task *fe,
               const struct msg_result *r)
{
	double loss = kv_get_num(&r->metrics, "loss", NAN);
	double acc = kv_get_num(&r->metrics, "accuracy", NAN);
	struct ipc_error err;
	uint64_t cap =
	    prepare_examples_cap(j->prepared, fe->client, EXAMPLES_HOLDOUT,
	                         j->cfg->federation.max_examples);
	if (fedeval_result(&j->r.fedeval, fe, r->num_examples, cap, loss, acc,
	                   &err) < 0) {
		fed_eval_failed(j, fe, err.message);
		return;
	}
	client_metric(j, fe->client, fe->task_id, "fed_eval_examples",
	              (double)r->num_examples);
	client_metric(j, fe->client, fe->task_id, "fed_eval_loss", loss);
	client_metric(j, fe->client, fe->task_id, "fed_eval_accuracy", acc);
	evals_ended(j);
}

/* A fit's numbers, into the round's train loss and metrics.jsonl. */
static void
fit_numbers(struct job *j, const struct job_task *t, uint64_t num_examples,
            const struct kv_list *metrics)
{
	double loss = kv_get_num(metrics, "loss", NAN);
	if (isfinite(loss)) {
		j->r.loss_sum += loss * (double)num_examples;
		j->r.loss_weight += (double)num_examples;
	}
	client_metric(j, t->client, t->task_id, "num_examples",
	              (double)num_examples);
	for (size_t i = 0; i < metrics->count; i++)
		if (metrics->entries[i].type == KV_NUM)
			client_metric(j, t->client, t->task_id,
			              metrics->entries[i].key,
			              metrics->entries[i].num);
}

/* The weight of fit t's result r: -1 with err when its examples are more
 * than the client's data holds or it has none (strategy.weighting). */
static double
fit_weight(const struct job *j, const struct job_task *t,
           const struct msg_result *r, struct ipc_error *err)
{
	uint64_t cap =
	    prepare_examples_cap(j->prepared, t->client, EXAMPLES_TRAIN,
	                         j->cfg->federation.max_examples);
	if (r->num_examples > cap) {
		ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "result reports %llu examples, more than client "
		    "%lld's data holds (%llu; federation.max_examples "
		    "sets another bound)",
		    (unsigned long long)r->num_examples, (long long)t->client,
		    (unsigned long long)cap);
		return -1;
	}
	return strategy_weight(&j->strategy, r, err);
}

/* A fit reported folded into its worker's partial sum: checked as any
 * result, then it waits for the sum. A refused one fails, and so will
 * the sum's other fits (round_on_partial). */
static void
folded_result(struct job *j, struct job_task *t, const struct msg_result *r)
{
	struct ipc_error err;
	struct worker_partial *w =
	    partials_get(&j->partials, t->update_pid, 0, NULL);
	double weight = 0;
	int ok = 0;
	task_update_release(j, t);
	if (w == NULL || w->seg.fd < 0 || (uint64_t)r->folded != w->id)
		ipc_error_set(
		    &err, IPC_E_BAD_VALUE,
		    "result says it was folded into partial sum %lld, "
		    "which its worker was not given",
		    (long long)r->folded);
	else if ((weight = fit_weight(j, t, r, &err)) > 0)
		ok = 1;
	if (!ok) {
		if (w != NULL)
			partials_refuse(w, t->task_id, err.message);
		fit_ended(j, t, 0, err.message);
		return;
	}
	partials_note(w, t->task_id, weight, r);
	t->folded = 1;
	log_debug("round %u: task %llu folded into partial sum %llu of "
	          "worker %d",
	          j->round, (unsigned long long)t->task_id,
	          (unsigned long long)w->id, (int)w->pid);
}

int
round_on_partial(void *arg, pid_t pid, const struct msg *m,
                 struct ipc_error *err)
{
	struct job *j = arg;
	const struct msg_partial *mp = &m->u.partial;
	struct worker_partial *w = partials_get(&j->partials, pid, 0, NULL);
	if (w == NULL)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "partial sum %llu, but the worker was "
		                     "given none",
		                     (unsigned long long)mp->id);
	if (partials_match(w, mp, err) < 0)
		return -1;
	/* Its fits are the worker's folded ones: fold the sum, or fail them
	 * all. */
	struct ipc_error why;
	int ok = 0;
	if (w->refused[0] != '\0') {
		ipc_error_set(&why, IPC_E_BAD_VALUE, "%s", w->refused);
	} else {
		const double *sum = partials_open(&j->partials, w, &why);
		ok = sum != NULL &&
		     strategy_fold_sum(&j->strategy, sum, mp->weight,
		                       (unsigned)mp->ntasks, &why) == 0;
	}
	if (!ok)
		ipc_error_prefix(&why, "partial sum %llu of %zu fits: ",
		                 (unsigned long long)mp->id, mp->ntasks);
	log_debug("round %u: partial sum %llu of worker %d: %zu fits, %s",
	          j->round, (unsigned long long)mp->id, (int)pid, mp->ntasks,
	          ok ? "folded" : why.message);
	size_t n;
	struct partial_fit *fits = partials_take(w, &j->closer, &n);
	for (size_t i = 0; i < n; i++) {
		struct job_task *t = find_task(j, fits[i].task_id);
		if (t == NULL || !t->folded)
			continue; /* another attempt's, or the job stopped */
		t->folded = 0;
		if (ok)
			fit_numbers(j, t, fits[i].num_examples,
			            &fits[i].metrics);
		fit_ended(j, t, ok, ok ? NULL : why.message);
	}
	partials_fits_free(fits, n);
	return 0;
}

void
round_worker_gone(struct job *j, pid_t pid)
{
	size_t n;
	struct partial_fit *fits =
	    partials_gone(&j->partials, pid, &j->closer, &n);
	unsigned again = 0;
	for (size_t i = 0; i < n; i++) {
		struct job_task *t = find_task(j, fits[i].task_id);
		if (t == NULL || !t->folded)
			continue;
		t->folded = 0;
		t->metric_lines = 0;
		if (j->r.phase == ROUND_FIT) {
			j->submit(j, t->task_id, t->client);
			again++;
		}
	}
	if (again > 0)
		console_log("round %u: worker %d ended before sending the "
		            "partial sum of %u folded fits; they run again",
		            j->round, (int)pid, again);
	partials_fits_free(fits, n);
}

void
round_on_result(void *arg, uint64_t task_id, const struct msg *m)
{
	struct job *j = arg;
	const struct msg_result *r = &m->u.result;
	struct job_task *t = find_task(j, task_id);
	/* Only a fit's streamed update is folded; any other is dropped. */
	if (t == NULL)
		stream_drop(&j->stream, task_id);
	struct ipc_error err;
	if (j->r.central_pending && task_id == j->r.eval_task_id) {
		j->r.central_pending = 0;
		double loss = kv_get_num(&r->metrics, "loss", NAN);
		double acc = kv_get_num(&r->metrics, "accuracy", NAN);
		uint64_t cap =
		    prepare_examples_cap(j->prepared, -1, EXAMPLES_TEST,
		                         j->cfg->federation.max_examples);
		if (eval_numbers_check(r->num_examples, cap, loss, acc, &err) <
		    0) {
			console_err("round %u: central evaluation failed: %s",
			            j->round, err.message);
		} else {
			j->r.test_loss = loss;
			j->r.test_acc = acc;
		}
		evals_ended(j);
		return;
	}
	struct fedeval_task *fe = fedeval_find(&j->r.fedeval, task_id);
	if (fe != NULL) {
		fed_eval_ended(j, fe, r);
		return;
	}
	if (t == NULL)
		return;
	if (r->folded >= 0) {
		folded_result(j, t, r);
		return;
	}
	int ok = 0;
	double weight = 0;
	if (r->params.where == PARAMS_FD && r->params.fd != 1)
		ipc_error_set(&err, IPC_E_BAD_VALUE,
		              "result names descriptor %u; the task's update "
		              "is descriptor 1",
		              (unsigned)r->params.fd);
	else if ((weight = fit_weight(j, t, r, &err)) <= 0)
		ok = 0;
	else if (stream_fold(&j->stream, &j->strategy, task_id, &r->params,
	                     task_update(j, t), t->update_slot >= 0, weight,
	                     &err) == 0)
		ok = 1;
	task_update_release(j, t);
	stream_drop(&j->stream, task_id);
	if (ok)
		fit_numbers(j, t, r->num_examples, &r->metrics);
	fit_ended(j, t, ok, ok ? NULL : err.message);
}

void
round_on_metrics(void *arg, uint64_t task_id, const struct msg *m)
{
	struct job *j = arg;
	struct job_task *t = find_task(j, task_id);
	if (t == NULL)
		return;
	if (j->summary)
		return; /* progress metrics are per task only */
	const struct kv_list *v = &m->u.metrics.values;
	int64_t cap = j->cfg->output.task_metrics;
	for (size_t i = 0; i < v->count; i++)
		if (v->entries[i].type == KV_NUM) {
			if (t->metric_lines++ >= cap) {
				if (t->metric_lines == cap + 1)
					console_log(
					    "round %u: client %lld task "
					    "%llu: more than %lld progress "
					    "metrics (output.task_metrics); "
					    "the rest are dropped",
					    j->round, (long long)t->client,
					    (unsigned long long)task_id,
					    (long long)cap);
				continue;
			}
			char *key = xasprintf("step_%s", v->entries[i].key);
			metrics_task(&j->metrics, j->round, t->client, task_id,
			             key, v->entries[i].num);
			free(key);
		}
}

void
round_on_failed(void *arg, uint64_t task_id, const char *reason)
{
	struct job *j = arg;
	if (j->r.central_pending && task_id == j->r.eval_task_id) {
		j->r.central_pending = 0;
		console_err("round %u: central evaluation failed: %s", j->round,
		            reason);
		evals_ended(j);
		return;
	}
	struct fedeval_task *fe = fedeval_find(&j->r.fedeval, task_id);
	if (fe != NULL) {
		fed_eval_failed(j, fe, reason);
		return;
	}
	struct job_task *t = find_task(j, task_id);
	if (t != NULL)
		fit_ended(j, t, 0, reason);
}
