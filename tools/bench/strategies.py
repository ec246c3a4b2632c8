#!/usr/bin/env python3
"""strategies.py: the strategy comparison of docs/strategies.md. Runs
cohort-orchestrator once per strategy (or per NIID-Bench setting) on
Fashion-MNIST, 10 clients all sampled, reads each workspace's
results/summary.json and writes a CSV of test accuracy per round, an SVG
line chart and a markdown table.

    tools/bench/strategies.py compare  BUILD_DIR OUT_DIR [ROUNDS]
    tools/bench/strategies.py niid     BUILD_DIR OUT_DIR [ROUNDS]

ROUNDS is one number or one per setting ("10,5,5"). Every command line it
runs is printed and written to OUT_DIR/NAME.cmd; a setting whose workspace
under OUT_DIR/ws already finished that many rounds is read, not rerun."""

import json
import os
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svgchart  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
DIRICHLET = ["data.partition=dirichlet", "data.alpha=0.5"]

# compare: the MLP, 1 local epoch, SGD lr 0.01 momentum 0.9, batch 32.
COMPARE = [
    ("FedAvg", ["strategy.name=fedavg"]),
    ("FedProx", ["strategy.name=fedprox", "train.mu=0.01"]),
    ("FedAdam", ["strategy.name=fedadam", "strategy.eta=0.01"]),
    ("FedAvgM", ["strategy.name=fedavgm"]),
    ("cyclic", ["strategy.name=cyclic", "federation.min_fit=1"]),
    ("median", ["strategy.name=median"]),
]
# niid: NIID-Bench's simple CNN setting (10 local epochs, batch 64,
# SGD lr 0.01 momentum 0.9).
NIID_TRAIN = ["model.name=cnn", "train.epochs=10", "train.batch_size=64",
              "train.lr=0.01", "train.momentum=0.9"]
NIID = [
    ("FedAvg IID", ["strategy.name=fedavg", "data.partition=iid"]),
    ("FedAvg Dir(0.5)", ["strategy.name=fedavg"] + DIRICHLET),
    ("FedProx Dir(0.5)", ["strategy.name=fedprox", "train.mu=0.01"] +
     DIRICHLET),
]


def run(build, out, name, sets, rounds):
    """One job; returns (per-round test accuracy, seconds per round)."""
    slug = name.lower().replace(" ", "-").replace("(", "").replace(")", "")
    root = os.path.join(out, "ws", slug)
    cmd = [os.path.join(build, "orchestrator", "cohort-orchestrator"),
           "10", "10", "10", str(rounds),
           "--config", os.path.join(SRC, "configs", "fedavg-mlp.json"),
           "--workspace-root", root, "--set", "output.progress=never",
           "--set", "job.name=" + slug]
    for s in sets:
        cmd += ["--set", s]
    line = " ".join(shlex.quote(c) for c in cmd)
    print(line, flush=True)
    with open(os.path.join(out, slug + ".cmd"), "w") as f:
        f.write(line + "\n")
    done = finished(root, rounds)
    if done is None:
        subprocess.run(["nice", "-n", "10"] + cmd, check=True)
        done = finished(root, rounds)
    else:
        print("reusing", done, flush=True)
    with open(os.path.join(done, "results", "summary.json")) as f:
        summary = json.load(f)
    hist = summary["history"]
    return [h["test_accuracy"] for h in hist], summary["wall_seconds"] / rounds


def finished(root, rounds):
    """A workspace under root that completed rounds rounds, or None."""
    if not os.path.isdir(root):
        return None
    for ws in sorted(os.listdir(root), reverse=True):
        path = os.path.join(root, ws, "results", "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                if len(json.load(f)["history"]) == rounds:
                    return os.path.join(root, ws)
    return None


def cell(acc, r):
    """Accuracy after round r + 1, or "" past the end of that run."""
    return f"{acc[r]:.4f}" if r < len(acc) else ""


def main():
    mode, build, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rounds = [int(r) for r in sys.argv[4].split(",")] if len(
        sys.argv) > 4 else [10]
    os.makedirs(out, exist_ok=True)
    if mode == "compare":
        runs = [(n, DIRICHLET + s) for n, s in COMPARE]
        title = "FMNIST Dir(0.5), 10 clients, MLP, 1 epoch"
    else:
        runs = [(n, NIID_TRAIN + s) for n, s in NIID]
        title = "FMNIST, 10 clients, CNN, 10 epochs (NIID-Bench setting)"
    if len(rounds) == 1:
        rounds = rounds * len(runs)
    results = []
    for (name, sets), n in zip(runs, rounds):
        acc, secs = run(build, out, name, sets, n)
        results.append((name, acc, secs))
        print(name, " ".join(f"{a:.4f}" for a in acc), f"{secs:.1f} s/round",
              flush=True)
    with open(os.path.join(out, mode + ".csv"), "w") as f:
        f.write("round," + ",".join(n for n, _, _ in results) + "\n")
        for r in range(max(rounds)):
            f.write(f"{r + 1}," + ",".join(cell(a, r) for _, a, _ in
                                           results) + "\n")
    lo = min(min(a) for _, a, _ in results)
    svgchart.lines(os.path.join(out, mode + ".svg"), title, "round",
                   "test accuracy", [n for n, _, _ in results],
                   [list(enumerate(a, 1)) for _, a, _ in results],
                   ymin=max(0.0, int(lo * 10) / 10))
    print("\n| round | " + " | ".join(n for n, _, _ in results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for r in range(max(rounds)):
        print(f"| {r + 1} | " + " | ".join(cell(a, r) or "-" for _, a, _ in
                                           results) + " |")
    print("| s/round | " + " | ".join(f"{s:.1f}" for _, _, s in results) +
          " |")


if __name__ == "__main__":
    main()
