#!/usr/bin/env bash
# summary.sh: one table of a sweep's results (tools/slurm/sweep.sh): per
# array task its entry, overrides, rounds done, final test accuracy, wall
# time over all its runs, runs (more than 1 after requeues) and status,
# gathered from each workspace's results/summary.json, checkpoints and the
# run records cohort.sbatch appends to slurm-runs.jsonl.
#
#   tools/slurm/summary.sh [--json] ARRAY_JOB_ID   sweep-ID.json in $COHORT_SCRATCH (default ./workspaces)
#   tools/slurm/summary.sh [--json] DIR            the newest sweep-*.json in DIR
#   tools/slurm/summary.sh [--json] SWEEP_FILE     a saved sweep-ID.json
#
# Status: done, failed, usage-error, cancelled, pre-empted (requeued, not
# yet running again), running, pending (no workspace yet).
set -euo pipefail

usage() {
	sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
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
target=$1
if [ -d "$target" ]; then
	sweep=$(ls -t "$target"/sweep-*.json 2>/dev/null | head -1)
	[ -n "$sweep" ] || {
		echo "summary.sh: $target: no sweep-*.json (written by tools/slurm/sweep.sh)" >&2
		exit 2
	}
elif [ -f "$target" ]; then
	sweep=$target
elif [[ "$target" =~ ^[0-9]+$ ]]; then
	sweep=${COHORT_SCRATCH:-$PWD/workspaces}/sweep-$target.json
	[ -f "$sweep" ] || {
		echo "summary.sh: $sweep: not found; pass the directory holding the sweep (COHORT_SCRATCH of the submission)" >&2
		exit 2
	}
else
	echo "summary.sh: $target: not an array job id, a directory or a sweep file" >&2
	exit 2
fi

exec python3 - "$sweep" "$format" <<'PY'
import json, os, re, sys

sweep, fmt = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.abspath(sweep))
array = re.fullmatch(r"sweep-(\d+)\.json", os.path.basename(sweep)).group(1)


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


rows = []
for i, entry in enumerate(load(sweep)):
    ws = os.path.join(root, f"slurm-{array}_{i}")
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
    if not os.path.isdir(ws):
        status = "pending"
    elif not records:
        status = "running"
    else:
        status = records[-1]["status"]
        if status == "pre-empted" and os.path.exists(os.path.join(ws, "run", "orchestrator.pid")):
            status = "running"
    rows.append({
        "entry": i,
        "overrides": entry,
        "workspace": ws,
        "rounds": done,
        "rounds_planned": planned,
        "final_test_accuracy": accuracy,
        "wall_seconds": wall,
        "runs": len(records),
        "status": status,
    })

if fmt == "json":
    json.dump({"array_job": array, "sweep": sweep, "tasks": rows}, sys.stdout, indent=1)
    print()
    sys.exit(0)

table = [["entry", "overrides", "rounds", "accuracy", "wall_s", "runs", "status"]]
for r in rows:
    table.append([
        str(r["entry"]),
        " ".join(f"{k}={v}" for k, v in r["overrides"].items()),
        f"{r['rounds']}/{r['rounds_planned'] if r['rounds_planned'] is not None else '?'}",
        "-" if r["final_test_accuracy"] is None else f"{r['final_test_accuracy']:.4f}",
        "-" if r["wall_seconds"] is None else f"{r['wall_seconds']:.0f}",
        str(r["runs"]),
        r["status"],
    ])
widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
print(f"array job {array} ({len(rows)} tasks, {root})")
for row in table:
    print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
PY
