#!/usr/bin/env bash
# fake_strategies.sh: every strategy runs a 3-round job with the fake worker
# and leaves no segment or worker behind; FedProx needs train.mu; cyclic
# relays the model hop by hop (exact model checked), skips a client that
# always crashes and names it; under cyclic_on_failure skip and retry alike
# that client's hop fails once a round (retries shown apart, the round
# line's counts add up), it is excluded after 3 rounds and the job goes on;
# kill -9 mid-round then --resume gives the model of an uninterrupted run.
. "$(dirname "$0")/lib/fake.sh"

# Every strategy completes 3 rounds.
for s in fedavgm fedadam fedyogi fedadagrad median trimmed krum cyclic; do
	run 5 5 5 3 --workspace-root "$tmp/$s" --set strategy.name=$s >"$tmp/$s.out" 2>"$tmp/$s.err" ||
		fail "$s exited $?: $(cat "$tmp/$s.err")"
	grep -q "round 3/3  sampled 5  ok 5  failed 0" "$tmp/$s.out" || fail "$s: $(cat "$tmp/$s.out")"
	grep -q '"name": "'$s'"' "$(ls "$tmp"/$s/*/checkpoints/state.json)" || fail "$s: state.json names no strategy"
	check_clean "$tmp/$s"
done
# The robust strategies differ from FedAvg on the fake updates only by
# their rule: median of 0.01 * (c + 1), c = 0..4, is FedAvg uniform's mean.
run 5 5 5 3 --workspace-root "$tmp/uni" --set strategy.weighting=uniform >/dev/null
cmp "$(model_of "$tmp/uni")" "$(model_of "$tmp/median")" >/dev/null 2>&1 ||
python3 - "$(model_of "$tmp/uni")" "$(model_of "$tmp/median")" <<'PY' || fail "median differs from the uniform mean"
import json, struct, sys
def load(p):
    d = open(p, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]
    h = json.loads(d[8:8 + n]); b = d[8 + n:]
    return {k: struct.unpack('<%df' % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4), b[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
for k in a:
    assert all(abs(x - y) < 1e-6 for x, y in zip(a[k], b[k])), k
PY
# Checkpoints of FedAdam carry the moments.
ls "$tmp"/fedadam/*/checkpoints/strategy-0003.safetensors >/dev/null || fail "no FedAdam moments checkpoint"

# FedProx: train.mu is required, then sent to the workers.
set +e
run 2 2 2 1 --workspace-root "$tmp/px" --set strategy.name=fedprox 2>"$tmp/px.err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "train.mu" "$tmp/px.err" || fail "fedprox without mu: $rc $(cat "$tmp/px.err")"
run 2 2 2 3 --workspace-root "$tmp/px" --set strategy.name=fedprox --set train.mu=0.01 >"$tmp/px.out" ||
	fail "fedprox with mu"
check_clean "$tmp/px"

# Cyclic relays: each hop adds 0.01 * (client + 1) in float32 to the model
# it received; client 1 always crashes and is skipped.
COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=1 run 3 1 3 3 --workspace-root "$tmp/cy" \
	--set strategy.name=cyclic --set federation.min_fit=1 >"$tmp/cy.out" 2>"$tmp/cy.err" || fail "cyclic with a crashing client: $(cat "$tmp/cy.err")"
grep -q "round 3/3  sampled 3  ok 2  failed 1" "$tmp/cy.out" || fail "cyclic rounds: $(cat "$tmp/cy.out")"
grep -q "skipping client 1" "$tmp/cy.err" || fail "log does not name the skipped client: $(cat "$tmp/cy.err")"
grep -q "skipping client 1" "$(ls "$tmp"/cy/*/logs/orchestrator.log)" || fail "orchestrator.log does not name the skipped client"
python3 - "$(model_of "$tmp/cy")" <<'PY'
import json, struct, sys
f32 = lambda x: struct.unpack('<f', struct.pack('<f', x))[0]
d = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', d[:8])[0]
h = json.loads(d[8:8 + n]); body = d[8 + n:]
for name in ("a.weight", "a.bias"):
    b, e = h[name]["data_offsets"]
    for i, g in enumerate(struct.unpack('<%df' % ((e - b) // 4), body[b:e])):
        x = f32(i * f32(0.1))
        for rnd in range(3):
            for c in (0, 2):
                x = f32(x + f32(f32(0.01) * (c + 1)))
        assert g == x, (name, i, g, x)
print("cyclic relay exact: ok")
PY
check_clean "$tmp/cy"

# Cyclic retry and skip count and exclude alike: client 1 always crashes;
# its hop fails once a round (retry's extra tries are counted apart, as
# "retried"), so under both it is excluded after round 3, never sampled
# again, and the job goes on with the other three.
for p in skip retry; do
	COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=1 run 4 3 4 5 --workspace-root "$tmp/cy$p" \
		--set strategy.name=cyclic --set strategy.cyclic_on_failure=$p --set federation.min_fit=1 \
		>"$tmp/cy$p.out" 2>"$tmp/cy$p.err" || fail "cyclic $p: exit $?: $(cat "$tmp/cy$p.err")"
	extra=""
	[ $p = retry ] && extra="  retried 1"
	for r in 1 2 3; do
		grep -q "^round $r/5  sampled 4  ok 3  failed 1$extra  train_loss" "$tmp/cy$p.out" ||
			fail "cyclic $p: round $r: $(cat "$tmp/cy$p.out")"
	done
	for r in 4 5; do
		grep -q "^round $r/5  sampled 3  ok 3  failed 0  available 3  offline 0  excluded 1  train_loss" "$tmp/cy$p.out" ||
			fail "cyclic $p: round $r: $(cat "$tmp/cy$p.out")"
	done
	log=$(ls "$tmp"/cy$p/*/logs/orchestrator.log)
	grep -q "round 3: client 1 task .*" "$log" && grep -q "client 1 excluded after 3 consecutive failures" "$log" ||
		fail "cyclic $p: exclusion not logged"
	! grep -q "round [45]: .*client 1" "$log" || fail "cyclic $p: excluded client 1 ran again"
	check_clean "$tmp/cy$p"
done
[ "$(grep -c "retrying client 1" "$tmp/cyretry.err")" -eq 3 ] || fail "cyclic retry: $(cat "$tmp/cyretry.err")"
# min_clients 4 of 4: a 3-round job finishes under retry as under skip.
COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=1 run 4 4 4 3 --workspace-root "$tmp/cy4" \
	--set strategy.name=cyclic --set strategy.cyclic_on_failure=retry --set federation.min_fit=1 \
	>"$tmp/cy4.out" 2>"$tmp/cy4.err" || fail "cyclic retry, min_clients 4: exit $?: $(cat "$tmp/cy4.err")"
grep -q "^round 3/3  sampled 4  ok 3  failed 1  retried 1  " "$tmp/cy4.out" || fail "cyclic retry, min_clients 4: $(cat "$tmp/cy4.out")"
check_clean "$tmp/cy4"

# kill -9 in the middle of a cyclic round, then --resume: same model as
# an uninterrupted run (random_no_repeat order, so the order memory counts).
cyc=(--set strategy.name=cyclic --set strategy.cyclic_order=random_no_repeat)
run 4 4 4 3 --workspace-root "$tmp/ref" "${cyc[@]}" >/dev/null
COHORT_FAKE_SLEEP_MS=200 run_bg 4 4 4 3 --workspace-root "$tmp/k" "${cyc[@]}" >"$tmp/k.out"
pid=$!
for _ in $(seq 200); do
	grep -qs '"round":2,"attempt":0,"pos":2' "$tmp"/k/*/checkpoints/cycle.json && break
	sleep 0.05
done
grep -qs '"round":2,"attempt":0,"pos":2' "$tmp"/k/*/checkpoints/cycle.json || fail "no mid-round cycle checkpoint"
kill -9 $pid
wait $pid 2>/dev/null || true
for _ in $(seq 40); do [ -z "$(workers_of "$tmp/k")" ] && break; sleep 0.05; done
ws=$(ls -d "$tmp"/k/*/)
run --resume "$ws" >"$tmp/kr.out"
grep -q "resuming the cycle of round 2 at hop [3-4] of 4" "$tmp/kr.out" || fail "resume: $(cat "$tmp/kr.out")"
cmp "$(model_of "$tmp/ref")" "$ws/results/global_model.safetensors" || fail "resumed cyclic model differs"
check_clean "$tmp/k"
echo "fake_strategies: ok"
