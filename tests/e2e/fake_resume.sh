#!/usr/bin/env bash
# fake_resume.sh: kill -9 of the orchestrator after round 2, then --resume,
# ends with exactly the model of an uninterrupted run and no duplicated
# rounds in metrics.jsonl; SIGINT mid-job exits 130, keeps the checkpoint
# and leaves no segment or worker process; SIGTERM exits 143; two
# orchestrators resuming one workspace at the same moment: one runs it to
# the end, the other is refused naming the first (4 trials); a state.json
# edited to claim round 99 is refused naming the file and field, and the
# temporary files of a killed write are removed by the next run; an edited
# config.json is reported at the resume.
. "$(dirname "$0")/lib/fake.sh"
# Wait until the checkpoint of the workspace under $1 reaches round $2.
wait_round() {
	for _ in $(seq 200); do
		if grep -qs "\"round\": $2," "$1"/*/checkpoints/state.json; then return 0; fi
		sleep 0.05
	done
	fail "round $2 never checkpointed under $1"
}

run 5 3 3 5 --workspace-root "$tmp/ref" >"$tmp/ref.out"
ref=$(ls "$tmp"/ref/*/results/global_model.safetensors)

# kill -9 after round 2, then resume.
COHORT_FAKE_SLEEP_MS=150 run_bg 5 3 3 5 --workspace-root "$tmp/k" >"$tmp/k.out"
pid=$!
wait_round "$tmp/k" 2
kill -9 $pid
wait $pid 2>/dev/null || true
ws=$(ls -d "$tmp"/k/*/)
for _ in $(seq 40); do [ -z "$(workers_of "$tmp/k")" ] && break; sleep 0.05; done
[ -z "$(workers_of "$tmp/k")" ] || fail "orphaned workers did not exit"
run --resume "$ws" >"$tmp/r.out"
grep -q "resuming after round [2-4]" "$tmp/r.out" || fail "resume: $(cat "$tmp/r.out")"
grep -q "round 5/5" "$tmp/r.out" || fail "resume did not finish: $(cat "$tmp/r.out")"
cmp "$ref" "$ws/results/global_model.safetensors" || fail "resumed model differs from the uninterrupted one"
n=$(grep -c '"key":"test_accuracy"' "$ws/metrics/metrics.jsonl")
[ "$n" -eq 5 ] || fail "metrics.jsonl has $n test_accuracy lines, expected 5"
for r in 1 2 3 4 5; do
	[ "$(grep -c "{\"round\":$r,\"key\":\"test_accuracy\"" "$ws/metrics/metrics.jsonl")" -eq 1 ] || fail "round $r not exactly once"
done
[ -z "$(segments_of "$tmp/k")" ] || fail "segments left: $(segments_of "$tmp/k")"
# Resuming a finished job just rewrites its results.
run --resume "$ws" >"$tmp/r2.out"
cmp "$ref" "$ws/results/global_model.safetensors" || fail "second resume changed the model"

# SIGINT mid-job: exit 130, checkpoint kept, nothing left; then resume.
COHORT_FAKE_SLEEP_MS=200 run_bg 4 2 4 6 --workspace-root "$tmp/i" >"$tmp/i.out" 2>"$tmp/i.err"
pid=$!
wait_round "$tmp/i" 1
kill -INT $pid
set +e
wait $pid
rc=$?
set -e
[ $rc -eq 130 ] || fail "SIGINT exit $rc"
grep -q "Resume with: cohort-orchestrator --resume $tmp/i/" "$tmp/i.err" || fail "no resume hint: $(cat "$tmp/i.err")"
[ -f "$(ls "$tmp"/i/*/checkpoints/state.json)" ] || fail "checkpoint lost"
[ -z "$(workers_of "$tmp/i")" ] || fail "workers left after SIGINT"
[ -z "$(segments_of "$tmp/i")" ] || fail "segments left after SIGINT"

# SIGTERM with workers that ignore it: exit 143 after SIGKILL.
COHORT_FAKE_FAULT=hang run_bg 3 2 3 2 --set launcher.kill_grace_s=0.3 --workspace-root "$tmp/t" >/dev/null 2>"$tmp/t.err"
pid=$!
sleep 0.5
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
[ $rc -eq 143 ] || fail "SIGTERM exit $rc"
[ -z "$(workers_of "$tmp/t")" ] || fail "workers left after SIGTERM"
[ -z "$(segments_of "$tmp/t")" ] || fail "segments left after SIGTERM"

# Double SIGINT: immediate exit, still nothing left.
COHORT_FAKE_FAULT=hang run_bg 3 2 3 2 --set launcher.kill_grace_s=30 --workspace-root "$tmp/d" >/dev/null 2>"$tmp/d.err"
pid=$!
sleep 0.5
kill -INT $pid
sleep 0.1
kill -INT $pid
set +e
wait $pid
rc=$?
set -e
[ $rc -eq 130 ] || fail "double SIGINT exit $rc"
[ -z "$(workers_of "$tmp/d")" ] || fail "workers left after double SIGINT"
[ -z "$(segments_of "$tmp/d")" ] || fail "segments left after double SIGINT"
# Two resumes of one workspace at once (the workspace lock, not a pid-file
# check that both can pass before either writes).
for trial in 1 2 3 4; do
	COHORT_FAKE_SLEEP_MS=150 run_bg 4 2 2 4 --workspace-root "$tmp/two$trial" >/dev/null 2>&1
	pid=$!
	wait_round "$tmp/two$trial" 1
	kill -9 $pid
	wait $pid 2>/dev/null || true
	ws=$(ls -d "$tmp/two$trial"/*/)
	for _ in $(seq 40); do [ -z "$(workers_of "$ws")" ] && break; sleep 0.05; done
	COHORT_FAKE_SLEEP_MS=100 run --resume "$ws" >"$tmp/a.out" 2>&1 &
	a=$!
	COHORT_FAKE_SLEEP_MS=100 run --resume "$ws" >"$tmp/b.out" 2>&1 &
	b=$!
	set +e
	wait $a
	ra=$?
	wait $b
	rb=$?
	set -e
	if [ $ra -eq 0 ] && [ $rb -eq 0 ]; then fail "trial $trial: both resumes ran the workspace"; fi
	{ [ $ra -eq 0 ] || [ $rb -eq 0 ]; } || fail "trial $trial: neither resume finished: $(cat "$tmp/a.out" "$tmp/b.out")"
	refused=$tmp/a.out
	[ $ra -eq 0 ] && refused=$tmp/b.out
	grep -q "in use by cohort-orchestrator pid [0-9]" "$refused" || fail "trial $trial: refusal: $(cat "$refused")"
	for r in 1 2 3 4; do
		[ "$(grep -c "{\"round\":$r,\"key\":\"train_loss\"" "$ws/metrics/metrics.jsonl")" -eq 1 ] ||
			fail "trial $trial: round $r not exactly once in metrics.jsonl"
	done
done
# state.json is not trusted: round 99 after 4 rounds.
ws=$(ls -d "$tmp/two1"/*/)
cp "$ws/checkpoints/state.json" "$tmp/state.good"
python3 - "$ws/checkpoints/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["round"] = 99
json.dump(s, open(sys.argv[1], "w"))
PY
if run --resume "$ws" >"$tmp/r99.out" 2>&1; then fail "resume of a state.json claiming round 99 was accepted: $(cat "$tmp/r99.out")"; fi
grep -q "cannot resume: .*state.json: \"model\" must be \"round-0099" "$tmp/r99.out" || fail "round 99: $(cat "$tmp/r99.out")"
! grep -q '^done:' "$tmp/r99.out" || fail "round 99: printed done"
cp "$tmp/state.good" "$ws/checkpoints/state.json"
# Temporary files of killed writes go at the next start.
touch "$ws/checkpoints/round-0005.safetensors.tmp.4242" "$ws/results/summary.json.tmp.AbCdEf" \
	"$ws/metrics/metrics.jsonl.tmp.x1y2z3"
run --resume "$ws" >"$tmp/tmps.out" 2>&1 || fail "resume with stale temporary files: $(cat "$tmp/tmps.out")"
[ -z "$(find "$ws" -name '*.tmp.*')" ] || fail "temporary files left: $(find "$ws" -name '*.tmp.*')"
grep -q "removed 3 temporary files of interrupted writes" "$ws/logs/orchestrator.log" || fail "the removal was not logged"
# config.json edited before a resume: said, not silently taken.
python3 - "$ws/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["strategy"]["weighting"] = "uniform"
json.dump(c, open(sys.argv[1], "w"))
PY
run --resume "$ws" >"$tmp/edit.out" 2>&1 || fail "resume after an edit: $(cat "$tmp/edit.out")"
grep -q 'configuration changed since its checkpoint (1 key: strategy.weighting is "examples" there, "uniform" here)' "$tmp/edit.out" ||
	fail "edited config.json not reported: $(cat "$tmp/edit.out")"
echo "fake_resume: ok"
