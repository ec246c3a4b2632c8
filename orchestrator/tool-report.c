/* tool-report.c: cohort-report WORKSPACE: (re)generate results/report.html
 * from the workspace's metrics. */
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "util.h"

int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-report"))
		return 0;
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: cohort-report WORKSPACE\n"
		                "  writes WORKSPACE/results/report.html from "
		                "WORKSPACE/metrics/metrics.jsonl\n");
		return 2;
	}
	log_init("cohort-report", LOG_INFO);
	struct ipc_error err;
	if (report_write(argv[1], NULL, &err) < 0) {
		fprintf(stderr, "cohort-report: %s\n", err.message);
		return 1;
	}
	printf("%s/results/report.html\n", argv[1]);
	return 0;
}
