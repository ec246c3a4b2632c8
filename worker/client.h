/* client.h: the worker's side of protocol v1 (cohort-worker in client mode). */
#ifndef COHORT_CLIENT_H
#define COHORT_CLIENT_H

/* Connect to the orchestrator named by the environment (COHORT_SOCKET,
 * COHORT_TOKEN, COHORT_CLIENT_ID, COHORT_JOB, COHORT_TASKS), say hello, serve
 * tasks until told to shut down or COHORT_TASKS are done. Returns the process
 * exit status. */
int client_main(void);

#endif
