/* forkserver.h: a worker program as a fork server (cohort_open in launch
 * mode fork-server). */
#ifndef COHORT_FORKSERVER_H
#define COHORT_FORKSERVER_H

/* Connect to socket_path, say hello as the fork server and fork a child
 * per fork frame. Returns 0 in each child (its environment, output and
 * process group set as the frame says: it goes on as an ordinary
 * worker); the server itself never returns but with -1 (it could not
 * start: the reason is logged) and exits when its socket ends. */
int forkserver_run(const char *socket_path, const char *token);

#endif
