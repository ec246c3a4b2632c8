/* requeue.c: --workspace DIR: create a job at a fixed path, or recognise the
 * same job there and continue it, so a requeued batch job resumes by
 * running its original command again. */
#include "requeue.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "files.h"
#include "workspace.h"

/* True when dir has no entry but . and .. */
static int
dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	struct dirent *de;
	int empty = 1;
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

/* Refuse a workspace whose orchestrator still runs (holds its lock). */
static int
check_not_running(const char *dir, struct ipc_error *err)
{
	long pid = workspace_running_pid(dir);
	if (pid == 0)
		return 0;
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "--workspace %s: the job there is running (pid "
	                     "%ld); stop it first, or use another directory",
	                     dir, pid);
}

/* Compare dir's config.json with cfg; 0 when they describe the same job. */
static int
check_same_job(const struct config *cfg, const char *dir, struct ipc_error *err)
{
	char *path = xasprintf("%s/config.json", dir);
	struct config saved;
	config_defaults(&saved);
	int rc = config_load_saved(&saved, path, err);
	if (rc == 0) {
		json_t *a = config_to_json(&saved);
		json_t *b = config_to_json(cfg);
		char diff[1024] = "";
		int n = config_job_differences(a, b, diff, sizeof diff);
		if (n > 0)
			rc = ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "--workspace %s holds another job (%d key%s "
			    "differ%s: %s%s); run with that job's arguments to "
			    "continue it, --resume %s to continue it as "
			    "saved, or pick another directory",
			    dir, n, n == 1 ? "" : "s", n == 1 ? "s" : "", diff,
			    n > 4 ? "; ..." : "", dir);
		json_decref(a);
		json_decref(b);
	}
	config_free(&saved);
	free(path);
	return rc;
}

int
requeue_workspace(const struct config *cfg, const char *dir, int *resuming,
                  struct ipc_error *err)
{
	*resuming = 0;
	char *config = xasprintf("%s/config.json", dir);
	int rc;
	struct stat st;
	if (files_exist(config)) {
		rc = check_not_running(dir, err);
		if (rc == 0)
			rc = check_same_job(cfg, dir, err);
		*resuming = rc == 0;
	} else if (stat(dir, &st) == 0 &&
	           (!S_ISDIR(st.st_mode) || !dir_is_empty(dir))) {
		rc = ipc_error_set(err, IPC_E_BAD_VALUE,
		                   "--workspace %s: exists and is not a cohort "
		                   "workspace (no config.json); name a new or "
		                   "empty directory",
		                   dir);
	} else {
		rc = files_mkdirs(dir, 0777, err);
		if (rc == 0)
			rc = config_save(cfg, config, err);
		if (rc < 0)
			ipc_error_prefix(err, "--workspace: ");
	}
	free(config);
	return rc;
}
