"""jobrun.py: run one command the way a benchmark needs it: wall time, the
CPU of its whole process tree (wait4 rusage, which counts every descendant
that was waited for), the CPU other users burned meanwhile (/proc/stat), and
optionally the peak summed memory of its process tree (a /proc poller)."""

import json
import os
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / TICK


def _tree(root):
    """Pids of root and its descendants, from the ppid of every /proc entry."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _memory_kb(pid):
    """(Pss kB, True) from smaps_rollup, else (VmRSS kB, False); None if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]), True
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]), False
    except OSError:
        pass
    return None


def machine_used_kb():
    """MemTotal - MemAvailable: memory in use machine-wide, one atomic read
    (reclaimable page cache counts as available, /dev/shm as used)."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0])
    return info["MemTotal"] - info["MemAvailable"]


class MemorySampler(threading.Thread):
    """Poll the tree of root every interval; keep the peak of summed memory.
    Reading every process's smaps_rollup takes time (long for processes of
    gigabytes), so one sum mixes moments; the machine-wide use above its
    level at the start (machine_kb) is read at once and bounds it."""

    def __init__(self, root, interval=0.02):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_kb = 0
        self.peak_procs = 0
        self.samples = 0
        self.used_pss = True
        self.base_kb = machine_used_kb()
        self.machine_kb = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            total, n = 0, 0
            for pid in _tree(self.root):
                m = _memory_kb(pid)
                if m is None:
                    continue
                total += m[0]
                n += 1
                self.used_pss = self.used_pss and m[1]
            self.samples += 1
            self.machine_kb = max(self.machine_kb,
                                  machine_used_kb() - self.base_kb)
            if total > self.peak_kb:
                self.peak_kb, self.peak_procs = total, n
            self.stop.wait(self.interval)


def run(argv, sample_memory=False, cwd=None):
    """Run argv to completion (stdout captured). Returns a dict: rc, wall,
    tree_cpu (user+sys of argv and all its waited-for descendants), foreign_cpu
    (busy CPU seconds of the machine not ours), output, and with
    sample_memory: peak_kb, peak_procs, samples, pss (False = RSS fallback),
    machine_kb (peak machine-wide use above the start)."""
    busy0 = busy_seconds()
    t0 = time.perf_counter()
    # Through a forking sh: an exec'd process inherits the peak RSS of the
    # image it replaced (ru_maxrss survives execve), and Python's ~20 MB
    # would otherwise show up as the orchestrator's peak RSS.
    argv = ["/bin/sh", "-c", '"$@"; exit $?', "sh"] + list(argv)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=cwd)
    sampler = None
    if sample_memory:
        sampler = MemorySampler(p.pid)
        sampler.start()
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()),
                              daemon=True)
    reader.start()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    busy1 = busy_seconds()
    cpu = ru.ru_utime + ru.ru_stime
    res = {
        "rc": p.returncode,
        "wall": wall,
        "tree_cpu": cpu,
        "foreign_cpu": max(0.0, (busy1 - busy0) - cpu),
        "output": chunks[0].decode(errors="replace") if chunks else "",
    }
    if sampler:
        sampler.stop.set()
        sampler.join()
        res.update(peak_kb=sampler.peak_kb, peak_procs=sampler.peak_procs,
                   samples=sampler.samples, pss=sampler.used_pss,
                   machine_kb=sampler.machine_kb)
    return res


def workspace_of(output):
    """The workspace path from the orchestrator's final 'done:' line."""
    for line in output.splitlines():
        if line.startswith("done:") and "workspace " in line:
            return line.rsplit("workspace ", 1)[1].strip()
    raise RuntimeError("no workspace in the job's output:\n" + output[-2000:])


def load_job(ws):
    """summary.json and the metrics of a workspace: (summary, rounds, tasks)
    where rounds[r][key] and tasks[(r, task)][key] hold the values."""
    with open(os.path.join(ws, "results", "summary.json")) as f:
        summary = json.load(f)
    rounds, tasks = {}, {}
    with open(os.path.join(ws, "metrics", "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            r = m.get("round")
            if "task" in m:
                t = tasks.setdefault((r, m["task"]), {})
                t[m["key"]] = m["value"]
                t["time_" + m["key"]] = m["time"]
            else:
                rounds.setdefault(r, {})[m["key"]] = m["value"]
    return summary, rounds, tasks
