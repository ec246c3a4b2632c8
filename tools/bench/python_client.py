"""python_client.py: the per-task cost of a user's own Python script as
the worker (worker.command, python/cohort) against the built-in worker, in
one sitting: N tasks of N clients in one round, training off (the
example's numpy update is a few additions; the built-in worker runs
train.epochs=0), no central evaluation, a process per task and a pool of
100 tasks per worker. Prints round ms per task (round_seconds / tasks),
whole-job wall and CPU of all processes per task, and peak memory of all
processes (Pss).

    python3 tools/bench/python_client.py [--tasks N] [--repeats R]

Uses build-release/ (./run.sh builds it) and Debian's /usr/bin/python3."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobrun  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORCH = os.path.join(REPO, "build-release", "orchestrator",
                    "cohort-orchestrator")
SCRIPT = os.path.join(REPO, "examples", "python-numpy", "train.py")


def job(worker, mode, n):
    root = tempfile.mkdtemp(prefix="cohort-pybench-")
    argv = [ORCH, str(n), str(n), str(n), "1", "--workspace-root", root,
            "--set", "output.progress=never", "--set", "train.epochs=0",
            "--set", "evaluate.central=false",
            "--set", "tracking.tensorboard=false",
            "--set", "tracking.report=false"]
    if worker == "python":
        argv += ["--set", "worker.command=/usr/bin/python3 " + SCRIPT]
    if mode == "pool-100":
        argv += ["--set", "launcher.tasks_per_worker=100"]
    if mode == "fork-server":
        argv += ["--set", "launcher.mode=fork-server"]
    try:
        res = jobrun.run(argv, sample_memory=True, cwd=REPO)
        if res["rc"] != 0:
            raise RuntimeError("%s %s: exit %d\n%s" % (
                worker, mode, res["rc"], res["output"][-2000:]))
        _, rounds, _ = jobrun.load_job(jobrun.workspace_of(res["output"]))
        res["round_ms"] = rounds[1]["round_seconds"] / n * 1e3
        return res
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    cases = [(w, m) for m in ("spawn", "fork-server", "pool-100")
             for w in ("built-in", "python")]
    runs = {c: [] for c in cases}
    for _ in range(a.repeats):  # alternate, so every case sees the noise
        for c in cases:
            runs[c].append(job(c[0], c[1], a.tasks))
    print("== %d tasks of %d clients, 1 round, training off, no central "
          "evaluation (median of %d)" % (a.tasks, a.tasks, a.repeats))
    print("| worker | mode | round ms/task | job wall ms/task | "
          "CPU ms/task (all processes) | peak Pss MiB |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        r = runs[c]
        med = lambda k: statistics.median(x[k] for x in r)  # noqa: E731
        print("| %s | %s | %.2f | %.2f | %.2f | %.0f |" % (
            c[0], c[1], med("round_ms"), med("wall") / a.tasks * 1e3,
            med("tree_cpu") / a.tasks * 1e3, med("peak_kb") / 1024))


if __name__ == "__main__":
    main()
