/* test_checkpoint.c: a saved checkpoint loads back exactly; a resume
 * trusts nothing in it: every state.json field out of range or at odds
 * with another (round 99 with 4 rounds of history, round -1 or 0, a model
 * of another round, failure counters of the wrong length or absurd, another
 * seed), a model of another round or layout, and a NaN weight are errors
 * naming the file and field. */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "checkpoint.h"
#include "files.h"
#include "harness.h"
#include "safetensors.h"
#include "util.h"

#define CLIENTS 3
#define SEED 42

static struct tensor_manifest model;
static float *weights;

/* A two-tensor model with known weights. */
static void
make_model(struct tensor_manifest *m, float **region, int extra)
{
	struct ipc_error err;
	tensor_manifest_init(m);
	uint64_t w[2] = {4, 3}, b[1] = {4};
	CHECK_EQ_INT(tensor_manifest_add(m, "fc.weight", DTYPE_F32, 2, w, &err),
	             0);
	CHECK_EQ_INT(tensor_manifest_add(m, "fc.bias", DTYPE_F32, 1, b, &err),
	             0);
	if (extra) {
		uint64_t e[1] = {2};
		CHECK_EQ_INT(
		    tensor_manifest_add(m, "extra", DTYPE_F32, 1, e, &err), 0);
	}
	*region = xcalloc(1, m->total_size); /* padding stays zero */
	for (size_t t = 0; t < m->count; t++) {
		float *v = *region + m->tensors[t].offset / sizeof(float);
		for (size_t i = 0; i < m->tensors[t].nbytes / sizeof(float);
		     i++)
			v[i] = 0.5f * (float)(t * 100 + i);
	}
}

/* Save round `round` of the model (weights as given) into dir with a
 * consistent state: history of `round` entries, next_task 3 per round. */
static void
save_keep(const char *dir, unsigned round, const float *region, unsigned keep)
{
	char *path = xasprintf("%s/src.bin", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, region, model.total_size) == (ssize_t)model.total_size);
	json_t *state = json_object();
	json_object_set_new(state, "seed", json_integer(SEED));
	json_object_set_new(state, "next_task", json_integer(round * 3));
	json_t *fails = json_array();
	for (int c = 0; c < CLIENTS; c++)
		json_array_append_new(fails, json_integer(c));
	json_object_set_new(state, "consecutive_failures", fails);
	json_t *h = json_array();
	for (unsigned r = 1; r <= round; r++)
		json_array_append_new(h, json_pack("{s:i}", "round", r));
	json_object_set_new(state, "history", h);
	struct ipc_error err;
	CHECK_EQ_INT(checkpoint_save(dir, round, &model, fd, state, keep, &err),
	             0);
	json_decref(state);
	close(fd);
	unlink(path);
	free(path);
}

/* The same, keeping the default two round models. */
static void
save(const char *dir, unsigned round, const float *region)
{
	save_keep(dir, round, region, 2);
}

/* Which of rounds 1..5's models are in dir, as "1 2 3 ..." */
static void
models_in(const char *dir, char *out, size_t size)
{
	out[0] = '\0';
	for (unsigned r = 1; r <= 5; r++) {
		char *p = xasprintf("%s/round-%04u.safetensors", dir, r);
		if (files_exist(p))
			snprintf(out + strlen(out), size - strlen(out), "%s%u",
			         out[0] ? " " : "", r);
		free(p);
	}
}

/* Load dir against the job; returns the rc, the message in msg. */
static int
load(const char *dir, char *msg, size_t cap)
{
	const struct checkpoint_expect want = {&model, CLIENTS, SEED};
	float *region = xcalloc(1, model.total_size);
	json_t *state = NULL;
	struct ipc_error err = {0};
	int rc = checkpoint_load(dir, &want, &state, region, &err);
	snprintf(msg, cap, "%s", rc == 0 ? "" : err.message);
	if (state != NULL)
		CHECK(memcmp(region, weights, model.total_size) == 0);
	json_decref(state);
	free(region);
	return rc;
}

/* Rewrite dir/state.json with key set to the JSON text value. */
static void
edit_state(const char *dir, const char *key, const char *value)
{
	char *path = xasprintf("%s/state.json", dir);
	json_t *s = json_load_file(path, 0, NULL);
	CHECK(s != NULL);
	json_object_set_new(s, key, json_loads(value, JSON_DECODE_ANY, NULL));
	CHECK_EQ_INT(json_dump_file(s, path, 0), 0);
	json_decref(s);
	free(path);
}

static const char *
fresh_dir(const char *name)
{
	static char *dir;
	free(dir);
	dir = xasprintf("%s/%s", harness_tmpdir(), name);
	struct ipc_error err;
	CHECK_EQ_INT(files_mkdirs(dir, 0700, &err), 0);
	return dir;
}

/* output.keep_checkpoints: the latest N round models stay, 0 keeps all;
 * with one kept the job still resumes. */
static void
test_keep(void)
{
	static const struct {
		unsigned keep;
		const char *want;
	} cases[] = {{1, "5"}, {2, "4 5"}, {3, "3 4 5"}, {0, "1 2 3 4 5"}};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char name[32], have[32], msg[512];
		snprintf(name, sizeof name, "keep%u", cases[i].keep);
		const char *dir = fresh_dir(name);
		for (unsigned r = 1; r <= 5; r++)
			save_keep(dir, r, weights, cases[i].keep);
		models_in(dir, have, sizeof have);
		CHECK_STR_CONTAINS(have, cases[i].want);
		CHECK_EQ_INT(strlen(have), strlen(cases[i].want));
		CHECK_EQ_INT(load(dir, msg, sizeof msg), 0);
	}
}

static void
test_roundtrip(void)
{
	const char *dir = fresh_dir("ok");
	char msg[512];
	CHECK_EQ_INT(load(dir, msg, sizeof msg), 0); /* nothing yet */
	save(dir, 4, weights);
	CHECK_EQ_INT(load(dir, msg, sizeof msg), 0);
}

/* Each edit of a good checkpoint, and the words its error must hold. */
static void
test_state_fields(void)
{
	static const struct {
		const char *key, *value, *want;
	} cases[] = {
	    {"round", "99", "\"model\" must be \"round-0099.safetensors\""},
	    {"round", "-1", "\"round\" must be an integer from 1"},
	    {"round", "0", "\"round\" must be an integer from 1"},
	    {"round", "\"4\"", "\"round\" must be an integer"},
	    {"model", "\"round-0003.safetensors\"", "\"model\" must be"},
	    {"model", "\"../../etc/passwd\"", "\"model\" must be"},
	    {"next_task", "2", "\"next_task\" must be an integer from 4"},
	    {"seed", "7", "\"seed\" is 7, the job's job.seed 42"},
	    {"consecutive_failures", "[0, 0]", "one count per client (3)"},
	    {"consecutive_failures", "[0, 4000000000, 0]",
	     "\"consecutive_failures\"[1] must be an integer from 0"},
	    {"consecutive_failures", "[0, -1, 0]",
	     "\"consecutive_failures\"[1]"},
	    {"consecutive_failures", "{\"3\": 1}",
	     "\"3\" is not a client id below 3"},
	    {"consecutive_failures", "{\"1x\": 1}", "\"1x\" is not a client"},
	    {"consecutive_failures", "{\"-1\": 1}", "\"-1\" is not a client"},
	    {"consecutive_failures", "{\"2\": -1}",
	     "\"consecutive_failures\"[\"2\"] must be an integer from 0"},
	    {"consecutive_failures", "7", "must map client ids to counts"},
	    {"history", "[{\"round\": 1}]", "one entry per completed round"},
	    {"history",
	     "[{\"round\": 1}, {\"round\": 2}, {\"round\": 2}, {\"round\": 4}]",
	     "\"history\"[2] must be round 3's entry"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *dir = fresh_dir("fields");
		save(dir, 4, weights);
		edit_state(dir, cases[i].key, cases[i].value);
		char msg[512];
		CHECK_EQ_INT(load(dir, msg, sizeof msg), -1);
		CHECK_STR_CONTAINS(msg, "state.json");
		CHECK_STR_CONTAINS(msg, cases[i].want);
	}
	/* round 99 with the right file name: the history gives it away */
	const char *dir = fresh_dir("r99");
	save(dir, 4, weights);
	char *from = xasprintf("%s/round-0004.safetensors", dir);
	char *to = xasprintf("%s/round-0099.safetensors", dir);
	CHECK_EQ_INT(rename(from, to), 0);
	edit_state(dir, "round", "99");
	edit_state(dir, "model", "\"round-0099.safetensors\"");
	edit_state(dir, "next_task", "400");
	char msg[512];
	CHECK_EQ_INT(load(dir, msg, sizeof msg), -1);
	CHECK_STR_CONTAINS(msg, "\"history\" must hold one entry per");
	free(from);
	free(to);
}

static void
test_model_file(void)
{
	char msg[512];
	/* the model of another round under this round's name */
	const char *dir = fresh_dir("swap");
	save(dir, 3, weights);
	char *r3 = xasprintf("%s/round-0003.safetensors", dir);
	char *keep = xasprintf("%s/keep.safetensors", dir);
	CHECK_EQ_INT(rename(r3, keep), 0);
	save(dir, 4, weights);
	char *r4 = xasprintf("%s/round-0004.safetensors", dir);
	CHECK_EQ_INT(rename(keep, r4), 0);
	CHECK_EQ_INT(load(dir, msg, sizeof msg), -1);
	CHECK_STR_CONTAINS(msg, "round-0004.safetensors: metadata \"round\" "
	                        "is 3, state.json says 4");
	free(r3);
	free(r4);
	free(keep);

	/* a NaN weight */
	dir = fresh_dir("nan");
	float *bad = xmalloc(model.total_size);
	memcpy(bad, weights, model.total_size);
	bad[5] = NAN;
	save(dir, 2, bad);
	CHECK_EQ_INT(load(dir, msg, sizeof msg), -1);
	CHECK_STR_CONTAINS(msg, "round-0002.safetensors");
	CHECK_STR_CONTAINS(msg, "fc.weight");
	free(bad);

	/* a model of another layout (a tensor more) */
	dir = fresh_dir("layout");
	struct tensor_manifest other;
	float *oregion;
	make_model(&other, &oregion, 1);
	char *path = xasprintf("%s/round-0001.safetensors", dir);
	struct ipc_error err;
	struct st_metadata meta = {0};
	st_metadata_set(&meta, "round", "1");
	save(dir, 1, weights);
	CHECK_EQ_INT(safetensors_write(path, &other, oregion, &meta, &err), 0);
	st_metadata_free(&meta);
	CHECK_EQ_INT(load(dir, msg, sizeof msg), -1);
	CHECK_STR_CONTAINS(msg, "round-0001.safetensors");
	CHECK_STR_CONTAINS(msg, "extra");
	free(path);
	free(oregion);
	tensor_manifest_free(&other);
}

int
main(void)
{
	make_model(&model, &weights, 0);
	RUN(test_roundtrip);
	RUN(test_keep);
	RUN(test_state_fields);
	RUN(test_model_file);
	tensor_manifest_free(&model);
	free(weights);
	return harness_finish();
}
