/* prepare-run.c: running the worker's --prepare step and reading its output. */
#include "prepare-run.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "files.h"

extern char **environ;

int
prepare_run(const char *worker, const char *workspace, const char *log_path,
            struct ipc_error *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log_path,
	                                 O_WRONLY | O_CREAT | O_APPEND, 0666);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	char *argv[] = {(char *)worker, "--prepare", (char *)workspace, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, worker, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return ipc_error_set(err, IPC_E_IO,
		                     "cannot run %s --prepare: %s", worker,
		                     strerror(rc));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return ipc_error_set(err, IPC_E_IO, "waitpid: %s",
			                     strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char line[400];
	files_last_line(log_path, line, sizeof line);
	if (WIFSIGNALED(status))
		return ipc_error_set(err, IPC_E_IO,
		                     "preparing the job failed: %s --prepare "
		                     "was killed by signal %d (log: %s)",
		                     worker, WTERMSIG(status), log_path);
	return ipc_error_set(err, IPC_E_IO,
	                     "preparing the job failed: %s (log: %s)",
	                     line[0] ? line : "no message", log_path);
}

uint64_t
prepare_examples_cap(const json_t *prepared, int64_t client,
                     enum examples_set set, int64_t max)
{
	if (max > 0)
		return (uint64_t)max;
	static const char *const per_client[] = {"client_train",
	                                         "client_holdout", NULL};
	static const char *const whole[] = {"num_train", "num_train",
	                                    "num_test"};
	json_t *v = NULL;
	if (per_client[set] != NULL && client >= 0) {
		/* one count per client, or one for all (a sampled partition) */
		v = json_object_get(prepared, per_client[set]);
		if (json_is_array(v))
			v = json_array_get(v, (size_t)client);
	}
	if (!json_is_integer(v))
		v = json_object_get(prepared, whole[set]);
	if (json_is_integer(v) && json_integer_value(v) > 0)
		return (uint64_t)json_integer_value(v);
	return UINT32_MAX;
}

int
prepare_load(const char *workspace, json_t **prepared, struct ipc_error *err)
{
	char *path = xasprintf("%s/data/prepared.json", workspace);
	json_error_t jerr;
	json_t *p = json_load_file(path, 0, &jerr);
	if (p == NULL || !json_is_object(p) ||
	    !json_is_string(json_object_get(p, "initial"))) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: expected a JSON object with \"initial\" "
		              "(%s)",
		              path, p == NULL ? jerr.text : "key missing");
		json_decref(p);
		free(path);
		return -1;
	}
	free(path);
	*prepared = p;
	return 0;
}
