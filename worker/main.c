/* main.c: cohort-worker. Started by the orchestrator it serves tasks; with
 * --prepare it readies a job's workspace; with --standalone it trains
 * centrally, the baseline every federated result is compared with. */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "prepare.h"
#include "standalone.h"
#include "util.h"

static void
usage(FILE *out)
{
	fprintf(out, "usage: cohort-worker                      serve tasks "
	             "(started by cohort-orchestrator)\n"
	             "       cohort-worker --prepare WORKSPACE  decode data, "
	             "partition, write the initial model\n"
	             "       cohort-worker --standalone [--model mlp|cnn] "
	             "[--epochs E] ...  train centrally\n"
	             "       cohort-worker --help | --version\n");
}

int
main(int argc, char **argv)
{
	log_init("cohort-worker", LOG_INFO);
	if (version_requested(argc, argv, "cohort-worker"))
		return 0;
	if (argc == 1)
		return client_main();
	if (strcmp(argv[1], "--standalone") == 0)
		return standalone_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "--prepare") == 0) {
		if (argc != 3) {
			fprintf(stderr, "cohort-worker: --prepare takes one "
			                "argument, the workspace directory\n");
			usage(stderr);
			return 2;
		}
		struct ipc_error err;
		if (prepare_workspace(argv[2], &err) != 0) {
			fprintf(stderr, "cohort-worker: prepare: %s\n",
			        err.message);
			return 1;
		}
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cohort-worker: unknown option %s\n", argv[1]);
	usage(stderr);
	return 2;
}
