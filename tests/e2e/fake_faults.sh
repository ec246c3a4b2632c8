#!/usr/bin/env bash
# fake_faults.sh: every fake-worker fault is a failed task, logged with its
# reason and counted, while the job goes on; a round below its minimum and a
# failed preparation end the job with exit 1 and a clear message; nothing
# (segment, process) is left behind: not a worker's own child (its process
# group is killed when it exits), not a hung worker after kill -9 of the
# orchestrator (it dies with its parent).
. "$(dirname "$0")/lib/fake.sh"
run() {
	"$orch" "$@" --set launcher.worker="$fake" --set output.progress=never \
		--set launcher.task_timeout_s=1 --set launcher.kill_grace_s=0.2
}

# fault:reason pattern expected in the log for client 1's failed task.
cases="exit1:exited_with_status_1 segv:killed_by_signal_11 hang:timed_out_after_1_s
garbage:protocol_error badtoken:wrong_token nan:element_1_is_NaN
wrongshape:update_layout_differs_from_the_model noreply:connection_closed_without_a_result
bigexamples:reports_18446744073709551615_examples,_more_than_client_1's_data_holds
startexit:exited_with_status_1_before_connecting;_its_log_ends_\"fake:_CUDA_error:_no_CUDA-capable_device_is_detected\"_(log_[^_]*/client-1.log)"
for c in $cases; do
	fault=${c%%:*}
	want=${c#*:}
	want=${want//_/ }
	root=$tmp/$fault
	set +e
	COHORT_FAKE_FAULT=$fault COHORT_FAKE_FAULT_CLIENT=1 run 3 2 3 2 --workspace-root "$root" >"$root.out" 2>"$root.err"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "$fault: exit $rc: $(cat "$root.err")"
	[ "$(grep -c "sampled 3  ok 2  failed 1" "$root.out")" -eq 2 ] || fail "$fault: counts: $(cat "$root.out")"
	log=$(ls "$root"/*/logs/orchestrator.log)
	grep -q "client 1 task [0-9]* failed: .*$want" "$log" || fail "$fault: no '$want' in $log: $(grep failed "$log")"
	grep -q "client 1 task [0-9]* failed: .*$want" "$root.err" || fail "$fault: reason not on stderr"
	grep -q '"key":"failed"' "$(ls "$root"/*/metrics/metrics.jsonl)" || fail "$fault: failure not in metrics.jsonl"
	check_clean "$root"
done

# Pool mode sends a busy worker its next task ahead: when the worker dies
# on client 1's task (or hangs and is killed), client 2's task, already in
# its socket, is handed to another worker, not failed.
for fault in segv hang; do
	root=$tmp/ahead-$fault
	set +e
	COHORT_FAKE_FAULT=$fault COHORT_FAKE_FAULT_CLIENT=1 run 3 2 3 2 --workspace-root "$root" \
		--set launcher.tasks_per_worker=4 --set launcher.max_concurrent=1 >"$root.out" 2>"$root.err"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "ahead $fault: exit $rc: $(cat "$root.err")"
	[ "$(grep -c "sampled 3  ok 2  failed 1" "$root.out")" -eq 2 ] || fail "ahead $fault: counts: $(cat "$root.out")"
	[ "$(grep -c "client [02] task [0-9]* failed" "$root.err")" -eq 0 ] || fail "ahead $fault: a task sent ahead failed: $(cat "$root.err")"
	check_clean "$root"
done

# slow succeeds; a client failing 3 times in a row is excluded.
COHORT_FAKE_FAULT=slow COHORT_FAKE_SLEEP_MS=50 run 2 2 2 1 --workspace-root "$tmp/slow" >"$tmp/slow.out"
grep -q "ok 2  failed 0" "$tmp/slow.out" || fail "slow: $(cat "$tmp/slow.out")"
COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=0 run 3 2 3 4 --workspace-root "$tmp/excl" >"$tmp/excl.out" 2>"$tmp/excl.err"
grep -q "client 0 excluded after 3 consecutive failures" "$tmp/excl.err" || fail "no exclusion: $(cat "$tmp/excl.err")"
grep -q "round 4/4  sampled 2  ok 2  failed 0" "$tmp/excl.out" || fail "excluded client still sampled: $(cat "$tmp/excl.out")"

# Every fit fails: round 1 is retried once, then the job fails (exit 1).
set +e
COHORT_FAKE_FAULT=exit1 run 3 2 3 2 --workspace-root "$tmp/min" >"$tmp/min.out" 2>"$tmp/min.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "below minimum exited $rc"
grep -q "round 1: only 0 of 3 fits succeeded .*retrying" "$tmp/min.err" || fail "no retry: $(cat "$tmp/min.err")"
grep -q "round 1 failed: only 0 of 3 fits succeeded in the last of 2 attempts (federation.min_fit is 2); failures: client [0-2] task [0-9]: .*worker exited with status 1" "$tmp/min.err" || fail "unclear failure: $(cat "$tmp/min.err")"
check_clean "$tmp/min"

# Too few clients available to start a round: one excluded after a failure,
# or all offline by the availability draw.
set +e
COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=0 run 3 3 3 3 --set federation.max_consecutive_failures=1 --set federation.min_fit=1 --workspace-root "$tmp/avail" >"$tmp/avail.out" 2>"$tmp/avail.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "unavailable exited $rc"
grep -q "round 2: only 2 of 3 clients available (1 excluded after 1 consecutive failures, 0 offline); federation.min_clients is 3" "$tmp/avail.err" || fail "availability: $(cat "$tmp/avail.err")"
set +e
run 3 1 1 1 --set federation.availability=0 --workspace-root "$tmp/off" >/dev/null 2>"$tmp/off.err"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "only 0 of 3 clients available (0 excluded after 3 consecutive failures, 3 offline)" "$tmp/off.err" || fail "offline: $rc $(cat "$tmp/off.err")"
check_clean "$tmp/avail"

# Preparation failure: exit 1 with the worker's message.
set +e
COHORT_FAKE_FAULT=prepare run 2 2 2 1 --workspace-root "$tmp/prep" 2>"$tmp/prep.err" >/dev/null
rc=$?
set -e
[ $rc -eq 1 ] || fail "prepare failure exited $rc"
grep -q "preparing the job failed: fake prepare failure: dataset not found" "$tmp/prep.err" || fail "prepare message: $(cat "$tmp/prep.err")"
check_clean "$tmp/prep"
# A worker's own child (in its process group) goes when the worker does.
COHORT_FAKE_FAULT=orphan COHORT_FAKE_FAULT_CLIENT=1 run 3 2 3 2 --workspace-root "$tmp/orphan" >"$tmp/orphan.out" 2>&1 ||
	fail "orphan: $(cat "$tmp/orphan.out")"
grep -q "sampled 3  ok 3  failed 0" "$tmp/orphan.out" || fail "orphan: counts: $(cat "$tmp/orphan.out")"
check_clean "$tmp/orphan"

# kill -9 of the orchestrator: workers that ignore SIGTERM and never finish
# die with it (before: they hung on for good).
COHORT_FAKE_FAULT=hang run_bg 3 3 3 2 --set launcher.task_timeout_s=600 --set launcher.max_concurrent=3 --workspace-root "$tmp/k9" >/dev/null 2>&1
pid=$!
for _ in $(seq 100); do [ "$(workers_of "$tmp/k9" | wc -w)" -ge 3 ] && break; sleep 0.05; done
[ "$(workers_of "$tmp/k9" | wc -w)" -ge 3 ] || fail "kill -9: the workers never started"
kill -9 $pid
wait $pid 2>/dev/null || true
for _ in $(seq 40); do [ -z "$(workers_of "$tmp/k9")" ] && break; sleep 0.05; done
[ -z "$(workers_of "$tmp/k9")" ] || { pkill -9 -f "COHORT_WORKSPACE=$tmp/k9" 2>/dev/null; kill -9 $(workers_of "$tmp/k9") 2>/dev/null; fail "kill -9: workers outlived the orchestrator"; }
# A finite but absurd update: the mean is refused, not published (the job
# stops at the last checkpoint); the median leaves it out.
set +e
COHORT_FAKE_FAULT=huge COHORT_FAKE_FAULT_CLIENT=1 run 3 3 3 2 --workspace-root "$tmp/huge" >"$tmp/huge.out" 2>"$tmp/huge.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "huge update: exit $rc: $(cat "$tmp/huge.err")"
grep -q "round 1: the aggregate is refused, not published: a weight is too large (largest magnitude 1e+38) (strategy.max_weight is 1e+15)" "$tmp/huge.err" ||
	fail "huge update: $(cat "$tmp/huge.err")"
! grep -q '^done:' "$tmp/huge.out" || fail "huge update: done printed"
COHORT_FAKE_FAULT=huge COHORT_FAKE_FAULT_CLIENT=1 run 3 3 3 2 --set strategy.name=median --workspace-root "$tmp/hugemed" >"$tmp/hugemed.out" 2>&1 ||
	fail "huge update, median: $(cat "$tmp/hugemed.out")"
check_clean "$tmp/huge"

# A worker flooding progress metrics adds output.task_metrics lines at most.
COHORT_FAKE_FAULT=flood COHORT_FAKE_FAULT_CLIENT=1 run 2 2 2 1 --set output.task_metrics=100 --workspace-root "$tmp/flood" >"$tmp/flood.out" 2>&1 ||
	fail "flood: $(cat "$tmp/flood.out")"
n=$(grep -c '"client":1,.*"key":"step_loss"' "$tmp"/flood/*/metrics/metrics.jsonl)
[ "$n" -eq 100 ] || fail "flood: $n step_loss lines of client 1, expected 100"
grep -q "client 1 task [0-9]*: more than 100 progress metrics (output.task_metrics); the rest are dropped" "$tmp"/flood/*/logs/orchestrator.log ||
	fail "flood: no log line"

# The orchestrator stopped (SIGSTOP) past the task timeout while its
# workers finished: results waiting in the sockets are results, not
# timeouts (before: "timed out after 1 s; worker exited with status 0").
for mode in spawn pool; do
	extra=()
	[ $mode = pool ] && extra=(--set launcher.tasks_per_worker=8)
	COHORT_FAKE_SLEEP_MS=300 run_bg 8 8 8 2 --set launcher.task_timeout_s=1 --set launcher.max_concurrent=4 \
		"${extra[@]}" --workspace-root "$tmp/stop-$mode" >"$tmp/stop-$mode.out" 2>&1
	pid=$!
	for _ in $(seq 200); do grep -qs '"round": 1\b' "$tmp/stop-$mode"/*/checkpoints/state.json && break; sleep 0.01; done
	sleep 0.1 # round 2's tasks sent; their workers sleep 0.3 s
	kill -STOP $pid
	sleep 2.5
	kill -CONT $pid
	wait $pid || fail "stopped orchestrator ($mode): exit $?: $(cat "$tmp/stop-$mode.out")"
	! grep -q "timed out\|retrying" "$tmp/stop-$mode.out" && [ "$(grep -c "sampled 8  ok 8  failed 0" "$tmp/stop-$mode.out")" -eq 2 ] ||
		fail "stopped orchestrator ($mode): results taken for timeouts: $(cat "$tmp/stop-$mode.out")"
done

# A central evaluation out of range is a failed evaluation, not a number.
COHORT_FAKE_FAULT=evalrange run 2 2 2 1 --workspace-root "$tmp/evr" >"$tmp/evr.out" 2>"$tmp/evr.err" || fail "evalrange: $(cat "$tmp/evr.err")"
grep -q "central evaluation failed: evaluate result has accuracy 1e+308, outside \[0, 1\]" "$tmp/evr.err" || fail "evalrange: $(cat "$tmp/evr.err")"
grep -q "test_acc -" "$tmp/evr.out" || fail "evalrange: the accuracy was reported: $(cat "$tmp/evr.out")"
echo "fake_faults: ok"
