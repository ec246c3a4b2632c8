"""large.py: the large-model benchmark (tools/bench/large.sh runs it).

Runs the synthetic model through the shm and stream transports and prints
a markdown table: orchestrator peak RSS (VmHWM, summary.json) and its ratio
to the model, the peak summed Pss of the whole process tree (jobrun.py's
poller), the peak of /dev/shm in use, mean round time and bytes moved per
second (global model out plus update back, per client task). Suites:

  exact    gpt2-small, 3 clients, 2 rounds, both transports: the two final
           models are equal byte for byte and equal the closed form of
           docs/large-models.md on sampled elements
  nvflare  gpt2-large, 6 clients, train.epochs=0, 3 rounds, both transports
           (launcher.max_concurrent 6, or the most the capacity check allows)
  clients  gpt2-small, shm, 10 and 100 sampled clients per round, 2 rounds
"""

import json
import os
import re
import shutil
import struct
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobrun  # noqa: E402

GIB = 1024.0**3


def shm_used():
    """Bytes of shared memory in use on the machine now (Shmem of
    /proc/meminfo: memfds and /dev/shm files alike)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


class ShmSampler(threading.Thread):
    """Peak shared memory in use while a job runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, shm_used())
            self.stop.wait(0.02)


def job(build, root, clients, sampled, rounds, sets):
    """Run one job; returns (jobrun result, workspace, shared-memory peak
    bytes)."""
    argv = [os.path.join(build, "orchestrator", "cohort-orchestrator"),
            str(clients), str(sampled), str(sampled), str(rounds),
            "--workspace-root", root,
            "--set", "model.name=synthetic", "--set", "output.progress=never",
            "--set", "tracking.tensorboard=false",
            "--set", "tracking.report=false"]
    for s in sets:
        argv += ["--set", s]
    base = shm_used()
    shm = ShmSampler()
    shm.start()
    res = jobrun.run(argv, sample_memory=True)
    shm.stop.set()
    shm.join()
    ws = jobrun.workspace_of(res["output"]) if res["rc"] == 0 else None
    return res, ws, max(0, shm.peak - base)


def model_bytes(ws):
    """Size of the model's tensors (the safetensors payload)."""
    path = os.path.join(ws, "results", "global_model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
    return os.path.getsize(path) - 8 - n


def row(name, mode, k, res, ws, shm_peak, sampled):
    """One table row from a finished job."""
    summary, rounds, _ = jobrun.load_job(ws)
    model = model_bytes(ws)
    orss = summary["orchestrator_peak_rss_kb"] * 1024
    times = [rounds[r]["round_seconds"] for r in sorted(rounds)]
    mean = sum(times) / len(times)
    moved = 2.0 * model * sampled / mean
    return ("| %s | %s | %d | %.2f | %.2f (%.2fx) | %.2f | %.2f | %.2f | %s | "
            "%.2f | %.1f |"
            % (name, mode, k, model / GIB, orss / GIB, orss / model,
               res["peak_kb"] / 1024.0**2, res["machine_kb"] / 1024.0**2,
               shm_peak / GIB,
               " / ".join("%.1f" % t for t in times), moved / GIB,
               res["wall"]))


HEADER = ("| run | transport | concurrent | model GiB | orchestrator peak "
          "GiB (x model) | all processes peak Pss GiB | machine peak GiB "
          "| shared memory peak GiB "
          "| round s | GiB moved/s | job wall s |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
          "| --- |")


def closed_form_sampled(path, clients, rounds, stride):
    """Check every stride-th element (and each tensor's first and last)
    against the closed form; returns how many were checked."""
    def f32(x):
        return struct.unpack("<f", struct.pack("<f", x))[0]

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        body_at = 8 + n
        names = sorted((k for k in hdr if k != "__metadata__"),
                       key=lambda k: hdr[k]["data_offsets"][0])
        k0, checked = 0, 0
        for name in names:
            b, e = hdr[name]["data_offsets"]
            cnt = (e - b) // 4
            picks = sorted(set(list(range(0, cnt, stride)) + [cnt - 1]))
            for i in picks:
                f.seek(body_at + b + 4 * i)
                got = struct.unpack("<f", f.read(4))[0]
                k = k0 + i
                x = f32(((k * 2654435761) % 257 - 128) * 2.0**-9)
                for r in range(1, rounds + 1):
                    acc = wsum = 0.0
                    for c in clients:
                        d = (c + 1) * 2.0**-12 * (1 + (k + r) % 4)
                        acc += (c + 1) * f32(x + d)
                        wsum += c + 1
                    x = f32(acc / wsum)
                if got != x:
                    raise SystemExit("closed form: %s[%d] = %r, want %r"
                                     % (name, i, got, x))
                checked += 1
            k0 += cnt
    return checked


def fitting_concurrency(output):
    """The 'at most N' of a capacity error, or None."""
    m = re.search(r"fewer concurrent workers: at most (\d+)", output)
    return int(m.group(1)) if m else None


def suite_exact(build, tmp):
    paths = {}
    for mode in ("shm", "stream"):
        res, ws, _ = job(build, os.path.join(tmp, "exact-" + mode), 3, 3, 2,
                         ["model.preset=gpt2-small", "transport.mode=" + mode,
                          "launcher.max_concurrent=2"])
        if ws is None:
            raise SystemExit("exact %s failed:\n%s" % (mode, res["output"]))
        paths[mode] = os.path.join(ws, "results", "global_model.safetensors")
        print("exact %s: %.1f s" % (mode, res["wall"]), flush=True)
    with open(paths["shm"], "rb") as a, open(paths["stream"], "rb") as b:
        while True:
            x, y = a.read(1 << 24), b.read(1 << 24)
            if x != y:
                raise SystemExit("exact: shm and stream models differ")
            if not x:
                break
    n = closed_form_sampled(paths["shm"], [0, 1, 2], 2, 9973)
    print("exact: shm == stream byte for byte; closed form ok on %d "
          "sampled elements" % n, flush=True)
    shutil.rmtree(os.path.join(tmp, "exact-shm"))
    shutil.rmtree(os.path.join(tmp, "exact-stream"))


def suite_nvflare(build, tmp, rows):
    # (label, transport, extra settings): a process per task as the capacity
    # check allows, and the stream transport in a pool of two workers that
    # keep their model buffers for all their tasks (3 per round).
    runs = [("shm", "shm", []), ("stream", "stream", []),
            ("stream, pool", "stream", ["launcher.tasks_per_worker=9"])]
    for label, mode, extra in runs:
        k = 2 if extra else 6
        while True:
            root = os.path.join(tmp, "nvflare-" + mode)
            res, ws, shm = job(build, root, 6, 6, 3,
                               ["model.preset=gpt2-large", "train.epochs=0",
                                "transport.mode=" + mode,
                                "launcher.max_concurrent=%d" % k] + extra)
            if ws is not None:
                break
            fit = fitting_concurrency(res["output"])
            if fit is None or fit >= k:
                raise SystemExit("nvflare %s failed:\n%s"
                                 % (label, res["output"][-3000:]))
            print("nvflare %s: %d concurrent do not fit; the capacity "
                  "check allows %d" % (label, k, fit), flush=True)
            k = fit
            shutil.rmtree(root, ignore_errors=True)
        rows.append(row("gpt2-large, 6 clients", label, k, res, ws, shm, 6))
        print(rows[-1], flush=True)
        shutil.rmtree(root)


def suite_clients(build, tmp, rows):
    for n in (10, 100):
        root = os.path.join(tmp, "clients-%d" % n)
        res, ws, shm = job(build, root, n, n, 2,
                           ["model.preset=gpt2-small", "train.epochs=0",
                            "transport.mode=shm"])
        if ws is None:
            raise SystemExit("clients %d failed:\n%s"
                             % (n, res["output"][-3000:]))
        cpus = os.cpu_count() or 1
        rows.append(row("gpt2-small, %d sampled" % n, "shm", min(cpus, n),
                        res, ws, shm, n))
        print(rows[-1], flush=True)
        shutil.rmtree(root)


def main():
    build = sys.argv[1]
    suites = sys.argv[2:] or ["exact", "nvflare", "clients"]
    tmp = tempfile.mkdtemp(prefix="cohort-large-")
    rows = []
    try:
        for s in suites:
            if s == "exact":
                suite_exact(build, tmp)
            elif s == "nvflare":
                suite_nvflare(build, tmp, rows)
            elif s == "clients":
                suite_clients(build, tmp, rows)
            else:
                raise SystemExit("unknown suite " + s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rows:
        print()
        print(HEADER)
        print("\n".join(rows))


if __name__ == "__main__":
    main()
