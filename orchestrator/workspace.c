/* workspace.c: creating and opening job workspaces, the per-run identity,
 * and reaping shared memory of dead orchestrators. */
#include "workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "files.h"
#include "shm.h"

static const char *const subdirs[] = {
    "run", "logs", "logs/clients", "checkpoints", "metrics", "results", "data"};

/* Fill buf with n random bytes written as 2n hex digits. */
static void
random_hex(char *buf, size_t n)
{
	unsigned char bytes[32];
	if (n > sizeof bytes)
		fatal("random_hex: %zu bytes requested", n);
	if (getrandom(bytes, n, 0) != (ssize_t)n)
		fatal("getrandom failed: %s", strerror(errno));
	for (size_t i = 0; i < n; i++)
		sprintf(buf + 2 * i, "%02x", bytes[i]);
}

/* Make path absolute against the current directory. */
static char *
absolute(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	char cwd[4096];
	if (getcwd(cwd, sizeof cwd) == NULL)
		fatal("getcwd: %s", strerror(errno));
	return xasprintf("%s/%s", cwd, path);
}

/* Create the standard subdirectories of ws->dir. */
static int
make_subdirs(const struct workspace *ws, struct ipc_error *err)
{
	for (size_t i = 0; i < ARRAY_LEN(subdirs); i++) {
		char *p = workspace_path(ws, subdirs[i]);
		int rc = files_mkdirs(
		    p, strcmp(subdirs[i], "run") == 0 ? 0700 : 0777, err);
		free(p);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int
workspace_create(struct workspace *ws, const char *root, const char *name,
                 struct ipc_error *err)
{
	memset(ws, 0, sizeof *ws);
	ws->lock_fd = -1;
	char *absroot = absolute(root);
	if (files_mkdirs(absroot, 0777, err) < 0) {
		ipc_error_prefix(err, "job.workspace_root: ");
		free(absroot);
		return -1;
	}
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	for (int attempt = 0; attempt < 16; attempt++) {
		char hex[5];
		random_hex(hex, 2);
		char *dir = xasprintf("%s/%s-%s-%s", absroot, name, stamp, hex);
		if (mkdir(dir, 0777) == 0) {
			ws->dir = dir;
			break;
		}
		int saved = errno;
		free(dir);
		if (saved != EEXIST) {
			ipc_error_set(err, IPC_E_IO,
			              "%s: cannot create a workspace there: %s",
			              absroot, strerror(saved));
			free(absroot);
			return -1;
		}
	}
	free(absroot);
	if (ws->dir == NULL)
		return ipc_error_set(err, IPC_E_IO,
		                     "%s: no free workspace name", root);
	if (make_subdirs(ws, err) < 0) {
		workspace_close(ws);
		return -1;
	}
	return 0;
}

/* What to give instead of a directory that is not a workspace. */
#define WORKSPACE_HINT                                                         \
	"give the directory a job printed at its start, e.g. "                 \
	"workspaces/cohort-20260101-120000-1a2b"

int
workspace_check(const char *dir, struct ipc_error *err)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return ipc_error_set(err, IPC_E_IO, "%s: %s; " WORKSPACE_HINT,
		                     dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ipc_error_set(err, IPC_E_IO,
		                     "%s is not a directory; " WORKSPACE_HINT,
		                     dir);
	size_t len = strlen(dir);
	char *cfg = xasprintf("%s%sconfig.json", dir,
	                      len > 0 && dir[len - 1] == '/' ? "" : "/");
	int rc = 0;
	if (!files_exist(cfg))
		rc = ipc_error_set(
		    err, IPC_E_IO,
		    "%s is not a cohort workspace (no %s); " WORKSPACE_HINT,
		    dir, cfg);
	free(cfg);
	return rc;
}

int
workspace_open(struct workspace *ws, const char *dir, struct ipc_error *err)
{
	memset(ws, 0, sizeof *ws);
	ws->lock_fd = -1;
	ws->dir = absolute(dir);
	size_t len = strlen(ws->dir);
	while (len > 1 && ws->dir[len - 1] == '/')
		ws->dir[--len] = '\0';
	if (workspace_check(ws->dir, err) < 0 || make_subdirs(ws, err) < 0) {
		workspace_close(ws);
		return -1;
	}
	return 0;
}

/* The pid written in dir/run/orchestrator.pid, or 0. */
static long
pid_file_pid(const char *dir)
{
	char *pidfile = xasprintf("%s/run/orchestrator.pid", dir);
	FILE *f = fopen(pidfile, "r");
	free(pidfile);
	long pid = 0;
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid < 0)
		pid = 0;
	fclose(f);
	return pid;
}

/* Open dir/run/lock and take it (flock, exclusive, not waiting): the fd,
 * -1 with errno EWOULDBLOCK when another process holds it, or -1 with
 * another errno. */
static int
lock_take(const char *dir, int create)
{
	char *path = xasprintf("%s/run/lock", dir);
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	free(path);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

long
workspace_running_pid(const char *dir)
{
	int fd = lock_take(dir, 0);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EWOULDBLOCK)
		return 0;
	long pid = pid_file_pid(dir);
	return pid > 0 ? pid : -1;
}

/* Remove the temporary files of atomic writes ("NAME.tmp.XXXXXX") a killed
 * run left in the workspace (the lock says no one else writes them now);
 * how many. */
static unsigned
remove_stale_temps(const struct workspace *ws)
{
	static const char *const dirs[] = {".", "checkpoints", "results",
	                                   "metrics", "data"};
	unsigned removed = 0;
	for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
		char *dir = workspace_path(ws, dirs[i]);
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			if (strstr(de->d_name, ".tmp.") == NULL)
				continue;
			char *p = xasprintf("%s/%s", dir, de->d_name);
			removed += unlink(p) == 0;
			free(p);
		}
		if (d != NULL)
			closedir(d);
		free(dir);
	}
	return removed;
}

int
workspace_start_run(struct workspace *ws, struct ipc_error *err)
{
	ws->lock_fd = lock_take(ws->dir, 1);
	if (ws->lock_fd < 0) {
		if (errno != EWOULDBLOCK)
			return ipc_error_set(
			    err, IPC_E_IO,
			    "%s/run/lock: cannot open or lock: %s", ws->dir,
			    strerror(errno));
		long other = pid_file_pid(ws->dir);
		return ipc_error_set(
		    err, IPC_E_IO,
		    "%s is in use by cohort-orchestrator pid %ld, "
		    "which is still running; stop it (kill %ld) "
		    "or wait for it before resuming",
		    ws->dir, other, other);
	}
	ws->stale_temps = remove_stale_temps(ws);
	char hex[5];
	random_hex(hex, 2);
	snprintf(ws->jobkey, sizeof ws->jobkey, "%ld-%s", (long)getpid(), hex);
	random_hex(ws->token, 16);

	char *pidfile = workspace_path(ws, "run/orchestrator.pid");
	char *pid = xasprintf("%ld\n", (long)getpid());
	int rc = atomicfile_write_buffer(pidfile, pid, strlen(pid), err);
	free(pid);
	free(pidfile);
	if (rc < 0)
		return -1;

	struct sockaddr_un sun;
	char *sock = workspace_path(ws, "run/orchestrator.sock");
	if (strlen(sock) < sizeof sun.sun_path) {
		ws->socket_path = sock;
		return 0;
	}
	free(sock);
	char tmpl[] = "/tmp/cohort-sock-XXXXXX";
	if (mkdtemp(tmpl) == NULL)
		return ipc_error_set(err, IPC_E_IO,
		                     "cannot create a socket directory in "
		                     "/tmp: %s",
		                     strerror(errno));
	ws->socket_tmpdir = xstrdup(tmpl);
	ws->socket_path = xasprintf("%s/orchestrator.sock", tmpl);
	char *note = workspace_path(ws, "run/socket-path");
	char *line = xasprintf("%s\n", ws->socket_path);
	rc = atomicfile_write_buffer(note, line, strlen(line), err);
	free(line);
	free(note);
	return rc;
}

char *
workspace_path(const struct workspace *ws, const char *rel)
{
	return xasprintf("%s/%s", ws->dir, rel);
}

void
workspace_close(struct workspace *ws)
{
	if (ws->socket_path != NULL)
		unlink(ws->socket_path);
	if (ws->socket_tmpdir != NULL)
		rmdir(ws->socket_tmpdir);
	if (ws->dir != NULL && ws->jobkey[0] != '\0') {
		char *pidfile = workspace_path(ws, "run/orchestrator.pid");
		unlink(pidfile);
		free(pidfile);
	}
	/* The lock file stays: unlinking it would let a newcomer lock a new
	 * file while an old holder still has the unlinked one. */
	if (ws->dir != NULL && ws->lock_fd >= 0)
		close(ws->lock_fd);
	free(ws->dir);
	free(ws->socket_path);
	free(ws->socket_tmpdir);
	memset(ws, 0, sizeof *ws);
	ws->lock_fd = -1;
}
