#!/usr/bin/env bash
# summary.sh: one table of a sweep's results (tools/slurm/sweep.sh): per
# array task its entry, overrides, rounds done, final test accuracy, wall
# time over all its runs, runs (more than 1 after requeues) and status,
# gathered from each workspace's results/summary.json, checkpoints and the
# run records cohort.sbatch appends to slurm-runs.jsonl; or the same for one
# job (tools/slurm/cohort.sbatch), naming its workspace and output file.
#
#   tools/slurm/summary.sh [--json] ARRAY_JOB_ID   sweep-ID.json in $COHORT_SCRATCH (default ./workspaces)
#   tools/slurm/summary.sh [--json] JOB_ID         one job: slurm-ID and cohort-ID.out there
#   tools/slurm/summary.sh [--json] ARRAY_ID_TASK  one array task, e.g. 1234_2 (or the task's own job id)
#   tools/slurm/summary.sh [--json] DIR            the newest sweep-*.json in DIR, or DIR a job's workspace
#   tools/slurm/summary.sh [--json] FILE           a saved sweep-ID.json, or a job's cohort-ID.out
#
# A job id is looked up in $COHORT_SCRATCH (default ./workspaces) and, while
# Slurm still knows the job (scontrol), in the workspaces directory of its
# submit directory; an array task's own job id is found in its run records.
# Status: done, failed, usage-error, cancelled, pre-empted (requeued, not
# yet running again), running, pending (no workspace yet).
set -euo pipefail

usage() {
	sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

format=table
if [ "${1:-}" = --json ]; then
	format=json
	shift
fi
case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
"")
	usage >&2
	exit 2
	;;
esac

exec python3 - "$1" "$format" "${COHORT_SCRATCH:-$PWD/workspaces}" <<'PY'
import glob, json, os, re, shutil, subprocess, sys

target, fmt, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
JOB = r"\d+(?:_\d+)?"  # a job id, or an array task ARRAY_TASK


def die(msg):
    print(f"summary.sh: {msg}", file=sys.stderr)
    sys.exit(2)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runs(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def output_of(root, name):
    # Beside the workspaces (cohort.sbatch's default), else in the directory
    # summary.sh runs in (an older job's, or --output=cohort-%j.out).
    for d in (root, os.getcwd()):
        path = os.path.join(d, f"cohort-{name}.out")
        if os.path.isfile(path):
            return path
    return None


def status_of(ws, records, out):
    if not os.path.isdir(ws):
        if not out:
            return "pending"
        # Started, no workspace: the script's last word in its output.
        last = "running"
        try:
            with open(out, errors="replace") as f:
                for line in f:
                    m = re.match(r"cohort\.sbatch: job exited \d+ \(([a-z-]+)\)", line)
                    if m:
                        last = m.group(1)
        except OSError:
            pass
        return last
    if not records:
        return "running"
    status = records[-1]["status"]
    if status == "pre-empted" and os.path.exists(os.path.join(ws, "run", "orchestrator.pid")):
        status = "running"
    return status


def job_row(root, name):
    ws = os.path.join(root, f"slurm-{name}")
    out = output_of(root, name)
    summary = load(os.path.join(ws, "results", "summary.json"))
    state = load(os.path.join(ws, "checkpoints", "state.json"))
    config = load(os.path.join(ws, "config.json"))
    records = runs(os.path.join(ws, "slurm-runs.jsonl"))
    planned = config["federation"]["rounds"] if config else None
    done = summary["rounds"] if summary else (state["round"] if state else 0)
    accuracy = summary.get("final_test_accuracy") if summary else None
    wall = sum(r["end"] - r["start"] for r in records)
    if not records and summary:
        wall = summary.get("wall_seconds")
    return {
        "workspace": ws,
        "output": out,
        "rounds": done,
        "rounds_planned": planned,
        "final_test_accuracy": accuracy,
        "wall_seconds": wall,
        "runs": len(records),
        "status": status_of(ws, records, out),
    }


def cells(r):
    return [
        f"{r['rounds']}/{r['rounds_planned'] if r['rounds_planned'] is not None else '?'}",
        "-" if r["final_test_accuracy"] is None else f"{r['final_test_accuracy']:.4f}",
        "-" if r["wall_seconds"] is None else f"{r['wall_seconds']:.0f}",
        str(r["runs"]),
        r["status"],
    ]


def show(title, table):
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    print(title)
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def sweep_summary(sweep):
    root = os.path.dirname(os.path.abspath(sweep))
    array = re.fullmatch(r"sweep-(\d+)\.json", os.path.basename(sweep)).group(1)
    entries = load(sweep)
    if not isinstance(entries, list):
        die(f"{sweep}: not a sweep (a JSON list) written by tools/slurm/sweep.sh")
    rows = [{"entry": i, "overrides": e, **job_row(root, f"{array}_{i}")} for i, e in enumerate(entries)]
    if fmt == "json":
        json.dump({"array_job": array, "sweep": sweep, "tasks": rows}, sys.stdout, indent=1)
        print()
        sys.exit(0)
    table = [["entry", "overrides", "rounds", "accuracy", "wall_s", "runs", "status"]]
    for r in rows:
        table.append([str(r["entry"]), " ".join(f"{k}={v}" for k, v in r["overrides"].items())] + cells(r))
    show(f"array job {array} ({len(rows)} tasks, {root})", table)
    sys.exit(0)


def job_summary(root, name, job_id=None, slurm_state=None):
    row = job_row(root, name)
    if slurm_state and not os.path.isdir(row["workspace"]) and not row["output"]:
        row["status"] = slurm_state.lower()
    if fmt == "json":
        json.dump({"job": name, "job_id": job_id, **row}, sys.stdout, indent=1)
        print()
        sys.exit(0)
    where = f"workspace {row['workspace']}" + ("" if os.path.isdir(row["workspace"]) else " (none yet)")
    where += f", output {row['output']}" if row["output"] else ", no output file"
    show(f"job {name}: {where}", [["job", "rounds", "accuracy", "wall_s", "runs", "status"], [name] + cells(row)])
    sys.exit(0)


def slurm_job(job_id):
    # What Slurm knows of the job, if it still does (MinJobAge after its end).
    if not shutil.which("scontrol"):
        return {}
    try:
        text = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                              text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = text.splitlines()
    return dict(re.findall(r"(\w+)=(\S*)", lines[0])) if lines else {}


if os.path.isdir(target):
    d = os.path.abspath(target)
    sweeps = [p for p in glob.glob(os.path.join(d, "sweep-*.json"))
              if re.fullmatch(r"sweep-\d+\.json", os.path.basename(p))]
    if sweeps:
        sweep_summary(max(sweeps, key=os.path.getmtime))
    m = re.fullmatch(f"slurm-({JOB})", os.path.basename(d))
    if m:
        job_summary(os.path.dirname(d), m.group(1))
    die(f"{target}: no sweep-*.json (written by tools/slurm/sweep.sh) and not a job's workspace (slurm-ID)")
if os.path.isfile(target):
    base = os.path.basename(target)
    if re.fullmatch(r"sweep-\d+\.json", base):
        sweep_summary(target)
    m = re.fullmatch(f"cohort-({JOB})\\.out", base)
    if m:
        job_summary(os.path.dirname(os.path.abspath(target)), m.group(1))
    die(f"{target}: not a saved sweep-ID.json or a job's cohort-ID.out")
if not re.fullmatch(JOB, target):
    die(f"{target}: not a job id, an array task (ID_TASK), a directory or a file")

roots = [os.path.abspath(scratch)]
info = slurm_job(target)
if info.get("WorkDir"):
    roots.append(os.path.join(info["WorkDir"], "workspaces"))
roots = list(dict.fromkeys(roots))
names = [target]
if re.fullmatch(r"\d+", info.get("ArrayTaskId", "")):
    names.append(f"{info['ArrayJobId']}_{info['ArrayTaskId']}")
job_id = None if "_" in target else target
for root in roots:
    if os.path.isfile(os.path.join(root, f"sweep-{target}.json")):
        sweep_summary(os.path.join(root, f"sweep-{target}.json"))
    for name in names:
        if os.path.isdir(os.path.join(root, f"slurm-{name}")) or os.path.isfile(os.path.join(root, f"cohort-{name}.out")):
            job_summary(root, name, job_id)
for name in names:
    # Only an output file in this directory (an older job's, or --output=cohort-%j.out).
    if os.path.isfile(f"cohort-{name}.out"):
        job_summary(roots[0], name, job_id)
for root in roots:
    # An array task's own job id, in the records of its runs.
    for path in sorted(glob.glob(os.path.join(root, "slurm-*", "slurm-runs.jsonl"))):
        if any(str(r.get("job_id")) == target for r in runs(path)):
            job_summary(root, os.path.basename(os.path.dirname(path))[len("slurm-"):], job_id)
if info.get("JobState"):
    # Known to Slurm, nothing on disk yet: pending, or failed before it started.
    job_summary(roots[-1], names[-1], job_id, info["JobState"])
die(f"{target}: no sweep-{target}.json, slurm-{target} or cohort-{target}.out in {' or '.join(roots)}, "
    "and no run record of that job there; set COHORT_SCRATCH to the submission's (or pass that directory)")
PY
