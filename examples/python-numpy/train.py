#!/usr/bin/python3
"""A user's own training script for cohort, in numpy: softmax regression
trained by SGD over the mlp's first layer is more than an example needs,
so this one does the smallest real thing: each fit moves every weight of
the global model a fixed step towards (client_id + 1) / 10 and reports
the size of the client's share of the data (task.partition(), cohort's own
split) as FedAvg's weight; each evaluation reports the mean distance of the
weights from 0.25 as its loss. The FedAvg of such updates is known exactly,
which is what tests/e2e/python_client.sh checks.

Run by a job with worker.command="/usr/bin/python3 examples/python-numpy/train.py"
(see job.json and README.md beside it).
"""
import os

import numpy as np

import cohort

STEP = float(os.environ.get("EXAMPLE_STEP", "0.5"))


def fit(task):
    target = (task.client_id + 1) / 10.0
    new = {}
    for name, w in task.params.items():
        new[name] = w + STEP * (target - w)
        cohort.log("distance", float(np.abs(new[name] - target).mean()),
                   step=1)
    return new


def main():
    cohort.init()
    while cohort.running():
        task = cohort.receive()
        if task is None:
            break
        if task.kind == "fit":
            # The client's share of the data, as cohort partitioned it:
            # what FedAvg weighs this update by.
            train, _ = task.partition()
            cohort.send(fit(task), num_examples=len(train),
                        metrics={"loss": 0.5})
        else:
            w = np.concatenate([a.ravel() for a in task.params.values()])
            loss = float(np.abs(w - 0.25).mean())
            cohort.send(num_examples=100,
                        metrics={"loss": loss, "accuracy": 1.0 / (1 + loss)})


if __name__ == "__main__":
    main()
