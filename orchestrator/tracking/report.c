/* report.c: the job report. One HTML page with inline SVG charts (no scripts,
 * no external resources) so that it opens anywhere, including as an MLflow
 * artifact: the job's settings (config.json), test accuracy, federated
 * evaluation, losses, round time, clients ok/failed per round and
 * per-client participation. A metric without points gets no chart. */
#include "report.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "atomicfile.h"
#include "config.h"
#include "files.h"
#include "metricslog.h"
#include "models.h"

/* Chart geometry (SVG user units). */
enum {
	CHART_W = 560,
	CHART_H = 300,
	MARGIN_L = 64,
	MARGIN_R = 24,
	MARGIN_T = 40,
	MARGIN_B = 46,
	PLOT_W = CHART_W - MARGIN_L - MARGIN_R,
	PLOT_H = CHART_H - MARGIN_T - MARGIN_B,
	MAX_CLIENT_BARS = 100,    /* more clients: a heat strip */
	MAX_STRIP_CLIENTS = 5000, /* more: a histogram of rounds trained */
	STRIP_COLUMNS = 50,
};

/* The round-level metrics the charts show. */
static const char *const series_keys[] = {
    "test_accuracy", "test_loss",  "train_loss",        "round_seconds",
    "fit_ok",        "fit_failed", "fed_eval_accuracy", "fed_eval_loss",
};
/* Per round: the metrics of series_keys, then the lowest and highest
 * accuracy of a client's federated evaluation. */
enum {
	S_ACC,
	S_TEST_LOSS,
	S_TRAIN_LOSS,
	S_SECONDS,
	S_OK,
	S_FAILED,
	S_FED_ACC,
	S_FED_LOSS,
	S_KEYS,
	S_FED_MIN = S_KEYS,
	S_FED_MAX,
	S_COUNT
};

/* A (client, round) in which the client trained. */
struct participation {
	int64_t client;
	unsigned round;
};

/* Everything the report shows, gathered from metrics.jsonl. */
struct report_data {
	unsigned max_round;
	double *v[S_COUNT]; /* per round 0..max_round, NaN where absent */
	struct participation *part;
	size_t npart, part_cap;
	double first_time, last_time;
};

/* Grow the per-round arrays to hold round r. */
static void
grow_rounds(struct report_data *d, unsigned r)
{
	if (d->v[0] != NULL && r <= d->max_round)
		return;
	unsigned old = d->v[0] ? d->max_round + 1 : 0;
	for (size_t i = 0; i < S_COUNT; i++) {
		d->v[i] = xreallocarray(d->v[i], (size_t)r + 1, sizeof(double));
		for (unsigned k = old; k <= r; k++)
			d->v[i][k] = NAN;
	}
	d->max_round = r;
}

/* Widen round r's range of clients' federated accuracies to take v. */
static void
fold_fed_range(struct report_data *d, unsigned r, double v)
{
	if (!isfinite(v))
		return;
	double *lo = &d->v[S_FED_MIN][r], *hi = &d->v[S_FED_MAX][r];
	*lo = isfinite(*lo) ? fmin(*lo, v) : v;
	*hi = isfinite(*hi) ? fmax(*hi, v) : v;
}

/* metricslog callback: file the line under its chart. A client's
 * federated evaluation widens the round's range of accuracies (in a
 * summary-only job the round's client_fed_eval_accuracy_min and _max do);
 * it is not training. */
static void
gather(void *arg, const struct metricslog_line *l)
{
	struct report_data *d = arg;
	if (d->first_time == 0 || l->time < d->first_time)
		d->first_time = l->time;
	if (l->time > d->last_time)
		d->last_time = l->time;
	grow_rounds(d, l->round);
	if (l->client < 0) {
		for (size_t i = 0; i < S_KEYS; i++)
			if (strcmp(l->key, series_keys[i]) == 0)
				d->v[i][l->round] = l->value;
		if (strcmp(l->key, "client_fed_eval_accuracy_min") == 0 ||
		    strcmp(l->key, "client_fed_eval_accuracy_max") == 0)
			fold_fed_range(d, l->round, l->value);
		return;
	}
	if (strcmp(l->key, "fed_eval_accuracy") == 0)
		fold_fed_range(d, l->round, l->value);
	if (strncmp(l->key, "fed_eval_", strlen("fed_eval_")) == 0 ||
	    strcmp(l->key, "failed") == 0)
		return;
	if (d->npart == d->part_cap) {
		d->part_cap = d->part_cap ? d->part_cap * 2 : 256;
		d->part = xreallocarray(d->part, d->part_cap, sizeof *d->part);
	}
	d->part[d->npart++] = (struct participation){l->client, l->round};
}

/* qsort order of participations: by client, then round. */
static int
cmp_part(const void *a, const void *b)
{
	const struct participation *x = a, *y = b;
	if (x->client != y->client)
		return x->client < y->client ? -1 : 1;
	return (x->round > y->round) - (x->round < y->round);
}

/* Write s with HTML special characters escaped. */
static void
put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* A round tick step: 1, 2 or 5 times a power of ten, for about 6 ticks. */
static double
nice_step(double span)
{
	if (!(span > 0))
		return 1;
	double raw = span / 6;
	double p = pow(10, floor(log10(raw)));
	double m = raw / p;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* The axes of one chart: data ranges and the pixel mapping. */
struct axes {
	double x0, x1, y0, y1, ystep, xstep;
};

/* Pixel x of a round. */
static double
px(const struct axes *a, double x)
{
	return MARGIN_L + (x - a->x0) / (a->x1 - a->x0) * PLOT_W;
}

/* Pixel y of a value. */
static double
py(const struct axes *a, double y)
{
	return MARGIN_T + PLOT_H - (y - a->y0) / (a->y1 - a->y0) * PLOT_H;
}

/* Axes for rounds 1..max_round and values in [lo, hi] (snapped to ticks;
 * zero_based charts start at 0). */
static struct axes
make_axes(unsigned max_round, double lo, double hi, int zero_based, int bars)
{
	struct axes a;
	a.x0 = bars ? 0.5 : 1;
	a.x1 = bars ? max_round + 0.5 : (max_round > 1 ? max_round : 2);
	a.xstep = nice_step((double)max_round);
	if (a.xstep < 1)
		a.xstep = 1;
	if (!isfinite(lo) || !isfinite(hi)) {
		lo = 0;
		hi = 1;
	}
	if (zero_based && lo > 0)
		lo = 0;
	if (hi - lo < 1e-12) {
		hi = lo + (fabs(lo) > 0 ? fabs(lo) * 0.1 : 1);
	}
	a.ystep = nice_step(hi - lo);
	a.y0 = floor(lo / a.ystep) * a.ystep;
	a.y1 = ceil(hi / a.ystep) * a.ystep;
	if (a.y1 <= a.y0)
		a.y1 = a.y0 + a.ystep;
	return a;
}

/* Open an <svg> chart with its title, axes, ticks, grid and axis labels. */
static void
chart_begin(FILE *f, const char *id, const char *title, const char *xlabel,
            const char *ylabel, const struct axes *a, int x_ticks)
{
	fprintf(f,
	        "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/"
	        "2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	        "role=\"img\">\n<title>",
	        id, CHART_W, CHART_H, CHART_W, CHART_H);
	put_escaped(f, title);
	fprintf(f, "</title>\n<text class=\"title\" x=\"%d\" y=\"22\">",
	        CHART_W / 2);
	put_escaped(f, title);
	fputs("</text>\n", f);
	for (double y = a->y0; y <= a->y1 + a->ystep * 1e-6; y += a->ystep) {
		double yy = py(a, y);
		fprintf(f,
		        "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
		        "y2=\"%.1f\"/><text class=\"tick\" x=\"%d\" "
		        "y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
		        MARGIN_L, yy, MARGIN_L + PLOT_W, yy, MARGIN_L - 6,
		        yy + 4, a->ystep >= 1 ? 0 : (int)ceil(-log10(a->ystep)),
		        fabs(y) < a->ystep * 1e-9 ? 0.0 : y);
	}
	if (x_ticks) {
		double first = ceil(a->x0 / a->xstep) * a->xstep;
		if (first < 1)
			first = 1;
		for (double x = first; x <= a->x1 + 1e-9; x += a->xstep)
			fprintf(f,
			        "<line class=\"axis\" x1=\"%.1f\" y1=\"%d\" "
			        "x2=\"%.1f\" y2=\"%d\"/><text class=\"tick\" "
			        "x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
			        "%.0f</text>\n",
			        px(a, x), MARGIN_T + PLOT_H, px(a, x),
			        MARGIN_T + PLOT_H + 5, px(a, x),
			        MARGIN_T + PLOT_H + 18, x);
	}
	fprintf(f,
	        "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
	        "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
	        "y2=\"%d\"/>\n",
	        MARGIN_L, MARGIN_T, MARGIN_L, MARGIN_T + PLOT_H, MARGIN_L,
	        MARGIN_T + PLOT_H, MARGIN_L + PLOT_W, MARGIN_T + PLOT_H);
	fprintf(f,
	        "<text class=\"label\" x=\"%d\" y=\"%d\" "
	        "text-anchor=\"middle\">",
	        MARGIN_L + PLOT_W / 2, CHART_H - 8);
	put_escaped(f, xlabel);
	fprintf(f,
	        "</text>\n<text class=\"label\" transform=\"translate(16 %d) "
	        "rotate(-90)\" text-anchor=\"middle\">",
	        MARGIN_T + PLOT_H / 2);
	put_escaped(f, ylabel);
	fputs("</text>\n", f);
}

/* A line series of a line chart. */
struct line {
	const char *name;
	const char *color;
	const double *v; /* per round */
};

/* True when v has a finite value in rounds 1..max_round. */
static int
has_points(const double *v, unsigned max_round)
{
	for (unsigned r = 1; r <= max_round; r++)
		if (isfinite(v[r]))
			return 1;
	return 0;
}

/* Range of the finite values of the lines. */
static void
lines_range(const struct line *lines, size_t n, unsigned max_round, double *lo,
            double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (size_t i = 0; i < n; i++)
		for (unsigned r = 1; r <= max_round; r++)
			if (isfinite(lines[i].v[r])) {
				*lo = fmin(*lo, lines[i].v[r]);
				*hi = fmax(*hi, lines[i].v[r]);
			}
}

/* Entry i of a chart's legend: a swatch of color and the name. */
static void
legend_entry(FILE *f, int i, const char *color, const char *name)
{
	int lx = MARGIN_L + PLOT_W - 150, ly = MARGIN_T + 8 + i * 16;
	fprintf(f,
	        "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"4\" "
	        "fill=\"%s\"/><text class=\"legend\" x=\"%d\" y=\"%d\">",
	        lx, ly, color, lx + 16, ly + 5);
	put_escaped(f, name);
	fputs("</text>\n", f);
}

/* The lines that have points, as paths with a dot per value (gaps where a
 * round has none), named in a legend when there are several. */
static void
draw_lines(FILE *f, const struct axes *a, const struct line *lines, size_t n,
           unsigned max_round)
{
	size_t drawn = 0;
	for (size_t i = 0; i < n; i++)
		drawn += has_points(lines[i].v, max_round);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!has_points(lines[i].v, max_round))
			continue;
		fprintf(f, "<path class=\"line\" stroke=\"%s\" d=\"",
		        lines[i].color);
		int pen = 0;
		for (unsigned r = 1; r <= max_round; r++) {
			if (!isfinite(lines[i].v[r])) {
				pen = 0;
				continue;
			}
			fprintf(f, "%c%.1f %.1f ", pen ? 'L' : 'M', px(a, r),
			        py(a, lines[i].v[r]));
			pen = 1;
		}
		fputs("\"/>\n", f);
		for (unsigned r = 1; r <= max_round; r++)
			if (isfinite(lines[i].v[r]))
				fprintf(
				    f,
				    "<circle class=\"pt\" cx=\"%.1f\" "
				    "cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>"
				    "round %u: %.6g</title></circle>\n",
				    px(a, r), py(a, lines[i].v[r]),
				    lines[i].color, r, lines[i].v[r]);
		if (drawn > 1)
			legend_entry(f, (int)k, lines[i].color, lines[i].name);
		k++;
	}
}

/* A line chart over rounds of the lines that have points; nothing when
 * none has. */
static void
line_chart(FILE *f, const char *id, const char *title, const char *ylabel,
           const struct line *lines, size_t n, unsigned max_round,
           int zero_based)
{
	double lo, hi;
	lines_range(lines, n, max_round, &lo, &hi);
	if (!isfinite(lo))
		return;
	struct axes a = make_axes(max_round, lo, hi, zero_based, 0);
	chart_begin(f, id, title, "round", ylabel, &a, 1);
	draw_lines(f, &a, lines, n, max_round);
	fputs("</svg>\n", f);
}

/* Test accuracy per round, or a line saying why there is none. */
static void
accuracy_chart(FILE *f, const struct report_data *d, const json_t *cfg)
{
	if (!has_points(d->v[S_ACC], d->max_round)) {
		json_t *central = json_object_get(
		    json_object_get(cfg, "evaluate"), "central");
		fputs(json_is_false(central)
		          ? "<p class=\"note\">Central evaluation was off "
		            "(evaluate.central false): no test accuracy or "
		            "test loss to chart.</p>\n"
		          : "<p class=\"note\">No round recorded a test "
		            "accuracy.</p>\n",
		      f);
		return;
	}
	struct line acc[] = {{"test accuracy", "#2a6fb0", d->v[S_ACC]}};
	line_chart(f, "chart-accuracy", "Test accuracy", "accuracy", acc, 1,
	           d->max_round, 1);
}

/* Federated evaluation: the round's accuracy (the evaluating clients'
 * example-weighted mean) as a line, the lowest to the highest client's as
 * a bar; nothing when no client evaluated. */
static void
fed_eval_chart(FILE *f, const struct report_data *d)
{
	if (!has_points(d->v[S_FED_ACC], d->max_round) &&
	    !has_points(d->v[S_FED_MIN], d->max_round))
		return;
	/* the mean is drawn as a line, the others span the axes only */
	struct line all[] = {
	    {"mean", "#2a6fb0", d->v[S_FED_ACC]},
	    {"lowest", NULL, d->v[S_FED_MIN]},
	    {"highest", NULL, d->v[S_FED_MAX]},
	};
	double lo, hi;
	lines_range(all, ARRAY_LEN(all), d->max_round, &lo, &hi);
	struct axes a = make_axes(d->max_round, lo, hi, 1, 0);
	chart_begin(f, "chart-fed-eval", "Federated evaluation accuracy",
	            "round", "accuracy", &a, 1);
	for (unsigned r = 1; r <= d->max_round; r++) {
		double l = d->v[S_FED_MIN][r], h = d->v[S_FED_MAX][r];
		if (isfinite(l) && isfinite(h))
			fprintf(f,
			        "<line class=\"range\" x1=\"%.1f\" y1=\"%.1f\" "
			        "x2=\"%.1f\" y2=\"%.1f\"><title>round %u: "
			        "clients %.4g to %.4g</title></line>\n",
			        px(&a, r), py(&a, l), px(&a, r), py(&a, h), r,
			        l, h);
	}
	draw_lines(f, &a, all, 1, d->max_round);
	legend_entry(f, 0, "#2a6fb0", "mean of the clients");
	legend_entry(f, 1, "#9bb7d9", "lowest to highest client");
	fputs("</svg>\n", f);
}

/* Stacked bars per round: clients that trained, clients that failed. */
static void
clients_chart(FILE *f, const struct report_data *d)
{
	double hi = 0;
	for (unsigned r = 1; r <= d->max_round; r++) {
		double ok = isfinite(d->v[S_OK][r]) ? d->v[S_OK][r] : 0;
		double bad =
		    isfinite(d->v[S_FAILED][r]) ? d->v[S_FAILED][r] : 0;
		hi = fmax(hi, ok + bad);
	}
	struct axes a = make_axes(d->max_round, 0, hi > 0 ? hi : 1, 1, 1);
	if (a.ystep < 1) { /* whole clients */
		a.ystep = 1;
		a.y1 = ceil(a.y1);
	}
	chart_begin(f, "chart-clients", "Clients per round: ok / failed",
	            "round", "clients", &a, 1);
	double w = (double)PLOT_W / d->max_round * 0.7;
	for (unsigned r = 1; r <= d->max_round; r++) {
		double ok = isfinite(d->v[S_OK][r]) ? d->v[S_OK][r] : 0;
		double bad =
		    isfinite(d->v[S_FAILED][r]) ? d->v[S_FAILED][r] : 0;
		double x = px(&a, r) - w / 2;
		if (ok > 0)
			fprintf(f,
			        "<rect class=\"bar-ok\" x=\"%.1f\" y=\"%.1f\" "
			        "width=\"%.1f\" height=\"%.1f\"><title>round "
			        "%u: %.0f ok</title></rect>\n",
			        x, py(&a, ok), w, py(&a, 0) - py(&a, ok), r,
			        ok);
		if (bad > 0)
			fprintf(f,
			        "<rect class=\"bar-failed\" x=\"%.1f\" "
			        "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
			        "<title>round %u: %.0f failed</title></rect>\n",
			        x, py(&a, ok + bad), w,
			        py(&a, ok) - py(&a, ok + bad), r, bad);
	}
	int lx = MARGIN_L + PLOT_W - 110;
	fprintf(f,
	        "<rect class=\"bar-ok\" x=\"%d\" y=\"%d\" width=\"10\" "
	        "height=\"10\"/><text class=\"legend\" x=\"%d\" y=\"%d\">ok"
	        "</text><rect class=\"bar-failed\" x=\"%d\" y=\"%d\" "
	        "width=\"10\" height=\"10\"/><text class=\"legend\" x=\"%d\" "
	        "y=\"%d\">failed</text>\n</svg>\n",
	        lx, MARGIN_T - 16, lx + 14, MARGIN_T - 7, lx + 50,
	        MARGIN_T - 16, lx + 64, MARGIN_T - 7);
}

/* How many of nclients clients trained in 0, 1, ..., most rounds: bars. */
static void
participation_histogram(FILE *f, const unsigned *count, size_t nclients,
                        unsigned most)
{
	size_t *clients = xcalloc(most + 1, sizeof *clients);
	size_t hi = 0;
	for (size_t c = 0; c < nclients; c++)
		clients[count[c]]++;
	for (unsigned r = 0; r <= most; r++)
		if (clients[r] > hi)
			hi = clients[r];
	struct axes a = make_axes(most + 1, 0, hi ? (double)hi : 1, 1, 1);
	a.x0 = -0.5;
	a.x1 = most + 0.5;
	if (a.ystep < 1) {
		a.ystep = 1;
		a.y1 = ceil(a.y1);
	}
	char title[96];
	snprintf(title, sizeof title, "Clients by rounds trained (%zu clients)",
	         nclients);
	chart_begin(f, "chart-participation", title, "rounds trained",
	            "clients", &a, 0);
	double w = (double)PLOT_W / (double)(most + 1) * 0.8;
	for (unsigned r = 0; r <= most; r++)
		fprintf(f,
		        "<rect class=\"bar-client\" x=\"%.1f\" y=\"%.1f\" "
		        "width=\"%.1f\" height=\"%.1f\"><title>%u rounds: %zu "
		        "clients</title></rect>\n",
		        px(&a, r) - w / 2, py(&a, (double)clients[r]), w,
		        py(&a, 0) - py(&a, (double)clients[r]), r, clients[r]);
	for (double x = 0; x <= (double)most; x += a.xstep)
		fprintf(f,
		        "<text class=\"tick\" x=\"%.1f\" y=\"%d\" "
		        "text-anchor=\"middle\">%.0f</text>\n",
		        px(&a, x), MARGIN_T + PLOT_H + 18, x);
	fputs("</svg>\n", f);
	free(clients);
}

/* Rounds each client trained: a bar per client, a heat strip of cells
 * when there are more than MAX_CLIENT_BARS clients, a histogram beyond
 * MAX_STRIP_CLIENTS; a line saying why when the job keeps no per-client
 * lines (summary: output.client_metrics summary). */
static void
participation_chart(FILE *f, struct report_data *d, size_t nclients,
                    int summary)
{
	if (d->npart == 0 && summary) {
		fputs("<p class=\"note\">Per-client participation is not "
		      "recorded in this job's metrics.jsonl "
		      "(output.client_metrics = summary).</p>\n",
		      f);
		return;
	}
	unsigned *count = xcalloc(nclients ? nclients : 1, sizeof *count);
	qsort(d->part, d->npart, sizeof *d->part, cmp_part);
	for (size_t i = 0; i < d->npart; i++) {
		const struct participation *p = &d->part[i];
		int repeat = i > 0 && p->client == d->part[i - 1].client &&
		             p->round == d->part[i - 1].round;
		if (!repeat && p->client >= 0 && (size_t)p->client < nclients)
			count[p->client]++;
	}
	unsigned most = 0;
	for (size_t c = 0; c < nclients; c++)
		if (count[c] > most)
			most = count[c];
	if (nclients <= MAX_CLIENT_BARS) {
		struct axes a =
		    make_axes(d->max_round, 0, most ? most : 1, 1, 1);
		a.x0 = -0.5;
		a.x1 = nclients - 0.5;
		a.xstep = nice_step((double)nclients);
		if (a.xstep < 1)
			a.xstep = 1;
		if (a.ystep < 1) {
			a.ystep = 1;
			a.y1 = ceil(a.y1);
		}
		chart_begin(f, "chart-participation",
		            "Rounds trained per client", "client", "rounds", &a,
		            0);
		double w = (double)PLOT_W / (double)(nclients ? nclients : 1);
		for (size_t c = 0; c < nclients; c++) {
			fprintf(f,
			        "<rect class=\"bar-client\" x=\"%.1f\" "
			        "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
			        "<title>client %zu: %u rounds</title></rect>\n",
			        px(&a, (double)c) - w * 0.4, py(&a, count[c]),
			        w * 0.8, py(&a, 0) - py(&a, count[c]), c,
			        count[c]);
		}
		for (double x = 0; x < (double)nclients; x += a.xstep)
			fprintf(f,
			        "<text class=\"tick\" x=\"%.1f\" y=\"%d\" "
			        "text-anchor=\"middle\">%.0f</text>\n",
			        px(&a, x), MARGIN_T + PLOT_H + 18, x);
		fputs("</svg>\n", f);
		free(count);
		return;
	}
	if (nclients > MAX_STRIP_CLIENTS) {
		participation_histogram(f, count, nclients, most);
		free(count);
		return;
	}
	size_t rows = (nclients + STRIP_COLUMNS - 1) / STRIP_COLUMNS;
	double cw = (double)PLOT_W / STRIP_COLUMNS;
	double ch = cw;
	int height = MARGIN_T + (int)ceil(rows * ch) + 50;
	fprintf(f,
	        "<svg id=\"chart-participation\" class=\"chart\" "
	        "xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	        "width=\"%d\" height=\"%d\" role=\"img\">\n<title>Rounds "
	        "trained per client</title>\n<text class=\"title\" x=\"%d\" "
	        "y=\"22\">Rounds trained per client (%zu clients, %d per "
	        "row)</text>\n",
	        CHART_W, height, CHART_W, height, CHART_W / 2, nclients,
	        STRIP_COLUMNS);
	for (size_t c = 0; c < nclients; c++) {
		double t = most ? (double)count[c] / most : 0;
		int shade = (int)lround(235 - t * 190);
		fprintf(f,
		        "<rect class=\"cell-client\" x=\"%.1f\" y=\"%.1f\" "
		        "width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\">"
		        "<title>client %zu: %u rounds</title></rect>\n",
		        MARGIN_L + (double)(c % STRIP_COLUMNS) * cw,
		        MARGIN_T + (double)(c / STRIP_COLUMNS) * ch, cw - 1,
		        ch - 1, shade, shade + 10 > 255 ? 255 : shade + 10, 255,
		        c, count[c]);
	}
	for (size_t r = 0; r < rows; r++)
		fprintf(f,
		        "<text class=\"tick\" x=\"%d\" y=\"%.1f\" "
		        "text-anchor=\"end\">%zu</text>\n",
		        MARGIN_L - 6, MARGIN_T + (double)r * ch + ch * 0.75,
		        r * STRIP_COLUMNS);
	fprintf(f,
	        "<text class=\"legend\" x=\"%d\" y=\"%d\">light: 0 rounds, "
	        "dark: %u rounds</text>\n</svg>\n",
	        MARGIN_L, height - 14, most);
	free(count);
}

/* The last finite value of v as "%.4f (round r)", else a dash. */
static void
put_last(FILE *f, const double *v, unsigned max_round)
{
	for (unsigned r = max_round; r >= 1; r--)
		if (isfinite(v[r])) {
			fprintf(f, "%.4f (round %u)", v[r], r);
			return;
		}
	fputs("&ndash;", f);
}

/* The summary table. */
static void
summary_table(FILE *f, const char *job, const struct report_data *d,
              const json_t *summary)
{
	json_t *wall = json_object_get(summary, "wall_seconds");
	double secs = json_is_number(wall) ? json_number_value(wall)
	                                   : d->last_time - d->first_time;
	fputs("<table class=\"summary\">\n<tr><th>job</th><td>", f);
	put_escaped(f, job);
	fputs("</td></tr>\n<tr><th>final test accuracy</th><td>", f);
	put_last(f, d->v[S_ACC], d->max_round);
	if (has_points(d->v[S_FED_ACC], d->max_round)) {
		fputs("</td></tr>\n<tr><th>final federated accuracy</th><td>",
		      f);
		put_last(f, d->v[S_FED_ACC], d->max_round);
	}
	fprintf(f,
	        "</td></tr>\n<tr><th>rounds</th><td>%u</td></tr>\n"
	        "<tr><th>wall time</th><td>%.1f s</td></tr>\n</table>\n",
	        d->max_round, secs > 0 ? secs : 0.0);
}

/* The value at "section.key" of a config.json, or NULL. */
static const json_t *
cfg_get(const json_t *cfg, const char *path)
{
	const char *dot = strchr(path, '.');
	char section[32];
	snprintf(section, sizeof section, "%.*s", (int)(dot - path), path);
	return json_object_get(json_object_get(cfg, section), dot + 1);
}

/* The number at path (NAN when absent). */
static double
cfg_num(const json_t *cfg, const char *path)
{
	const json_t *v = cfg_get(cfg, path);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The string at path ("" when absent). */
static const char *
cfg_str(const json_t *cfg, const char *path)
{
	const char *s = json_string_value(cfg_get(cfg, path));
	return s != NULL ? s : "";
}

/* Write the value at path, escaped: a string as it is, a number as %g, a
 * boolean as on/off, a dash when absent. */
static void
put_value(FILE *f, const json_t *cfg, const char *path)
{
	const json_t *v = cfg_get(cfg, path);
	if (json_is_string(v))
		put_escaped(f, json_string_value(v));
	else if (json_is_number(v))
		fprintf(f, "%.6g", json_number_value(v));
	else if (json_is_boolean(v))
		fputs(json_is_true(v) ? "on" : "off", f);
	else
		fputs("&ndash;", f);
}

/* The parameters shown after a strategy's name: keys of the strategy
 * section, or "section.key" (docs/strategies.md); NULL-terminated. */
static const struct {
	const char *name;
	const char *params[6];
} strategy_params[] = {
    {"fedavg", {"weighting"}},
    {"fedprox", {"train.mu", "weighting"}},
    {"fedavgm", {"server_lr", "server_momentum", "weighting"}},
    {"fedadam", {"eta", "beta1", "beta2", "tau", "weighting"}},
    {"fedyogi", {"eta", "beta1", "beta2", "tau", "weighting"}},
    {"fedadagrad", {"eta", "beta1", "tau", "weighting"}},
    {"trimmed", {"trim_beta"}},
    {"krum", {"krum_f", "krum_m", "weighting"}},
    {"cyclic",
     {"cyclic_order", "cyclic_clients", "cyclic_on_failure", "cyclic_retries"}},
};

/* Write ", key value" (" (key value" when first) of strategy parameter
 * key; an empty string is left out, eta 0 is the strategy's default.
 * Returns whether it wrote. */
static int
put_param(FILE *f, const json_t *cfg, const char *key, int first)
{
	char *path =
	    strchr(key, '.') ? xstrdup(key) : xasprintf("strategy.%s", key);
	const json_t *v = cfg_get(cfg, path);
	int empty = json_is_string(v) && json_string_value(v)[0] == '\0';
	if (!empty) {
		fprintf(f, "%s%s ", first ? " (" : ", ",
		        strrchr(path, '.') + 1);
		if (strcmp(key, "eta") == 0 && json_is_number(v) &&
		    json_number_value(v) == 0)
			fputs("default", f);
		else
			put_value(f, cfg, path);
	}
	free(path);
	return !empty;
}

/* The strategy's name and its parameters: "fedavgm (server_lr 1, ...)". */
static void
put_strategy(FILE *f, const json_t *cfg)
{
	const char *name = cfg_str(cfg, "strategy.name");
	put_escaped(f, name);
	for (size_t i = 0; i < ARRAY_LEN(strategy_params); i++) {
		if (strcmp(strategy_params[i].name, name) != 0)
			continue;
		int n = 0;
		for (const char *const *p = strategy_params[i].params;
		     *p != NULL; p++)
			n += put_param(f, cfg, *p, n == 0);
		if (n > 0)
			fputc(')', f);
	}
}

/* The model; a synthetic one's preset or tensor list, initial weights. */
static void
put_model(FILE *f, const json_t *cfg)
{
	put_value(f, cfg, "model.name");
	const struct model_info *mi = models_find(cfg_str(cfg, "model.name"));
	const char *file = cfg_str(cfg, "model.file");
	if (mi != NULL && mi->closed_form && *file) {
		fputs(" (tensors of ", f);
		put_escaped(f, file);
		fputc(')', f);
	} else if (mi != NULL && mi->closed_form) {
		fputs(" (preset ", f);
		put_value(f, cfg, "model.preset");
		fputc(')', f);
	}
	const char *init = cfg_str(cfg, "model.init");
	if (*init) {
		fputs(", initial weights ", f);
		put_escaped(f, init);
	}
}

/* How the training data is split, and the held-out share. */
static void
put_partition(FILE *f, const json_t *cfg)
{
	const char *how = cfg_str(cfg, "data.partition");
	if (cfg_num(cfg, "data.samples_per_client") > 0) {
		put_value(f, cfg, "data.samples_per_client");
		fputs(" samples drawn per client", f);
	} else if (strcmp(how, "dirichlet") == 0) {
		fputs("dirichlet (alpha ", f);
		put_value(f, cfg, "data.alpha");
		fputc(')', f);
	} else if (strcmp(how, "shards") == 0) {
		fputs("shards (", f);
		put_value(f, cfg, "data.shards_per_client");
		fputs(" per client)", f);
	} else {
		put_value(f, cfg, "data.partition");
	}
	if (cfg_num(cfg, "data.holdout") > 0) {
		fputs(", holdout ", f);
		put_value(f, cfg, "data.holdout");
	}
}

/* Clients sampled, needed to succeed (config_min_fit's rule) and needed
 * available, per round. */
static void
put_per_round(FILE *f, const json_t *cfg)
{
	struct config c = {0};
	c.federation.fit_clients =
	    json_integer_value(cfg_get(cfg, "federation.fit_clients"));
	c.federation.min_clients =
	    json_integer_value(cfg_get(cfg, "federation.min_clients"));
	c.federation.min_fit =
	    json_integer_value(cfg_get(cfg, "federation.min_fit"));
	fprintf(f, "fit %lld, min_fit %lld, min_clients %lld",
	        (long long)c.federation.fit_clients,
	        (long long)config_min_fit(&c),
	        (long long)c.federation.min_clients);
	if (cfg_num(cfg, "federation.availability") < 1) {
		fputs(", availability ", f);
		put_value(f, cfg, "federation.availability");
	}
}

/* The local learning rate with its optimizer. */
static void
put_lr(FILE *f, const json_t *cfg)
{
	put_value(f, cfg, "train.lr");
	const char *opt = cfg_str(cfg, "train.optimizer");
	if (!*opt)
		return;
	fputs(" (", f);
	put_escaped(f, opt);
	if (strcmp(opt, "sgd") == 0) {
		fputs(", momentum ", f);
		put_value(f, cfg, "train.momentum");
	}
	if (cfg_num(cfg, "train.weight_decay") > 0) {
		fputs(", weight decay ", f);
		put_value(f, cfg, "train.weight_decay");
	}
	fputc(')', f);
}

/* Central evaluation on or off, the share of clients evaluating. */
static void
put_evaluation(FILE *f, const json_t *cfg)
{
	fputs("central ", f);
	put_value(f, cfg, "evaluate.central");
	if (cfg_num(cfg, "evaluate.fraction") > 0) {
		fputs(", federated ", f);
		put_value(f, cfg, "evaluate.fraction");
		fputs(" of the clients", f);
	}
}

/* How workers start, tasks per worker, the user's worker command. */
static void
put_launcher(FILE *f, const json_t *cfg)
{
	put_value(f, cfg, "launcher.mode");
	json_int_t tasks =
	    json_integer_value(cfg_get(cfg, "launcher.tasks_per_worker"));
	fprintf(f, ", %lld task%s per worker", (long long)tasks,
	        tasks == 1 ? "" : "s");
	const char *cmd = cfg_str(cfg, "worker.command");
	if (*cmd) {
		fputs(", worker.command ", f);
		put_escaped(f, cmd);
	}
}

/* The rows of the settings table: a key's value as it is, or put's. */
static const struct {
	const char *label;
	const char *path;
	void (*put)(FILE *f, const json_t *cfg);
} settings_rows[] = {
    {"job name", "job.name", NULL},
    {"strategy", NULL, put_strategy},
    {"model", NULL, put_model},
    {"dataset", "data.dataset", NULL},
    {"partition", NULL, put_partition},
    {"clients", "federation.clients", NULL},
    {"clients per round", NULL, put_per_round},
    {"rounds", "federation.rounds", NULL},
    {"local epochs", "train.epochs", NULL},
    {"learning rate", NULL, put_lr},
    {"batch size", "train.batch_size", NULL},
    {"evaluation", NULL, put_evaluation},
    {"launcher", NULL, put_launcher},
    {"seed", "job.seed", NULL},
};

/* The job's settings, from its config.json (nothing without one). */
static void
settings_table(FILE *f, const json_t *cfg)
{
	if (!json_is_object(cfg))
		return;
	fputs("<h2>Settings</h2>\n<table id=\"settings\" class=\"summary\">\n",
	      f);
	for (size_t i = 0; i < ARRAY_LEN(settings_rows); i++) {
		fprintf(f, "<tr><th>%s</th><td>", settings_rows[i].label);
		if (settings_rows[i].put != NULL)
			settings_rows[i].put(f, cfg);
		else
			put_value(f, cfg, settings_rows[i].path);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* Number of clients: federation.clients of config.json, else the highest
 * client id seen + 1; *summary: output.client_metrics is summary. */
static size_t
client_count(const json_t *cfg, const struct report_data *d, int *summary)
{
	const json_t *n = cfg_get(cfg, "federation.clients");
	int64_t count = json_is_integer(n) ? json_integer_value(n) : 0;
	*summary =
	    strcmp(cfg_str(cfg, "output.client_metrics"), "summary") == 0;
	for (size_t i = 0; i < d->npart; i++)
		if (d->part[i].client >= count)
			count = d->part[i].client + 1;
	return count > 0 ? (size_t)count : 0;
}

static const char style[] =
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
    "h1{font-size:22px}h2{font-size:17px;margin:12px 0 4px}"
    "table.summary{border-collapse:collapse;"
    "margin-bottom:16px}table.summary th{text-align:left;padding:3px 12px "
    "3px 0;color:#555;font-weight:normal}table.summary td{padding:3px 0}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}"
    "svg.chart{border:1px solid #ddd;background:#fff}"
    ".title{font-size:15px;text-anchor:middle;font-weight:600}"
    ".tick{font-size:11px;fill:#444}.label{font-size:12px;fill:#222}"
    ".legend{font-size:11px;fill:#222}.grid{stroke:#eee}"
    ".axis{stroke:#444}.line{fill:none;stroke-width:2}p.note{color:#555}"
    ".bar-ok{fill:#4c9a4c}.bar-failed{fill:#d9534f}"
    ".bar-client{fill:#4a78b5}"
    ".range{stroke:#9bb7d9;stroke-width:6;stroke-linecap:round}";

int
report_write(const char *workspace, const char *job, struct ipc_error *err)
{
	struct report_data d = {0};
	char *metrics = xasprintf("%s/metrics/metrics.jsonl", workspace);
	long offset = 0;
	int rc = metricslog_read(metrics, &offset, 0, gather, &d, err);
	free(metrics);
	if (rc < 0)
		return -1;
	grow_rounds(&d, d.max_round);
	char *sum_path = xasprintf("%s/results/summary.json", workspace);
	json_t *summary = json_load_file(sum_path, 0, NULL);
	free(sum_path);
	char *cfg_path = xasprintf("%s/config.json", workspace);
	json_t *cfg = json_load_file(cfg_path, 0, NULL);
	free(cfg_path);
	char *ws_copy = xstrdup(workspace);
	const char *name = job && *job ? job : basename(ws_copy);

	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	if (f == NULL)
		fatal("open_memstream: %s", strerror(errno));
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
	      "charset=\"utf-8\">\n<title>cohort report: ",
	      f);
	put_escaped(f, name);
	fprintf(f,
	        "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>cohort "
	        "report: ",
	        style);
	put_escaped(f, name);
	fputs("</h1>\n", f);
	summary_table(f, name, &d, summary);
	settings_table(f, cfg);
	fputs("<div class=\"charts\">\n", f);
	if (d.max_round == 0) {
		fputs("<p>No round has finished yet.</p>\n", f);
	} else {
		accuracy_chart(f, &d, cfg);
		fed_eval_chart(f, &d);
		struct line loss[] = {
		    {"test loss", "#c0504d", d.v[S_TEST_LOSS]},
		    {"train loss", "#e89a3c", d.v[S_TRAIN_LOSS]},
		    {"federated loss", "#3c8f8a", d.v[S_FED_LOSS]},
		};
		line_chart(f, "chart-loss", "Losses", "loss", loss,
		           ARRAY_LEN(loss), d.max_round, 1);
		struct line secs[] = {
		    {"round time", "#6b4c9a", d.v[S_SECONDS]}};
		line_chart(f, "chart-round-time", "Round time", "seconds", secs,
		           1, d.max_round, 1);
		clients_chart(f, &d);
		int only_summary;
		size_t nclients = client_count(cfg, &d, &only_summary);
		participation_chart(f, &d, nclients, only_summary);
	}
	fputs("</div>\n</body>\n</html>\n", f);
	fclose(f);

	char *dir = xasprintf("%s/results", workspace);
	char *out = xasprintf("%s/report.html", dir);
	rc = files_mkdirs(dir, 0777, err);
	if (rc == 0)
		rc = atomicfile_write_buffer(out, html, len, err);
	free(dir);
	free(out);
	free(html);
	free(ws_copy);
	json_decref(summary);
	json_decref(cfg);
	for (size_t i = 0; i < S_COUNT; i++)
		free(d.v[i]);
	free(d.part);
	return rc;
}
