/* secagg.c: secure aggregation by pairwise masking (Bonawitz et al. 2017)
 * over the SecAgg+ neighbour graph (Bell et al. 2020): the graph, the
 * quantisation, the client's and the server's side of a round, and a
 * round run in one process. Keys are X25519 (libsodium), masks ChaCha20
 * keystreams, shares Shamir's over GF(2^8) (libgfshare), sealed with
 * XChaCha20-Poly1305. */
#include "secagg.h"

#include <libgfshare.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

_Static_assert(SECAGG_KEY_BYTES == crypto_scalarmult_BYTES &&
                   SECAGG_KEY_BYTES == crypto_scalarmult_SCALARBYTES &&
                   SECAGG_KEY_BYTES == crypto_stream_chacha20_ietf_KEYBYTES &&
                   SECAGG_KEY_BYTES ==
                       crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "secagg keys are 32 bytes");
_Static_assert(SECAGG_BOX_BYTES ==
                   crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                       2 * SECAGG_KEY_BYTES +
                       crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "a sealed share is nonce, two shares, tag");

/* Labels of the derived keys: a key made for one use is never one of
 * another's. */
static const char LABEL_GRAPH[] = "cohort secagg/1 graph";
static const char LABEL_MASK[] = "cohort secagg/1 mask seed";
static const char LABEL_SHARE[] = "cohort secagg/1 share key";
static const char LABEL_AD[] = "cohort secagg/1 share";

/* ---- helpers ---- */

/* Store v little-endian. */
static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Store v little-endian. */
static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Load a little-endian uint32. */
static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Fill buf with n bytes of libsodium's generator: every Shamir
 * polynomial's coefficients. */
static void
gfshare_random(unsigned char *buf, unsigned int n)
{
	randombytes_buf(buf, n);
}

/* Start libsodium and point libgfshare at its generator: 0, or -1. */
static int
crypto_ready(struct ipc_error *err)
{
	if (sodium_init() < 0)
		return ipc_error_set(err, IPC_E_IO,
		                     "secagg: libsodium failed to initialise "
		                     "(no source of randomness?)");
	gfshare_fill_rand = gfshare_random;
	return 0;
}

/* ---- the PRG ---- */

/* Elements expanded per keystream call: 4 KiB, 64 ChaCha20 blocks. */
enum { PRG_CHUNK = 1024 };

/* acc[i] += sign PRG(key)[i] (mod 2^32) for len elements. PRG(key) is the
 * ChaCha20 (IETF) keystream of key under nonce 0, read as little-endian
 * uint32s; every key expands one vector only (seeds are fresh each
 * round), so the fixed nonce never repeats a key stream. */
static void
prg_apply(uint32_t *acc, size_t len, const uint8_t key[SECAGG_KEY_BYTES],
          int sign)
{
	static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
	uint8_t buf[PRG_CHUNK * 4];
	uint32_t block = 0;
	for (size_t i = 0; i < len; i += PRG_CHUNK) {
		size_t m = len - i < PRG_CHUNK ? len - i : PRG_CHUNK;
		memset(buf, 0, m * 4);
		crypto_stream_chacha20_ietf_xor_ic(buf, buf, m * 4, nonce,
		                                   block, key);
		block += PRG_CHUNK * 4 / 64;
		uint32_t *a = acc + i;
		if (sign > 0)
			for (size_t j = 0; j < m; j++)
				a[j] += get_u32(buf + 4 * j);
		else
			for (size_t j = 0; j < m; j++)
				a[j] -= get_u32(buf + 4 * j);
	}
	sodium_memzero(buf, sizeof buf);
}

/* ---- the graph ---- */

/* A ChaCha20 keystream read 8 bytes at a time: the graph's draws. */
struct draw_stream {
	uint8_t key[SECAGG_KEY_BYTES];
	uint32_t block;
	uint8_t buf[64];
	unsigned pos;
};

/* The next 64 bits of the stream. */
static uint64_t
draw_u64(struct draw_stream *d)
{
	static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
	if (d->pos == 0 || d->pos >= sizeof d->buf) {
		memset(d->buf, 0, sizeof d->buf);
		crypto_stream_chacha20_ietf_xor_ic(
		    d->buf, d->buf, sizeof d->buf, nonce, d->block++, d->key);
		d->pos = 0;
	}
	uint64_t v = (uint64_t)get_u32(d->buf + d->pos) |
	             (uint64_t)get_u32(d->buf + d->pos + 4) << 32;
	d->pos += 8;
	return v;
}

/* Uniform in [0, m), m > 0, without modulo bias (draws above the last
 * whole multiple of m are drawn again). */
static uint64_t
draw_below(struct draw_stream *d, uint64_t m)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % m;
	uint64_t v;
	do
		v = draw_u64(d);
	while (v >= limit);
	return v % m;
}

/* qsort order of uint32s. */
static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The degree a graph of n clients gets when k neighbours are asked. */
static uint32_t
graph_degree(uint32_t k, uint32_t n)
{
	if (k >= n - 1)
		return n - 1;
	if (k % 2 == 1 && n % 2 == 1)
		return k + 1;
	return k;
}

/* Check p for a round of n clients whose graph has degree deg. */
static int
check_params(const struct secagg_params *p, uint32_t n, uint32_t deg,
             struct ipc_error *err)
{
	if (p->k < 1)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: k = 0 neighbours: each client "
		                     "needs at least one");
	if (deg > SECAGG_MAX_DEGREE)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: degree %u over %d: shares are "
		                     "numbered by a byte; lower k",
		                     deg, SECAGG_MAX_DEGREE);
	if (p->threshold > deg || 2 * p->threshold <= deg)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "secagg: threshold t = %u with %u neighbours per client: t "
		    "must be more than half of them (so no server can get both "
		    "secrets of one client) and at most all, e.g. t = %u",
		    p->threshold, deg, deg / 2 + 1);
	if (p->bits < 1 || p->bits > 32)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: bits = %u: a quantised element "
		                     "has 1 to 32 bits",
		                     p->bits);
	uint64_t top = (UINT64_C(1) << p->bits) - 1;
	if ((uint64_t)n * top > UINT32_MAX) {
		unsigned b = 1;
		while (b < 32 && (uint64_t)n * ((UINT64_C(1) << (b + 1)) - 1) <=
		                     UINT32_MAX)
			b++;
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "secagg: %u clients of %u-bit elements can sum past 2^32 "
		    "(n (2^b - 1) must be below 2^32): use bits <= %u",
		    n, p->bits, b);
	}
	if (!(p->clip > 0) || !isfinite(p->clip))
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "secagg: clip R = %g: must be positive and "
		    "finite",
		    (double)p->clip);
	/* ChaCha20-IETF's block counter is 32 bits: 2^36 elements. */
	if (p->len < 1 || (uint64_t)p->len > (UINT64_C(1) << 36))
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: len = %zu elements: must be 1 to "
		                     "2^36",
		                     p->len);
	return 0;
}

/* The key of the graph's draws: the seed, round and ids hashed. */
static void
graph_key(uint8_t key[SECAGG_KEY_BYTES], const struct secagg_params *p,
          const uint32_t *ids, uint32_t n)
{
	crypto_generichash_state st;
	uint8_t b[8];
	crypto_generichash_init(&st, NULL, 0, SECAGG_KEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)LABEL_GRAPH,
	                          sizeof LABEL_GRAPH);
	crypto_generichash_update(&st, p->seed, sizeof p->seed);
	put_u64(b, p->round);
	crypto_generichash_update(&st, b, 8);
	put_u32(b, n);
	crypto_generichash_update(&st, b, 4);
	for (uint32_t i = 0; i < n; i++) {
		put_u32(b, ids[i]);
		crypto_generichash_update(&st, b, 4);
	}
	crypto_generichash_final(&st, key, SECAGG_KEY_BYTES);
}

/* Fill g->nb: place the clients on a ring in a seeded random order
 * (Fisher-Yates), join each to its degree/2 nearest on either side and,
 * for an odd degree, the one opposite; then sort each row. */
static void
graph_fill(struct secagg_graph *g, const struct secagg_params *p)
{
	uint32_t n = g->n, deg = g->degree;
	uint32_t *ring = xcalloc(n, sizeof *ring);
	struct draw_stream d = {0};
	graph_key(d.key, p, g->ids, n);
	for (uint32_t i = 0; i < n; i++)
		ring[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)draw_below(&d, (uint64_t)i + 1);
		uint32_t t = ring[i];
		ring[i] = ring[j];
		ring[j] = t;
	}
	for (uint32_t pos = 0; pos < n; pos++) {
		uint32_t *row = g->nb + (size_t)ring[pos] * deg, m = 0;
		for (uint32_t o = 1; o <= deg / 2; o++) {
			row[m++] = ring[(pos + o) % n];
			row[m++] = ring[(pos + n - o) % n];
		}
		if (deg % 2 == 1)
			row[m++] = ring[(pos + n / 2) % n];
		qsort(row, deg, sizeof *row, cmp_u32);
	}
	sodium_memzero(&d, sizeof d);
	free(ring);
}

int
secagg_graph_build(struct secagg_graph *g, const struct secagg_params *p,
                   const uint32_t *ids, uint32_t n, struct ipc_error *err)
{
	memset(g, 0, sizeof *g);
	if (crypto_ready(err) != 0)
		return -1;
	if (n < 2)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: %u client(s): a round needs at "
		                     "least 2",
		                     n);
	uint32_t deg = graph_degree(p->k, n);
	if (check_params(p, n, deg, err) != 0)
		return -1;
	uint32_t *sorted = xcalloc(n, sizeof *sorted);
	memcpy(sorted, ids, (size_t)n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_u32);
	for (uint32_t i = 1; i < n; i++)
		if (sorted[i] == sorted[i - 1]) {
			uint32_t twice = sorted[i];
			free(sorted);
			return ipc_error_set(
			    err, IPC_E_DUPLICATE,
			    "secagg: client %u is twice in the "
			    "round's list",
			    twice);
		}
	g->n = n;
	g->ids = sorted;
	g->degree = deg;
	g->nb = xcalloc((size_t)n * deg, sizeof *g->nb);
	graph_fill(g, p);
	return 0;
}

void
secagg_graph_free(struct secagg_graph *g)
{
	free(g->ids);
	free(g->nb);
	memset(g, 0, sizeof *g);
}

int64_t
secagg_graph_index(const struct secagg_graph *g, uint32_t id)
{
	const uint32_t *hit =
	    bsearch(&id, g->ids, g->n, sizeof *g->ids, cmp_u32);
	return hit == NULL ? -1 : hit - g->ids;
}

const uint32_t *
secagg_graph_row(const struct secagg_graph *g, uint32_t i)
{
	return g->nb + (size_t)i * g->degree;
}

/* The slot of client v in client u's row, or -1 when they are not
 * neighbours. The share v holds of u's secrets has x-coordinate slot+1. */
static int
graph_slot(const struct secagg_graph *g, uint32_t u, uint32_t v)
{
	const uint32_t *row = secagg_graph_row(g, u);
	const uint32_t *hit = bsearch(&v, row, g->degree, sizeof *row, cmp_u32);
	return hit == NULL ? -1 : (int)(hit - row);
}

/* ---- quantisation ---- */

double
secagg_quant_step(const struct secagg_params *p)
{
	double levels = (double)((UINT64_C(1) << p->bits) - 1);
	return 2.0 * (double)p->clip / levels;
}

void
secagg_quantise(const struct secagg_params *p, const float *x, uint32_t *q)
{
	double r = p->clip, top = (double)((UINT64_C(1) << p->bits) - 1);
	double scale = top / (2 * r); /* 1 / step, rounded once */
	for (size_t i = 0; i < p->len; i++) {
		double c = x[i];
		if (!(c >= -r)) /* NaN too */
			c = -r;
		if (c > r)
			c = r;
		double v = floor((c + r) * scale + 0.5);
		q[i] = (uint32_t)(v > top ? top : v);
	}
}

void
secagg_dequantise(const struct secagg_params *p, const uint32_t *sum,
                  uint32_t m, double *out)
{
	double step = secagg_quant_step(p), off = (double)m * p->clip;
	for (size_t i = 0; i < p->len; i++)
		out[i] = (double)sum[i] * step - off;
}

double
secagg_quant_bound(const struct secagg_params *p, uint32_t m)
{
	return (double)m * (secagg_quant_step(p) / 2 + p->clip * 0x1p-48);
}

/* ---- keys ---- */

/* The key clients a and b share for one use (label): the X25519
 * agreement of one's secret key and the other's public key, hashed
 * (BLAKE2b) with the label, the round's seed and number, and both ids
 * and public keys in id order. 0, or -1 when the peer's public key is a
 * low-order point (the agreement would be all zero). */
static int
pair_key(uint8_t out[SECAGG_KEY_BYTES], const char *label,
         const struct secagg_params *p, uint32_t my_id,
         const uint8_t my_sk[SECAGG_KEY_BYTES],
         const uint8_t my_pk[SECAGG_KEY_BYTES], uint32_t peer_id,
         const uint8_t peer_pk[SECAGG_KEY_BYTES])
{
	uint8_t dh[SECAGG_KEY_BYTES], b[8];
	if (crypto_scalarmult(dh, my_sk, peer_pk) != 0)
		return -1;
	int mine_first = my_id < peer_id;
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, SECAGG_KEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)label,
	                          strlen(label) + 1);
	crypto_generichash_update(&st, p->seed, sizeof p->seed);
	put_u64(b, p->round);
	crypto_generichash_update(&st, b, 8);
	put_u32(b, mine_first ? my_id : peer_id);
	put_u32(b + 4, mine_first ? peer_id : my_id);
	crypto_generichash_update(&st, b, 8);
	crypto_generichash_update(&st, mine_first ? my_pk : peer_pk,
	                          SECAGG_KEY_BYTES);
	crypto_generichash_update(&st, mine_first ? peer_pk : my_pk,
	                          SECAGG_KEY_BYTES);
	crypto_generichash_update(&st, dh, sizeof dh);
	crypto_generichash_final(&st, out, SECAGG_KEY_BYTES);
	sodium_memzero(dh, sizeof dh);
	sodium_memzero(&st, sizeof st);
	return 0;
}

/* A fresh X25519 key pair. */
static void
key_pair(uint8_t sk[SECAGG_KEY_BYTES], uint8_t pk[SECAGG_KEY_BYTES])
{
	randombytes_buf(sk, SECAGG_KEY_BYTES);
	crypto_scalarmult_base(pk, sk);
}

/* Bytes of a sealed share's associated data. */
enum { AD_BYTES = sizeof LABEL_AD + SECAGG_SEED_BYTES + 8 + 4 + 4 };

/* The associated data of a share from one client to another: the label,
 * the round's seed and number, sender and recipient. A share opened under
 * any other round, sender or recipient fails its tag. */
static void
share_ad(uint8_t ad[AD_BYTES], const struct secagg_params *p, uint32_t from,
         uint32_t to)
{
	uint8_t *q = ad;
	memcpy(q, LABEL_AD, sizeof LABEL_AD);
	q += sizeof LABEL_AD;
	memcpy(q, p->seed, SECAGG_SEED_BYTES);
	q += SECAGG_SEED_BYTES;
	put_u64(q, p->round);
	put_u32(q + 8, from);
	put_u32(q + 12, to);
}

/* ---- the client ---- */

enum client_stage {
	CLIENT_KEYS,
	CLIENT_SHARED,
	CLIENT_MASKED,
	CLIENT_REVEALED
};

static const char *const client_stage_names[] = {
    "keys", "shares sent", "masked input sent", "revealed"};

/* A neighbour as a client sees it: keys advertised, shares received. */
struct client_peer {
	int advertised;
	struct secagg_pubkeys pub;
	int have;                             /* its shares came */
	uint8_t self_share[SECAGG_KEY_BYTES]; /* of its self-mask seed */
	uint8_t key_share[SECAGG_KEY_BYTES];  /* of its mask key */
};

struct secagg_client {
	struct secagg_params p;
	const struct secagg_graph *g;
	uint32_t me, id;
	enum client_stage stage;
	uint8_t mask_sk[SECAGG_KEY_BYTES];
	uint8_t share_sk[SECAGG_KEY_BYTES];
	struct secagg_pubkeys pub;
	uint8_t self_seed[SECAGG_KEY_BYTES]; /* b_u */
	struct client_peer *peer;            /* one per slot of its row */
};

/* 0 when c is at stage want, else -1 naming the call and the stage. */
static int
client_at(const struct secagg_client *c, enum client_stage want,
          const char *call, struct ipc_error *err)
{
	if (c->stage == want)
		return 0;
	return ipc_error_set(err, IPC_E_BAD_VALUE,
	                     "secagg: client %u: %s after '%s', expected "
	                     "after '%s'",
	                     c->id, call, client_stage_names[c->stage],
	                     client_stage_names[want]);
}

/* Move c on to stage next. */
static void
client_advance(struct secagg_client *c, enum client_stage next)
{
	log_debug("secagg: round %llu client %u: %s -> %s",
	          (unsigned long long)c->p.round, c->id,
	          client_stage_names[c->stage], client_stage_names[next]);
	c->stage = next;
}

struct secagg_client *
secagg_client_keys(const struct secagg_params *p, const struct secagg_graph *g,
                   uint32_t id, struct secagg_pubkeys *pub,
                   struct ipc_error *err)
{
	if (crypto_ready(err) != 0)
		return NULL;
	int64_t me = secagg_graph_index(g, id);
	if (me < 0) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "secagg: client %u is not in round %llu's list",
		              id, (unsigned long long)p->round);
		return NULL;
	}
	struct secagg_client *c = xcalloc(1, sizeof *c);
	c->p = *p;
	c->g = g;
	c->me = (uint32_t)me;
	c->id = id;
	c->stage = CLIENT_KEYS;
	key_pair(c->mask_sk, c->pub.mask);
	key_pair(c->share_sk, c->pub.share);
	c->peer = xcalloc(g->degree, sizeof *c->peer);
	*pub = c->pub;
	return c;
}

/* Split c's self-mask seed and mask key among the live slots (x = slot +
 * 1, the first nlive of xs), threshold t: shares[j] for live slot j. */
static void
client_split(struct secagg_client *c, uint8_t *xs, uint32_t nlive,
             uint8_t (*self_shares)[SECAGG_KEY_BYTES],
             uint8_t (*key_shares)[SECAGG_KEY_BYTES])
{
	uint8_t secret[SECAGG_KEY_BYTES];
	gfshare_ctx *ctx = gfshare_ctx_init_enc(
	    xs, nlive, (unsigned char)c->p.threshold, SECAGG_KEY_BYTES);
	if (ctx == NULL)
		fatal("secagg: libgfshare: out of memory");
	memcpy(secret, c->self_seed, sizeof secret);
	gfshare_ctx_enc_setsecret(ctx, secret);
	for (uint32_t j = 0; j < nlive; j++)
		gfshare_ctx_enc_getshare(ctx, (unsigned char)j, self_shares[j]);
	memcpy(secret, c->mask_sk, sizeof secret);
	gfshare_ctx_enc_setsecret(ctx, secret);
	for (uint32_t j = 0; j < nlive; j++)
		gfshare_ctx_enc_getshare(ctx, (unsigned char)j, key_shares[j]);
	sodium_memzero(secret, sizeof secret);
	/* gfshare_ctx_free overwrites what it held with random bytes. */
	gfshare_ctx_free(ctx);
}

/* Seal a client's two shares for neighbour peer_id into out. 0, or -1
 * when the neighbour's sharing key is unusable. */
static int
client_seal(struct secagg_client *c, uint32_t peer_id,
            const struct secagg_pubkeys *peer_pub,
            const uint8_t self_share[SECAGG_KEY_BYTES],
            const uint8_t key_share[SECAGG_KEY_BYTES], struct secagg_share *out,
            struct ipc_error *err)
{
	uint8_t key[SECAGG_KEY_BYTES], ad[AD_BYTES];
	uint8_t plain[2 * SECAGG_KEY_BYTES];
	if (pair_key(key, LABEL_SHARE, &c->p, c->id, c->share_sk, c->pub.share,
	             peer_id, peer_pub->share) != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: client %u's sharing key is a "
		                     "low-order point",
		                     peer_id);
	memcpy(plain, self_share, SECAGG_KEY_BYTES);
	memcpy(plain + SECAGG_KEY_BYTES, key_share, SECAGG_KEY_BYTES);
	share_ad(ad, &c->p, c->id, peer_id);
	out->from = c->id;
	out->to = peer_id;
	uint8_t *nonce = out->box;
	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out->box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL,
	    plain, sizeof plain, ad, sizeof ad, NULL, nonce, key);
	sodium_memzero(plain, sizeof plain);
	sodium_memzero(key, sizeof key);
	return 0;
}

int
secagg_client_shares(struct secagg_client *c, const struct secagg_pubkeys *keys,
                     const uint8_t *advertised, struct secagg_share *out,
                     struct ipc_error *err)
{
	if (client_at(c, CLIENT_KEYS, "shares", err) != 0)
		return -1;
	const struct secagg_graph *g = c->g;
	if (!advertised[c->me] ||
	    sodium_memcmp(&keys[c->me], &c->pub, sizeof c->pub) != 0)
		return ipc_error_set(err, IPC_E_SECAGG_AUTH,
		                     "secagg: client %u: the broadcast has "
		                     "other public keys for it than it sent",
		                     c->id);
	const uint32_t *row = secagg_graph_row(g, c->me);
	uint8_t xs[SECAGG_MAX_DEGREE];
	uint32_t slot_of[SECAGG_MAX_DEGREE], nlive = 0;
	for (uint32_t j = 0; j < g->degree; j++) {
		if (!advertised[row[j]])
			continue;
		c->peer[j].advertised = 1;
		c->peer[j].pub = keys[row[j]];
		xs[nlive] = (uint8_t)(j + 1);
		slot_of[nlive++] = j;
	}
	if (nlive < c->p.threshold)
		return ipc_error_set(
		    err, IPC_E_SECAGG_THRESHOLD,
		    "secagg: client %u: %u of its %u neighbours "
		    "advertised keys, below the threshold t = "
		    "%u",
		    c->id, nlive, g->degree, c->p.threshold);
	randombytes_buf(c->self_seed, sizeof c->self_seed);
	uint8_t(*self_shares)[SECAGG_KEY_BYTES] =
	    xcalloc(nlive, SECAGG_KEY_BYTES);
	uint8_t(*key_shares)[SECAGG_KEY_BYTES] =
	    xcalloc(nlive, SECAGG_KEY_BYTES);
	client_split(c, xs, nlive, self_shares, key_shares);
	int rc = (int)nlive;
	for (uint32_t i = 0; i < nlive && rc >= 0; i++) {
		uint32_t j = slot_of[i];
		if (client_seal(c, g->ids[row[j]], &c->peer[j].pub,
		                self_shares[i], key_shares[i], &out[i],
		                err) != 0)
			rc = -1;
	}
	sodium_memzero(self_shares, (size_t)nlive * SECAGG_KEY_BYTES);
	sodium_memzero(key_shares, (size_t)nlive * SECAGG_KEY_BYTES);
	free(self_shares);
	free(key_shares);
	if (rc >= 0)
		client_advance(c, CLIENT_SHARED);
	return rc;
}

int
secagg_client_receive(struct secagg_client *c, const struct secagg_share *s,
                      struct ipc_error *err)
{
	if (client_at(c, CLIENT_SHARED, "receive", err) != 0)
		return -1;
	if (s->to != c->id)
		return ipc_error_set(
		    err, IPC_E_SECAGG_AUTH,
		    "secagg: a share from client %u for client "
		    "%u was delivered to client %u",
		    s->from, s->to, c->id);
	int64_t from = secagg_graph_index(c->g, s->from);
	int j = from < 0 ? -1 : graph_slot(c->g, c->me, (uint32_t)from);
	if (j < 0 || !c->peer[j].advertised)
		return ipc_error_set(
		    err, IPC_E_SECAGG_AUTH,
		    "secagg: client %u got a share from client "
		    "%u, not a neighbour that advertised keys",
		    c->id, s->from);
	struct client_peer *peer = &c->peer[j];
	if (peer->have)
		return ipc_error_set(
		    err, IPC_E_DUPLICATE,
		    "secagg: client %u got a second share from "
		    "client %u",
		    c->id, s->from);
	uint8_t key[SECAGG_KEY_BYTES], ad[AD_BYTES];
	uint8_t plain[2 * SECAGG_KEY_BYTES];
	if (pair_key(key, LABEL_SHARE, &c->p, c->id, c->share_sk, c->pub.share,
	             s->from, peer->pub.share) != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: client %u's sharing key is a "
		                     "low-order point",
		                     s->from);
	share_ad(ad, &c->p, s->from, s->to);
	int bad = crypto_aead_xchacha20poly1305_ietf_decrypt(
	    plain, NULL, NULL,
	    s->box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    SECAGG_BOX_BYTES - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad,
	    sizeof ad, s->box, key);
	sodium_memzero(key, sizeof key);
	if (bad)
		return ipc_error_set(
		    err, IPC_E_SECAGG_AUTH,
		    "secagg: round %llu: the share from client %u to client %u "
		    "fails authentication (tampered with, replayed from "
		    "another "
		    "round, or sealed by or for another client)",
		    (unsigned long long)c->p.round, s->from, s->to);
	memcpy(peer->self_share, plain, SECAGG_KEY_BYTES);
	memcpy(peer->key_share, plain + SECAGG_KEY_BYTES, SECAGG_KEY_BYTES);
	sodium_memzero(plain, sizeof plain);
	peer->have = 1;
	return 0;
}

/* -1 with err when one of x's len elements is a NaN or an Inf. */
static int
check_finite(const float *x, size_t len, uint32_t id, struct ipc_error *err)
{
	for (size_t i = 0; i < len; i++)
		if (!isfinite(x[i]))
			return ipc_error_set(
			    err, IPC_E_NONFINITE,
			    "secagg: client %u: element %zu of "
			    "its update is %g; nothing masked",
			    id, i, (double)x[i]);
	return 0;
}

int
secagg_client_mask(struct secagg_client *c, const float *x, uint32_t *y,
                   struct ipc_error *err)
{
	if (client_at(c, CLIENT_SHARED, "mask", err) != 0)
		return -1;
	const struct secagg_graph *g = c->g;
	uint32_t have = 0;
	for (uint32_t j = 0; j < g->degree; j++)
		have += c->peer[j].have;
	if (have < c->p.threshold)
		return ipc_error_set(
		    err, IPC_E_SECAGG_THRESHOLD,
		    "secagg: client %u: shares came from %u of "
		    "its %u neighbours, below the threshold t "
		    "= %u: nothing masked",
		    c->id, have, g->degree, c->p.threshold);
	if (check_finite(x, c->p.len, c->id, err) != 0)
		return -1;
	secagg_quantise(&c->p, x, y);
	prg_apply(y, c->p.len, c->self_seed, +1);
	const uint32_t *row = secagg_graph_row(g, c->me);
	for (uint32_t j = 0; j < g->degree; j++) {
		if (!c->peer[j].have)
			continue;
		uint8_t seed[SECAGG_KEY_BYTES];
		if (pair_key(seed, LABEL_MASK, &c->p, c->id, c->mask_sk,
		             c->pub.mask, g->ids[row[j]],
		             c->peer[j].pub.mask) != 0)
			return ipc_error_set(
			    err, IPC_E_BAD_VALUE,
			    "secagg: client %u's mask key is a "
			    "low-order point",
			    g->ids[row[j]]);
		prg_apply(y, c->p.len, seed, row[j] > c->me ? +1 : -1);
		sodium_memzero(seed, sizeof seed);
	}
	sodium_memzero(c->self_seed, sizeof c->self_seed);
	sodium_memzero(c->mask_sk, sizeof c->mask_sk);
	client_advance(c, CLIENT_MASKED);
	return 0;
}

int
secagg_client_reveal(struct secagg_client *c, const uint8_t *survived,
                     struct secagg_reveal *out, struct ipc_error *err)
{
	if (client_at(c, CLIENT_MASKED, "reveal", err) != 0)
		return -1;
	if (!survived[c->me])
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "secagg: client %u is asked to reveal by a "
		    "list that says it dropped out",
		    c->id);
	const struct secagg_graph *g = c->g;
	const uint32_t *row = secagg_graph_row(g, c->me);
	uint32_t m = 0;
	for (uint32_t j = 0; j < g->degree; j++) {
		struct client_peer *peer = &c->peer[j];
		if (!peer->have)
			continue;
		struct secagg_reveal *r = &out[m++];
		r->holder = c->id;
		r->owner = g->ids[row[j]];
		r->kind = survived[row[j]] ? SECAGG_SELF_MASK : SECAGG_MASK_KEY;
		memcpy(r->share,
		       r->kind == SECAGG_SELF_MASK ? peer->self_share
		                                   : peer->key_share,
		       SECAGG_KEY_BYTES);
	}
	sodium_memzero(c->peer, (size_t)g->degree * sizeof *c->peer);
	client_advance(c, CLIENT_REVEALED);
	return (int)m;
}

void
secagg_client_free(struct secagg_client *c)
{
	if (c == NULL)
		return;
	sodium_memzero(c->peer, (size_t)c->g->degree * sizeof *c->peer);
	free(c->peer);
	sodium_memzero(c, sizeof *c);
	free(c);
}

/* ---- the server ---- */

enum server_stage {
	SERVER_KEYS,
	SERVER_SHARES,
	SERVER_MASKED,
	SERVER_REVEALS,
	SERVER_DONE
};

static const char *const server_stage_names[] = {
    "keys", "shares", "masked inputs", "reveals", "done"};

/* How far the server has seen a client get. */
enum client_reached {
	REACHED_NONE,
	REACHED_KEYS,
	REACHED_SHARES,
	REACHED_MASK
};

struct secagg_server {
	struct secagg_params p;
	const struct secagg_graph *g;
	enum server_stage stage;
	struct secagg_pubkeys *keys; /* n, by index */
	uint8_t *advertised;         /* n: keys came */
	uint8_t *reached;            /* n: enum client_reached */
	uint8_t *survived;           /* n: masked input came */
	uint8_t *answered;           /* n: reveals came */
	uint32_t *sum;               /* len: the masked inputs' sum */
	uint32_t masked;             /* masked inputs in sum */
	uint8_t *rev_have;           /* n x degree: owner's slot revealed */
	uint8_t *rev_share;          /* n x degree x 32: the revealed shares */
};

/* Move s to stage want from an earlier one (a no-op at want); -1 naming
 * the message when want has already closed. */
static int
server_enter(struct secagg_server *s, enum server_stage want, const char *what,
             struct ipc_error *err)
{
	if (s->stage > want)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: round %llu: %s after the %s "
		                     "stage closed (now: %s)",
		                     (unsigned long long)s->p.round, what,
		                     server_stage_names[want],
		                     server_stage_names[s->stage]);
	if (s->stage < want) {
		log_debug("secagg: round %llu server: %s -> %s",
		          (unsigned long long)s->p.round,
		          server_stage_names[s->stage],
		          server_stage_names[want]);
		s->stage = want;
	}
	return 0;
}

/* The index of client id in s's round, or -1 with err. */
static int64_t
server_index(const struct secagg_server *s, uint32_t id, const char *what,
             struct ipc_error *err)
{
	int64_t i = secagg_graph_index(s->g, id);
	if (i < 0)
		ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "secagg: round %llu: %s from client %u, not in the "
		    "round",
		    (unsigned long long)s->p.round, what, id);
	return i;
}

struct secagg_server *
secagg_server_new(const struct secagg_params *p, const struct secagg_graph *g,
                  struct ipc_error *err)
{
	if (crypto_ready(err) != 0 || check_params(p, g->n, g->degree, err))
		return NULL;
	struct secagg_server *s = xcalloc(1, sizeof *s);
	size_t n = g->n, deg = g->degree;
	s->p = *p;
	s->g = g;
	s->keys = xcalloc(n, sizeof *s->keys);
	s->advertised = xcalloc(n, 1);
	s->reached = xcalloc(n, 1);
	s->survived = xcalloc(n, 1);
	s->answered = xcalloc(n, 1);
	s->sum = xcalloc(p->len, sizeof *s->sum);
	s->rev_have = xcalloc(n * deg, 1);
	s->rev_share = xcalloc(n * deg, SECAGG_KEY_BYTES);
	return s;
}

int
secagg_server_keys(struct secagg_server *s, uint32_t id,
                   const struct secagg_pubkeys *pub, struct ipc_error *err)
{
	int64_t i = server_index(s, id, "keys", err);
	if (i < 0 || server_enter(s, SERVER_KEYS, "keys", err) != 0)
		return -1;
	if (s->advertised[i])
		return ipc_error_set(err, IPC_E_DUPLICATE,
		                     "secagg: client %u sent its keys twice",
		                     id);
	s->keys[i] = *pub;
	s->advertised[i] = 1;
	s->reached[i] = REACHED_KEYS;
	return 0;
}

const struct secagg_pubkeys *
secagg_server_broadcast(struct secagg_server *s, const uint8_t **advertised)
{
	if (s->stage < SERVER_SHARES)
		server_enter(s, SERVER_SHARES, "broadcast", NULL);
	*advertised = s->advertised;
	return s->keys;
}

int
secagg_server_shares(struct secagg_server *s, uint32_t id,
                     const struct secagg_share *shares, uint32_t count,
                     struct ipc_error *err)
{
	int64_t i = server_index(s, id, "shares", err);
	if (i < 0 || server_enter(s, SERVER_SHARES, "shares", err) != 0)
		return -1;
	if (s->reached[i] != REACHED_KEYS)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE, "secagg: client %u sent shares %s",
		    id,
		    s->reached[i] == REACHED_NONE ? "without keys" : "twice");
	const struct secagg_graph *g = s->g;
	const uint32_t *row = secagg_graph_row(g, (uint32_t)i);
	uint32_t live = 0;
	for (uint32_t j = 0; j < g->degree; j++)
		live += s->advertised[row[j]];
	if (count != live || live < s->p.threshold)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "secagg: client %u sent %u shares for its "
		                     "%u neighbours with keys (threshold %u)",
		                     id, count, live, s->p.threshold);
	uint8_t seen[SECAGG_MAX_DEGREE] = {0};
	for (uint32_t k = 0; k < count; k++) {
		int64_t to = secagg_graph_index(g, shares[k].to);
		int j = to < 0 ? -1 : graph_slot(g, (uint32_t)i, (uint32_t)to);
		if (shares[k].from != id || j < 0 || !s->advertised[to] ||
		    seen[j]++)
			return ipc_error_set(
			    err, IPC_E_MISMATCH,
			    "secagg: client %u sent a share from %u to %u: not "
			    "one each to its neighbours with keys",
			    id, shares[k].from, shares[k].to);
	}
	s->reached[i] = REACHED_SHARES;
	return 0;
}

int
secagg_server_masked(struct secagg_server *s, uint32_t id, const uint32_t *y,
                     struct ipc_error *err)
{
	int64_t i = server_index(s, id, "masked input", err);
	if (i < 0 || server_enter(s, SERVER_MASKED, "masked input", err) != 0)
		return -1;
	if (s->reached[i] != REACHED_SHARES)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "secagg: client %u sent a masked input %s", id,
		    s->reached[i] == REACHED_MASK ? "twice" : "without shares");
	for (size_t k = 0; k < s->p.len; k++)
		s->sum[k] += y[k];
	s->reached[i] = REACHED_MASK;
	s->survived[i] = 1;
	s->masked++;
	return 0;
}

const uint8_t *
secagg_server_survivors(struct secagg_server *s)
{
	if (s->stage < SERVER_REVEALS)
		server_enter(s, SERVER_REVEALS, "survivors", NULL);
	return s->survived;
}

/* Record one reveal of holder (index h): -1 unless it is a share h holds
 * of a neighbour that sent shares, of the kind the owner's fate asks for,
 * and the first of its slot. */
static int
server_take(struct secagg_server *s, uint32_t h, const struct secagg_reveal *r,
            struct ipc_error *err)
{
	const struct secagg_graph *g = s->g;
	int64_t o = secagg_graph_index(g, r->owner);
	int j = o < 0 ? -1 : graph_slot(g, (uint32_t)o, h);
	if (r->holder != g->ids[h] || j < 0 || s->reached[o] < REACHED_SHARES)
		return ipc_error_set(err, IPC_E_MISMATCH,
		                     "secagg: client %u revealed a share of "
		                     "client %u that it cannot hold",
		                     g->ids[h], r->owner);
	enum secagg_reveal_kind want =
	    s->survived[o] ? SECAGG_SELF_MASK : SECAGG_MASK_KEY;
	if (r->kind != want)
		return ipc_error_set(
		    err, IPC_E_MISMATCH,
		    "secagg: client %u revealed client %u's %s, "
		    "which it %s",
		    g->ids[h], r->owner,
		    r->kind == SECAGG_SELF_MASK ? "self-mask seed" : "mask key",
		    s->survived[o] ? "survived" : "dropped");
	size_t at = (size_t)o * g->degree + (size_t)j;
	if (s->rev_have[at])
		return ipc_error_set(err, IPC_E_DUPLICATE,
		                     "secagg: client %u revealed client %u's "
		                     "share twice",
		                     g->ids[h], r->owner);
	s->rev_have[at] = 1;
	memcpy(s->rev_share + at * SECAGG_KEY_BYTES, r->share,
	       SECAGG_KEY_BYTES);
	return 0;
}

int
secagg_server_reveal(struct secagg_server *s, uint32_t holder,
                     const struct secagg_reveal *r, uint32_t count,
                     struct ipc_error *err)
{
	int64_t h = server_index(s, holder, "reveals", err);
	if (h < 0 || server_enter(s, SERVER_REVEALS, "reveals", err) != 0)
		return -1;
	if (!s->survived[h] || s->answered[h])
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "secagg: client %u revealed %s", holder,
		                     s->answered[h] ? "twice"
		                                    : "without a masked input");
	for (uint32_t k = 0; k < count; k++)
		if (server_take(s, (uint32_t)h, &r[k], err) != 0)
			return -1;
	s->answered[h] = 1;
	return 0;
}

/* Rebuild owner o's secret from the first t revealed shares of its row
 * (what: its name, for the message). 0, or -1 when fewer than t came. */
static int
server_recover(const struct secagg_server *s, uint32_t o,
               uint8_t out[SECAGG_KEY_BYTES], const char *what,
               struct ipc_error *err)
{
	const struct secagg_graph *g = s->g;
	uint32_t t = s->p.threshold, have = 0, slot[SECAGG_MAX_DEGREE];
	uint8_t xs[SECAGG_MAX_DEGREE];
	for (uint32_t j = 0; j < g->degree; j++)
		if (s->rev_have[(size_t)o * g->degree + j]) {
			xs[have] = (uint8_t)(j + 1);
			slot[have++] = j;
		}
	if (have < t)
		return ipc_error_set(
		    err, IPC_E_SECAGG_THRESHOLD,
		    "secagg: round %llu: %u of client %u's %u neighbours "
		    "revealed shares of its %s, below the threshold t = %u: "
		    "the "
		    "sum cannot be unmasked",
		    (unsigned long long)s->p.round, have, g->ids[o], g->degree,
		    what, t);
	gfshare_ctx *ctx = gfshare_ctx_init_dec(xs, t, SECAGG_KEY_BYTES);
	if (ctx == NULL)
		fatal("secagg: libgfshare: out of memory");
	for (uint32_t k = 0; k < t; k++) {
		size_t at = (size_t)o * g->degree + slot[k];
		gfshare_ctx_dec_giveshare(ctx, (unsigned char)k,
		                          s->rev_share + at * SECAGG_KEY_BYTES);
	}
	gfshare_ctx_dec_extract(ctx, out);
	gfshare_ctx_free(ctx);
	return 0;
}

/* Cancel dropped client v's pairwise masks in the sum: rebuild its mask
 * key, check it against its public key, and undo the mask each surviving
 * neighbour u added (+ when v > u, - when v < u). */
static int
server_cancel_dropped(struct secagg_server *s, uint32_t v,
                      struct ipc_error *err)
{
	const struct secagg_graph *g = s->g;
	const uint32_t *row = secagg_graph_row(g, v);
	int any = 0;
	for (uint32_t j = 0; j < g->degree; j++)
		any |= s->survived[row[j]];
	if (!any)
		return 0;
	uint8_t sk[SECAGG_KEY_BYTES], pk[SECAGG_KEY_BYTES];
	if (server_recover(s, v, sk, "mask key", err) != 0)
		return -1;
	crypto_scalarmult_base(pk, sk);
	if (sodium_memcmp(pk, s->keys[v].mask, sizeof pk) != 0) {
		sodium_memzero(sk, sizeof sk);
		return ipc_error_set(
		    err, IPC_E_SECAGG_AUTH,
		    "secagg: round %llu: client %u's mask key "
		    "rebuilt from its shares is not the one it "
		    "advertised (a wrong share was revealed)",
		    (unsigned long long)s->p.round, g->ids[v]);
	}
	int rc = 0;
	for (uint32_t j = 0; j < g->degree && rc == 0; j++) {
		uint32_t u = row[j];
		if (!s->survived[u])
			continue;
		uint8_t seed[SECAGG_KEY_BYTES];
		if (pair_key(seed, LABEL_MASK, &s->p, g->ids[v], sk,
		             s->keys[v].mask, g->ids[u], s->keys[u].mask) != 0)
			rc = ipc_error_set(err, IPC_E_BAD_VALUE,
			                   "secagg: client %u's mask key is a "
			                   "low-order point",
			                   g->ids[u]);
		else
			prg_apply(s->sum, s->p.len, seed, v > u ? -1 : +1);
		sodium_memzero(seed, sizeof seed);
	}
	sodium_memzero(sk, sizeof sk);
	return rc;
}

int
secagg_server_unmask(struct secagg_server *s, double *sum, uint32_t *qsum,
                     uint32_t *survivors, struct ipc_error *err)
{
	if (server_enter(s, SERVER_REVEALS, "unmask", err) != 0)
		return -1;
	const struct secagg_graph *g = s->g;
	if (s->masked == 0)
		return ipc_error_set(err, IPC_E_SECAGG_THRESHOLD,
		                     "secagg: round %llu: no masked input came",
		                     (unsigned long long)s->p.round);
	for (uint32_t u = 0; u < g->n; u++) {
		if (s->survived[u]) {
			uint8_t seed[SECAGG_KEY_BYTES];
			if (server_recover(s, u, seed, "self-mask seed", err))
				return -1;
			prg_apply(s->sum, s->p.len, seed, -1);
			sodium_memzero(seed, sizeof seed);
		} else if (s->reached[u] == REACHED_SHARES) {
			if (server_cancel_dropped(s, u, err) != 0)
				return -1;
		}
	}
	server_enter(s, SERVER_DONE, "unmask", NULL);
	if (qsum != NULL)
		memcpy(qsum, s->sum, s->p.len * sizeof *qsum);
	secagg_dequantise(&s->p, s->sum, s->masked, sum);
	*survivors = s->masked;
	return 0;
}

void
secagg_server_free(struct secagg_server *s)
{
	if (s == NULL)
		return;
	size_t cells = (size_t)s->g->n * s->g->degree;
	sodium_memzero(s->rev_share, cells * SECAGG_KEY_BYTES);
	free(s->keys);
	free(s->advertised);
	free(s->reached);
	free(s->survived);
	free(s->answered);
	free(s->sum);
	free(s->rev_have);
	free(s->rev_share);
	free(s);
}

/* ---- a round in one process ---- */

/* A local round's parties and what travels between them. */
struct local_round {
	const struct secagg_params *p;
	struct secagg_graph g;
	struct secagg_server *s;
	struct secagg_client **c;    /* by index */
	enum secagg_dropout *drop;   /* by index */
	const float **x;             /* by index */
	struct secagg_share *shares; /* n x degree, by sender */
	uint32_t *nshares;           /* sealed per sender */
	struct secagg_costs costs;
	uint32_t stays; /* clients that stay to the end */
};

/* Stage 1: every client's keys to the server, and the broadcast. */
static int
local_keys(struct local_round *lr, struct ipc_error *err)
{
	double t0 = now_seconds();
	for (uint32_t i = 0; i < lr->g.n; i++) {
		struct secagg_pubkeys pub;
		lr->c[i] =
		    secagg_client_keys(lr->p, &lr->g, lr->g.ids[i], &pub, err);
		if (lr->c[i] == NULL ||
		    secagg_server_keys(lr->s, lr->g.ids[i], &pub, err) != 0)
			return -1;
	}
	lr->costs.keys_s = (now_seconds() - t0) / lr->g.n;
	return 0;
}

/* Stage 2: shares from every client that gets that far, each routed to
 * its recipient unless that one dropped after its keys. */
static int
local_shares(struct local_round *lr, struct ipc_error *err)
{
	const uint8_t *adv;
	const struct secagg_pubkeys *keys =
	    secagg_server_broadcast(lr->s, &adv);
	uint32_t n = lr->g.n, deg = lr->g.degree, senders = 0;
	double t0 = now_seconds();
	for (uint32_t i = 0; i < n; i++) {
		if (lr->drop[i] == SECAGG_DROPS_AFTER_KEYS)
			continue;
		struct secagg_share *out = lr->shares + (size_t)i * deg;
		int m = secagg_client_shares(lr->c[i], keys, adv, out, err);
		if (m < 0 || secagg_server_shares(lr->s, lr->g.ids[i], out,
		                                  (uint32_t)m, err) != 0)
			return -1;
		lr->nshares[i] = (uint32_t)m;
		senders++;
	}
	lr->costs.shares_s = senders ? (now_seconds() - t0) / senders : 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < lr->nshares[i]; k++) {
			const struct secagg_share *sh =
			    &lr->shares[(size_t)i * deg + k];
			uint32_t to =
			    (uint32_t)secagg_graph_index(&lr->g, sh->to);
			if (lr->drop[to] != SECAGG_DROPS_AFTER_KEYS &&
			    secagg_client_receive(lr->c[to], sh, err) != 0)
				return -1;
		}
	return 0;
}

/* Stage 3: the masked inputs of the clients that get that far. */
static int
local_mask(struct local_round *lr, struct ipc_error *err)
{
	uint32_t *y = xmalloc(lr->p->len * sizeof *y), maskers = 0;
	double spent = 0;
	int rc = 0;
	for (uint32_t i = 0; i < lr->g.n && rc == 0; i++) {
		if (lr->drop[i] != SECAGG_STAYS &&
		    lr->drop[i] != SECAGG_DROPS_AFTER_MASK)
			continue;
		double t0 = now_seconds();
		rc = secagg_client_mask(lr->c[i], lr->x[i], y, err);
		spent += now_seconds() - t0;
		maskers++;
		if (rc == 0)
			rc = secagg_server_masked(lr->s, lr->g.ids[i], y, err);
	}
	lr->costs.mask_s = maskers ? spent / maskers : 0;
	free(y);
	return rc;
}

/* Stage 4: reveals from the clients that stay, and the unmasking. */
static int
local_unmask(struct local_round *lr, double *sum, uint32_t *qsum,
             struct ipc_error *err)
{
	const uint8_t *survived = secagg_server_survivors(lr->s);
	struct secagg_reveal *r = xcalloc(lr->g.degree, sizeof *r);
	double spent = 0;
	int rc = 0;
	size_t revealed = 0;
	for (uint32_t i = 0; i < lr->g.n && rc == 0; i++) {
		if (lr->drop[i] != SECAGG_STAYS)
			continue;
		double t0 = now_seconds();
		int m = secagg_client_reveal(lr->c[i], survived, r, err);
		spent += now_seconds() - t0;
		rc = m < 0 ? -1
		           : secagg_server_reveal(lr->s, lr->g.ids[i], r,
		                                  (uint32_t)m, err);
		revealed += m < 0 ? 0 : (size_t)m;
	}
	free(r);
	if (rc != 0)
		return -1;
	lr->costs.reveal_s = lr->stays ? spent / lr->stays : 0;
	uint32_t m;
	double t0 = now_seconds();
	if (secagg_server_unmask(lr->s, sum, qsum, &m, err) != 0)
		return -1;
	lr->costs.unmask_s = now_seconds() - t0;
	/* Bytes of a client that stays, on average: up its keys, shares,
	 * masked input and reveals; down its neighbours' keys, the shares
	 * sealed to it and the survivors' list (a bit per client). */
	size_t shares_sent = 0,
	       up_reveals = lr->stays ? revealed / lr->stays : 0;
	for (uint32_t i = 0; i < lr->g.n; i++)
		if (lr->drop[i] == SECAGG_STAYS)
			shares_sent += lr->nshares[i];
	shares_sent = lr->stays ? shares_sent / lr->stays : 0;
	lr->costs.bytes_up =
	    sizeof(struct secagg_pubkeys) + shares_sent * SECAGG_SHARE_WIRE +
	    lr->p->len * sizeof(uint32_t) + up_reveals * SECAGG_REVEAL_WIRE;
	lr->costs.bytes_down =
	    (size_t)lr->g.degree * (4 + sizeof(struct secagg_pubkeys)) +
	    shares_sent * SECAGG_SHARE_WIRE + (lr->g.n + 7) / 8;
	return 0;
}

/* Put the caller's per-id inputs and fates in index order. */
static void
local_place(struct local_round *lr, const uint32_t *ids, const float *const *x,
            const enum secagg_dropout *drop)
{
	for (uint32_t i = 0; i < lr->g.n; i++) {
		uint32_t at = (uint32_t)secagg_graph_index(&lr->g, ids[i]);
		lr->x[at] = x[i];
		lr->drop[at] = drop != NULL ? drop[i] : SECAGG_STAYS;
		lr->stays += lr->drop[at] == SECAGG_STAYS;
	}
}

int
secagg_run_local(const struct secagg_params *p, const uint32_t *ids, uint32_t n,
                 const float *const *x, const enum secagg_dropout *drop,
                 double *sum, uint32_t *qsum, struct secagg_costs *costs,
                 struct ipc_error *err)
{
	struct local_round lr = {.p = p};
	if (secagg_graph_build(&lr.g, p, ids, n, err) != 0)
		return -1;
	int rc = -1;
	lr.s = secagg_server_new(p, &lr.g, err);
	lr.c = xcalloc(n, sizeof *lr.c);
	lr.drop = xcalloc(n, sizeof *lr.drop);
	lr.x = xcalloc(n, sizeof *lr.x);
	lr.shares = xcalloc((size_t)n * lr.g.degree, sizeof *lr.shares);
	lr.nshares = xcalloc(n, sizeof *lr.nshares);
	local_place(&lr, ids, x, drop);
	if (lr.s != NULL && local_keys(&lr, err) == 0 &&
	    local_shares(&lr, err) == 0 && local_mask(&lr, err) == 0 &&
	    local_unmask(&lr, sum, qsum, err) == 0)
		rc = 0;
	if (rc == 0 && costs != NULL)
		*costs = lr.costs;
	for (uint32_t i = 0; i < n; i++)
		secagg_client_free(lr.c[i]);
	secagg_server_free(lr.s);
	free(lr.c);
	free(lr.drop);
	free(lr.x);
	free(lr.shares);
	free(lr.nshares);
	secagg_graph_free(&lr.g);
	return rc;
}
