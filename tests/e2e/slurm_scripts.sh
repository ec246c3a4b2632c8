#!/usr/bin/env bash
# slurm_scripts.sh: the batch scripts of tools/slurm without Slurm (a few
# seconds; tests/e2e/slurm.sh runs them on a real cluster). cohort.sbatch
# runs with made-up SLURM_* variables and a stub in place of run.sh:
# - the template requests no GPU (a CPU-only cluster takes it as it is);
# - launcher.max_concurrent is SLURM_CPUS_PER_TASK capped at the CPUs of the
#   job's affinity (taskset), the cap named in the log, OMP_NUM_THREADS
#   ignored, a --set of the caller's own after it;
# - with the template's output (/dev/null) the log goes to
#   $COHORT_SCRATCH/cohort-<job id>.out (cohort-<array job>_<task>.out), the
#   same place as a sweep's; an --output of the caller's own is kept;
# - summary.sh takes a plain job id (and an array task's job id, ID_TASK or
#   a workspace) as well as an array job id, also where only Slurm (a stub
#   scontrol) knows where the job ran or that it is pending, and refuses an
#   unknown id.
#
#   bash tests/e2e/slurm_scripts.sh
set -euo pipefail
src=${COHORT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
sbatch_script=$src/tools/slurm/cohort.sbatch
summary=$src/tools/slurm/summary.sh
command -v python3 >/dev/null || {
	echo "SKIPPED: no python3"
	exit 77
}
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# The stub job: prints its arguments, exits $STUB_RC.
cat >"$tmp/stub" <<'SH'
#!/usr/bin/env bash
echo "stub: $*"
exit "${STUB_RC:-0}"
SH
chmod +x "$tmp/stub"
mkdir -p "$tmp/submit"
# Run cohort.sbatch as Slurm would, in a clean environment: "$@" are
# VAR=value settings, then -- and the script's arguments; ${pin[@]} (e.g.
# taskset -c 0) runs it with fewer CPUs.
pin=()
sbatch_run() {
	local vars=()
	while [ "$1" != -- ]; do
		vars+=("$1")
		shift
	done
	shift
	(cd "$tmp/submit" && "${pin[@]}" env -i PATH="$PATH" HOME="$tmp" SLURM_SUBMIT_DIR="$tmp/submit" \
		COHORT_RUN="$tmp/stub" COHORT_SCRATCH="$tmp/ws" "${vars[@]}" bash "$sbatch_script" "$@")
}
ncpu=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)

# 1. No GPU request among the template's defaults.
if grep -Eq '^#SBATCH +(--gres|--gpus|-G)' "$sbatch_script"; then
	fail "cohort.sbatch requests GPUs by default: $(grep -E '^#SBATCH +(--gres|--gpus|-G)' "$sbatch_script")"
fi

# 2. Sizing, with the log in a file of the caller's (stdout not /dev/null).
# One CPU in the affinity, 8 asked for: capped at 1, and said so.
pin=(taskset -c 0)
sbatch_run SLURM_JOB_ID=11 SLURM_CPUS_PER_TASK=8 -- 4 4 4 3 >"$tmp/cap.out" 2>&1 || fail "capped run exited $?: $(cat "$tmp/cap.out")"
grep -q -- "--set launcher.max_concurrent=1$" "$tmp/cap.out" ||
	fail "SLURM_CPUS_PER_TASK=8 on 1 CPU not capped at 1: $(grep stub: "$tmp/cap.out")"
grep -q "launcher.max_concurrent capped at 1: SLURM_CPUS_PER_TASK=8 but the job can use 1 CPU" "$tmp/cap.out" ||
	fail "the cap is not in the log: $(cat "$tmp/cap.out")"
pin=()
# As many CPUs asked for as there are: no cap, no message; OMP_NUM_THREADS
# (which GNU nproc honours) plays no part; the caller's --set comes last.
sbatch_run SLURM_JOB_ID=12 SLURM_CPUS_PER_TASK="$ncpu" OMP_NUM_THREADS=1 -- 4 4 4 3 --set launcher.max_concurrent=3 \
	>"$tmp/nocap.out" 2>&1 || fail "uncapped run exited $?: $(cat "$tmp/nocap.out")"
grep -q "^stub: 4 4 4 3 --workspace $tmp/ws/slurm-12 --set launcher.max_concurrent=$ncpu --set launcher.max_concurrent=3\$" "$tmp/nocap.out" ||
	fail "SLURM_CPUS_PER_TASK=$ncpu on $ncpu CPUs: $(grep stub: "$tmp/nocap.out")"
if grep -q capped "$tmp/nocap.out"; then
	fail "capped without cause: $(grep capped "$tmp/nocap.out")"
fi
# No --cpus-per-task (no SLURM_CPUS_PER_TASK): the affinity's CPUs.
pin=(taskset -c 0)
sbatch_run SLURM_JOB_ID=13 -- 4 4 4 3 >"$tmp/unset.out" 2>&1 || fail "run without SLURM_CPUS_PER_TASK exited $?: $(cat "$tmp/unset.out")"
grep -q -- "--set launcher.max_concurrent=1\$" "$tmp/unset.out" ||
	fail "without SLURM_CPUS_PER_TASK on 1 CPU: $(grep stub: "$tmp/unset.out")"
pin=()
if [ -e "$tmp/ws/cohort-11.out" ] || [ -e "$tmp/ws/cohort-12.out" ]; then
	fail "the log left the caller's --output file"
fi

# 3. The template's output (/dev/null): the log goes beside the workspaces.
sbatch_run SLURM_JOB_ID=21 SLURM_CPUS_PER_TASK=1 -- 4 4 4 3 >/dev/null 2>&1 ||
	fail "run with output /dev/null exited $?"
if ! { grep -q "^cohort.sbatch: job 21 run 1 on" "$tmp/ws/cohort-21.out" 2>/dev/null &&
	grep -q "^stub: 4 4 4 3 --workspace $tmp/ws/slurm-21 " "$tmp/ws/cohort-21.out" &&
	grep -q "^cohort.sbatch: job exited 0 (done)" "$tmp/ws/cohort-21.out"; }; then
	fail "job 21: no complete log in $tmp/ws/cohort-21.out: $(ls "$tmp/ws" "$tmp/submit")"
fi
# A second run (a requeue) appends to it.
sbatch_run SLURM_JOB_ID=21 SLURM_CPUS_PER_TASK=1 SLURM_RESTART_COUNT=1 STUB_RC=1 -- 4 4 4 3 >/dev/null 2>&1 || true
if ! { grep -q "^cohort.sbatch: job 21 run 2 on" "$tmp/ws/cohort-21.out" 2>/dev/null &&
	[ "$(grep -c "^cohort.sbatch: job exited" "$tmp/ws/cohort-21.out")" -eq 2 ]; }; then
	fail "job 21: the second run was not appended: $(cat "$tmp/ws/cohort-21.out" 2>/dev/null)"
fi
# An array task: named like its workspace, as sweep.sh's tasks are.
sbatch_run SLURM_JOB_ID=32 SLURM_ARRAY_JOB_ID=30 SLURM_ARRAY_TASK_ID=2 -- 4 4 4 3 >/dev/null 2>&1 ||
	fail "array task exited $?"
grep -Eq "^stub: 4 4 4 3 --workspace $tmp/ws/slurm-30_2( |$)" "$tmp/ws/cohort-30_2.out" 2>/dev/null ||
	fail "array task 30_2: no log in $tmp/ws/cohort-30_2.out: $(ls "$tmp/ws")"
# A missing COHORT_RUN is reported in that file too.
sbatch_run SLURM_JOB_ID=22 COHORT_RUN="$tmp/nothing" -- 4 4 4 3 >/dev/null 2>&1 && fail "a missing COHORT_RUN ran"
grep -q "is not executable" "$tmp/ws/cohort-22.out" 2>/dev/null || fail "job 22: the error is not in cohort-22.out"
[ -z "$(ls "$tmp/submit")" ] || fail "files in the submit directory: $(ls "$tmp/submit")"

# 4. summary.sh: workspaces as cohort.sbatch and the orchestrator leave them.
# workspace NAME JOBID STATUS ROUNDS
workspace() {
	local ws=$tmp/sum/slurm-$1
	mkdir -p "$ws/results" "$ws/checkpoints"
	printf '{"federation": {"rounds": %d}}\n' "$4" >"$ws/config.json"
	printf '{"round": %d}\n' "$4" >"$ws/checkpoints/state.json"
	printf '{"rounds": %d, "final_test_accuracy": 0.5, "wall_seconds": 3.0}\n' "$4" >"$ws/results/summary.json"
	printf '{"job_id": "%s", "name": "%s", "run": 1, "node": "n", "start": 100.0, "end": 112.0, "exit": 0, "status": "%s"}\n' \
		"$2" "$1" "$3" >"$ws/slurm-runs.jsonl"
	echo "cohort.sbatch: job exited 0 ($3) after 12.0 s" >"$tmp/sum/cohort-$1.out"
}
workspace 1234 1234 "done" 3
workspace 40_0 40 "done" 2
workspace 40_1 41 failed 2
echo '[{"train.lr": 0.1}, {"train.lr": 0.2}]' >"$tmp/sum/sweep-40.json"
(cd "$tmp" && COHORT_SCRATCH=$tmp/sum "$summary" 1234) >"$tmp/s1.txt" 2>&1 ||
	fail "summary.sh 1234 exited $?: $(cat "$tmp/s1.txt")"
grep -q "^1234  *3/3  *0.5000  *12  *1  *done$" "$tmp/s1.txt" || fail "summary.sh 1234: $(cat "$tmp/s1.txt")"
grep -q "cohort-1234.out" "$tmp/s1.txt" || fail "summary.sh 1234 does not name the output: $(cat "$tmp/s1.txt")"
# COHORT_SCRATCH unset: ./workspaces.
mkdir -p "$tmp/cwd"
ln -s ../sum "$tmp/cwd/workspaces"
(cd "$tmp/cwd" && env -u COHORT_SCRATCH "$summary" --json 1234) >"$tmp/s2.json" 2>&1 ||
	fail "summary.sh --json 1234 (./workspaces) exited $?: $(cat "$tmp/s2.json")"
python3 - "$tmp/s2.json" <<'PY' || fail "summary.sh --json 1234: $(cat "$tmp/s2.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["job"] == "1234" and j["status"] == "done" and j["rounds"] == 3, j
assert j["output"].endswith("/cohort-1234.out") and j["workspace"].endswith("/slurm-1234"), j
PY
# An array task by its own job id, by ID_TASK and by its workspace.
for t in 41 40_1 "$tmp/sum/slurm-40_1"; do
	COHORT_SCRATCH=$tmp/sum "$summary" "$t" >"$tmp/s3.txt" 2>&1 || fail "summary.sh $t exited $?: $(cat "$tmp/s3.txt")"
	grep -q "^40_1  *2/2  *0.5000  *12  *1  *failed$" "$tmp/s3.txt" || fail "summary.sh $t: $(cat "$tmp/s3.txt")"
done
# The array job id still gives the sweep's table.
COHORT_SCRATCH=$tmp/sum "$summary" 40 >"$tmp/s4.txt" 2>&1 || fail "summary.sh 40 exited $?: $(cat "$tmp/s4.txt")"
grep -q "^1  *train.lr=0.2  *2/2  *0.5000  *12  *1  *failed$" "$tmp/s4.txt" || fail "summary.sh 40: $(cat "$tmp/s4.txt")"
# While Slurm knows the job (a stub scontrol): its submit directory's
# workspaces/ and its array task; a pending job with nothing on disk yet.
mkdir -p "$tmp/bin" "$tmp/sub2/workspaces"
cat >"$tmp/bin/scontrol" <<SH
#!/bin/sh
case "\$4" in
77) echo "JobId=77 ArrayJobId=70 ArrayTaskId=3 JobState=COMPLETED WorkDir=$tmp/sub2 StdOut=/dev/null" ;;
78) echo "JobId=78 ArrayJobId=N/A JobState=PENDING WorkDir=$tmp/sub2 StdOut=/dev/null" ;;
*) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
esac
SH
chmod +x "$tmp/bin/scontrol"
(cd "$tmp/sum" && workspace 70_3 77 "done" 4) && mv "$tmp/sum/slurm-70_3" "$tmp/sum/cohort-70_3.out" "$tmp/sub2/workspaces/"
(cd "$tmp" && PATH=$tmp/bin:$PATH COHORT_SCRATCH=$tmp/none "$summary" 77) >"$tmp/s6.txt" 2>&1 ||
	fail "summary.sh 77 (known to scontrol) exited $?: $(cat "$tmp/s6.txt")"
grep -q "^70_3  *4/4  *0.5000  *12  *1  *done$" "$tmp/s6.txt" || fail "summary.sh 77: $(cat "$tmp/s6.txt")"
(cd "$tmp" && PATH=$tmp/bin:$PATH COHORT_SCRATCH=$tmp/none "$summary" 78) >"$tmp/s7.txt" 2>&1 ||
	fail "summary.sh 78 (pending) exited $?: $(cat "$tmp/s7.txt")"
grep -q "^78  *0/?  *-  *0  *0  *pending$" "$tmp/s7.txt" || fail "summary.sh 78: $(cat "$tmp/s7.txt")"
# An unknown id: exit 2, naming where it looked.
rc=0
COHORT_SCRATCH=$tmp/sum "$summary" 999 >"$tmp/s5.txt" 2>&1 || rc=$?
if [ $rc -ne 2 ] || ! grep -q "$tmp/sum" "$tmp/s5.txt"; then
	fail "summary.sh 999 exited $rc: $(cat "$tmp/s5.txt")"
fi

[ $failures -eq 0 ] || {
	echo "slurm_scripts: $failures failures" >&2
	exit 1
}
echo "slurm_scripts: ok"
