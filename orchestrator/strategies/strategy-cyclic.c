/* strategy-cyclic.c: cyclic weight transfer. A round relays the model
 * through its clients one at a time: the global model goes to the first,
 * each result becomes the model the next one trains from, and the last good
 * result is the round's model. The relay model lives in its own segment
 * (a memfd, cohort.<key>.relay); after every hop the position in the order and
 * the relay model are checkpointed (checkpoints/cycle.json naming
 * cycle-{0,1}.safetensors, written alternately) so --resume continues
 * mid-round. */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "console.h"
#include "files.h"
#include "rng.h"
#include "safetensors.h"

struct cyclic {
	struct shm_segment relay;
	uint32_t *order; /* this round's clients in relay order */
	unsigned norder, round, attempt;
	unsigned pos;        /* next hop */
	unsigned ok, failed; /* hops done and failed so far this round */
	unsigned retried;    /* failed tries retried so far this round */
	unsigned tries;      /* retries of the current hop */
	int64_t prev_last;   /* last client of the previous round, or -1 */
	int64_t cur_last;    /* last client of this round, or -1 */
	unsigned cur_round;
	int resume; /* order, pos and relay restored from cycle.json */
};

/* The relay segment; no checkpoint yet. */
static int
cyclic_init(struct strategy *s, struct ipc_error *err)
{
	struct cyclic *c = xcalloc(1, sizeof *c);
	c->relay.fd = -1;
	c->prev_last = c->cur_last = -1;
	c->order =
	    xcalloc((size_t)s->cfg->federation.clients, sizeof *c->order);
	s->priv = c;
	char name[256];
	snprintf(name, sizeof name, "cohort.%s.relay", s->jobkey);
	if (shm_segment_create(&c->relay, name, s->model->total_size, err) < 0)
		return -1;
	/* Only the orchestrator's mapping writes it; hops read it. */
	return shm_segment_seal_readonly(&c->relay, err);
}

/* Clients of strategy.cyclic_clients that are available, in list order. */
static unsigned
listed_order(const struct strategy *s, unsigned round,
             const uint32_t *available, unsigned navailable, uint32_t *order)
{
	unsigned n = 0;
	const char *p = s->cfg->strategy.cyclic_clients;
	while (*p) {
		char *end;
		uint32_t id = (uint32_t)strtoul(p, &end, 10);
		int found = 0;
		for (unsigned i = 0; i < navailable && !found; i++)
			found = available[i] == id;
		if (found)
			order[n++] = id;
		else
			console_err("round %u: cyclic: client %u of "
			            "strategy.cyclic_clients is not available "
			            "(excluded or offline); skipped",
			            round, id);
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* Order the round's clients as strategy.cyclic_order says. */
static unsigned
cyclic_configure(struct strategy *s, unsigned round, unsigned attempt,
                 const uint32_t *sampled, unsigned nsampled,
                 const uint32_t *available, unsigned navailable,
                 const void *global, uint32_t *order)
{
	struct cyclic *c = s->priv;
	if (round != c->cur_round) {
		c->prev_last = c->cur_last;
		c->cur_round = round;
	}
	if (c->resume && c->round == round && c->attempt == attempt) {
		c->resume = 0;
		memcpy(order, c->order, c->norder * sizeof *order);
		return c->norder;
	}
	c->resume = 0;
	const char *how = s->cfg->strategy.cyclic_order;
	unsigned n;
	if (s->cfg->strategy.cyclic_clients[0] != '\0') {
		n = listed_order(s, round, available, navailable, order);
	} else {
		n = nsampled;
		memcpy(order, sampled, n * sizeof *order);
		struct rng r;
		uint64_t key =
		    rng_derive((uint64_t)s->cfg->job.seed, "cyclic", round);
		rng_seed(&r, rng_derive(key, "attempt", attempt), 0);
		if (strcmp(how, "fixed") != 0)
			rng_shuffle_u32(&r, order, n);
		if (strcmp(how, "random_no_repeat") == 0 && n > 1 &&
		    (int64_t)order[0] == c->prev_last) {
			unsigned k = 1 + (unsigned)rng_below(&r, n - 1);
			uint32_t t = order[0];
			order[0] = order[k];
			order[k] = t;
		}
	}
	memcpy(c->order, order, n * sizeof *order);
	c->norder = n;
	c->round = round;
	c->attempt = attempt;
	c->pos = c->ok = c->failed = c->retried = c->tries = 0;
	c->cur_last = n ? (int64_t)order[n - 1] : -1;
	memcpy(c->relay.addr, global, s->model->total_size);
	return n;
}

/* The hop's result is the model the next client trains from. */
static int
cyclic_fold(struct strategy *s, const void *update, double weight,
            struct ipc_error *err)
{
	(void)weight;
	(void)err;
	struct cyclic *c = s->priv;
	memcpy(c->relay.addr, update, s->model->total_size);
	return 0;
}

/* The round's model is the relay model after the last hop. */
static int
cyclic_finish(struct strategy *s, const void *global, void *out,
              struct ipc_error *err)
{
	(void)global;
	(void)err;
	struct cyclic *c = s->priv;
	memcpy(out, c->relay.addr, s->model->total_size);
	return 0;
}

/* Write the cycle position and the relay model (alternating files, so a
 * crash leaves cycle.json naming a complete one). */
static void
save_cycle(struct strategy *s)
{
	struct cyclic *c = s->priv;
	if (s->ckpt_dir == NULL)
		return;
	struct ipc_error err;
	char file[32];
	snprintf(file, sizeof file, "cycle-%u.safetensors",
	         (c->ok + c->failed + c->retried) % 2);
	char *path = xasprintf("%s/%s", s->ckpt_dir, file);
	int rc = safetensors_write(path, s->model, c->relay.addr, NULL, &err);
	free(path);
	json_t *o = json_object();
	json_object_set_new(o, "round", json_integer(c->round));
	json_object_set_new(o, "attempt", json_integer(c->attempt));
	json_object_set_new(o, "pos", json_integer(c->pos));
	json_object_set_new(o, "ok", json_integer(c->ok));
	json_object_set_new(o, "failed", json_integer(c->failed));
	json_object_set_new(o, "retried", json_integer(c->retried));
	json_object_set_new(o, "prev_last", json_integer(c->prev_last));
	json_object_set_new(o, "model", json_string(file));
	json_t *order = json_array();
	for (unsigned i = 0; i < c->norder; i++)
		json_array_append_new(order, json_integer(c->order[i]));
	json_object_set_new(o, "order", order);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	path = xasprintf("%s/cycle.json", s->ckpt_dir);
	if (rc == 0 && text != NULL)
		rc = atomicfile_write_buffer(path, text, strlen(text), &err);
	free(path);
	free(text);
	if (rc < 0)
		console_err("round %u: cyclic: cannot checkpoint the cycle "
		            "position: %s",
		            c->round, err.message);
}

int
strategy_relay_fd(const struct strategy *s)
{
	const struct cyclic *c = s->priv;
	return c->relay.fd;
}

unsigned
strategy_relay_position(struct strategy *s, unsigned *ok, unsigned *failed,
                        unsigned *retried)
{
	struct cyclic *c = s->priv;
	*ok = c->ok;
	*failed = c->failed;
	*retried = c->retried;
	return c->pos;
}

enum strategy_hop
strategy_relay_hop(struct strategy *s, int64_t client, int ok)
{
	struct cyclic *c = s->priv;
	const struct config *cfg = s->cfg;
	const char *policy = cfg->strategy.cyclic_on_failure;
	if (ok) {
		c->ok++;
	} else {
		if (strcmp(policy, "abort") == 0) {
			c->failed++;
			console_err("round %u: cyclic: client %lld failed and "
			            "strategy.cyclic_on_failure is abort",
			            c->round, (long long)client);
			return STRATEGY_HOP_ABORT;
		}
		if (strcmp(policy, "retry") == 0 &&
		    c->tries < (unsigned)cfg->strategy.cyclic_retries) {
			c->tries++;
			c->retried++;
			console_err("round %u: cyclic: retrying client %lld "
			            "(%u of %lld)",
			            c->round, (long long)client, c->tries,
			            (long long)cfg->strategy.cyclic_retries);
			save_cycle(s);
			return STRATEGY_HOP_RETRY;
		}
		c->failed++;
		console_err("round %u: cyclic: skipping client %lld (hop %u "
		            "of %u failed); the relay goes on from the last "
		            "good model",
		            c->round, (long long)client, c->pos + 1, c->norder);
	}
	c->pos++;
	c->tries = 0;
	save_cycle(s);
	return STRATEGY_HOP_NEXT;
}

/* The order memory of random_no_repeat. */
static int
cyclic_save(struct strategy *s, unsigned round, json_t *obj,
            struct ipc_error *err)
{
	(void)round;
	(void)err;
	struct cyclic *c = s->priv;
	json_object_set_new(obj, "round", json_integer(c->cur_round));
	json_object_set_new(obj, "last_client", json_integer(c->cur_last));
	return 0;
}

/* Restore the order memory and, when the checkpoint stopped inside the
 * next round, its cycle position and relay model. */
static int
cyclic_load(struct strategy *s, const json_t *obj, struct ipc_error *err)
{
	struct cyclic *c = s->priv;
	unsigned done = 0;
	if (obj != NULL) {
		done =
		    (unsigned)json_integer_value(json_object_get(obj, "round"));
		c->cur_round = done;
		const json_t *last = json_object_get(obj, "last_client");
		c->cur_last =
		    json_is_integer(last) ? json_integer_value(last) : -1;
	}
	if (s->ckpt_dir == NULL)
		return 0;
	char *path = xasprintf("%s/cycle.json", s->ckpt_dir);
	json_t *cy = files_exist(path) ? json_load_file(path, 0, NULL) : NULL;
	free(path);
	if (cy == NULL)
		return 0;
	const json_t *order = json_object_get(cy, "order");
	const char *model = json_string_value(json_object_get(cy, "model"));
	int rc = 0;
	if ((unsigned)json_integer_value(json_object_get(cy, "round")) ==
	        done + 1 &&
	    json_is_array(order) && model != NULL &&
	    json_array_size(order) <= (size_t)s->cfg->federation.clients &&
	    strchr(model, '/') == NULL) {
		char *mpath = xasprintf("%s/%s", s->ckpt_dir, model);
		rc = safetensors_read_into(mpath, s->model, c->relay.addr, NULL,
		                           err);
		free(mpath);
		c->round = done + 1;
		c->attempt = (unsigned)json_integer_value(
		    json_object_get(cy, "attempt"));
		c->pos =
		    (unsigned)json_integer_value(json_object_get(cy, "pos"));
		c->ok = (unsigned)json_integer_value(json_object_get(cy, "ok"));
		c->failed =
		    (unsigned)json_integer_value(json_object_get(cy, "failed"));
		c->retried = (unsigned)json_integer_value(
		    json_object_get(cy, "retried"));
		c->prev_last =
		    json_integer_value(json_object_get(cy, "prev_last"));
		c->cur_round = c->round;
		c->norder = (unsigned)json_array_size(order);
		for (unsigned i = 0; i < c->norder; i++)
			c->order[i] = (uint32_t)json_integer_value(
			    json_array_get(order, i));
		c->cur_last = c->norder ? (int64_t)c->order[c->norder - 1] : -1;
		if (c->pos > c->norder)
			c->pos = c->norder;
		c->resume = rc == 0;
		if (rc == 0)
			console_out("resuming the cycle of round %u at hop %u "
			            "of %u",
			            c->round, c->pos + 1, c->norder);
	}
	json_decref(cy);
	return rc;
}

/* Unlink the relay segment. */
static void
cyclic_free(struct strategy *s)
{
	struct cyclic *c = s->priv;
	if (c == NULL)
		return;
	shm_segment_close(&c->relay);
	free(c->order);
	free(c);
	s->priv = NULL;
}

const struct strategy_ops strategy_cyclic = {
    .name = "cyclic",
    .kind = STRATEGY_RELAY,
    .init = cyclic_init,
    .configure = cyclic_configure,
    .fold = cyclic_fold,
    .finish = cyclic_finish,
    .save = cyclic_save,
    .load = cyclic_load,
    .free = cyclic_free,
};
