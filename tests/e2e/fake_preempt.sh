#!/usr/bin/env bash
# fake_preempt.sh: the orchestrator's pre-emption path without a batch
# system. USR1 mid-job finishes the round in progress, exits 75 with the
# checkpoint kept and nothing left behind, and the same command with
# --workspace continues to the model of an uninterrupted run with every round
# exactly once in metrics.jsonl; a round that cannot end before
# preempt.deadline_s is abandoned (by estimate, by the deadline timer, or by a
# second signal); preempt.signal=USR2; --workspace refuses another job's or a
# foreign directory.
#
#   COHORT_BUILD_DIR=build bash tests/e2e/fake_preempt.sh
. "$(dirname "$0")/lib/fake.sh"
common=(--set launcher.worker="$fake" --set output.progress=never)
# The job every scenario runs, in workspace $1 (more arguments follow).
job() {
	local ws=$1
	shift
	"$orch" 5 3 3 6 --workspace "$ws" "${common[@]}" "$@"
}
# The same in the background; $! is the orchestrator's pid.
job_bg() {
	local ws=$1
	shift
	"$orch" 5 3 3 6 --workspace "$ws" "${common[@]}" "$@" &
}
# Worker processes whose environment names $1.
# The round of workspace $1's last checkpoint (0 = none).
checkpointed() {
	python3 -c 'import json, sys
try:
    print(json.load(open(sys.argv[1]))["round"])
except FileNotFoundError:
    print(0)' "$1/checkpoints/state.json"
}
# Wait until workspace $1 has checkpointed round $2.
wait_round() {
	for _ in $(seq 400); do
		[ "$(checkpointed "$1")" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.05
	done
	fail "round $2 never checkpointed in $1"
}
# Nothing of workspace $1 may be left running or mapped.
assert_clean() {
	[ -z "$(workers_of "$1")" ] || fail "$1: workers left: $(workers_of "$1")"
	[ -z "$(segments_of "$1")" ] || fail "$1: segments left: $(segments_of "$1")"
}
# Resume workspace $1 with the same command; it must end like the reference.
assert_resumes() {
	local ws=$1 before
	before=$(checkpointed "$ws")
	job "$ws" >"$ws.resume.out" || fail "$ws: resume failed: $(cat "$ws.resume.out")"
	if [ "$before" -gt 0 ]; then
		grep -q "resuming after round $before" "$ws.resume.out" || fail "$ws: no resume: $(cat "$ws.resume.out")"
	fi
	grep -q "round 6/6" "$ws.resume.out" || fail "$ws: did not finish"
	cmp "$ref" "$ws/results/global_model.safetensors" || fail "$ws: model differs from the uninterrupted run"
	for r in 1 2 3 4 5 6; do
		n=$(grep -c "{\"round\":$r,\"key\":\"test_accuracy\"" "$ws/metrics/metrics.jsonl")
		[ "$n" -eq 1 ] || fail "$ws: round $r appears $n times in metrics.jsonl"
	done
	assert_clean "$ws"
}

job "$tmp/ref" >"$tmp/ref.out"
ref=$tmp/ref/results/global_model.safetensors
[ -f "$ref" ] || fail "reference run: $(cat "$tmp/ref.out")"

# 1. USR1 after round 1: the round in progress ends and is checkpointed.
ws=$tmp/finish
COHORT_FAKE_SLEEP_MS=300 job_bg "$ws" >"$ws.out" 2>"$ws.err"
pid=$!
wait_round "$ws" 1
kill -USR1 $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 75 ] || fail "USR1: exit $rc, expected 75: $(cat "$ws.err")"
r=$(sed -n 's/.*finishing round \([0-9]*\) within.*/\1/p' "$ws.err")
[ -n "$r" ] || fail "USR1: no 'finishing round': $(cat "$ws.err")"
[ "$(checkpointed "$ws")" -eq "$r" ] || fail "USR1: round $r not checkpointed ($(checkpointed "$ws"))"
grep -q "rounds are checkpointed in $ws; continue with the same command and --workspace $ws" "$ws.err" ||
	fail "USR1: no continue hint: $(cat "$ws.err")"
assert_clean "$ws"
assert_resumes "$ws"

# 2. A round known to take ~1.5 s cannot end within a 0.3 s deadline.
ws=$tmp/estimate
COHORT_FAKE_SLEEP_MS=1500 job_bg "$ws" --set preempt.deadline_s=0.3 >"$ws.out" 2>"$ws.err"
pid=$!
wait_round "$ws" 1
kill -USR1 $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 75 ] || fail "estimate: exit $rc: $(cat "$ws.err")"
grep -q "abandoning round 2" "$ws.err" || fail "estimate: round 2 not abandoned: $(cat "$ws.err")"
[ "$(checkpointed "$ws")" -eq 1 ] || fail "estimate: checkpoint is round $(checkpointed "$ws"), expected 1"
assert_clean "$ws"
assert_resumes "$ws"

# 3. No estimate in the first round: the deadline timer abandons it; the job
# has no checkpoint and --workspace starts it over.
ws=$tmp/timer
COHORT_FAKE_SLEEP_MS=3000 job_bg "$ws" --set preempt.deadline_s=0.5 >"$ws.out" 2>"$ws.err"
pid=$!
for _ in $(seq 200); do
	[ -n "$(workers_of "$ws")" ] && break
	sleep 0.05
done
kill -USR1 $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 75 ] || fail "timer: exit $rc: $(cat "$ws.err")"
grep -q "abandoning round 1 (preempt.deadline_s passed" "$ws.err" || fail "timer: $(cat "$ws.err")"
[ "$(checkpointed "$ws")" -eq 0 ] || fail "timer: a round was checkpointed"
assert_clean "$ws"
assert_resumes "$ws"

# 4. A second signal abandons the round the first one let finish.
ws=$tmp/twice
COHORT_FAKE_SLEEP_MS=1500 job_bg "$ws" >"$ws.out" 2>"$ws.err"
pid=$!
wait_round "$ws" 1
kill -USR1 $pid
sleep 0.2
kill -USR1 $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 75 ] || fail "twice: exit $rc: $(cat "$ws.err")"
grep -q "abandoning round 2 (a second pre-emption signal)" "$ws.err" || fail "twice: $(cat "$ws.err")"
assert_clean "$ws"

# 5. preempt.signal=USR2.
ws=$tmp/usr2
COHORT_FAKE_SLEEP_MS=300 job_bg "$ws" --set preempt.signal=USR2 >"$ws.out" 2>"$ws.err"
pid=$!
wait_round "$ws" 1
kill -USR2 $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 75 ] || fail "USR2: exit $rc: $(cat "$ws.err")"
assert_clean "$ws"

# 6. --workspace: a finished job is not run again; another job, a foreign
# directory, --resume beside it and a bad signal name are refused.
job "$tmp/finish" >"$tmp/again.out" || fail "finished job: exit $?"
grep -q "done: 6 rounds" "$tmp/again.out" || fail "finished job: $(cat "$tmp/again.out")"
grep -q "^round" "$tmp/again.out" && fail "finished job ran rounds again"
rc=0
"$orch" 5 3 3 7 --workspace "$tmp/finish" "${common[@]}" 2>"$tmp/e1" || rc=$?
[ $rc -eq 2 ] || fail "other job: exit $rc"
grep -q "holds another job (1 key differs: federation.rounds is 6 there, 7 here)" "$tmp/e1" || fail "other job: $(cat "$tmp/e1")"
mkdir "$tmp/foreign" && touch "$tmp/foreign/notes.txt"
rc=0
job "$tmp/foreign" 2>"$tmp/e2" || rc=$?
[ $rc -eq 2 ] || fail "foreign dir: exit $rc"
grep -q "is not a cohort workspace" "$tmp/e2" || fail "foreign dir: $(cat "$tmp/e2")"
[ ! -e "$tmp/foreign/config.json" ] || fail "foreign dir was written to"
rc=0
"$orch" --resume "$tmp/finish" --workspace "$tmp/finish" 2>"$tmp/e3" || rc=$?
[ $rc -eq 2 ] || fail "--resume with --workspace: exit $rc"
rc=0
job "$tmp/bad" --set preempt.signal=HUP 2>"$tmp/e4" || rc=$?
[ $rc -eq 2 ] || fail "preempt.signal=HUP: exit $rc"
grep -q 'preempt.signal: expected one of "USR1", "USR2", "TERM", "INT", got "HUP"' "$tmp/e4" || fail "bad signal: $(cat "$tmp/e4")"
echo "fake_preempt: ok"
