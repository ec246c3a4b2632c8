"""bench.py: cohort's benchmark suites (overhead, scaling, scale, fidelity,
standalone, engine, privacy, gpt2). Each suite runs real jobs of the release build, prints a table,
and writes SUITE.csv, SUITE.md (the same table in Markdown) and SUITE.svg into
the output directory. Started by tools/bench/run.sh, which builds first."""

import argparse
import csv
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobrun  # noqa: E402
import svgchart  # noqa: E402

# The tree to benchmark: run.sh points this at a snapshot with --snapshot.
ROOT = os.environ.get("COHORT_BENCH_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build-release")
ORCH = os.path.join(BUILD, "orchestrator", "cohort-orchestrator")
WORKER = os.path.join(BUILD, "worker", "cohort-worker")
CONFIG = os.path.join(ROOT, "configs", "fedavg-mlp.json")
CORES = os.cpu_count() or 1
# The same optimiser settings on both sides of every comparison.
TRAIN = {"train.lr": "0.01", "train.batch_size": "32",
         "train.momentum": "0.9", "output.progress": "never"}


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def p99(xs):
    """Nearest-rank 99th percentile (the maximum when there are < 100)."""
    s = sorted(xs)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)] if s else float("nan")


def job(counts, sets=None, via_runsh=False, sample_memory=False):
    """Run one federated job in a temporary workspace root; return the
    jobrun result with summary, rounds and tasks added. The workspace is
    removed afterwards."""
    opts = dict(TRAIN)
    opts.update(sets or {})
    wsroot = tempfile.mkdtemp(prefix="cohort-bench-")
    try:
        if via_runsh:
            argv = [os.path.join(ROOT, "run.sh")] + [str(c) for c in counts]
        else:
            argv = [ORCH] + [str(c) for c in counts] + ["--config", CONFIG]
        for k, v in opts.items():
            argv += ["--set", f"{k}={v}"]
        argv += ["--workspace-root", wsroot]
        res = jobrun.run(argv, sample_memory=sample_memory, cwd=ROOT)
        if res["rc"] != 0:
            raise RuntimeError(f"job failed (rc {res['rc']}): "
                               f"{' '.join(argv)}\n{res['output'][-3000:]}")
        ws = jobrun.workspace_of(res["output"])
        res["summary"], res["rounds"], res["tasks"] = jobrun.load_job(ws)
        return res
    finally:
        shutil.rmtree(wsroot, ignore_errors=True)


def emit(out, name, header, rows, title):
    """Print a table and write it as NAME.csv and NAME.md."""
    text = [[str(c) for c in header]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    print(f"\n== {title}")
    for r in text:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write("| " + " | ".join(text[0]) + " |\n")
        f.write("|" + "---|" * len(header) + "\n")
        for r in text[1:]:
            f.write("| " + " | ".join(r) + " |\n")


def fmt(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def progress(msg):
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def suite_overhead(out, repeats):
    """Orchestration cost per task with training off: spawn vs pool."""
    shapes = [("1000x1", (1000, 1000, 1000, 1)),
              ("100x10", (100, 100, 100, 10))]
    modes = [("spawn", 1), ("pool-25", 25), ("pool-100", 100)]
    off = {"train.epochs": "0", "evaluate.central": "false"}
    runs = {}
    for rep in range(repeats):
        for sname, counts in shapes:
            for mname, tpw in modes:
                progress(f"overhead {sname} {mname} repeat {rep + 1}")
                r = job(counts, dict(off, **{
                    "launcher.tasks_per_worker": str(tpw)}))
                runs.setdefault((sname, mname), []).append(r)
    rows = []
    for sname, counts in shapes:
        spawn_walls = [r["summary"]["wall_seconds"] / r["summary"]["tasks"]
                       for r in runs[(sname, "spawn")]]
        for mname, tpw in modes:
            rs = runs[(sname, mname)]
            wall = [r["summary"]["wall_seconds"] / r["summary"]["tasks"] * 1e3
                    for r in rs]
            per_round = [rd["round_seconds"] / rd["fit_ok"] * 1e3
                         for r in rs for rd in r["rounds"].values()]
            orch = [r["summary"]["orchestrator_cpu_seconds"] /
                    r["summary"]["tasks"] * 1e3 for r in rs]
            tree = [r["tree_cpu"] / r["summary"]["tasks"] * 1e3 for r in rs]
            # spawn/this ratio within each repeat (same minute, same noise)
            ratio = [s / (r["summary"]["wall_seconds"] / r["summary"]["tasks"])
                     for s, r in zip(spawn_walls, rs)]
            foreign = [r["foreign_cpu"] / (r["wall"] * CORES) * 100
                       for r in rs]
            rows.append([sname, mname, len(rs),
                         rs[0]["summary"]["workers_spawned"],
                         median(wall), median(per_round), p99(per_round),
                         median(orch), p99(orch), median(tree),
                         median(ratio), median(foreign),
                         "yes" if median(wall) < 2.0 else "NO"])
    header = ["shape", "mode", "runs", "workers", "wall_ms/task",
              "round_ms/task_med", "round_ms/task_p99", "orch_cpu_ms/task",
              "orch_cpu_ms/task_p99", "all_cpu_ms/task", "spawn/this",
              "others_cpu_%", "<2ms"]
    emit(out, "overhead", header, rows,
         "overhead: 1,000 tasks, train.epochs=0, no central evaluation")
    svgchart.bars(os.path.join(out, "overhead.svg"),
                  "Orchestration wall per task (median, training off)",
                  "ms per task", [s for s, _ in shapes], [m for m, _ in modes],
                  [[r[4] for r in rows if r[1] == m] for m, _ in modes],
                  target=2.0)


def suite_scaling(out, repeats):
    """Round wall, CPU efficiency and orchestrator RSS for 10..1000 clients,
    a process per task (spawn) and a pool of workers (100 tasks each)."""
    rows = []
    for n in (10, 100, 1000):
        for mname, tpw in (("spawn", 1), ("pool-100", 100)):
            rs = []
            for rep in range(repeats):
                progress(f"scaling {n} clients {mname} repeat {rep + 1}")
                rs.append(job((n, n, n, 3), {
                    "train.epochs": "1", "evaluate.central": "false",
                    "launcher.tasks_per_worker": str(tpw)}))
            rows.append([n, mname] + scaling_row(rs))
    header = ["clients", "mode", "samples/client", "rounds", "round_s_med",
              "round_s_max", "eff_train_cpu_%", "eff_whole_proc_%",
              "others_cpu_%", "orch_rss_kb_med", "orch_rss_kb_max",
              "fits_at_once", "train_loss_r3"]
    emit(out, "scaling", header, rows,
         f"scaling: MLP, IID, 1 epoch, all clients sampled, {CORES} cores")
    groups = [f"{r[0]} {r[1]}" for r in rows]
    svgchart.bars(os.path.join(out, "scaling.svg"),
                  f"CPU efficiency per round ({CORES} cores)", "% of cores",
                  groups, ["worker training CPU", "worker whole-process CPU",
                           "other users' CPU"],
                  [[r[6] for r in rows], [r[7] for r in rows],
                   [r[8] for r in rows]], target=80)


def scaling_row(rs):
    """The measured columns of one scaling configuration over its runs."""
    n = rs[0]["summary"]["history"][0]["sampled"]
    round_s, eff_train, parallel = [], [], []
    for r in rs:
        for rnd, rd in r["rounds"].items():
            ts = [t for (tr, _), t in r["tasks"].items() if tr == rnd]
            cpu = sum(t.get("cpu_seconds", 0.0) for t in ts)
            train = sum(t.get("seconds", 0.0) for t in ts)
            round_s.append(rd["round_seconds"])
            eff_train.append(cpu / (rd["round_seconds"] * CORES) * 100)
            # mean number of fits training at any moment of the round
            parallel.append(train / rd["round_seconds"])
    eff_whole = [(r["tree_cpu"] - r["summary"]["orchestrator_cpu_seconds"])
                 / (r["summary"]["wall_seconds"] * CORES) * 100 for r in rs]
    foreign = [r["foreign_cpu"] / (r["wall"] * CORES) * 100 for r in rs]
    rss = [r["summary"]["orchestrator_peak_rss_kb"] for r in rs]
    loss = [r["summary"]["history"][-1]["train_loss"] for r in rs]
    return [60000 // n, len(round_s), median(round_s), max(round_s),
            median(eff_train), median(eff_whole), median(foreign),
            int(median(rss)), max(rss), median(parallel), median(loss)]


# Modes of the scale suite: (name, launcher and output settings).
SCALE_MODES = [
    ("spawn", {"launcher.tasks_per_worker": "1"}),
    ("fork-server", {"launcher.tasks_per_worker": "1",
                     "launcher.mode": "fork-server"}),
    ("pool-100 sums off", {"launcher.tasks_per_worker": "100",
                           "launcher.partial_sums": "off"}),
    ("pool-100 sums on", {"launcher.tasks_per_worker": "100"}),
    ("fork-server+pool-100", {"launcher.tasks_per_worker": "100",
                              "launcher.mode": "fork-server"}),
]


def train_cpu(r, rnd):
    """Workers' training CPU of round rnd: the per-client lines, or the
    round's client_cpu_seconds_sum (output.client_metrics summary)."""
    rd = r["rounds"][rnd]
    if "client_cpu_seconds_sum" in rd:
        return rd["client_cpu_seconds_sum"]
    return sum(t.get("cpu_seconds", 0.0)
               for (tr, _), t in r["tasks"].items() if tr == rnd)


def suite_scale(out, repeats):
    """Issue 20's targets: training efficiency at 100 and 1,000 clients per
    round in every launch mode, 10,000 per round against the ideal, the
    orchestrator's peak RSS from 10 to 1,000,000 clients in the federation,
    and each mode's CPU per task with training off."""
    base = {"train.epochs": "1", "evaluate.central": "false",
            "output.client_metrics": "summary"}
    rows = []
    for n in (100, 1000):
        modes = SCALE_MODES + [("pool-100 sums on, all lines", {
            "launcher.tasks_per_worker": "100",
            "output.client_metrics": "all"})]
        for mname, sets in modes:
            eff, secs, cpu = [], [], []
            for rep in range(repeats):
                progress(f"scale {n}/round {mname} repeat {rep + 1}")
                r = job((n, n, n, 3), dict(base, **sets))
                for rnd, rd in r["rounds"].items():
                    c = train_cpu(r, rnd)
                    secs.append(rd["round_seconds"])
                    cpu.append(c / rd["fit_ok"] * 1e3)
                    eff.append(c / (rd["round_seconds"] * CORES) * 100)
            rows.append([n, 60000 // n, mname, len(secs), median(secs),
                         median(cpu), median(eff), max(eff)])
    emit(out, "scale_efficiency", ["clients/round", "samples/client", "mode",
                                   "rounds", "round_s_med",
                                   "train_cpu_ms/fit", "eff_train_%_med",
                                   "eff_train_%_max"], rows,
         f"scale: training efficiency, MLP, 1 epoch, all clients sampled, "
         f"{CORES} cores")

    rows = []
    big = dict(base, **{"data.samples_per_client": "60",
                        "launcher.tasks_per_worker": "100"})
    modes = dict(SCALE_MODES)
    modes["pool-1000 sums on"] = {"launcher.tasks_per_worker": "1000"}
    modes["fork-server+pool-1000"] = {"launcher.tasks_per_worker": "1000",
                                      "launcher.mode": "fork-server"}
    for mname in ("pool-100 sums on", "fork-server+pool-100",
                  "pool-1000 sums on", "fork-server+pool-1000"):
        sets = dict(big, **modes[mname])
        ratio, secs = [], []
        for rep in range(repeats):
            progress(f"scale 10,000/round {mname} repeat {rep + 1}")
            r = job((100000, 10000, 10000, 2), sets)
            for rnd, rd in r["rounds"].items():
                ideal = train_cpu(r, rnd) / CORES
                secs.append(rd["round_seconds"])
                ratio.append(rd["round_seconds"] / ideal)
        rows.append([100000, 10000, mname, len(secs), median(secs),
                     median(ratio), max(ratio),
                     "yes" if median(ratio) <= 1.25 else "NO"])
    emit(out, "scale_10k", ["federation", "clients/round", "mode", "rounds",
                            "round_s_med", "round/ideal_med",
                            "round/ideal_max", "<=1.25x"], rows,
         "scale: 10,000 clients per round of 60 samples (federation "
         "100,000, data.samples_per_client 60)")

    rows = []
    for fed in (10, 1000, 100000, 1000000):
        k = min(fed, 100)
        rss = []
        for rep in range(repeats):
            progress(f"scale RSS federation {fed} repeat {rep + 1}")
            r = job((fed, k, k, 2), dict(big))
            rss.append(r["summary"]["orchestrator_peak_rss_kb"])
        rows.append([fed, k, int(median(rss)), max(rss),
                     "yes" if max(rss) <= 20 * 1024 else "NO"])
    emit(out, "scale_rss", ["federation", "clients/round", "orch_rss_kb_med",
                            "orch_rss_kb_max", "<=20MB"], rows,
         "scale: orchestrator peak RSS by federation size (summary "
         "metrics, pool-100, 60 samples per client)")

    rows = []
    off = {"train.epochs": "0", "evaluate.central": "false",
           "output.client_metrics": "summary"}
    for mname, sets in SCALE_MODES:
        per = []
        for rep in range(repeats):
            progress(f"scale round trip {mname} repeat {rep + 1}")
            r = job((1000, 1000, 1000, 1), dict(off, **sets))
            per.append(r["tree_cpu"] / r["summary"]["tasks"] * 1e3)
        rows.append([mname, 1000, median(per), min(per)])
    emit(out, "scale_roundtrip", ["mode", "tasks", "all_cpu_ms/task_med",
                                  "all_cpu_ms/task_min"], rows,
         "scale: CPU per task with training off (orchestrator + worker + "
         "process start and exit), 1,000 tasks")


FIDELITY = [((10, 10, 10, 5), None), ((50, 50, 50, 3), 5.0),
            ((100, 100, 20, 3), 3.0)]


def suite_fidelity(out, repeats):
    """The README's jobs through run.sh: wall, peak memory, accuracy."""
    rows, curves = [], []
    for counts, target in FIDELITY:
        name = " ".join(map(str, counts))
        walls, inner = [], []
        for rep in range(repeats):
            progress(f"fidelity {name} timed repeat {rep + 1}")
            r = job(counts, via_runsh=True)
            walls.append(r["wall"])
            inner.append(r["summary"]["wall_seconds"])
        progress(f"fidelity {name} memory-sampled run")
        m = job(counts, via_runsh=True, sample_memory=True)
        hist = m["summary"]["history"]
        curves.append((name, [(h["round"], h["test_accuracy"]) for h in hist]))
        mib = m["peak_kb"] / 1024
        ok = (target is None or median(walls) < target) and mib < 1024
        rows.append([name, len(walls), median(walls), min(walls), max(walls),
                     median(inner), target if target else "-",
                     round(mib, 1), "Pss" if m["pss"] else "RSS",
                     m["peak_procs"], m["samples"],
                     " ".join(f"{h['test_accuracy']:.4f}" for h in hist),
                     "yes" if ok else "NO"])
    header = ["job", "runs", "wall_s_med", "wall_s_min", "wall_s_max",
              "orch_wall_s", "target_s", "peak_mem_MiB", "mem_kind",
              "procs_at_peak", "mem_samples", "test_acc_per_round", "targets"]
    emit(out, "fidelity", header, rows,
         "fidelity: ./run.sh jobs on a built tree (lr 0.01)")
    with open(os.path.join(out, "fidelity_rounds.csv"), "w") as f:
        f.write("job,round,test_accuracy\n")
        for name, pts in curves:
            for x, y in pts:
                f.write(f"{name},{x},{y}\n")
    svgchart.lines(os.path.join(out, "fidelity.svg"),
                   "Test accuracy per round (Fashion-MNIST, MLP, FedAvg)",
                   "round", "test accuracy", [c[0] for c in curves],
                   [c[1] for c in curves], ymin=0.7)


def suite_standalone(out, repeats):
    """Centralised MLP training vs FedAvg with one client, same epochs."""
    epochs = 5
    sa_argv = [WORKER, "--standalone", "--model", "mlp", "--epochs",
               str(epochs), "--lr", TRAIN["train.lr"], "--batch-size",
               TRAIN["train.batch_size"], "--momentum", TRAIN["train.momentum"]]
    fed_sets = {"train.epochs": "1", "evaluate.central": "true"}
    walls = {"standalone": [], "fedavg-orchestrator": [], "fedavg-run.sh": []}
    acc = {}
    ratios = {"fedavg-orchestrator": [], "fedavg-run.sh": []}
    for rep in range(repeats):
        progress(f"standalone repeat {rep + 1}")
        sa = jobrun.run(sa_argv, cwd=ROOT)
        if sa["rc"] != 0:
            raise RuntimeError("standalone failed:\n" + sa["output"])
        last = [ln for ln in sa["output"].splitlines()
                if re.match(r"\s*\d+\s", ln)][-1].split()
        acc["standalone"] = float(last[4])
        walls["standalone"].append(sa["wall"])
        for name, runsh in (("fedavg-orchestrator", False),
                            ("fedavg-run.sh", True)):
            r = job((1, 1, 1, epochs), fed_sets, via_runsh=runsh)
            walls[name].append(r["wall"])
            ratios[name].append(r["wall"] / sa["wall"])
            acc[name] = r["summary"]["final_test_accuracy"]
    rows = []
    for name, ws in walls.items():
        ratio = median(ratios[name]) if name in ratios else 1.0
        rows.append([name, len(ws), median(ws), min(ws), max(ws), ratio,
                     acc[name], "-" if name == "standalone" else
                     ("yes" if ratio <= 1.1 else "NO")])
    header = ["variant", "runs", "wall_s_med", "wall_s_min", "wall_s_max",
              "ratio_vs_standalone", "final_test_acc", "<=1.1x"]
    emit(out, "standalone", header, rows,
         f"standalone vs FedAvg 1 client: MLP, {epochs} epochs, lr "
         f"{TRAIN['train.lr']}, batch {TRAIN['train.batch_size']}, "
         "test pass every epoch")
    svgchart.bars(os.path.join(out, "standalone.svg"),
                  f"MLP, {epochs} epochs: standalone vs FedAvg(1 client)",
                  "wall seconds (median)", ["wall"], [r[0] for r in rows],
                  [[r[2]] for r in rows])


# docs/engine.md's accuracy table: (label, extra standalone arguments,
# epochs). Seed 1 and the defaults (sgd lr 0.01 momentum 0.9, batch 32)
# unless the arguments say otherwise.
ENGINE_RUNS = [
    ("mlp, sgd lr 0.01 momentum 0.9 (defaults)", [], 5),
    ("same, seed 2", ["--seed", "2"], 5),
    ("same, seed 3", ["--seed", "3"], 5),
    ("mlp, sgd lr 0.003 momentum 0.9", ["--lr", "0.003"], 5),
    ("mlp, adam lr 0.0005", ["--optimizer", "adam", "--lr", "0.0005"], 5),
    ("mlp, sgd lr 0.05 momentum 0", ["--lr", "0.05", "--momentum", "0"], 5),
    ("mlp, sgd lr 0.1 momentum 0", ["--lr", "0.1", "--momentum", "0"], 5),
    ("cnn, defaults", ["--model", "cnn"], 10),
]


def suite_engine(out, repeats):
    """The built-in engine alone (cohort-worker --standalone, one thread) on
    Fashion-MNIST: test accuracy after each epoch (deterministic for a seed,
    so run once) and the median epoch's time, samples/s and GFLOP/s."""
    rows = []
    for label, extra, epochs in ENGINE_RUNS:
        progress(f"engine: {label}")
        argv = [WORKER, "--standalone", "--epochs", str(epochs)] + extra
        if "--model" not in extra:
            argv += ["--model", "mlp"]
        r = jobrun.run(argv, cwd=ROOT)
        if r["rc"] != 0:
            raise RuntimeError(f"{label} failed:\n" + r["output"])
        lines = [ln.split() for ln in r["output"].splitlines()
                 if re.match(r"\s*\d+\s", ln)]
        acc = " ".join(f"{float(ln[4]):.4f}" for ln in lines)
        rows.append([label, epochs, acc,
                     median([float(ln[5]) for ln in lines]),
                     median([float(ln[6]) for ln in lines]),
                     median([float(ln[7]) for ln in lines])])
    header = ["run", "epochs", "test_accuracy_after_each_epoch",
              "s_per_epoch_med", "samples_per_s_med", "gflops_med"]
    emit(out, "engine", header, rows,
         "engine alone: cohort-worker --standalone on Fashion-MNIST, one "
         "thread")


# The privacy suite's federation: cross-device scale, where central DP
# pays (the noise of one round is divided by the clients in it).
DP_JOB = {"data.samples_per_client": "60", "launcher.tasks_per_worker": "100",
          "output.client_metrics": "summary", "strategy.weighting": "uniform",
          "train.lr": "0.05"}
DP_COUNTS = (10000, 1000, 1000, 30)
DP_CLIP = "0.1"


def suite_privacy(out, repeats):
    """Central DP (privacy.dp=central): MLP on Fashion-MNIST, a federation
    of 10,000 clients of 60 samples, 1,000 per round (q = 0.1), 30 rounds,
    uniform weights; final test accuracy and epsilon at delta 1e-5 for no
    DP, clipping alone and three noise levels. Accuracy only (one run
    each: the noise is fresh every run)."""
    rows, curves, names = [], [], []
    variants = [("no DP", None), ("clip only", "0"), ("noise 0.5", "0.5"),
                ("noise 1.0", "1.0"), ("noise 2.0", "2.0")]
    for label, noise in variants:
        progress(f"privacy: {label}")
        sets = dict(DP_JOB)
        if noise is not None:
            sets.update({"privacy.dp": "central", "privacy.clip_norm": DP_CLIP,
                         "privacy.noise_multiplier": noise})
        r = job(DP_COUNTS, sets)
        rounds = r["rounds"]
        last = max(rounds)
        eps = rounds[last].get("dp_epsilon") if noise is not None else None
        rows.append([label, noise if noise is not None else "-", DP_CLIP
                     if noise is not None else "-",
                     "inf" if noise == "0" else
                     (f"{eps:.2f}" if eps is not None else "-"),
                     r["summary"]["final_test_accuracy"], r["wall"]])
        names.append(label)
        curves.append([(k, rounds[k]["test_accuracy"]) for k in sorted(rounds)])
    header = ["variant", "noise_multiplier", "clip_norm", "epsilon_delta_1e-5",
              "final_test_acc", "wall_s"]
    emit(out, "privacy", header, rows,
         "central DP: MLP, 10,000 clients x 60 samples, 1,000 per round, "
         "30 rounds")
    svgchart.lines(os.path.join(out, "privacy.svg"),
                   "central DP: test accuracy per round", "round",
                   "test accuracy", names, curves)
    privacy_epsilon_chart(os.path.join(out, "privacy_epsilon.svg"), rows)


def privacy_epsilon_chart(path, rows):
    """Final accuracy against epsilon for the noisy rows of the privacy
    table, with the no-DP and clip-only accuracies as flat references."""
    noisy = [(float(r[3]), float(r[4])) for r in rows
             if r[3] not in ("-", "inf")]
    noisy.sort()
    lo, hi = noisy[0][0], noisy[-1][0]
    flat = {r[0]: float(r[4]) for r in rows if r[3] in ("-", "inf")}
    series = ["with noise"] + list(flat)
    points = [noisy] + [[(lo, v), (hi, v)] for v in flat.values()]
    ymin = round(min(y for pts in points for _, y in pts) - 0.05, 2)
    svgchart.lines(path, "central DP: final test accuracy against epsilon "
                   "(delta 1e-5)", "epsilon", "test accuracy", series, points,
                   ymin=ymin)


# The gpt2 suite's configs: (label, layers, heads, channels, vocab, B, T).
GPT2_CONFIGS = [
    ("tiny (0.6M)", 2, 4, 128, 512, 8, 64),
    ("gpt2 (124M)", 12, 12, 768, 50257, 4, 64),
]


def gpt2_line(argv):
    """Run one side of the gpt2 suite; its "key value ..." line as a dict."""
    r = jobrun.run(argv, cwd=ROOT)
    if r["rc"] != 0:
        raise RuntimeError("failed: " + " ".join(argv) + "\n" + r["output"])
    words = r["output"].split()
    return {words[i]: float(words[i + 1]) for i in range(0, len(words) - 1, 2)
            if words[i].isidentifier()}


def suite_gpt2(out, repeats):
    """The native GPT-2's training step (forward, backward, clipping,
    AdamW) against PyTorch running the same model, batch, sequence length
    and threads, alternated in one sitting; tokens/s and peak memory."""
    bench = os.path.join(BUILD, "worker", "cohort-gpt2-bench")
    script = os.path.join(ROOT, "tools", "bench", "torch_gpt2.py")
    rows = []
    for label, L, NH, C, V, B, T in GPT2_CONFIGS:
        for threads in (1, 2):
            args = [str(a) for a in (threads, L, NH, C, V, B, T)]
            ours, theirs = [], []
            for rep in range(repeats):
                progress(f"gpt2: {label}, {threads} thread(s), repeat {rep + 1}")
                ours.append(gpt2_line([bench, "--train"] + args))
                theirs.append(gpt2_line(["/usr/bin/python3", script] + args))
            tps = median([o["tokens_per_s"] for o in ours])
            ttps = median([t["tokens_per_s"] for t in theirs])
            o = ours[0]
            rows.append([label, threads, B, T, tps, ttps, tps / ttps,
                         max(x["peak_mib"] for x in ours),
                         max(x["peak_mib"] for x in theirs),
                         o["params_mib"] + o["grads_mib"] + o["adamw_mib"]
                         + o["activations_mib"]])
    header = ["model", "threads", "B", "T", "cohort_tokens_per_s",
              "torch_tokens_per_s", "ratio", "cohort_peak_mib",
              "torch_peak_mib", "cohort_parts_mib"]
    emit(out, "gpt2", header, rows,
         "GPT-2 training step (fwd + bwd + clip + AdamW): cohort vs PyTorch")


def machine(out):
    """One paragraph about the machine, also written to machine.txt."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    commit = os.environ.get("COHORT_BENCH_COMMIT", "working tree")
    text = (f"commit {commit}, cores {CORES}, {model}, memory {mem:.1f} GiB, kernel "
            f"{platform.release()}, load average at start {' '.join(load)}")
    print("machine: " + text)
    with open(os.path.join(out, "machine.txt"), "w") as f:
        f.write(text + "\n")


SUITES = {"overhead": suite_overhead, "scaling": suite_scaling,
          "scale": suite_scale,
          "fidelity": suite_fidelity, "standalone": suite_standalone,
          "engine": suite_engine, "privacy": suite_privacy,
          "gpt2": suite_gpt2}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(BUILD, "bench"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("suites", nargs="*")
    a = ap.parse_args()
    for s in a.suites:
        if s not in SUITES:
            ap.error(f"unknown suite '{s}' (known: {', '.join(SUITES)})")
    os.makedirs(a.out, exist_ok=True)
    machine(a.out)
    for s in a.suites or list(SUITES):
        SUITES[s](a.out, a.repeats)
    print(f"\nresults in {a.out}")


if __name__ == "__main__":
    main()
