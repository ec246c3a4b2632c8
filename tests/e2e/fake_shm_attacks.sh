#!/usr/bin/env bash
# fake_shm_attacks.sh: a hostile worker attacking the shared memory costs at
# most its own task (docs/orchestrator.md, "What a worker is trusted with"):
# shrinking or regrowing the update and the global model under the
# orchestrator (50 tasks, a process per task and a pool) is refused by the
# seals, so no SIGBUS and the same model as a clean run; no way of writing
# into the global model works, so the other clients' results are untouched;
# an update still mapped writable at its result cannot be sealed and only
# that task fails. Segments have no names: a job leaves /dev/shm alone, so
# there is nothing another uid could squat, and another job's names
# (another PID namespace's) are never swept.
. "$(dirname "$0")/lib/fake.sh"

# A job's final model, exit status checked; $1 names the run.
job() {
	local name=$1
	shift
	run "$@" --workspace-root "$tmp/$name" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
		fail "$name: exit $?: $(tail -5 "$tmp/$name.err")"
}
# Lines of every worker log of run $1 matching $2.
worker_lines() { cat "$tmp/$1"/*/logs/clients/* 2>/dev/null | grep -c "$2" || true; }

# shrink: every task of 10 clients x 5 rounds truncates its update and the
# global model in a loop after its result.
job clean 10 10 10 5
for mode in spawn pool; do
	extra=()
	[ $mode = pool ] && extra=(--set launcher.tasks_per_worker=10)
	COHORT_FAKE_FAULT=shrink job shrink-$mode 10 10 10 5 "${extra[@]}"
	[ "$(grep -c "sampled 10  ok 10  failed 0" "$tmp/shrink-$mode.out")" -eq 5 ] ||
		fail "shrink $mode: counts: $(cat "$tmp/shrink-$mode.out")"
	sleep 0.4
	n=$(worker_lines shrink-$mode "fake: shrink: 0 truncations done, [1-9]")
	[ "$n" -eq 50 ] || fail "shrink $mode: $n of 50 attackers report every truncation refused"
	cmp "$(model_of "$tmp/clean")" "$(model_of "$tmp/shrink-$mode")" ||
		fail "shrink $mode: the model differs from the clean run's"
	sleep 0.4 # the last attacker (a session of its own) ends
	check_clean "$tmp/shrink-$mode"
	echo "shrink $mode: 50 attacks refused, same model"
done

# writeglobal: client 1 tries every way into the global model each round.
COHORT_FAKE_FAULT=writeglobal COHORT_FAKE_FAULT_CLIENT=1 job writeglobal 3 3 3 3
[ "$(grep -c "sampled 3  ok 3  failed 0" "$tmp/writeglobal.out")" -eq 3 ] ||
	fail "writeglobal: counts: $(cat "$tmp/writeglobal.out")"
job clean3 3 3 3 3
cmp "$(model_of "$tmp/clean3")" "$(model_of "$tmp/writeglobal")" ||
	fail "writeglobal: the model differs from the clean run's"
for how in pwrite "a writable mapping" "punching a hole" ftruncate; do
	[ "$(worker_lines writeglobal "writeglobal: $how refused")" -eq 3 ] ||
		fail "writeglobal: '$how' not refused 3 times"
done
[ "$(worker_lines writeglobal "through the reopened global model succeeded")" -eq 0 ] ||
	fail "writeglobal: wrote through a reopened descriptor"
if [ "$(id -u)" -ne 0 ]; then
	# The orchestrator is not dumpable: its descriptors stay its own.
	[ "$(worker_lines writeglobal "/proc/[0-9]*/fd/[0-9]* succeeded")" -eq 0 ] ||
		fail "writeglobal: opened the orchestrator's descriptors"
fi
echo "writeglobal: every write refused, same model"

# keepmapped: client 1's update is still mapped (and written) at its
# result: that task fails, the others are folded as if it had exited.
COHORT_FAKE_FAULT=keepmapped COHORT_FAKE_FAULT_CLIENT=1 job keepmapped 3 2 3 2
COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=1 job exit1 3 2 3 2
[ "$(grep -c "sampled 3  ok 2  failed 1" "$tmp/keepmapped.out")" -eq 2 ] ||
	fail "keepmapped: counts: $(cat "$tmp/keepmapped.out")"
grep -q "client 1 task [0-9]* failed: .*still maps it writable" "$tmp/keepmapped.err" ||
	fail "keepmapped: no reason: $(cat "$tmp/keepmapped.err")"
cmp "$(model_of "$tmp/exit1")" "$(model_of "$tmp/keepmapped")" ||
	fail "keepmapped: the model differs from a run where client 1 fails"
echo "keepmapped: one task failed, same model as without it"

# No names in /dev/shm while a job runs; another job's names stay.
other=/dev/shm/cohort.999999-deadbeef.g1
: >"$other"
COHORT_FAKE_SLEEP_MS=300 run_bg 2 2 2 2 --workspace-root "$tmp/names" >/dev/null 2>&1
pid=$!
sleep 0.5
seen=$(ls /dev/shm | grep -v "^cohort.999999-deadbeef" | grep -c "^cohort\." || true)
wait $pid || fail "names: exit $?"
[ -e "$other" ] || fail "names: another job's segment was swept"
rm -f "$other"
[ "$seen" -eq 0 ] || fail "names: $seen cohort names in /dev/shm during the job"
echo "names: none made, none swept"
echo "fake_shm_attacks: ok"
