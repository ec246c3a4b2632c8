/* checkpoint.c: atomic per-round checkpoints and loading them for --resume. */
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "files.h"
#include "safetensors.h"

int
checkpoint_save(const char *dir, unsigned round,
                const struct tensor_manifest *m, int fd, json_t *state,
                struct ipc_error *err)
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
	if (round > 2) {
		char *old =
		    xasprintf("%s/round-%04u.safetensors", dir, round - 2);
		unlink(old);
		free(old);
	}
	return 0;
}

int
checkpoint_load(const char *dir, json_t **state, struct tensor_manifest *m,
                void **region, struct ipc_error *err)
{
	*state = NULL;
	char *spath = xasprintf("%s/state.json", dir);
	if (!files_exist(spath)) {
		free(spath);
		return 0;
	}
	json_error_t jerr;
	json_t *s = json_load_file(spath, 0, &jerr);
	if (s == NULL) {
		ipc_error_set(err, IPC_E_BAD_VALUE, "%s: invalid JSON: %s",
		              spath, jerr.text);
		free(spath);
		return -1;
	}
	json_t *model = json_object_get(s, "model");
	json_t *round = json_object_get(s, "round");
	if (!json_is_string(model) || !json_is_integer(round) ||
	    strchr(json_string_value(model), '/') != NULL) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: expected \"round\" (integer) and \"model\" "
		              "(file name)",
		              spath);
		free(spath);
		json_decref(s);
		return -1;
	}
	free(spath);
	char *mpath = xasprintf("%s/%s", dir, json_string_value(model));
	int rc = safetensors_read(mpath, m, region, NULL, err);
	free(mpath);
	if (rc < 0) {
		json_decref(s);
		return -1;
	}
	*state = s;
	return 0;
}
