#!/usr/bin/env bash
# sweep.sh: submit a parameter sweep as one Slurm job array. SWEEP.json is a
# JSON list of objects, each a set of --set overrides for one run, e.g.
#   [{"data.alpha": 0.1}, {"data.alpha": 1.0, "train.lr": 0.05}]
# Task i of the array runs tools/slurm/cohort.sbatch with the job arguments
# plus entry i, in its own workspace slurm-<array job>_<i> (requeued and
# continued on pre-emption like any cohort.sbatch job).
#
#   tools/slurm/sweep.sh SWEEP.json [sbatch options ...] [-- JOB ARGUMENTS ...]
#   tools/slurm/sweep.sh sweeps/alpha.json --time=2:00:00 -- 100 100 20 10 --set data.partition=dirichlet
#
# Workspaces, the saved sweep (sweep-<array job>.json) and the output files
# (cohort-<array job>_<i>.out) go to $COHORT_SCRATCH (default ./workspaces).
# Gather the results with: tools/slurm/summary.sh <array job id>
# Build first (./run.sh with no job, or cmake --build build-release) so the
# array's tasks find the build up to date instead of each building it.
set -euo pipefail

home=$(cd "$(dirname "$0")/../.." && pwd)

usage() {
	sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	echo "sweep.sh: $*" >&2
	exit 2
}

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
sweep=$1
shift
[ -f "$sweep" ] || die "$sweep: no such file"
sbatch_opts=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	sbatch_opts+=("$1")
	shift
done
[ $# -eq 0 ] || shift
job_args=("$@")

# Check the sweep and write it back normalised; prints the number of entries.
root=${COHORT_SCRATCH:-$PWD/workspaces}
mkdir -p "$root"
root=$(cd "$root" && pwd)
checked=$(mktemp "$root/.sweep-XXXXXX")
trap 'rm -f "$checked"' EXIT
n=$(python3 - "$sweep" "$checked" <<'PY'
import json, sys
path, out = sys.argv[1], sys.argv[2]
try:
    entries = json.load(open(path))
except ValueError as e:
    sys.exit(f"sweep.sh: {path}: invalid JSON: {e}")
if not isinstance(entries, list) or not entries:
    sys.exit(f"sweep.sh: {path}: expected a non-empty JSON list of objects")
for i, e in enumerate(entries):
    if not isinstance(e, dict):
        sys.exit(f"sweep.sh: {path}: entry {i}: expected an object of key.path: value")
    for k, v in e.items():
        if "." not in k or not isinstance(v, (str, int, float, bool)):
            sys.exit(f"sweep.sh: {path}: entry {i}: {k}: expected \"section.key\": number, string or boolean")
json.dump(entries, open(out, "w"), indent=1)
print(len(entries))
PY
)

export COHORT_HOME=${COHORT_HOME:-$home} COHORT_SCRATCH=$root
# Held until the sweep is saved under the array's id, which its tasks read.
# Each task's output goes beside its workspace (cohort.sbatch's default).
id=$(sbatch --parsable --hold --array="0-$((n - 1))" \
	"${sbatch_opts[@]}" "$home/tools/slurm/cohort.sbatch" "${job_args[@]}")
id=${id%%;*}
mv "$checked" "$root/sweep-$id.json"
scontrol release "$id"
echo "sweep.sh: array job $id: $n tasks; workspaces $root/slurm-${id}_<task>"
echo "sweep.sh: results: $home/tools/slurm/summary.sh $id"
