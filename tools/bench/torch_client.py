"""torch_client.py: examples/pytorch-mlp (a user's plain PyTorch script)
under cohort, in one sitting on this machine:

1. per-task cost with training off (train.epochs=0, no central
   evaluation, the second of two rounds): fork-server, a pool of 100 tasks per process
   (new processes, and torch imports, in round 2), a pool of 1,000 and
   fork-server children that serve 1,000 tasks each (round 2 imports
   nothing), and spawn (python and torch imported by every task), against the
   built-in worker spawned and forked;
2. `50 50 50 3` (the issue's run.sh line) in fork-server mode against the
   built-in worker: wall, CPU of all processes, peak memory of all
   processes (Pss), test accuracy;
3. the fork server's own memory over 1,000 tasks (Pss of the server
   process alone, sampled while it forks).

    /usr/bin/python3 tools/bench/torch_client.py [--tasks N] [--spawn-tasks N]
        [--repeats R] [--long-tasks N] [--part 1|2|3]

Uses build-release/ (./run.sh builds it), Debian's /usr/bin/python3 and
python3-torch."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobrun  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORCH = os.path.join(REPO, "build-release", "orchestrator",
                    "cohort-orchestrator")
EXAMPLE = os.path.join(REPO, "examples", "pytorch-mlp", "job.json")
QUIET = ["--set", "output.progress=never",
         "--set", "tracking.tensorboard=false",
         "--set", "tracking.report=false"]


def job(args, torch, mode, sample_memory=True, watch=None):
    root = tempfile.mkdtemp(prefix="cohort-torchbench-")
    argv = [ORCH] + [str(a) for a in args] + ["--workspace-root", root]
    argv += QUIET
    if torch:
        argv += ["--config", EXAMPLE]
    # mode: spawn, fork-server, pool-N, fork-server+pool-N
    argv += ["--set", "launcher.mode=" +
             ("fork-server" if mode.startswith("fork-server") else "spawn")]
    if "pool-" in mode:
        argv += ["--set", "launcher.tasks_per_worker=" +
                 mode.split("pool-")[1]]
    try:
        if watch is not None:
            watch.start()
        res = jobrun.run(argv, sample_memory=sample_memory, cwd=REPO)
        if watch is not None:
            watch.stop.set()
            watch.join()
        if res["rc"] != 0:
            raise RuntimeError("%s: exit %d\n%s" % (
                " ".join(argv), res["rc"], res["output"][-2000:]))
        summary, rounds, _ = jobrun.load_job(
            jobrun.workspace_of(res["output"]))
        res["rounds"] = rounds
        res["acc"] = summary.get("final_test_accuracy")
        return res
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _has_child(pid):
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            return True
    return False


class ServerWatch(threading.Thread):
    """Resident memory (VmRSS: every page it maps, whoever else shares
    it, so it does not move with the number of children as Pss does) of
    the fork server (the process running the example whose parent is the
    orchestrator), sampled every interval from its first child on."""

    def __init__(self, interval=0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples = []
        self.stop = threading.Event()

    def find(self):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    cmd = f.read()
                with open("/proc/%s/stat" % name) as f:
                    st = f.read()
                ppid = int(st[st.rindex(")") + 2:].split()[1])
                with open("/proc/%d/cmdline" % ppid, "rb") as f:
                    parent = f.read()
            except (OSError, ValueError):
                continue
            if b"pytorch-mlp/train.py" in cmd and \
                    b"cohort-orchestrator" in parent:
                return int(name)
        return None

    def run(self):
        pid, forking = None, False
        while not self.stop.is_set():
            pid = pid or self.find()
            forking = forking or (pid is not None and _has_child(pid))
            if forking:
                m = _rss_kb(pid)
                if m is None:
                    return
                self.samples.append(m)
            self.stop.wait(self.interval)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--spawn-tasks", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--long-tasks", type=int, default=1000)
    ap.add_argument("--part", choices=["all", "1", "2", "3"], default="all",
                    help="run one part only")
    a = ap.parse_args()
    off = ["--set", "train.epochs=0", "--set", "evaluate.central=false"]

    # 1. Per-task cost, training off.
    cases = [("built-in", "spawn", a.tasks), ("built-in", "fork-server", a.tasks),
             ("pytorch", "fork-server", a.tasks), ("pytorch", "pool-100", a.tasks),
             ("pytorch", "pool-1000", a.tasks),
             ("pytorch", "fork-server+pool-1000", a.tasks),
             ("pytorch", "spawn", a.spawn_tasks)]
    if a.part not in ("all", "1"):
        cases = []
    runs = {c: [] for c in cases}
    peak = {}
    # Timed without the memory poller (reading the smaps of processes
    # with torch's 1,700 mappings takes CPU from the job on two cores);
    # memory from one more run of each case, polled.
    for rep in range(a.repeats + 1):  # alternate: each case sees the noise
        for c in cases:
            n = c[2]
            r = job([n, n, n, 2] + off, c[0] == "pytorch", c[1],
                    sample_memory=rep == a.repeats)
            if rep == a.repeats:
                peak[c] = r["peak_kb"]
                continue
            r["round_ms"] = r["rounds"][2]["round_seconds"] / n * 1e3
            runs[c].append(r)
    if cases:
        per_task_table(cases, runs, peak, a.repeats)
    if a.part in ("all", "2"):
        full_run(a.repeats)
    if a.part in ("all", "3"):
        server_memory(a.long_tasks, off)


def per_task_table(cases, runs, peak, repeats):
    print("== per task, training off: N tasks of N clients, 2 rounds (the "
          "second one's ms/task: the fork server and the pool's processes "
          "started in the first), no central evaluation (median of %d)"
          % repeats)
    print("| worker | mode | tasks/round | round 2 ms/task | CPU ms/task "
          "(all processes, whole job) | peak Pss MiB (all processes) |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        r = runs[c]
        med = lambda k: statistics.median(x[k] for x in r)  # noqa: E731
        print("| %s | %s | %d | %.2f | %.2f | %.0f |" % (
            c[0], c[1], c[2], med("round_ms"),
            med("tree_cpu") / (2 * c[2]) * 1e3, peak[c] / 1024))


def full_run(repeats):
    """2. 50 50 50 3 with training."""
    full = {"built-in": [], "pytorch": []}
    full_peak = {}
    for rep in range(repeats + 1):
        for w in full:
            r = job([50, 50, 50, 3], w == "pytorch",
                    "fork-server" if w == "pytorch" else "spawn",
                    sample_memory=rep == a.repeats)
            if rep == a.repeats:
                full_peak[w] = r["peak_kb"]
            else:
                full[w].append(r)
    print()
    print("== 50 50 50 3, 1 epoch per fit, central evaluation each round; "
          "pytorch in fork-server mode, built-in spawned (median of %d; "
          "peak memory from one more run, polled)" % repeats)
    print("| worker | wall s | CPU s (all processes) | peak Pss MiB (all "
          "processes) | test accuracy |")
    print("|---|---|---|---|---|")
    for w, r in full.items():
        med = lambda k: statistics.median(x[k] for x in r)  # noqa: E731
        print("| %s | %.2f | %.2f | %.0f | %.4f |" % (
            w, med("wall"), med("tree_cpu"), full_peak[w] / 1024,
            med("acc")))


def server_memory(n, off):
    """3. The server's memory over many tasks."""
    watch = ServerWatch()
    r = job([n, n, n, 1] + off, True, "fork-server", sample_memory=False,
            watch=watch)
    s = watch.samples
    print()
    print("== the fork server's own resident memory (VmRSS) over %d tasks "
          "(training off), %d samples from its first child on"
          % (n, len(s)))
    if len(s) >= 4:
        q = len(s) // 4
        print("| first sample MiB | first quarter median | last quarter "
              "median | peak | last |")
        print("|---|---|---|---|---|")
        print("| %.1f | %.1f | %.1f | %.1f | %.1f |" % (
            s[0] / 1024, statistics.median(s[:q]) / 1024,
            statistics.median(s[-q:]) / 1024, max(s) / 1024, s[-1] / 1024))
    print("(job wall %.1f s, %.2f ms/task)" % (r["wall"],
                                              r["wall"] / n * 1e3))


if __name__ == "__main__":
    main()
