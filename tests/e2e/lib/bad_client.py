#!/usr/bin/python3
"""A hostile or broken user script for tests/e2e/python_client.sh: client
BAD_CLIENT misbehaves as BAD says (raise, shape, name, nan, exit, nosend;
with launcher.mode fork-server also kill9: the child SIGKILLs itself,
killserver: it SIGKILLs its fork server, stdout: it prints to stdout);
every other client trains as examples/python-numpy/train.py does."""
import os
import sys

import numpy as np

import cohort

bad = os.environ.get("BAD", "")
bad_client = int(os.environ.get("BAD_CLIENT", "1"))

cohort.init()
while cohort.running():
    task = cohort.receive()
    if task is None:
        break
    if task.kind != "fit":
        cohort.send(num_examples=100, metrics={"loss": 0.1, "accuracy": 0.9})
        continue
    new = {k: v + 0.5 * ((task.client_id + 1) / 10.0 - v)
           for k, v in task.params.items()}
    if task.client_id == bad_client:
        first = sorted(new)[0]
        if bad == "raise":
            raise RuntimeError("client %d refuses to train" % task.client_id)
        if bad == "shape":
            new[first] = new[first].ravel()[:3]
        if bad == "name":
            new["no.such.tensor"] = new.pop(first)
        if bad == "nan":
            new[first] = new[first] * np.nan
        if bad == "exit":
            sys.exit(3)
        if bad == "nosend":
            continue
        if bad == "kill9":
            os.kill(os.getpid(), 9)
        if bad == "killserver":
            os.kill(os.getppid(), 9)
            os.kill(os.getpid(), 9)
        if bad == "stdout":
            print("client %d says hello on stdout" % task.client_id)
    cohort.send(new, num_examples=1 + task.client_id % 10,
                metrics={"loss": 0.5})
