"""shm_ab.py: the shared-memory transport of two builds side by side, in one
sitting: the orchestration cost of 1,000 small tasks (spawn and a pool of
100 tasks per worker, training off) and the gpt2-large exchange (synthetic
model, 6 clients, 3 rounds, shm transport, 3 workers at once). Runs
alternate between the builds, repeat by repeat, so both see the same noise.

    python3 tools/bench/shm_ab.py LABEL=ROOT LABEL=ROOT [--repeats N]
                                  [--large-repeats N]

Each ROOT is a checkout with a Release build in ROOT/build-release (e.g. a
`git worktree` of the commit before). Prints one table per suite."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobrun  # noqa: E402


def shmem_kb():
    """Shared memory in use on the machine (/proc/meminfo Shmem: /dev/shm
    files and memfds alike)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1])
    return 0


class ShmemPeak(threading.Thread):
    """Peak Shmem above the start while a job runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.base = shmem_kb()
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, shmem_kb() - self.base)
            self.stop.wait(0.02)


def job(root, counts, sets, sample_memory=False):
    """One job of the build under root; the jobrun result plus summary,
    rounds and the Shmem peak."""
    ws = tempfile.mkdtemp(prefix="cohort-ab-")
    argv = [os.path.join(root, "build-release", "orchestrator",
                         "cohort-orchestrator")] + [str(c) for c in counts]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    argv += ["--workspace-root", ws]
    peak = ShmemPeak()
    peak.start()
    try:
        res = jobrun.run(argv, sample_memory=sample_memory)
        peak.stop.set()
        peak.join()
        if res["rc"] != 0:
            raise SystemExit("job failed: %s\n%s"
                             % (" ".join(argv), res["output"][-3000:]))
        w = jobrun.workspace_of(res["output"])
        res["summary"], res["rounds"], _ = jobrun.load_job(w)
        res["shmem_kb"] = peak.peak
        return res
    finally:
        shutil.rmtree(ws, ignore_errors=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def overhead(builds, repeats):
    print("\n== 1,000 tasks of 1,000 clients, 1 round, train.epochs=0, "
          "no central evaluation (median of %d)" % repeats)
    print("| build | mode | wall ms/task | round ms/task | orchestrator "
          "CPU ms/task |")
    print("|---|---|---|---|---|")
    got = {}
    for _ in range(repeats):
        for label, root in builds:
            for mode, tpw in (("spawn", 1), ("pool-100", 100)):
                sets = {"train.epochs": "0", "evaluate.central": "false",
                        "output.progress": "never",
                        "launcher.tasks_per_worker": str(tpw)}
                cfg = os.path.join(root, "configs", "fedavg-mlp.json")
                r = job(root, (1000, 1000, 1000, 1, "--config", cfg), sets)
                s = r["summary"]
                rd = list(r["rounds"].values())[0]
                got.setdefault((label, mode), []).append(
                    (s["wall_seconds"] / s["tasks"] * 1e3,
                     rd["round_seconds"] / rd["fit_ok"] * 1e3,
                     s["orchestrator_cpu_seconds"] / s["tasks"] * 1e3))
    for mode in ("spawn", "pool-100"):
        for label, _ in builds:
            v = got[(label, mode)]
            print("| %s | %s | %.3f | %.3f | %.3f |"
                  % (label, mode, med([x[0] for x in v]),
                     med([x[1] for x in v]), med([x[2] for x in v])))


def large(builds, repeats):
    print("\n== gpt2-large, 6 clients, 3 rounds, train.epochs=0, shm, "
          "3 workers at once (each run)")
    print("| build | round s | orchestrator peak GiB | all processes peak "
          "Pss GiB | shared memory peak GiB | job wall s |")
    print("|---|---|---|---|---|---|")
    sets = {"model.name": "synthetic", "model.preset": "gpt2-large",
            "train.epochs": "0", "transport.mode": "shm",
            "launcher.max_concurrent": "3", "output.progress": "never",
            "tracking.tensorboard": "false", "tracking.report": "false"}
    for _ in range(repeats):
        for label, root in builds:
            r = job(root, (6, 6, 6, 3), sets, sample_memory=True)
            times = [r["rounds"][k]["round_seconds"]
                     for k in sorted(r["rounds"])]
            print("| %s | %s | %.2f | %.2f | %.2f | %.1f |"
                  % (label, " / ".join("%.1f" % t for t in times),
                     r["summary"]["orchestrator_peak_rss_kb"] / 2**20,
                     r["peak_kb"] / 2**20, r["shmem_kb"] / 2**20,
                     r["wall"]), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs=2, metavar="LABEL=ROOT")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--large-repeats", type=int, default=1)
    a = ap.parse_args()
    builds = [tuple(b.split("=", 1)) for b in a.builds]
    overhead(builds, a.repeats)
    if a.large_repeats > 0:
        large(builds, a.large_repeats)


if __name__ == "__main__":
    main()
