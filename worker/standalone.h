/* standalone.h: `cohort-worker --standalone`: train a built-in model on a
 * whole dataset without an orchestrator, printing one line per epoch. */
#ifndef COHORT_STANDALONE_H
#define COHORT_STANDALONE_H

/* argv[0] is "--standalone"; returns the process exit status (0 ok,
 * 1 runtime failure, 2 bad options). */
int standalone_main(int argc, char **argv);

#endif
