/* main.c: cohort-orchestrator's command line: positional federation sizes,
 * --config, --set, --resume, --workspace-root, --workspace, -v; then the
 * job. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "job.h"
#include "requeue.h"
#include "util.h"
#include "workspace.h"

/* Print the usage text. */
static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: cohort-orchestrator [NBCLIENTS NBMINCLIENTS NBFITCLIENTS "
	    "NBROUNDS]\n"
	    "           [--config FILE] [--set key.path=value ...] "
	    "[--workspace-root DIR | --workspace DIR]\n"
	    "       cohort-orchestrator --resume WORKSPACE [--set "
	    "key.path=value ...]\n"
	    "       cohort-orchestrator --help\n"
	    "  -v, --verbose  debug lines (workers' too; also COHORT_LOG=debug)"
	    "\n");
}

/* Print the usage and every configuration key. */
static void
help(void)
{
	usage(stdout);
	printf("\nRuns a federated job: NBROUNDS rounds, each training "
	       "NBFITCLIENTS of NBCLIENTS\nclients (a round needs NBMINCLIENTS "
	       "available) in worker processes.\nExit status: 0 done, 1 job "
	       "failed, 2 usage or configuration error,\n75 pre-empted "
	       "(preempt.signal), 130/143 interrupted (resume with --resume "
	       "WORKSPACE).\n--workspace DIR creates the job in DIR, or "
	       "continues the same job already there.\n\nConfiguration keys "
	       "(--config FILE as {\"section\": {\"key\": value}}, or --set "
	       "section.key=value):\n");
	config_print_keys(stdout);
}

/* One-line error plus usage; returns the usage exit status. */
static int
usage_error(const char *msg)
{
	fprintf(stderr, "cohort-orchestrator: %s\n", msg);
	usage(stderr);
	return JOB_EXIT_USAGE;
}

/* Parse a positional count: a positive integer. */
static int
parse_count(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v <= 0 || v > 1000000)
		return -1;
	*out = v;
	return 0;
}

/* --resume dir must name a workspace: say so before its config is read. */
static int
check_resume(const char *dir, struct ipc_error *err)
{
	if (workspace_check(dir, err) == 0)
		return 0;
	ipc_error_prefix(err, "--resume ");
	return -1;
}

/* job.name with the word was replaced by now, or "-now" added when was is
 * not one of its dash-separated words and now is not either. */
static char *
renamed(const char *name, const char *was, const char *now)
{
	size_t lw = strlen(was);
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "-");
		if (n == strlen(now) && strncmp(p, now, n) == 0)
			return xstrdup(name);
		if (n == lw && strncmp(p, was, n) == 0)
			return xasprintf("%.*s%s%s", (int)(p - name), name, now,
			                 p + n);
		p += n;
		if (*p == '-')
			p++;
	}
	return xasprintf("%s-%s", name, now);
}

/* What tells runs of one config file apart, for the workspace name. */
struct job_identity {
	char *strategy, *model, *partition;
};

/* Snapshot the identity of c. */
static void
identity_take(struct job_identity *id, const struct config *c)
{
	id->strategy = xstrdup(c->strategy.name);
	id->model = xstrdup(c->model.name);
	id->partition = xstrdup(c->data.partition);
}

/* Workspaces are named after job.name: when --set changed the strategy,
 * the model or the partition but not job.name, the name says so (the old
 * value's word replaced: fedavg-mlp with strategy.name=fedprox is
 * fedprox-mlp; else the new value added), so that runs of one config file
 * with other settings are told apart. */
static void
identity_rename(struct config *c, const struct job_identity *was,
                const char *const *sets, int nsets)
{
	for (int i = 0; i < nsets; i++)
		if (strncmp(sets[i], "job.name=", 9) == 0)
			return;
	const char *pairs[][2] = {{was->strategy, c->strategy.name},
	                          {was->model, c->model.name},
	                          {was->partition, c->data.partition}};
	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		if (strcmp(pairs[i][0], pairs[i][1]) == 0)
			continue;
		char *name = renamed(c->job.name, pairs[i][0], pairs[i][1]);
		free(c->job.name);
		c->job.name = name;
	}
}

/* Free a snapshot. */
static void
identity_free(struct job_identity *id)
{
	free(id->strategy);
	free(id->model);
	free(id->partition);
}

int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-orchestrator"))
		return 0;
	log_init("cohort-orchestrator", LOG_INFO);
	keep_private();
	const char *config_file = NULL, *resume = NULL, *root = NULL;
	const char *fixed = NULL;
	const char **sets = xcalloc((size_t)argc, sizeof *sets);
	const char *positional[4];
	int nsets = 0, npos = 0;
	char msg[600];
	int code = JOB_EXIT_USAGE;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has_value = i + 1 < argc;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			help();
			free(sets);
			return 0;
		} else if (strcmp(a, "-v") == 0 ||
		           strcmp(a, "--verbose") == 0) {
			/* Debug lines here and in every worker. */
			log_set_level(LOG_DEBUG);
			setenv("COHORT_LOG", "debug", 1);
		} else if (strcmp(a, "--config") == 0 && has_value) {
			config_file = argv[++i];
		} else if (strcmp(a, "--set") == 0 && has_value) {
			sets[nsets++] = argv[++i];
		} else if (strcmp(a, "--resume") == 0 && has_value) {
			resume = argv[++i];
		} else if (strcmp(a, "--workspace-root") == 0 && has_value) {
			root = argv[++i];
		} else if (strcmp(a, "--workspace") == 0 && has_value) {
			fixed = argv[++i];
		} else if (a[0] == '-' && a[1] == '-') {
			snprintf(msg, sizeof msg,
			         "%s: unknown option or missing value", a);
			code = usage_error(msg);
			goto out;
		} else if (npos < 4) {
			positional[npos++] = a;
		} else {
			code = usage_error("expected at most 4 numbers "
			                   "(NBCLIENTS NBMINCLIENTS "
			                   "NBFITCLIENTS NBROUNDS)");
			goto out;
		}
	}
	if (npos != 0 && npos != 4) {
		code = usage_error("expected 4 numbers (NBCLIENTS NBMINCLIENTS "
		                   "NBFITCLIENTS NBROUNDS) or none");
		goto out;
	}
	if (resume != NULL && (npos != 0 || config_file != NULL)) {
		code = usage_error("--resume takes the configuration saved in "
		                   "the workspace; drop the numbers and "
		                   "--config");
		goto out;
	}
	if (fixed != NULL && (resume != NULL || root != NULL)) {
		code =
		    usage_error("--workspace names the job's directory; drop "
		                "--resume and --workspace-root");
		goto out;
	}
	static const char *const names[4] = {"NBCLIENTS", "NBMINCLIENTS",
	                                     "NBFITCLIENTS", "NBROUNDS"};
	long long n[4];
	for (int i = 0; i < npos; i++) {
		if (parse_count(positional[i], &n[i]) < 0) {
			snprintf(msg, sizeof msg,
			         "%s: expected a positive integer, got \"%s\"",
			         names[i], positional[i]);
			code = usage_error(msg);
			goto out;
		}
	}
	if (npos == 4 && (n[2] > n[0] || n[1] > n[0])) {
		snprintf(msg, sizeof msg,
		         "%s (%lld) is larger than NBCLIENTS (%lld)",
		         n[2] > n[0] ? "NBFITCLIENTS" : "NBMINCLIENTS",
		         n[2] > n[0] ? n[2] : n[1], n[0]);
		code = usage_error(msg);
		goto out;
	}

	struct config cfg;
	struct ipc_error err;
	config_defaults(&cfg);
	int rc = resume ? check_resume(resume, &err) : 0;
	char *saved = resume ? xasprintf("%s/config.json", resume) : NULL;
	const char *file = resume ? saved : config_file;
	if (rc == 0 && file != NULL)
		rc = resume ? config_load_saved(&cfg, file, &err)
		            : config_load_file(&cfg, file, &err);
	free(saved);
	if (rc == 0 && npos == 4) {
		cfg.federation.clients = n[0];
		cfg.federation.min_clients = n[1];
		cfg.federation.fit_clients = n[2];
		cfg.federation.rounds = n[3];
	}
	struct job_identity was;
	identity_take(&was, &cfg);
	for (int i = 0; rc == 0 && i < nsets; i++)
		rc = config_set(&cfg, sets[i], &err);
	if (rc == 0 && resume == NULL && fixed == NULL)
		identity_rename(&cfg, &was, sets, nsets);
	identity_free(&was);
	if (rc == 0 && root != NULL) {
		free(cfg.job.workspace_root);
		cfg.job.workspace_root = xstrdup(root);
	}
	if (rc == 0)
		rc = config_check(&cfg, &err);
	if (rc < 0) {
		fprintf(stderr, "cohort-orchestrator: %s\n", err.message);
		config_free(&cfg);
		code = JOB_EXIT_USAGE;
		goto out;
	}
	/* Everything the job creates, workers' files included (the mask is
	 * inherited), is its owner's alone unless shared. */
	umask(cfg.job.shared_workspace ? 022 : 077);
	int resuming = 0;
	if (fixed != NULL &&
	    requeue_workspace(&cfg, fixed, &resuming, &err) < 0) {
		fprintf(stderr, "cohort-orchestrator: %s\n", err.message);
		config_free(&cfg);
		code = JOB_EXIT_USAGE;
		goto out;
	}
	json_t *command = json_array();
	for (int i = 0; i < argc; i++)
		json_array_append_new(command, json_string(argv[i]));
	/* --workspace DIR may be a new job's empty directory (not resumed) */
	code = job_run(&cfg, fixed != NULL ? fixed : resume,
	               resume != NULL || resuming, command);
	json_decref(command);
	config_free(&cfg);
out:
	free(sets);
	return code;
}
