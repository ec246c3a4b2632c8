#!/usr/bin/env bash
# partial_sums.sh: pool workers' partial sums (docs/protocol.md, "Partial
# sums") with the fake worker, which folds its fits itself (an
# implementation of the worker side apart from libcohort-client): the
# model equals the per-update path's and spawn mode's byte for byte; a
# worker killed holding folded fits, one whose sum lists the wrong fits,
# and one that never sends its sum lose no fit (they run again, the model
# is a clean run's); a sum that is not finite fails its own fits only;
# partial_sums=on where it cannot be is refused naming why.
. "$(dirname "$0")/lib/fake.sh"

pool=(--set launcher.tasks_per_worker=6 --set launcher.max_concurrent=2)
# 12 clients, 3 rounds; "$1" the workspace root, then more options.
job() {
	local root=$1
	shift
	run 12 6 12 3 --workspace-root "$tmp/$root" -v "$@" >"$tmp/$root.out" 2>&1 ||
		fail "$root: exit $?: $(tail -5 "$tmp/$root.out")"
}
log_of() { cat "$tmp"/$1/*/logs/orchestrator.log; }
summary() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(" ".join("%d/%d" % (h["ok"], h["failed"]) for h in s["history"]))' "$(ls "$tmp"/$1/*/results/summary.json)"; }

job spawn
job off "${pool[@]}" --set launcher.partial_sums=off
job on "${pool[@]}" --set launcher.partial_sums=on
cmp "$(model_of "$tmp/spawn")" "$(model_of "$tmp/on")" || fail "partial sums: model differs from spawn mode's"
cmp "$(model_of "$tmp/off")" "$(model_of "$tmp/on")" || fail "partial sums: model differs from the per-update path's"
folded=$(log_of on | grep -c "folded into partial sum" || true)
# A fit whose next frame is late (a loaded machine) comes after a sum was
# sent and is returned whole: most, not all, are folded.
[ "$folded" -ge 24 ] && [ "$folded" -le 36 ] || fail "24 to 36 of 36 fits should be folded, the log says $folded"
sums=$(log_of on | grep -c "partial sum [0-9]* of worker [0-9]*: [0-9]* fits, folded" || true)
[ "$sums" -ge 3 ] && [ "$sums" -le 12 ] || fail "$sums partial sums folded for 3 rounds of 12 fits in 6-task workers"
[ "$(log_of off | grep -c "folded into partial sum" || true)" -eq 0 ] || fail "partial_sums=off folded"
[ "$(summary on)" = "12/0 12/0 12/0" ] || fail "rounds: $(summary on)"
echo "partial sums equal the per-update path: ok ($sums sums of 36 fits)"

# A worker killed by SIGKILL holding 3 folded fits: they run again. The
# task it had in hand (sent ahead), if any, fails, as it would without
# partial sums: at most one failure. (When the kill comes as the launcher
# writes it a task, the launcher closes the connection on the broken pipe
# and the result of the third fit, unread, is lost with the task in hand:
# then 2 fits run again.)
COHORT_FAKE_FAULT=foldkill job kill "${pool[@]}"
grep -q "killed holding 3 fits" "$tmp"/kill/*/logs/clients/pool-*.log || fail "kill: no worker was killed"
log_of kill | grep -Eq "ended before sending the partial sum of [23] folded fits; they run again" ||
	fail "kill: no re-run line"
case "$(summary kill)" in
"11/1 12/0 12/0") grep -q "failed: .*worker killed by signal 9" "$tmp/kill.out" || fail "kill: no reason" ;;
"12/0 12/0 12/0") ;; # it had no task in hand
*) fail "kill: rounds $(summary kill)" ;;
esac
echo "worker killed mid-round loses no finished fit: ok"

# A sum listing one fit too few: a protocol error, the worker is killed,
# its fits run again.
COHORT_FAKE_FAULT=foldlie job lie "${pool[@]}"
log_of lie | grep -q "lists [0-9]* tasks; [0-9]* were reported folded into it" || fail "lie: not refused"
[ "$(summary lie)" = "12/0 12/0 12/0" ] || fail "lie: rounds $(summary lie)"
cmp "$(model_of "$tmp/on")" "$(model_of "$tmp/lie")" || fail "lie: model differs from a clean run's"
echo "a sum listing other fits is refused, its fits run again: ok"

# A worker that never sends its sum is killed after task_timeout_s.
COHORT_FAKE_FAULT=foldhold job hold "${pool[@]}" --set launcher.task_timeout_s=2
# Idle, it is killed for the sum; given a task meanwhile (the queue was
# not empty yet: its next frame came late), the task times out, fails, and
# the sum's fits run again all the same.
if grep -q "sent no partial sum of its folded tasks within 2 s" "$tmp/hold.out"; then
	[ "$(summary hold)" = "12/0 12/0 12/0" ] || fail "hold: rounds $(summary hold)"
	cmp "$(model_of "$tmp/on")" "$(model_of "$tmp/hold")" || fail "hold: model differs from a clean run's"
else
	grep -q "failed: timed out after 2 s" "$tmp/hold.out" || fail "hold: not killed"
	[ "$(summary hold)" = "11/1 12/0 12/0" ] || fail "hold: rounds $(summary hold)"
fi
log_of hold | grep -q "ended before sending the partial sum of [0-9]* folded fits; they run again" ||
	fail "hold: its fits did not run again"
echo "a sum never sent: its worker is killed, its fits run again: ok"

# A sum that is not finite fails the fits in it, and only those.
COHORT_FAKE_FAULT=foldnan COHORT_FAKE_FAULT_CLIENT=4 job nan "${pool[@]}"
grep -q "fits: the partial sum has a value that is not finite at element 0" "$tmp/nan.out" || fail "nan: no reason"
python3 - "$(ls "$tmp"/nan/*/results/summary.json)" <<'PY' || fail "nan: $(summary nan)"
import json, sys
h = json.load(open(sys.argv[1]))["history"]
# client 4's fit fails with the sum it is in (at most a worker's 6 fits);
# returned whole (its frame came after a sum was sent) it is ok
for r in h:
    assert r["ok"] + r["failed"] == 12 and r["failed"] <= 6, r
assert sum(r["failed"] for r in h) >= 1, h
PY
echo "a sum that is not finite fails its own fits: ok ($(summary nan))"

# on where it cannot be: refused, naming why.
for bad in "launcher.tasks_per_worker=1" "strategy.name=median" "transport.mode=stream"; do
	set +e
	run 4 4 4 1 --workspace-root "$tmp/refused" --set launcher.partial_sums=on \
		--set launcher.tasks_per_worker=4 --set "$bad" >"$tmp/refused.out" 2>&1
	rc=$?
	set -e
	[ $rc -ne 0 ] && grep -q "launcher.partial_sums is on, but" "$tmp/refused.out" ||
		fail "$bad: partial_sums=on not refused (exit $rc): $(tail -2 "$tmp/refused.out")"
done
echo "partial_sums=on refused where it cannot be: ok"
for r in spawn off on kill lie hold nan; do check_clean "$tmp/$r"; done
