/* strategy-fedavg.c: FedAvg, the weighted mean of the round's updates folded
 * into one float64 accumulator as they arrive (fedavg.c), and its FedProx
 * alias: the same aggregation, with train.mu > 0 sent to the workers, which
 * add the proximal term (mu / 2) |w - w_global|^2 to their local loss. */
#include "strategy.h"

const struct strategy_ops strategy_fedavg = {
    .name = "fedavg",
    .kind = STRATEGY_STREAM,
    .fold = strategy_fold_mean,
    .finish = strategy_finish_mean,
};

const struct strategy_ops strategy_fedprox = {
    .name = "fedprox",
    .kind = STRATEGY_STREAM,
    .fold = strategy_fold_mean,
    .finish = strategy_finish_mean,
};
