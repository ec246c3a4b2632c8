#!/usr/bin/env bash
# fake_availability.sh: with federation.availability < 1 every round samples
# exactly fit_clients when that many are available; a round with fewer than
# min_clients available follows federation.on_unavailable: wait (default)
# draws availability again and the job finishes, skip records the round as
# skipped and goes on, fail ends the job naming the key, and a job failed
# that way resumes with wait to the model of an uninterrupted run; wait
# gives up after 100 draws saying availability is too low. The round line
# shows the available, offline and excluded counts.
. "$(dirname "$0")/lib/fake.sh"

# Seed 7, 10 clients online with p 0.5: the first draws of rounds 1-6 make
# 6 6 2 6 5 8 clients available, so round 3 has fewer than min_clients 4.
job=(10 4 4 6 --set job.seed=7 --set federation.availability=0.5)

# wait (the default): every round runs and samples exactly 4.
run "${job[@]}" --workspace-root "$tmp/wait" >"$tmp/wait.out" 2>"$tmp/wait.err" ||
	fail "wait exited $?: $(cat "$tmp/wait.err")"
[ "$(grep -c "^round [1-6]/6  sampled 4  ok 4  failed 0  available [4-9]  offline [0-6]  excluded 0  " "$tmp/wait.out")" -eq 6 ] ||
	fail "wait: rounds: $(cat "$tmp/wait.out")"
grep -q "^round 3/6  sampled 4 .* redrawn [1-9]" "$tmp/wait.out" || fail "wait: round 3 not redrawn: $(cat "$tmp/wait.out")"
grep -q "round 3: only 2 of 10 clients available (0 excluded after 3 consecutive failures, 8 offline), fewer than federation.min_clients 4; drew availability again" \
	"$tmp"/wait/*/logs/orchestrator.log || fail "wait: no log line of the new draw"
ws=$(ls -d "$tmp"/wait/*/)
[ "$(grep -c '"key":"fit_ok","value":4' "$ws/metrics/metrics.jsonl")" -eq 6 ] || fail "wait: fit_ok lines"
[ "$(grep -c '"key":"clients_available"' "$ws/metrics/metrics.jsonl")" -eq 6 ] || fail "wait: clients_available lines"
check_clean "$tmp/wait"

# skip: round 3 is recorded as skipped, the model unchanged, the job goes on.
run "${job[@]}" --set federation.on_unavailable=skip --workspace-root "$tmp/skip" >"$tmp/skip.out" 2>"$tmp/skip.err" ||
	fail "skip exited $?: $(cat "$tmp/skip.err")"
grep -q "^round 3/6  skipped  available 2  offline 8  excluded 0  (federation.min_clients 4)" "$tmp/skip.out" ||
	fail "skip: round 3: $(cat "$tmp/skip.out")"
[ "$(grep -c "^round [124-6]/6  sampled 4  ok 4  failed 0  available" "$tmp/skip.out")" -eq 5 ] || fail "skip: rounds: $(cat "$tmp/skip.out")"
grep -q "^done: 6 rounds" "$tmp/skip.out" || fail "skip: not done: $(cat "$tmp/skip.out")"
ws=$(ls -d "$tmp"/skip/*/)
grep -q '{"round":3,"key":"round_skipped","value":1' "$ws/metrics/metrics.jsonl" || fail "skip: no round_skipped metric"
! grep -q '{"round":3,"key":"fit_ok"' "$ws/metrics/metrics.jsonl" || fail "skip: round 3 has fits"
python3 - "$ws" <<'PY' || fail "skip: summary.json"
import json, sys
h = json.load(open(sys.argv[1] + "/results/summary.json"))["history"]
assert [e["round"] for e in h] == [1, 2, 3, 4, 5, 6], h
assert h[2]["skipped"] is True and h[2]["sampled"] == 0, h[2]
assert h[2]["test_accuracy"] == h[1]["test_accuracy"], h  # the same model
assert not any(e.get("skipped") for i, e in enumerate(h) if i != 2), h
PY
check_clean "$tmp/skip"
# The skipped round's checkpoint holds round 2's weights.
run "${job[@]}" --set federation.rounds=3 --set federation.on_unavailable=skip --workspace-root "$tmp/skip3" >/dev/null
python3 - "$(ls -d "$tmp"/skip3/*/)checkpoints" <<'PY' || fail "skip: round 3 changed the model"
import json, struct, sys
def tensors(p):
    d = open(p, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]
    h = json.loads(d[8:8 + n]); b = d[8 + n:]
    return {k: b[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = (tensors("%s/round-%04d.safetensors" % (sys.argv[1], r)) for r in (2, 3))
assert a == b and a
PY

# fail: the job ends at round 3 naming the key; --resume with wait goes on
# from round 2 to the model of the uninterrupted wait run.
set +e
run "${job[@]}" --set federation.on_unavailable=fail --workspace-root "$tmp/fail" >"$tmp/fail.out" 2>"$tmp/fail.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "fail exited $rc"
grep -q "round 3: only 2 of 10 clients available (0 excluded after 3 consecutive failures, 8 offline); federation.min_clients is 4 and federation.on_unavailable is fail" "$tmp/fail.err" ||
	fail "fail: message: $(cat "$tmp/fail.err")"
ws=$(ls -d "$tmp"/fail/*/)
set +e
run --resume "$ws" >"$tmp/fail2.out" 2>"$tmp/fail2.err"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "round 3: only 2 of 10" "$tmp/fail2.err" || fail "resume with fail: exit $rc: $(cat "$tmp/fail2.err")"
run --resume "$ws" --set federation.on_unavailable=wait >"$tmp/res.out" 2>"$tmp/res.err" ||
	fail "resume with wait exited $?: $(cat "$tmp/res.err")"
grep -q "resuming after round 2" "$tmp/res.out" || fail "resume: $(cat "$tmp/res.out")"
grep -q "^round 6/6  sampled 4" "$tmp/res.out" || fail "resume did not finish: $(cat "$tmp/res.out")"
cmp "$(model_of "$tmp/wait")" "$ws/results/global_model.safetensors" || fail "resumed model differs from the wait run's"
check_clean "$tmp/fail"

# wait gives up after 100 draws when availability cannot reach min_clients.
set +e
run 10 4 4 2 --set federation.availability=0.01 --workspace-root "$tmp/low" >"$tmp/low.out" 2>"$tmp/low.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "low availability exited $rc"
grep -q "round 1: only [0-3] of 10 clients available .* after 100 availability draws; federation.availability 0.01 is too low for federation.min_clients 4" "$tmp/low.err" ||
	fail "low availability: $(cat "$tmp/low.err")"
check_clean "$tmp/low"

# The key and its choices are in --help.
"$orch" --help >"$tmp/help.out" 2>&1 || true
grep -q "federation.on_unavailable  *one of \"wait\", \"skip\", \"fail\" (default \"wait\")" "$tmp/help.out" ||
	fail "--help does not list federation.on_unavailable"
echo "fake_availability: ok"
