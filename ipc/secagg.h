/* secagg.h: the cryptographic core of secure aggregation by pairwise
 * masking (Bonawitz et al. 2017, "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning") over the sparse neighbour graph of
 * SecAgg+ (Bell et al. 2020): a client adds to its quantised update a self
 * mask and one pairwise mask per neighbour, which cancel in the sum, and
 * Shamir-shares the seeds among its neighbours, so the server can remove
 * the masks of clients that drop out and learns the sum alone.
 *
 * A round, as the functions are called (docs/privacy.md, "Secure
 * aggregation (core)"); both sides first build the same secagg_graph:
 *   1. keys     client: secagg_client_keys, its two public keys to the
 *               server: secagg_server_keys; secagg_server_broadcast.
 *   2. shares   client: secagg_client_shares, one sealed share per
 *               neighbour: secagg_server_shares, then each share to its
 *               recipient: secagg_client_receive.
 *   3. masked   client: secagg_client_mask: secagg_server_masked.
 *   4. unmask   secagg_server_survivors to every survivor: secagg_client_
 *               reveal: secagg_server_reveal; secagg_server_unmask.
 * There are no messages or state files yet: the caller carries the
 * structs (secagg_run_local does it in one process, for tests). */
#ifndef COHORT_SECAGG_H
#define COHORT_SECAGG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum {
	SECAGG_KEY_BYTES = 32,  /* X25519 keys, ChaCha20 keys, mask seeds */
	SECAGG_SEED_BYTES = 32, /* the round's public seed */
	/* A share's x-coordinate is a byte (libgfshare): 1..255. */
	SECAGG_MAX_DEGREE = 255,
	/* A sealed share: XChaCha20-Poly1305 nonce (24), the shares of the
	 * self-mask seed and of the mask key (2 x 32), the tag (16). */
	SECAGG_BOX_BYTES = 24 + 2 * SECAGG_KEY_BYTES + 16,
	/* Bytes on a wire, before framing: from, to and the box; holder,
	 * owner, kind and the share. */
	SECAGG_SHARE_WIRE = 8 + SECAGG_BOX_BYTES,
	SECAGG_REVEAL_WIRE = 9 + SECAGG_KEY_BYTES,
};

/* What every party of a round agrees on before it starts. */
struct secagg_params {
	uint64_t round; /* bound into every derived key and sealed share */
	uint8_t seed[SECAGG_SEED_BYTES]; /* public; draws the graph */
	uint32_t k;         /* neighbours per client (>= n-1: everyone) */
	uint32_t threshold; /* t: neighbours' shares that recover a secret */
	uint32_t bits;      /* b: bits of a quantised element, 1..32 */
	float clip;         /* R: elements are clipped to [-R, R] */
	size_t len;         /* elements of an update */
};

/* The SecAgg+ neighbour graph: the clients on a ring in an order drawn
 * from the round's seed, each joined to its degree/2 nearest on either
 * side (a random Harary graph). Clients are named by index, their place
 * in ids. */
struct secagg_graph {
	uint32_t n;      /* clients of the round */
	uint32_t *ids;   /* their client ids, ascending */
	uint32_t degree; /* neighbours of every client */
	uint32_t *nb;    /* n rows of degree indices, each row ascending */
};

/* Build the graph of the clients ids[0..n) (any order, distinct) for a
 * round: the same on every side that has the same params and set of
 * ids. The degree is min(k, n-1), or k+1 when k and n are both odd (no
 * graph has an odd degree on an odd number of nodes). Checks params for
 * n clients (threshold: more than half the degree, at most all of it;
 * bits: n (2^b - 1) < 2^32, so the sum cannot wrap). 0, or -1 with err. */
int secagg_graph_build(struct secagg_graph *g, const struct secagg_params *p,
                       const uint32_t *ids, uint32_t n, struct ipc_error *err);
void secagg_graph_free(struct secagg_graph *g);
/* The index of client id, or -1 when it is not in the round. */
int64_t secagg_graph_index(const struct secagg_graph *g, uint32_t id);
/* Row i of the graph: degree indices. */
const uint32_t *secagg_graph_row(const struct secagg_graph *g, uint32_t i);

/* Quantisation: x clipped to [-R, R] maps to the nearest of the 2^b
 * levels q D - R, q = 0 .. 2^b - 1, step D = 2R / (2^b - 1). */
double secagg_quant_step(const struct secagg_params *p);
/* q[i] for p->len elements x[i] (NaN maps to -R; secagg_client_mask
 * refuses non-finite input before it gets here). */
void secagg_quantise(const struct secagg_params *p, const float *x,
                     uint32_t *q);
/* out[i] = sum[i] D - m R: the sum of m clients' quantised elements back
 * as the sum of their (clipped) values. */
void secagg_dequantise(const struct secagg_params *p, const uint32_t *sum,
                       uint32_t m, double *out);
/* How far secagg_dequantise's sum of m clients can be from the sum of
 * their clipped inputs: m D / 2 (each rounding moves an element by at most
 * half a step), plus m R 2^-48 for float64 rounding. */
double secagg_quant_bound(const struct secagg_params *p, uint32_t m);

/* A client's public keys of a round: for the pairwise mask seeds and for
 * sealing shares (both X25519). */
struct secagg_pubkeys {
	uint8_t mask[SECAGG_KEY_BYTES];
	uint8_t share[SECAGG_KEY_BYTES];
};

/* One client's shares for one neighbour, sealed to it. */
struct secagg_share {
	uint32_t from, to; /* client ids */
	uint8_t box[SECAGG_BOX_BYTES];
};

/* What a holder reveals of an owner's secrets in unmasking: the share of
 * the self-mask seed when the owner's masked input came, else the share
 * of its mask key. */
enum secagg_reveal_kind { SECAGG_SELF_MASK, SECAGG_MASK_KEY };
struct secagg_reveal {
	uint32_t holder, owner; /* client ids */
	uint8_t kind;           /* enum secagg_reveal_kind */
	uint8_t share[SECAGG_KEY_BYTES];
};

/* A client's side of one round: its secrets and its neighbours' shares.
 * It goes KEYS -> SHARED -> MASKED -> REVEALED, one call each (receive
 * while SHARED), and refuses a call out of order. */
struct secagg_client;

/* A client id of graph g, with fresh key pairs for the round; its public
 * keys into pub. g must outlive it. NULL with err when id is not in g. */
struct secagg_client *secagg_client_keys(const struct secagg_params *p,
                                         const struct secagg_graph *g,
                                         uint32_t id,
                                         struct secagg_pubkeys *pub,
                                         struct ipc_error *err);
/* Draw the self-mask seed, split it and the mask key into shares
 * (threshold t) among the neighbours that advertised keys (keys and
 * advertised: the server's broadcast, by index), and seal one for each
 * into out (room for g->degree). The number sealed, or -1 with err: fewer
 * than t neighbours advertised, the broadcast has other keys for this
 * client, or a neighbour's key is unusable. */
int secagg_client_shares(struct secagg_client *c,
                         const struct secagg_pubkeys *keys,
                         const uint8_t *advertised, struct secagg_share *out,
                         struct ipc_error *err);
/* Open a neighbour's share sealed to this client and keep it: 0, or -1
 * with err (IPC_E_SECAGG_AUTH: tampered, from another round, or sealed by
 * or for another client than it says; IPC_E_DUPLICATE: a second one). */
int secagg_client_receive(struct secagg_client *c, const struct secagg_share *s,
                          struct ipc_error *err);
/* y = quantise(x) + PRG(b_u) + sum over neighbours v whose shares came of
 * +PRG(s_uv) (v > u) or -PRG(s_uv) (v < u), mod 2^32, for p->len
 * elements. -1 with err when x has a NaN or Inf, or fewer than t
 * neighbours' shares came. The client's own secrets are wiped after. */
int secagg_client_mask(struct secagg_client *c, const float *x, uint32_t *y,
                       struct ipc_error *err);
/* Answer unmasking once: for each neighbour whose shares it holds, the
 * share of its self-mask seed if survived[index] (its masked input came),
 * else of its mask key, into out (room for g->degree). The number, or -1
 * with err when survived does not list this client itself. */
int secagg_client_reveal(struct secagg_client *c, const uint8_t *survived,
                         struct secagg_reveal *out, struct ipc_error *err);
/* Wipe and free (NULL is fine). */
void secagg_client_free(struct secagg_client *c);

/* The server's side of one round: the public keys, who got how far, the
 * running sum of masked inputs and the revealed shares. Its stages (keys,
 * shares, masked inputs, reveals, done) close in order: a message of a
 * closed stage is refused. */
struct secagg_server;

/* A server for graph g (which must outlive it); NULL with err. */
struct secagg_server *secagg_server_new(const struct secagg_params *p,
                                        const struct secagg_graph *g,
                                        struct ipc_error *err);
/* Record client id's public keys. */
int secagg_server_keys(struct secagg_server *s, uint32_t id,
                       const struct secagg_pubkeys *pub, struct ipc_error *err);
/* Close the key stage: every client's keys by index, and in *advertised
 * which ones sent them; what every client gets for secagg_client_shares. */
const struct secagg_pubkeys *
secagg_server_broadcast(struct secagg_server *s, const uint8_t **advertised);
/* Record that client id sealed its shares: count of them, one to each
 * neighbour that advertised keys (the caller then routes each to its
 * recipient). */
int secagg_server_shares(struct secagg_server *s, uint32_t id,
                         const struct secagg_share *shares, uint32_t count,
                         struct ipc_error *err);
/* Add client id's masked input (p->len elements) to the sum. */
int secagg_server_masked(struct secagg_server *s, uint32_t id,
                         const uint32_t *y, struct ipc_error *err);
/* Close the masked stage: survived[index] for every client, what the
 * server sends with its unmasking request. */
const uint8_t *secagg_server_survivors(struct secagg_server *s);
/* Record a surviving holder's reveals (count of them). */
int secagg_server_reveal(struct secagg_server *s, uint32_t holder,
                         const struct secagg_reveal *r, uint32_t count,
                         struct ipc_error *err);
/* Remove every mask: each survivor's self mask from t shares of its seed,
 * and each dropped client's pairwise masks with its surviving neighbours
 * from its mask key rebuilt from t shares (checked against its public
 * key). sum: the dequantised sum, qsum (may be NULL): the sum of the
 * survivors' quantised inputs, p->len elements each; *survivors: their
 * number. -1 with err: IPC_E_SECAGG_THRESHOLD when fewer than t
 * neighbours of a client answered, IPC_E_SECAGG_AUTH when a rebuilt key
 * is not the client's. */
int secagg_server_unmask(struct secagg_server *s, double *sum, uint32_t *qsum,
                         uint32_t *survivors, struct ipc_error *err);
void secagg_server_free(struct secagg_server *s);

/* How far a client of secagg_run_local gets in the round. */
enum secagg_dropout {
	SECAGG_STAYS,              /* to the end */
	SECAGG_DROPS_AFTER_KEYS,   /* advertises keys, sends no shares */
	SECAGG_DROPS_AFTER_SHARES, /* sends shares, no masked input */
	SECAGG_DROPS_AFTER_MASK,   /* sends its masked input, never reveals */
};

/* What secagg_run_local measured: seconds (a client's: the mean over the
 * clients that did it) and bytes of a client that stays, both ways. */
struct secagg_costs {
	double keys_s, shares_s, mask_s, reveal_s, unmask_s;
	size_t bytes_up, bytes_down;
};

/* A whole round in one process, no messages: client ids[i] with input
 * x[i] behaves as drop[i] (NULL: everyone stays). sum, qsum (may be
 * NULL): as secagg_server_unmask; costs may be NULL. 0, or -1 with err
 * from the first call that failed. */
int secagg_run_local(const struct secagg_params *p, const uint32_t *ids,
                     uint32_t n, const float *const *x,
                     const enum secagg_dropout *drop, double *sum,
                     uint32_t *qsum, struct secagg_costs *costs,
                     struct ipc_error *err);

#endif
