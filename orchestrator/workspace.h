/* workspace.h: a job's directory (config, run/, logs/, checkpoints/,
 * metrics/, results/), its per-run identity (job key, token, socket path)
 * and the cleanup of shared memory left behind by dead orchestrators. */
#ifndef COHORT_WORKSPACE_H
#define COHORT_WORKSPACE_H

#include "error.h"

struct workspace {
	char *dir;         /* absolute path of the workspace */
	char *socket_path; /* run/orchestrator.sock, or a /tmp fallback */
	char
	    *socket_tmpdir; /* the mkdtemp directory of the fallback, or NULL */
	char jobkey[32];    /* "<pid>-<4 hex>": names this run's shm segments */
	char token[33];     /* per-run secret workers must present */
	int lock_fd;        /* run/lock, flock'ed while this run lives, or -1 */
	unsigned stale_temps; /* temporary files of killed writes removed */
};

/* Create <root>/<name>-<YYYYmmdd-HHMMSS>-<4 hex>/ and its subdirectories. */
int workspace_create(struct workspace *ws, const char *root, const char *name,
                     struct ipc_error *err);
/* Check that dir is a job's workspace (a directory holding config.json);
 * otherwise an error saying what it is and what to give instead. */
int workspace_check(const char *dir, struct ipc_error *err);
/* Open an existing workspace (for --resume); it must pass workspace_check. */
int workspace_open(struct workspace *ws, const char *dir,
                   struct ipc_error *err);
/* Take the workspace lock (flock on run/lock, held until the process exits,
 * so two orchestrators can never run one workspace whatever the timing),
 * remove the temporary files of writes a killed run left (stale_temps
 * counts them), pick this run's job key and token, write the pid file and
 * choose the socket path (falling back to /tmp when the workspace path is too
 * long for a Unix socket). A lock held by another process is an error naming
 * its pid. */
int workspace_start_run(struct workspace *ws, struct ipc_error *err);
/* The pid of the orchestrator holding dir's lock (from its pid file; -1
 * when the pid is unknown), or 0 when no process holds it. */
long workspace_running_pid(const char *dir);
/* A path inside the workspace (malloc'd). */
char *workspace_path(const struct workspace *ws, const char *rel);
/* Remove the socket, pid file and fallback directory; free the strings. */
void workspace_close(struct workspace *ws);

#endif
