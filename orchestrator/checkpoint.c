/* checkpoint.c: atomic per-round checkpoints and loading them for --resume. */
#include "checkpoint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "files.h"
#include "safetensors.h"

int
checkpoint_save(const char *dir, unsigned round,
                const struct tensor_manifest *m, int fd, json_t *state,
                unsigned keep, struct ipc_error *err)
{
	char *name = xasprintf("round-%04u.safetensors", round);
	char *path = xasprintf("%s/%s", dir, name);
	struct st_metadata meta = {0};
	char rs[16];
	snprintf(rs, sizeof rs, "%u", round);
	st_metadata_set(&meta, "format", "pt");
	st_metadata_set(&meta, "round", rs);
	int rc = safetensors_write_fd(path, m, fd, &meta, err);
	st_metadata_free(&meta);
	free(path);
	if (rc < 0) {
		free(name);
		return -1;
	}
	json_object_set_new(state, "round", json_integer(round));
	json_object_set_new(state, "model", json_string(name));
	free(name);
	char *text =
	    json_dumps(state, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
	if (text == NULL)
		fatal("out of memory encoding state.json");
	char *spath = xasprintf("%s/state.json", dir);
	rc = atomicfile_write_buffer(spath, text, strlen(text), err);
	free(spath);
	free(text);
	if (rc < 0)
		return -1;
	if (keep > 0 && round > keep) {
		char *old =
		    xasprintf("%s/round-%04u.safetensors", dir, round - keep);
		unlink(old);
		free(old);
	}
	return 0;
}

/* state.json's integer field key in [lo, hi], into *out; else an error
 * naming the file and field. */
static int
state_int(json_t *s, const char *path, const char *key, json_int_t lo,
          json_int_t hi, json_int_t *out, struct ipc_error *err)
{
	json_t *v = json_object_get(s, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: \"%s\" must be an integer from %lld "
		                     "to %lld",
		                     path, key, (long long)lo, (long long)hi);
	*out = json_integer_value(v);
	return 0;
}

/* One consecutive-failure count, "consecutive_failures"[at]: an integer
 * from 0 to next_task. */
static int
check_count(const json_t *v, const char *at, json_int_t next_task,
            const char *path, struct ipc_error *err)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= next_task)
		return 0;
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "%s: \"consecutive_failures\"[%s] must be an "
	                     "integer from 0 to next_task (%lld)",
	                     path, at, (long long)next_task);
}

/* state.json's "consecutive_failures": {"client": count} for clients with
 * failures (client ids below clients), or one count per client (older
 * checkpoints); every count from 0 to next_task. */
static int
check_failures(json_t *fails, int64_t clients, json_int_t next_task,
               const char *path, struct ipc_error *err)
{
	if (json_is_object(fails)) {
		const char *id;
		json_t *v;
		json_object_foreach(fails, id, v)
		{
			char *end;
			long long c = strtoll(id, &end, 10);
			if (end == id || *end != '\0' || c < 0 || c >= clients)
				return ipc_error_set(
				    err, IPC_E_BAD_VALUE,
				    "%s: \"consecutive_failures\": \"%s\" is "
				    "not a client id below %lld",
				    path, id, (long long)clients);
			char at[80];
			snprintf(at, sizeof at, "\"%.64s\"", id);
			if (check_count(v, at, next_task, path, err) < 0)
				return -1;
		}
		return 0;
	}
	if (!json_is_array(fails) || json_array_size(fails) != (size_t)clients)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: \"consecutive_failures\" must map "
		                     "client ids to counts, or list one count "
		                     "per client (%lld)",
		                     path, (long long)clients);
	size_t i;
	json_t *v;
	json_array_foreach(fails, i, v)
	{
		char at[24];
		snprintf(at, sizeof at, "%zu", i);
		if (check_count(v, at, next_task, path, err) < 0)
			return -1;
	}
	return 0;
}

/* The fields of state.json against each other and the job. */
static int
check_state(json_t *s, const char *path, const struct checkpoint_expect *want,
            struct ipc_error *err)
{
	json_int_t round = 0, next_task = 0, seed = 0;
	if (!json_is_object(s))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: not a JSON object", path);
	if (state_int(s, path, "round", 1, 1000000, &round, err) < 0)
		return -1;
	char name[32];
	snprintf(name, sizeof name, "round-%04u.safetensors", (unsigned)round);
	const char *model = json_string_value(json_object_get(s, "model"));
	if (model == NULL || strcmp(model, name) != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: \"model\" must be \"%s\" (the "
		                     "checkpoint of its round %lld)",
		                     path, name, (long long)round);
	if (state_int(s, path, "next_task", round, (json_int_t)1 << 53,
	              &next_task, err) < 0 ||
	    state_int(s, path, "seed", 0, INT64_MAX, &seed, err) < 0)
		return -1;
	if (seed != want->seed)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "%s: \"seed\" is %lld, the job's job.seed "
		                     "%lld: the checkpoint is of another job",
		                     path, (long long)seed,
		                     (long long)want->seed);
	json_t *fails = json_object_get(s, "consecutive_failures");
	if (check_failures(fails, want->clients, next_task, path, err) < 0)
		return -1;
	size_t i;
	json_t *v;
	json_t *history = json_object_get(s, "history");
	if (!json_is_array(history) ||
	    json_array_size(history) != (size_t)round)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: \"history\" must hold one entry per "
		                     "completed round (\"round\" is %lld)",
		                     path, (long long)round);
	json_array_foreach(history, i, v)
	{
		json_t *r = json_object_get(v, "round");
		if (!json_is_integer(r) ||
		    json_integer_value(r) != (json_int_t)i + 1)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "%s: \"history\"[%zu] must be round "
			    "%zu's entry",
			    path, i, i + 1);
	}
	return 0;
}

int
checkpoint_load(const char *dir, const struct checkpoint_expect *want,
                json_t **state, void *region, struct ipc_error *err)
{
	*state = NULL;
	char *spath = xasprintf("%s/state.json", dir);
	if (!files_exist(spath)) {
		free(spath);
		return 0;
	}
	json_error_t jerr;
	json_t *s = json_load_file(spath, 0, &jerr);
	int rc = 0;
	if (s == NULL)
		rc = ipc_error_set(err, IPC_E_BAD_VALUE, "%s: invalid JSON: %s",
		                   spath, jerr.text);
	if (rc == 0)
		rc = check_state(s, spath, want, err);
	free(spath);
	if (rc < 0) {
		json_decref(s);
		return -1;
	}
	json_int_t round = json_integer_value(json_object_get(s, "round"));
	char *mpath = xasprintf("%s/%s", dir,
	                        json_string_value(json_object_get(s, "model")));
	struct st_metadata meta = {0};
	rc = safetensors_read_into(mpath, want->model, region, &meta, err);
	if (rc == 0) {
		const char *r = st_metadata_get(&meta, "round");
		if (r == NULL || strtoll(r, NULL, 10) != round)
			rc = ipc_error_set(err, IPC_E_MISMATCH,
			                   "%s: metadata \"round\" is %s, "
			                   "state.json says %lld",
			                   mpath, r ? r : "missing",
			                   (long long)round);
	}
	if (rc == 0 &&
	    tensor_region_check_finite(want->model, region, err) < 0) {
		ipc_error_prefix(err, "%s: ", mpath);
		rc = -1;
	}
	st_metadata_free(&meta);
	free(mpath);
	if (rc < 0) {
		json_decref(s);
		return -1;
	}
	*state = s;
	return 0;
}
