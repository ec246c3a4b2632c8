/* report.c: the job report. One HTML page with inline SVG charts (no scripts,
 * no external resources) so that it opens anywhere, including as an MLflow
 * artifact: test accuracy, losses, round time, clients ok/failed per round
 * and per-client participation. */
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
#include "files.h"
#include "metricslog.h"

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
    "test_accuracy", "test_loss", "train_loss",
    "round_seconds", "fit_ok",    "fit_failed",
};
enum { S_ACC, S_TEST_LOSS, S_TRAIN_LOSS, S_SECONDS, S_OK, S_FAILED, S_COUNT };

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

/* metricslog callback: file the line under its chart. */
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
		for (size_t i = 0; i < S_COUNT; i++)
			if (strcmp(l->key, series_keys[i]) == 0)
				d->v[i][l->round] = l->value;
		return;
	}
	if (strcmp(l->key, "failed") == 0)
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

/* A line chart over rounds; non-finite values leave gaps. */
static void
line_chart(FILE *f, const char *id, const char *title, const char *ylabel,
           const struct line *lines, size_t n, unsigned max_round,
           int zero_based)
{
	double lo, hi;
	lines_range(lines, n, max_round, &lo, &hi);
	struct axes a = make_axes(max_round, lo, hi, zero_based, 0);
	chart_begin(f, id, title, "round", ylabel, &a, 1);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "<path class=\"line\" stroke=\"%s\" d=\"",
		        lines[i].color);
		int pen = 0;
		for (unsigned r = 1; r <= max_round; r++) {
			if (!isfinite(lines[i].v[r])) {
				pen = 0;
				continue;
			}
			fprintf(f, "%c%.1f %.1f ", pen ? 'L' : 'M', px(&a, r),
			        py(&a, lines[i].v[r]));
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
				    px(&a, r), py(&a, lines[i].v[r]),
				    lines[i].color, r, lines[i].v[r]);
		if (n > 1) {
			int lx = MARGIN_L + PLOT_W - 120,
			    ly = MARGIN_T + 8 + (int)i * 16;
			fprintf(f,
			        "<rect x=\"%d\" y=\"%d\" width=\"12\" "
			        "height=\"4\" fill=\"%s\"/><text "
			        "class=\"legend\" x=\"%d\" y=\"%d\">",
			        lx, ly, lines[i].color, lx + 16, ly + 5);
			put_escaped(f, lines[i].name);
			fputs("</text>\n", f);
		}
	}
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

/* The summary table. */
static void
summary_table(FILE *f, const char *job, const struct report_data *d,
              const json_t *summary)
{
	double acc = NAN;
	unsigned acc_round = 0;
	for (unsigned r = 1; r <= d->max_round; r++)
		if (isfinite(d->v[S_ACC][r])) {
			acc = d->v[S_ACC][r];
			acc_round = r;
		}
	json_t *wall = json_object_get(summary, "wall_seconds");
	double secs = json_is_number(wall) ? json_number_value(wall)
	                                   : d->last_time - d->first_time;
	fputs("<table class=\"summary\">\n<tr><th>job</th><td>", f);
	put_escaped(f, job);
	fputs("</td></tr>\n<tr><th>final test accuracy</th><td>", f);
	if (isfinite(acc))
		fprintf(f, "%.4f (round %u)", acc, acc_round);
	else
		fputs("&ndash;", f);
	fprintf(f,
	        "</td></tr>\n<tr><th>rounds</th><td>%u</td></tr>\n"
	        "<tr><th>wall time</th><td>%.1f s</td></tr>\n</table>\n",
	        d->max_round, secs > 0 ? secs : 0.0);
}

/* Number of clients: federation.clients of config.json, else the highest
 * client id seen + 1; *summary: output.client_metrics is summary. */
static size_t
client_count(const char *workspace, const struct report_data *d, int *summary)
{
	char *path = xasprintf("%s/config.json", workspace);
	json_t *cfg = json_load_file(path, 0, NULL);
	free(path);
	json_t *n =
	    json_object_get(json_object_get(cfg, "federation"), "clients");
	int64_t count = json_is_integer(n) ? json_integer_value(n) : 0;
	const char *cm = json_string_value(
	    json_object_get(json_object_get(cfg, "output"), "client_metrics"));
	*summary = cm != NULL && strcmp(cm, "summary") == 0;
	json_decref(cfg);
	for (size_t i = 0; i < d->npart; i++)
		if (d->part[i].client >= count)
			count = d->part[i].client + 1;
	return count > 0 ? (size_t)count : 0;
}

static const char style[] =
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
    "h1{font-size:22px}table.summary{border-collapse:collapse;"
    "margin-bottom:16px}table.summary th{text-align:left;padding:3px 12px "
    "3px 0;color:#555;font-weight:normal}table.summary td{padding:3px 0}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}"
    "svg.chart{border:1px solid #ddd;background:#fff}"
    ".title{font-size:15px;text-anchor:middle;font-weight:600}"
    ".tick{font-size:11px;fill:#444}.label{font-size:12px;fill:#222}"
    ".legend{font-size:11px;fill:#222}.grid{stroke:#eee}"
    ".axis{stroke:#444}.line{fill:none;stroke-width:2}p.note{color:#555}"
    ".bar-ok{fill:#4c9a4c}.bar-failed{fill:#d9534f}"
    ".bar-client{fill:#4a78b5}";

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
	fputs("<div class=\"charts\">\n", f);
	if (d.max_round == 0) {
		fputs("<p>No round has finished yet.</p>\n", f);
	} else {
		struct line acc[] = {{"test accuracy", "#2a6fb0", d.v[S_ACC]}};
		line_chart(f, "chart-accuracy", "Test accuracy", "accuracy",
		           acc, 1, d.max_round, 1);
		struct line loss[] = {
		    {"test loss", "#c0504d", d.v[S_TEST_LOSS]},
		    {"train loss", "#e89a3c", d.v[S_TRAIN_LOSS]},
		};
		line_chart(f, "chart-loss", "Test and train loss", "loss", loss,
		           2, d.max_round, 1);
		struct line secs[] = {
		    {"round time", "#6b4c9a", d.v[S_SECONDS]}};
		line_chart(f, "chart-round-time", "Round time", "seconds", secs,
		           1, d.max_round, 1);
		clients_chart(f, &d);
		int only_summary;
		size_t nclients = client_count(workspace, &d, &only_summary);
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
	for (size_t i = 0; i < S_COUNT; i++)
		free(d.v[i]);
	free(d.part);
	return rc;
}
