/* test_secagg.c: secure aggregation's core (ipc/secagg.c). The unmasked
 * sum is the plain sum of the quantised inputs exactly, and the float sum
 * within the quantisation bound; a masked input looks uniform and
 * independent of the input; clients may drop out after their shares or
 * after their masked input while t neighbours of each answer, and below
 * that unmasking fails with its error; a tampered, replayed or redirected
 * share is refused; both sides draw the same graph of the asked degree.
 * It also prints what masking and unmasking cost at 8 and 100 clients
 * (no timed assertions). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "secagg.h"

/* Round parameters of the tests: R = 1, b bits, t = degree/2 + 1. */
static struct secagg_params
params(uint32_t k, uint32_t t, uint32_t bits, size_t len)
{
	struct secagg_params p = {.round = 7,
	                          .k = k,
	                          .threshold = t,
	                          .bits = bits,
	                          .clip = 1.0f,
	                          .len = len};
	for (int i = 0; i < SECAGG_SEED_BYTES; i++)
		p.seed[i] = (uint8_t)(i * 37 + 1);
	return p;
}

/* Client ids 100, 103, 106, ... listed in a shuffled order. */
static uint32_t *
make_ids(uint32_t n)
{
	uint32_t *ids = malloc(n * sizeof *ids);
	for (uint32_t i = 0; i < n; i++)
		ids[i] = 100 + 3 * ((i * 7 + 3) % n);
	return ids;
}

/* n inputs of len elements, smooth and different per client, some
 * beyond the clip of 1 (x[c][k] = 1.2 sin(0.001 k (c+1) + c)). */
static float **
make_inputs(uint32_t n, size_t len)
{
	float **x = malloc(n * sizeof *x);
	for (uint32_t c = 0; c < n; c++) {
		x[c] = malloc(len * sizeof **x);
		for (size_t k = 0; k < len; k++)
			x[c][k] =
			    1.2f * (float)sin(0.001 * (double)k * (c + 1) + c);
	}
	return x;
}

/* Free make_inputs' vectors. */
static void
free_inputs(float **x, uint32_t n)
{
	for (uint32_t c = 0; c < n; c++)
		free(x[c]);
	free(x);
}

/* Run a round and check its sum against the survivors' quantised inputs
 * (exactly) and their clipped inputs (within the bound); returns the
 * round's status, err filled when it failed. */
static int
run_and_check(const struct secagg_params *p, const uint32_t *ids, uint32_t n,
              float **x, const enum secagg_dropout *drop,
              struct secagg_costs *costs, struct ipc_error *err)
{
	size_t len = p->len;
	double *sum = malloc(len * sizeof *sum);
	uint32_t *qsum = malloc(len * sizeof *qsum);
	int rc = secagg_run_local(p, ids, n, (const float *const *)x, drop, sum,
	                          qsum, costs, err);
	if (rc != 0) {
		free(sum);
		free(qsum);
		return rc;
	}
	uint32_t *want_q = calloc(len, sizeof *want_q), *q = malloc(len * 4);
	double *want = calloc(len, sizeof *want);
	uint32_t m = 0;
	for (uint32_t c = 0; c < n; c++) {
		if (drop != NULL && drop[c] != SECAGG_STAYS &&
		    drop[c] != SECAGG_DROPS_AFTER_MASK)
			continue;
		m++;
		secagg_quantise(p, x[c], q);
		for (size_t k = 0; k < len; k++) {
			want_q[k] += q[k];
			want[k] +=
			    fmin(fmax((double)x[c][k], -p->clip), p->clip);
		}
	}
	CHECK(memcmp(qsum, want_q, len * sizeof *qsum) == 0);
	double bound = secagg_quant_bound(p, m), worst = 0;
	for (size_t k = 0; k < len; k++)
		worst = fmax(worst, fabs(sum[k] - want[k]));
	CHECK(worst <= bound);
	printf("  %u of %u clients summed, %u bits: error %.3g <= bound "
	       "%.3g\n",
	       m, n, p->bits, worst, bound);
	free(want_q);
	free(q);
	free(want);
	free(sum);
	free(qsum);
	return 0;
}

/* Quantisation: levels, clipping, the round trip within half a step, and
 * the limit that keeps the sum below 2^32. */
static void
test_quantise(void)
{
	struct secagg_params p = params(1, 1, 16, 5);
	const float x[5] = {-1.0f, 1.0f, 0.0f, 7.0f, -3.0f};
	uint32_t q[5];
	secagg_quantise(&p, x, q);
	CHECK_EQ_INT(q[0], 0);
	CHECK_EQ_INT(q[1], 65535);
	CHECK_EQ_INT(q[2], 32768); /* 32767.5 rounds up */
	CHECK_EQ_INT(q[3], 65535);
	CHECK_EQ_INT(q[4], 0);
	double d[5];
	secagg_dequantise(&p, q, 1, d);
	CHECK_NEAR(d[2], 0.0, secagg_quant_step(&p) / 2);
	CHECK_NEAR(d[3], 1.0, 1e-12);
	CHECK_NEAR(secagg_quant_step(&p), 2.0 / 65535, 1e-18);

	/* 2 clients of 32 bits could wrap; of 31 bits cannot. */
	uint32_t ids[2] = {1, 2};
	struct secagg_graph g;
	struct ipc_error err = {0};
	p = params(1, 1, 32, 5);
	CHECK_EQ_INT(secagg_graph_build(&g, &p, ids, 2, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_BAD_VALUE);
	CHECK_STR_CONTAINS(err.message, "use bits <= 31");
	p.bits = 31;
	CHECK_EQ_INT(secagg_graph_build(&g, &p, ids, 2, &err), 0);
	secagg_graph_free(&g);
	/* 100 clients: at most 25 bits (100 (2^25 - 1) < 2^32). */
	uint32_t *many = make_ids(100);
	p = params(14, 8, 26, 5);
	CHECK_EQ_INT(secagg_graph_build(&g, &p, many, 100, &err), -1);
	CHECK_STR_CONTAINS(err.message, "use bits <= 25");
	free(many);
}

/* Everyone stays: the sum is exact in the quantised domain and within
 * the bound in floats, at 16 and 24 bits, on a complete and a sparse
 * graph. */
static void
test_sum_exact(void)
{
	uint32_t n = 8;
	uint32_t *ids = make_ids(n);
	float **x = make_inputs(n, 5000);
	struct ipc_error err = {0};
	struct secagg_params p = params(7, 4, 16, 5000);
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, NULL, NULL, &err), 0);
	p = params(4, 3, 24, 5000);
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, NULL, NULL, &err), 0);
	free_inputs(x, n);
	free(ids);
}

/* Pearson correlation of two vectors of n values. */
static double
correlation(const double *a, const double *b, size_t n)
{
	double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
	for (size_t i = 0; i < n; i++) {
		ma += a[i];
		mb += b[i];
	}
	ma /= (double)n;
	mb /= (double)n;
	for (size_t i = 0; i < n; i++) {
		sab += (a[i] - ma) * (b[i] - mb);
		saa += (a[i] - ma) * (a[i] - ma);
		sbb += (b[i] - mb) * (b[i] - mb);
	}
	return sab / sqrt(saa * sbb);
}

/* A round of 3 clients as far as client 0's masked input of x, into y. */
static void
mask_once(const struct secagg_params *p, const float *x, uint32_t *y)
{
	uint32_t ids[3] = {10, 11, 12};
	struct secagg_graph g;
	struct ipc_error err = {0};
	CHECK_EQ_INT(secagg_graph_build(&g, p, ids, 3, &err), 0);
	struct secagg_client *c[3];
	struct secagg_pubkeys keys[3];
	uint8_t adv[3] = {1, 1, 1};
	struct secagg_share sh[3][2];
	for (int i = 0; i < 3; i++)
		c[i] = secagg_client_keys(p, &g, ids[i], &keys[i], &err);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(secagg_client_shares(c[i], keys, adv, sh[i], &err),
		             2);
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++) {
			int to = (int)secagg_graph_index(&g, sh[i][k].to);
			CHECK_EQ_INT(
			    secagg_client_receive(c[to], &sh[i][k], &err), 0);
		}
	CHECK_EQ_INT(secagg_client_mask(c[0], x, y, &err), 0);
	for (int i = 0; i < 3; i++)
		secagg_client_free(c[i]);
	secagg_graph_free(&g);
}

/* A masked input looks independent of the input: the same input under
 * two rounds' fresh keys gives uncorrelated vectors, neither correlated
 * with the input, with the mean and variance of uniform uint32s. */
static void
test_mask_looks_random(void)
{
	size_t len = 100000;
	struct secagg_params p = params(2, 2, 16, len);
	float *x = malloc(len * sizeof *x);
	for (size_t k = 0; k < len; k++)
		x[k] = (float)sin(0.0005 * (double)k); /* slow, structured */
	uint32_t *y1 = malloc(len * 4), *y2 = malloc(len * 4);
	mask_once(&p, x, y1);
	p.round++;
	mask_once(&p, x, y2);
	double *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b);
	double *in = malloc(len * sizeof *in);
	double mean = 0, var = 0;
	for (size_t k = 0; k < len; k++) {
		a[k] = y1[k];
		b[k] = y2[k];
		in[k] = x[k];
		mean += a[k];
	}
	mean /= (double)len;
	for (size_t k = 0; k < len; k++)
		var += (a[k] - mean) * (a[k] - mean);
	var /= (double)len;
	/* Five standard errors at 100,000 samples: correlation 0.016, the
	 * mean 0.9%, the variance 1.4% of a uniform's. */
	double r12 = correlation(a, b, len), rin = correlation(a, in, len);
	printf("  correlation of two maskings %.4f, with the input %.4f; "
	       "mean/2^31 %.4f, var/(2^64/12) %.4f\n",
	       r12, rin, mean / 0x1p31, var / (0x1p64 / 12));
	CHECK(fabs(r12) < 0.016);
	CHECK(fabs(rin) < 0.016);
	CHECK_NEAR(mean / 0x1p31, 1.0, 0.009);
	CHECK_NEAR(var / (0x1p64 / 12), 1.0, 0.014);
	/* The input itself is far from uniform: its quantised form
	 * correlates fully with it. */
	uint32_t *q = malloc(len * 4);
	secagg_quantise(&p, x, q);
	for (size_t k = 0; k < len; k++)
		a[k] = q[k];
	CHECK(correlation(a, in, len) > 0.99);
	free(q);
	free(a);
	free(b);
	free(in);
	free(x);
	free(y1);
	free(y2);
}

/* Dropouts on a complete graph of 10 (t = 5): one after its shares, one
 * after its masked input, four at once (every client keeps exactly t
 * answering neighbours); five after their masked inputs leave t - 1 and
 * unmasking fails. */
static void
test_dropouts(void)
{
	uint32_t n = 10;
	size_t len = 3000;
	uint32_t *ids = make_ids(n);
	float **x = make_inputs(n, len);
	struct secagg_params p = params(9, 5, 20, len);
	struct ipc_error err = {0};
	enum secagg_dropout drop[10] = {0};

	drop[3] = SECAGG_DROPS_AFTER_SHARES;
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, NULL, &err), 0);
	drop[3] = SECAGG_DROPS_AFTER_MASK;
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, NULL, &err), 0);
	drop[0] = SECAGG_DROPS_AFTER_KEYS;
	drop[5] = SECAGG_DROPS_AFTER_SHARES;
	drop[9] = SECAGG_DROPS_AFTER_MASK;
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, NULL, &err), 0);

	for (int i = 0; i < 10; i++)
		drop[i] = i < 5 ? SECAGG_DROPS_AFTER_MASK : SECAGG_STAYS;
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SECAGG_THRESHOLD);
	CHECK_STR_CONTAINS(err.message, "4 of client");
	CHECK_STR_CONTAINS(err.message, "below the threshold t = 5");
	/* Six that never send shares leave too few for anyone to mask. */
	for (int i = 0; i < 10; i++)
		drop[i] = i < 6 ? SECAGG_DROPS_AFTER_KEYS : SECAGG_STAYS;
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, NULL, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_SECAGG_THRESHOLD);
	CHECK_STR_CONTAINS(err.message, "nothing masked");
	free_inputs(x, n);
	free(ids);
}

/* Answering neighbours (drop: by index) of client i in g. */
static uint32_t
live_neighbours(const struct secagg_graph *g, uint32_t i,
                const enum secagg_dropout *drop)
{
	const uint32_t *row = secagg_graph_row(g, i);
	uint32_t live = 0;
	for (uint32_t j = 0; j < g->degree; j++)
		live += drop[row[j]] == SECAGG_STAYS;
	return live;
}

/* Dropouts on a sparse graph (30 clients, k = 6, t = 4): drop clients,
 * in turn after keys, shares and masked input, while every client keeps
 * t answering neighbours (checked on the graph the test builds, which is
 * the one the round builds), and the sum comes out right. */
static void
test_dropouts_sparse(void)
{
	uint32_t n = 30;
	size_t len = 2000;
	uint32_t *ids = make_ids(n);
	float **x = make_inputs(n, len);
	struct secagg_params p = params(6, 4, 16, len);
	struct secagg_graph g;
	struct ipc_error err = {0};
	CHECK_EQ_INT(secagg_graph_build(&g, &p, ids, n, &err), 0);
	enum secagg_dropout by_index[30] = {0}, drop[30] = {0};
	const enum secagg_dropout kinds[3] = {SECAGG_DROPS_AFTER_KEYS,
	                                      SECAGG_DROPS_AFTER_SHARES,
	                                      SECAGG_DROPS_AFTER_MASK};
	uint32_t dropped = 0;
	for (uint32_t i = 0; i < n; i++) {
		by_index[i] = kinds[dropped % 3];
		int ok = 1;
		for (uint32_t u = 0; u < n; u++)
			ok &= live_neighbours(&g, u, by_index) >= p.threshold;
		if (ok)
			dropped++;
		else
			by_index[i] = SECAGG_STAYS;
	}
	printf("  %u of %u clients dropped, every client keeps >= %u "
	       "answering neighbours of %u\n",
	       dropped, n, p.threshold, g.degree);
	CHECK(dropped >= 6);
	for (uint32_t u = 0; u < n; u++)
		CHECK(live_neighbours(&g, u, by_index) >= p.threshold);
	for (uint32_t c = 0; c < n; c++)
		drop[c] = by_index[secagg_graph_index(&g, ids[c])];
	CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, NULL, &err), 0);
	secagg_graph_free(&g);
	free_inputs(x, n);
	free(ids);
}

/* Three clients (complete graph, t = 2) through their shares; the shares
 * stay undelivered for the test to tamper with. */
struct trio {
	struct secagg_params p;
	struct secagg_graph g;
	struct secagg_client *c[3];
	struct secagg_pubkeys keys[3];
	struct secagg_share sh[3][2];
};

/* Start t's round: graph, keys, sealed shares. */
static void
trio_start(struct trio *t, uint64_t round)
{
	uint32_t ids[3] = {20, 21, 22};
	uint8_t adv[3] = {1, 1, 1};
	struct ipc_error err = {0};
	t->p = params(2, 2, 16, 10);
	t->p.round = round;
	CHECK_EQ_INT(secagg_graph_build(&t->g, &t->p, ids, 3, &err), 0);
	for (int i = 0; i < 3; i++)
		t->c[i] =
		    secagg_client_keys(&t->p, &t->g, ids[i], &t->keys[i], &err);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(
		    secagg_client_shares(t->c[i], t->keys, adv, t->sh[i], &err),
		    2);
}

/* Free t's clients and graph. */
static void
trio_end(struct trio *t)
{
	for (int i = 0; i < 3; i++)
		secagg_client_free(t->c[i]);
	secagg_graph_free(&t->g);
}

/* The share in t from client a to client b. */
static struct secagg_share
trio_share(const struct trio *t, int a, int b)
{
	for (int k = 0; k < 2; k++)
		if (t->sh[a][k].to == t->g.ids[b])
			return t->sh[a][k];
	CHECK(!"no such share");
	return t->sh[a][0];
}

/* Expect client c to refuse share s with code. */
static void
expect_refused(struct secagg_client *c, const struct secagg_share *s,
               enum ipc_code code)
{
	struct ipc_error err = {0};
	CHECK_EQ_INT(secagg_client_receive(c, s, &err), -1);
	CHECK_EQ_INT(err.code, code);
}

/* A share with one bit flipped (nonce, ciphertext or tag), one redirected
 * to another recipient (to rewritten or not), one claiming another
 * sender, one replayed into the next round, and one delivered twice are
 * all refused; the genuine one is taken. */
static void
test_tampered_shares(void)
{
	struct trio t, next;
	trio_start(&t, 7);
	struct secagg_share s = trio_share(&t, 0, 1);
	const size_t bits[] = {3, 24 * 8 + 5, 24 * 8 + 64 * 8 + 100,
	                       SECAGG_BOX_BYTES * 8 - 1};
	for (size_t i = 0; i < 4; i++) {
		struct secagg_share bad = s;
		bad.box[bits[i] / 8] ^= (uint8_t)(1u << (bits[i] % 8));
		expect_refused(t.c[1], &bad, IPC_E_SECAGG_AUTH);
	}
	expect_refused(t.c[2], &s, IPC_E_SECAGG_AUTH); /* to says 21 */
	struct secagg_share redirected = s;
	redirected.to = t.g.ids[2];
	expect_refused(t.c[2], &redirected, IPC_E_SECAGG_AUTH);
	struct secagg_share forged = s;
	forged.from = t.g.ids[2];
	expect_refused(t.c[1], &forged, IPC_E_SECAGG_AUTH);

	/* The same clients' next round: fresh keys, and the round in the
	 * associated data. */
	trio_start(&next, 8);
	expect_refused(next.c[1], &s, IPC_E_SECAGG_AUTH);
	struct ipc_error err = {0};
	CHECK_EQ_INT(secagg_client_receive(t.c[1], &s, &err), 0);
	expect_refused(t.c[1], &s, IPC_E_DUPLICATE);
	trio_end(&next);
	trio_end(&t);
}

/* Calls out of order are refused with a message naming the stage; a
 * non-finite input is never masked; a server that lists a client as
 * dropped cannot ask it to reveal; a client reveals once. */
static void
test_order_and_input(void)
{
	struct trio t;
	trio_start(&t, 9);
	struct ipc_error err = {0};
	uint8_t adv[3] = {1, 1, 1};
	struct secagg_share out[2];
	CHECK_EQ_INT(secagg_client_shares(t.c[0], t.keys, adv, out, &err), -1);
	CHECK_STR_CONTAINS(err.message, "shares after 'shares sent'");
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++) {
			int to = (int)secagg_graph_index(&t.g, t.sh[i][k].to);
			CHECK_EQ_INT(
			    secagg_client_receive(t.c[to], &t.sh[i][k], &err),
			    0);
		}
	float x[10] = {0};
	uint32_t y[10];
	x[4] = NAN;
	CHECK_EQ_INT(secagg_client_mask(t.c[0], x, y, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_NONFINITE);
	x[4] = 0.5f;
	CHECK_EQ_INT(secagg_client_mask(t.c[0], x, y, &err), 0);
	CHECK_EQ_INT(secagg_client_mask(t.c[0], x, y, &err), -1);
	uint8_t survived[3] = {0, 1, 1};
	struct secagg_reveal r[2];
	CHECK_EQ_INT(secagg_client_reveal(t.c[0], survived, r, &err), -1);
	CHECK_STR_CONTAINS(err.message, "says it dropped out");
	survived[0] = 1;
	CHECK_EQ_INT(secagg_client_reveal(t.c[0], survived, r, &err), 2);
	CHECK(r[0].kind == SECAGG_SELF_MASK);
	CHECK_EQ_INT(secagg_client_reveal(t.c[0], survived, r, &err), -1);
	trio_end(&t);
}

/* The graph: the same from any order of the ids, of the degree asked
 * (k+1 when k and n are odd, n-1 when k >= n-1), symmetric, without self
 * loops; another seed or round draws another one. */
static void
test_graph(void)
{
	const uint32_t cases[][3] = {/* n, k, degree */
	                             {8, 6, 6},     {9, 3, 4},     {10, 3, 3},
	                             {100, 14, 14}, {101, 13, 14}, {5, 10, 4},
	                             {2, 1, 1},     {1000, 20, 20}};
	struct ipc_error err = {0};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		uint32_t n = cases[c][0], k = cases[c][1];
		struct secagg_params p = params(k, cases[c][2] / 2 + 1, 16, 4);
		uint32_t *ids = make_ids(n), *rev = malloc(n * sizeof *rev);
		for (uint32_t i = 0; i < n; i++)
			rev[i] = ids[n - 1 - i];
		struct secagg_graph a, b;
		CHECK_EQ_INT(secagg_graph_build(&a, &p, ids, n, &err), 0);
		CHECK_EQ_INT(secagg_graph_build(&b, &p, rev, n, &err), 0);
		CHECK_EQ_INT(a.degree, cases[c][2]);
		CHECK(memcmp(a.nb, b.nb, (size_t)n * a.degree * 4) == 0);
		uint32_t bad = 0;
		for (uint32_t u = 0; u < n; u++) {
			const uint32_t *row = secagg_graph_row(&a, u);
			for (uint32_t j = 0; j < a.degree; j++) {
				const uint32_t *back =
				    secagg_graph_row(&a, row[j]);
				uint32_t found = 0;
				for (uint32_t i = 0; i < a.degree; i++)
					found += back[i] == u;
				bad += row[j] == u || found != 1 ||
				       (j > 0 && row[j] <= row[j - 1]);
			}
		}
		CHECK_EQ_INT(bad, 0);
		if (n >= 100) {
			struct secagg_graph o;
			p.seed[0] ^= 1;
			CHECK_EQ_INT(secagg_graph_build(&o, &p, ids, n, &err),
			             0);
			CHECK(memcmp(a.nb, o.nb, (size_t)n * a.degree * 4));
			secagg_graph_free(&o);
			p.seed[0] ^= 1;
			p.round++;
			CHECK_EQ_INT(secagg_graph_build(&o, &p, ids, n, &err),
			             0);
			CHECK(memcmp(a.nb, o.nb, (size_t)n * a.degree * 4));
			secagg_graph_free(&o);
		}
		secagg_graph_free(&a);
		secagg_graph_free(&b);
		free(ids);
		free(rev);
	}
	/* Thresholds of half the degree or less are refused. */
	uint32_t ids[4] = {1, 2, 3, 4};
	struct secagg_graph g;
	struct secagg_params p = params(3, 1, 16, 4);
	CHECK_EQ_INT(secagg_graph_build(&g, &p, ids, 4, &err), -1);
	CHECK_STR_CONTAINS(err.message, "e.g. t = 2");
	uint32_t twice[3] = {1, 2, 1};
	p = params(2, 2, 16, 4);
	CHECK_EQ_INT(secagg_graph_build(&g, &p, twice, 3, &err), -1);
	CHECK_EQ_INT(err.code, IPC_E_DUPLICATE);
}

/* A log-ish degree: min(n - 1, 2 ceil(log2 n)). */
static uint32_t
log_degree(uint32_t n)
{
	uint32_t l = 0;
	while ((1u << l) < n)
		l++;
	return 2 * l < n - 1 ? 2 * l : n - 1;
}

/* What a round of 100,000 elements costs at 8 and 100 clients (one drops
 * after its shares, so a dropped client's masks are cancelled too). */
static void
test_costs(void)
{
	const uint32_t sizes[2] = {8, 100};
	size_t len = 100000;
	for (int s = 0; s < 2; s++) {
		uint32_t n = sizes[s], k = log_degree(n);
		uint32_t *ids = make_ids(n);
		float **x = make_inputs(n, len);
		enum secagg_dropout *drop = calloc(n, sizeof *drop);
		drop[1] = SECAGG_DROPS_AFTER_SHARES;
		struct secagg_params p = params(k, k / 2 + 1, 24, len);
		struct secagg_costs c;
		struct ipc_error err = {0};
		CHECK_EQ_INT(run_and_check(&p, ids, n, x, drop, &c, &err), 0);
		printf("  n=%u k=%u t=%u len=%zu: per client keys %.3f ms, "
		       "shares %.3f ms, mask %.2f ms, reveal %.1f us; server "
		       "unmask %.1f ms\n",
		       n, k, p.threshold, len, c.keys_s * 1e3, c.shares_s * 1e3,
		       c.mask_s * 1e3, c.reveal_s * 1e6, c.unmask_s * 1e3);
		printf("  n=%u: bytes per client up %zu, down %zu; plain "
		       "float32 upload %zu (up +%.2f%%)\n",
		       n, c.bytes_up, c.bytes_down, len * sizeof(float),
		       100.0 * ((double)c.bytes_up / (len * 4.0) - 1));
		free(drop);
		free_inputs(x, n);
		free(ids);
	}
}

int
main(void)
{
	RUN(test_quantise);
	RUN(test_sum_exact);
	RUN(test_mask_looks_random);
	RUN(test_dropouts);
	RUN(test_dropouts_sparse);
	RUN(test_tampered_shares);
	RUN(test_order_and_input);
	RUN(test_graph);
	RUN(test_costs);
	return harness_finish();
}
