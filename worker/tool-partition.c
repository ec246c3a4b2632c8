/* tool-partition.c: cohort-partition, which builds a partition the way a job
 * would (or reads an existing one) and prints each client's label histogram. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "partition.h"
#include "prepare.h"
#include "util.h"

#define EXIT_USAGE 2

struct options {
	uint32_t clients;
	struct partition_spec spec;
	const char *dataset;
	const char *data_dir;
	const char *cache_dir;
	const char *csv;
	const char *out;
	const char *show;
	const char *data;
	int build_only; /* a build option was given (invalid with --show) */
};

/* Print the usage text to f. */
static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cohort-partition --clients N [--scheme "
	    "iid|dirichlet|shards]\n"
	    "                        [--alpha A] [--shards K] [--holdout F] "
	    "[--seed S]\n"
	    "                        [--dataset fashion-mnist|mnist|cifar10] "
	    "[--data-dir DIR]\n"
	    "                        [--cache-dir DIR] [--csv FILE] [--out "
	    "FILE]\n"
	    "       cohort-partition --show PARTITION_FILE --data "
	    "CACHE_FILE [--csv FILE]\n"
	    "Prints each client's label histogram (total, train, holdout, "
	    "one column per class).\n");
}

/* Report a bad command line and exit 2. */
static void COHORT_PRINTF(1, 2) COHORT_NORETURN
    usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cohort-partition: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	exit(EXIT_USAGE);
}

/* Parse an unsigned integer option no larger than max. */
static uint64_t
parse_uint(const char *opt, const char *s, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (s[0] == '-' || s[0] == '\0' || *end != '\0' || errno != 0 ||
	    v > max)
		usage_error("%s: \"%s\" is not an integer in 0..%llu", opt, s,
		            (unsigned long long)max);
	return v;
}

/* Parse a finite number option. */
static double
parse_number(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v))
		usage_error("%s: \"%s\" is not a number", opt, s);
	return v;
}

/* Parse argv into o, exiting 2 on a bad command line. */
static void
parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_CLIENTS = 256,
		O_SCHEME,
		O_ALPHA,
		O_SHARDS,
		O_HOLDOUT,
		O_SEED,
		O_DATASET,
		O_DATA_DIR,
		O_CACHE_DIR,
		O_CSV,
		O_OUT,
		O_SHOW,
		O_DATA,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"clients", required_argument, NULL, O_CLIENTS},
	    {"scheme", required_argument, NULL, O_SCHEME},
	    {"alpha", required_argument, NULL, O_ALPHA},
	    {"shards", required_argument, NULL, O_SHARDS},
	    {"holdout", required_argument, NULL, O_HOLDOUT},
	    {"seed", required_argument, NULL, O_SEED},
	    {"dataset", required_argument, NULL, O_DATASET},
	    {"data-dir", required_argument, NULL, O_DATA_DIR},
	    {"cache-dir", required_argument, NULL, O_CACHE_DIR},
	    {"csv", required_argument, NULL, O_CSV},
	    {"out", required_argument, NULL, O_OUT},
	    {"show", required_argument, NULL, O_SHOW},
	    {"data", required_argument, NULL, O_DATA},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof *o);
	o->spec.scheme = PARTITION_IID;
	o->spec.alpha = 0.5;
	o->spec.shards_per_client = 2;
	o->spec.seed = 1;
	o->dataset = "fashion-mnist";
	int have_dir = 0;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		struct ipc_error err;
		o->build_only |= ch >= O_CLIENTS && ch <= O_CACHE_DIR;
		o->build_only |= ch == O_OUT;
		switch (ch) {
		case O_CLIENTS:
			o->clients = (uint32_t)parse_uint("--clients", optarg,
			                                  UINT32_MAX);
			break;
		case O_SCHEME:
			if (partition_scheme_parse(optarg, &o->spec.scheme,
			                           &err) != 0)
				usage_error("--scheme: \"%s\" is not iid, "
				            "dirichlet or shards",
				            optarg);
			break;
		case O_ALPHA:
			o->spec.alpha = parse_number("--alpha", optarg);
			break;
		case O_SHARDS:
			o->spec.shards_per_client = (uint32_t)parse_uint(
			    "--shards", optarg, UINT32_MAX);
			break;
		case O_HOLDOUT:
			o->spec.holdout_fraction =
			    parse_number("--holdout", optarg);
			break;
		case O_SEED:
			o->spec.seed = parse_uint("--seed", optarg, UINT64_MAX);
			break;
		case O_DATASET:
			if (strcmp(optarg, "fashion-mnist") != 0 &&
			    strcmp(optarg, "mnist") != 0 &&
			    strcmp(optarg, "cifar10") != 0)
				usage_error("--dataset: \"%s\" is not "
				            "fashion-mnist, mnist or cifar10",
				            optarg);
			o->dataset = optarg;
			break;
		case O_DATA_DIR:
			o->data_dir = optarg;
			have_dir = 1;
			break;
		case O_CACHE_DIR:
			o->cache_dir = optarg;
			break;
		case O_CSV:
			o->csv = optarg;
			break;
		case O_OUT:
			o->out = optarg;
			break;
		case O_SHOW:
			o->show = optarg;
			break;
		case O_DATA:
			o->data = optarg;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage_error("unknown or incomplete option \"%s\"",
			            argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if (o->show != NULL || o->data != NULL) {
		if (o->show == NULL || o->data == NULL)
			usage_error("--show and --data go together");
		if (o->build_only)
			usage_error("--show reads an existing partition: drop "
			            "the build options");
		return;
	}
	if (o->clients == 0)
		usage_error("--clients: give the number of clients (>= 1)");
	if (!have_dir)
		o->data_dir = strcmp(o->dataset, "fashion-mnist") == 0
		                  ? "/usr/share/datasets/fashion-mnist"
		                  : ".";
	if (o->cache_dir == NULL)
		o->cache_dir = prepare_default_cache_dir();
}

/* Label counts of every client: counts[c * classes + k]. */
static uint64_t *
histogram(const struct partition *p, const struct dataset *ds)
{
	uint64_t *counts =
	    xcalloc((size_t)p->clients * ds->classes, sizeof *counts);
	for (uint32_t c = 0; c < p->clients; c++)
		for (uint64_t i = p->offsets[c]; i < p->offsets[c + 1]; i++)
			counts[(size_t)c * ds->classes +
			       ds->labels[p->indices[i]]]++;
	return counts;
}

/* Decimal width of v. */
static int
digits(uint64_t v)
{
	int n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Print the aligned table (one row per client, then the sum). */
static void
print_table(const struct partition *p, const struct dataset *ds,
            const uint64_t *counts)
{
	uint64_t total = p->offsets[p->clients];
	int w = digits(total) > 7 ? digits(total) : 7;
	int cw = digits(total) > 5 ? digits(total) : 5;
	printf("%6s %*s %*s %*s", "client", w, "total", w, "train", w,
	       "holdout");
	for (uint32_t k = 0; k < ds->classes; k++)
		printf(" %*u", cw, k);
	putchar('\n');
	uint64_t *sum = xcalloc(ds->classes, sizeof *sum);
	uint64_t train_sum = 0;
	for (uint32_t c = 0; c < p->clients; c++) {
		uint64_t lo = p->offsets[c], mid = p->train_end[c],
		         hi = p->offsets[c + 1];
		printf("%6u %*llu %*llu %*llu", c, w,
		       (unsigned long long)(hi - lo), w,
		       (unsigned long long)(mid - lo), w,
		       (unsigned long long)(hi - mid));
		for (uint32_t k = 0; k < ds->classes; k++) {
			uint64_t v = counts[(size_t)c * ds->classes + k];
			printf(" %*llu", cw, (unsigned long long)v);
			sum[k] += v;
		}
		putchar('\n');
		train_sum += mid - lo;
	}
	printf("%6s %*llu %*llu %*llu", "all", w, (unsigned long long)total, w,
	       (unsigned long long)train_sum, w,
	       (unsigned long long)(total - train_sum));
	for (uint32_t k = 0; k < ds->classes; k++)
		printf(" %*llu", cw, (unsigned long long)sum[k]);
	putchar('\n');
	free(sum);
}

/* Write the histogram as CSV to path. */
static int
write_csv(const char *path, const struct partition *p, const struct dataset *ds,
          const uint64_t *counts)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "client,total,train,holdout");
	for (uint32_t k = 0; k < ds->classes; k++)
		fprintf(f, ",class_%u", k);
	fputc('\n', f);
	for (uint32_t c = 0; c < p->clients; c++) {
		uint64_t lo = p->offsets[c], mid = p->train_end[c],
		         hi = p->offsets[c + 1];
		fprintf(f, "%u,%llu,%llu,%llu", c,
		        (unsigned long long)(hi - lo),
		        (unsigned long long)(mid - lo),
		        (unsigned long long)(hi - mid));
		for (uint32_t k = 0; k < ds->classes; k++)
			fprintf(f, ",%llu",
			        (unsigned long long)
			            counts[(size_t)c * ds->classes + k]);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Open both files, check they belong together, print (and save) the
 * histogram. */
static int
show(const char *part_path, const char *cache_path, const char *csv)
{
	struct ipc_error err;
	struct dataset ds;
	struct partition p;
	if (dataset_open(cache_path, &ds, &err) != 0) {
		log_error("%s", err.message);
		return -1;
	}
	if (partition_open(part_path, &p, &err) != 0) {
		log_error("%s", err.message);
		dataset_close(&ds);
		return -1;
	}
	int rc = 0;
	if (p.offsets == NULL) {
		/* nothing stored per client to tabulate */
		printf("%s: sampled partition: %u clients, each its own seeded "
		       "draw of %u of the %u training samples (%u held out)\n",
		       part_path, p.clients, p.per_client, p.dataset_count,
		       p.holdout);
	} else if (p.dataset_count != ds.count) {
		log_error("%s was built for %u samples but %s holds %u: pass "
		          "the cache of the training split it was built from",
		          part_path, p.dataset_count, cache_path, ds.count);
		rc = -1;
	} else {
		uint64_t *counts = histogram(&p, &ds);
		print_table(&p, &ds, counts);
		if (csv != NULL)
			rc = write_csv(csv, &p, &ds, counts);
		free(counts);
	}
	partition_close(&p);
	dataset_close(&ds);
	return rc;
}

/* Prepare the training set, build the partition, and show it. */
static int
build(const struct options *o)
{
	struct ipc_error err;
	char cache_path[4096];
	if (dataset_prepare(o->dataset, o->data_dir, "train", o->cache_dir,
	                    cache_path, sizeof cache_path, &err) != 0) {
		log_error("%s", err.message);
		return -1;
	}
	struct dataset ds;
	if (dataset_open(cache_path, &ds, &err) != 0) {
		log_error("%s", err.message);
		return -1;
	}
	char *tmp = NULL;
	const char *out = o->out;
	if (out == NULL) {
		const char *dir = getenv("TMPDIR");
		tmp = xasprintf("%s/cohort-partition-%ld.bin",
		                dir != NULL && dir[0] != '\0' ? dir : "/tmp",
		                (long)getpid());
		out = tmp;
	}
	int rc = partition_build(ds.labels, ds.count, ds.classes, o->clients,
	                         &o->spec, out, &err);
	dataset_close(&ds);
	if (rc != 0)
		log_error("%s", err.message);
	else
		rc = show(out, cache_path, o->csv);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	if (version_requested(argc, argv, "cohort-partition"))
		return 0;
	struct options o;
	log_init("cohort-partition", LOG_INFO);
	parse_options(argc, argv, &o);
	int rc = o.show != NULL ? show(o.show, o.data, o.csv) : build(&o);
	return rc == 0 ? 0 : 1;
}
