#!/usr/bin/env bash
# slurm.sh: the batch scripts of tools/slurm on a real single-node Slurm
# cluster (tools/slurm/cluster.sh, Debian's slurmctld/slurmd/munge) with the
# fake worker. Four jobs run side by side: one asks for a GPU
# (--gres=gpu:1), gets it and completes; one reaches its time limit, gets
# --signal=B:USR1, checkpoints, requeues itself and resumes until it
# completes with every round exactly once in metrics.jsonl; one, with the
# template's defaults (no GPU) and more CPUs than the machine has (capped),
# is scancel'ed and leaves no segment or worker behind; a 3-entry sweep runs
# as a job array and summary.sh gathers it. Without --output a job's output
# goes beside its workspace (cohort-<id>.out), as a sweep task's does, and
# summary.sh finds a single job by its id. Skipped (exit 77) when not root
# or when Slurm cannot be installed.
#
#   COHORT_BUILD_DIR=build COHORT_SOURCE_DIR=. bash tests/e2e/slurm.sh
set -euo pipefail
build=${COHORT_BUILD_DIR:?set COHORT_BUILD_DIR to a cohort build directory}
src=${COHORT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cluster=$src/tools/slurm/cluster.sh
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIPPED: not root (the test cluster's daemons run as root)"
	exit 77
fi
if ! out=$("$cluster" install 2>&1); then
	echo "SKIPPED: cannot install Slurm: $out"
	exit 77
fi

tmp=$(mktemp -d)
# Stop the cluster whatever happens; it cancels what is still queued.
cleanup() {
	"$cluster" down "$tmp/cluster" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
t0=$(date +%s)
# The CPUs a job can use here (its affinity; task/none binds nothing).
ncpu=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
# A port of its own, so a developer's cluster on the default one is left alone.
# More CPUs advertised than there are, so that a job can ask for too many.
COHORT_SLURM_PORT=${COHORT_SLURM_PORT:-6917} COHORT_SLURM_CPUS=$((ncpu + 16)) COHORT_SLURM_GPUS=4 \
	"$cluster" up "$tmp/cluster" >"$tmp/cluster.log" 2>&1 || fail "cluster did not come up: $(cat "$tmp/cluster.log")"
export SLURM_CONF=$tmp/cluster/slurm.conf
export COHORT_HOME=$src COHORT_SCRATCH=$tmp/ws
export COHORT_RUN=$build/orchestrator/cohort-orchestrator
fake=$build/tests/cohort-test-fake-worker
sbatch_script=$src/tools/slurm/cohort.sbatch
mkdir -p "$tmp/ws"
cd "$tmp"
common=(--set launcher.worker="$fake" --set output.progress=never)

# The state of job $1 (COMPLETED, RUNNING, PENDING, ...).
state() { scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
# Wait up to $3 seconds for job $1 to reach state $2.
wait_state() {
	local end=$(($(date +%s) + $3))
	while [ "$(state "$1")" != "$2" ]; do
		[ "$(date +%s)" -lt "$end" ] || fail "job $1 is $(state "$1") after $3 s, expected $2: $(cat "$tmp"/ws/cohort-"$1"*.out 2>/dev/null)"
		sleep 1
	done
}
# Worker processes whose environment names $1.
workers_of() { grep -l "$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true; }
# Shared-memory segments of the job keys logged in workspace $1.
segments_of() {
	for k in $(sed -n 's/.*job key \([0-9]*-[0-9a-f]*\),.*/\1/p' "$1"/logs/orchestrator.log 2>/dev/null); do
		ls /dev/shm | grep "^cohort\.$k\." || true
	done
}
# The round of workspace $1's last checkpoint (0 = none).
checkpointed() {
	python3 -c 'import json, sys
try:
    print(json.load(open(sys.argv[1]))["round"])
except (OSError, ValueError):
    print(0)' "$1/checkpoints/state.json"
}
# Statuses recorded by cohort.sbatch in workspace $1, one per run.
statuses() { sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p' "$1/slurm-runs.jsonl" 2>/dev/null || true; }

# 1. Time limit: 1 min with USR1 50 s before it, ~45 s of rounds. Slurm
# checks limits every 30 s, so USR1 comes 10-40 s into each run; the job is
# pre-empted at least once, and may be again after each requeue. Its own
# --output (kept, appended to by each run) and launcher.max_concurrent
# (after the derived one, so it wins; 4 at once whatever the machine).
pre=$(COHORT_FAKE_SLEEP_MS=1000 sbatch --parsable --cpus-per-task=4 --time=1 --signal=B:USR1@50 \
	--output="$tmp/ws/cohort-%j.out" "$sbatch_script" 4 4 4 45 --set evaluate.central=false "${common[@]}" \
	--set launcher.max_concurrent=4)
# 2. A small job that completes, with a GPU asked for as docs/hpc.md says.
ok=$(sbatch --parsable --cpus-per-task=1 --gres=gpu:1 "$sbatch_script" 4 4 4 3 "${common[@]}")
# 3. A long job that is cancelled; the template's defaults (no GPU), and
# more CPUs than the job can use.
cxl=$(COHORT_FAKE_SLEEP_MS=1000 sbatch --parsable --cpus-per-task=$((ncpu + 2)) \
	"$sbatch_script" 4 4 4 100 "${common[@]}")
# 4. A sweep of 3 entries as a job array.
cat >"$tmp/sweep.json" <<'JSON'
[{"train.lr": 0.1}, {"train.lr": 0.05, "federation.rounds": 2}, {"job.seed": 7, "strategy.weighting": "uniform"}]
JSON
"$src/tools/slurm/sweep.sh" "$tmp/sweep.json" --cpus-per-task=1 -- 4 4 4 3 "${common[@]}" >"$tmp/sweep.out"
arr=$(sed -n 's/^sweep.sh: array job \([0-9]*\):.*/\1/p' "$tmp/sweep.out")
[ -n "$arr" ] || fail "sweep.sh: $(cat "$tmp/sweep.out")"

# The completed job: all rounds, its GPU passed through, a done record,
# its output beside its workspace (not in the submit directory).
wait_state "$ok" COMPLETED 60
ws=$tmp/ws/slurm-$ok
[ -f "$tmp/ws/cohort-$ok.out" ] || fail "job $ok: no $tmp/ws/cohort-$ok.out: $(ls "$tmp" "$tmp/ws")"
[ ! -e "$tmp/cohort-$ok.out" ] || fail "job $ok: output in the submit directory"
grep -q "done: 3 rounds" "$tmp/ws/cohort-$ok.out" || fail "job $ok: $(cat "$tmp/ws/cohort-$ok.out")"
grep -q "GPUs '[0-9]' (1 on node)" "$tmp/ws/cohort-$ok.out" || fail "job $ok: no GPU passed through: $(head -3 "$tmp/ws/cohort-$ok.out")"
grep -q -- "--set launcher.max_concurrent=1" "$tmp/ws/cohort-$ok.out" || fail "job $ok: concurrency not sized from SLURM_CPUS_PER_TASK"
if grep -q "capped" "$tmp/ws/cohort-$ok.out"; then
	fail "job $ok: capped without cause: $(grep capped "$tmp/ws/cohort-$ok.out")"
fi
[ "$(statuses "$ws")" = "done" ] || fail "job $ok: run records: $(statuses "$ws")"
"$src/tools/slurm/summary.sh" "$ok" >"$tmp/summary-ok.txt" 2>&1 || fail "summary.sh $ok: $(cat "$tmp/summary-ok.txt")"
grep -q "^$ok  *3/3  *[0-9.]*  *[0-9]*  *1  *done$" "$tmp/summary-ok.txt" || fail "summary.sh $ok: $(cat "$tmp/summary-ok.txt")"

# The cancelled job: exit through SIGTERM, nothing left behind.
ws=$tmp/ws/slurm-$cxl
for _ in $(seq 120); do
	[ "$(checkpointed "$ws")" -ge 1 ] && break
	sleep 0.5
done
[ "$(checkpointed "$ws")" -ge 1 ] || fail "job $cxl never checkpointed a round: $(cat "$tmp/ws/cohort-$cxl.out")"
scancel "$cxl"
wait_state "$cxl" CANCELLED 30
for _ in $(seq 40); do
	[ -z "$(workers_of "$ws")" ] && [ ! -e "$ws/run/orchestrator.pid" ] && break
	sleep 0.5
done
[ -z "$(workers_of "$ws")" ] || fail "job $cxl: processes left after scancel: $(workers_of "$ws")"
[ ! -e "$ws/run/orchestrator.pid" ] || fail "job $cxl: the orchestrator did not exit cleanly"
[ -z "$(segments_of "$ws")" ] || fail "job $cxl: segments left after scancel: $(segments_of "$ws")"
grep -q "GPUs 'none'" "$tmp/ws/cohort-$cxl.out" || fail "job $cxl: the template's defaults got a GPU: $(head -3 "$tmp/ws/cohort-$cxl.out")"
if scontrol show job -o "$cxl" | grep -Eq '(TRES|TresPerNode|TresPerJob)=[^ ]*gres'; then
	fail "job $cxl: the template's defaults request a GRES: $(scontrol show job -o "$cxl")"
fi
if ! grep -q -- "--set launcher.max_concurrent=$ncpu " "$tmp/ws/cohort-$cxl.out" ||
	! grep -q "launcher.max_concurrent capped at $ncpu: SLURM_CPUS_PER_TASK=$((ncpu + 2))" "$tmp/ws/cohort-$cxl.out"; then
	fail "job $cxl: --cpus-per-task=$((ncpu + 2)) on $ncpu CPUs not capped: $(head -3 "$tmp/ws/cohort-$cxl.out")"
fi
[ ! -e "$tmp/cohort-$cxl.out" ] || fail "job $cxl: output in the submit directory"
grep -q "terminated: stopping workers" "$tmp/ws/cohort-$cxl.out" || fail "job $cxl: $(cat "$tmp/ws/cohort-$cxl.out")"

# The sweep: three tasks done, one table.
end=$(($(date +%s) + 90))
until [ -z "$(squeue -h -j "$arr" 2>/dev/null)" ]; do
	[ "$(date +%s)" -lt "$end" ] || fail "array $arr still queued: $(squeue -j "$arr")"
	sleep 1
done
"$src/tools/slurm/summary.sh" "$arr" >"$tmp/summary.txt" || fail "summary.sh: $(cat "$tmp/summary.txt")"
"$src/tools/slurm/summary.sh" --json "$tmp/ws" >"$tmp/summary.json"
python3 - "$tmp/summary.json" <<'PY' || fail "sweep summary: $(cat "$tmp/summary.txt")"
import json, sys
tasks = json.load(open(sys.argv[1]))["tasks"]
assert [t["status"] for t in tasks] == ["done"] * 3, tasks
assert [t["rounds"] for t in tasks] == [3, 2, 3], tasks
assert tasks[1]["overrides"] == {"train.lr": 0.05, "federation.rounds": 2}, tasks
assert all(t["final_test_accuracy"] is not None and t["runs"] == 1 for t in tasks), tasks
PY
grep -q "^1  *train.lr=0.05 federation.rounds=2  *2/2  *[0-9.]*  *[0-9]*  *1  *done$" "$tmp/summary.txt" ||
	fail "summary table: $(cat "$tmp/summary.txt")"
for i in 0 1 2; do
	grep -q "job exited 0 (done)" "$tmp/ws/cohort-${arr}_$i.out" || fail "array task $i: no output beside its workspace: $(ls "$tmp/ws")"
done
"$src/tools/slurm/summary.sh" "${arr}_1" >"$tmp/summary-task.txt" 2>&1 || fail "summary.sh ${arr}_1: $(cat "$tmp/summary-task.txt")"
grep -q "^${arr}_1  *2/2  *[0-9.]*  *[0-9]*  *1  *done$" "$tmp/summary-task.txt" || fail "summary.sh ${arr}_1: $(cat "$tmp/summary-task.txt")"
grep -q '"train.lr": 0.05' "$tmp/ws/slurm-${arr}_1/config.json" 2>/dev/null ||
	grep -q '"lr": 0.05' "$tmp/ws/slurm-${arr}_1/config.json" || fail "array task 1 did not apply its entry"

# The pre-empted job: requeued at least once, then complete, each round once.
wait_state "$pre" COMPLETED 300
ws=$tmp/ws/slurm-$pre
out=$tmp/ws/cohort-$pre.out
runs=$(statuses "$ws" | wc -l)
[ "$runs" -ge 2 ] || fail "job $pre was never pre-empted: $(statuses "$ws"): $(cat "$out")"
[ "$(statuses "$ws" | head -n -1 | sort -u)" = pre-empted ] || fail "job $pre: run records $(statuses "$ws")"
[ "$(statuses "$ws" | tail -1)" = "done" ] || fail "job $pre: last run $(statuses "$ws" | tail -1)"
grep -q "received SIGUSR1; forwarding it" "$out" || fail "job $pre: USR1 not forwarded: $(cat "$out")"
grep -q "requeueing job $pre" "$out" || fail "job $pre: not requeued: $(cat "$out")"
grep -q "resuming after round [1-9]" "$out" || fail "job $pre: did not resume: $(cat "$out")"
grep -q "run 2 on" "$out" || fail "job $pre: SLURM_RESTART_COUNT not seen"
grep -q "done: 45 rounds" "$out" || fail "job $pre: did not finish: $(cat "$out")"
for r in $(seq 45); do
	n=$(grep -c "{\"round\":$r,\"key\":\"fit_ok\"" "$ws/metrics/metrics.jsonl" || true)
	[ "$n" -eq 1 ] || fail "job $pre: round $r appears $n times in metrics.jsonl"
done
[ -z "$(segments_of "$ws")" ] || fail "job $pre: segments left: $(segments_of "$ws")"
[ -z "$(workers_of "COHORT_WORKSPACE=$tmp/ws")" ] || fail "workers left: $(workers_of "COHORT_WORKSPACE=$tmp/ws")"
grep "cohort.sbatch: job exited\|resuming" "$out"
echo "slurm: ok ($runs runs of the pre-empted job, $(($(date +%s) - t0)) s)"
