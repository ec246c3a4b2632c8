/* strategy-fedavg.c: FedAvg, the weighted mean of the round's updates folded
 * into one float64 accumulator as they arrive (fedavg.c), and its FedProx
 * alias: the same aggregation, with train.mu > 0 sent to the workers, which
 * add the proximal term (mu / 2) |w - w_global|^2 to their local loss. */
#include "strategy.h"

/* New global model: sum(w * update) / sum(w), rounded to float32. */
static int
fedavg_finish_round(struct strategy *s, const void *global, void *out,
                    struct ipc_error *err)
{
	(void)global;
	(void)err;
	fedavg_finish(&s->acc, out);
	return 0;
}

const struct strategy_ops strategy_fedavg = {
    .name = "fedavg",
    .kind = STRATEGY_STREAM,
    .fold = strategy_fold_mean,
    .finish = fedavg_finish_round,
};

const struct strategy_ops strategy_fedprox = {
    .name = "fedprox",
    .kind = STRATEGY_STREAM,
    .fold = strategy_fold_mean,
    .finish = fedavg_finish_round,
};
