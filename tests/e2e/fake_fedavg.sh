#!/usr/bin/env bash
# fake_fedavg.sh: end-to-end rounds with the fake worker: the exact FedAvg
# result of its deterministic updates, identical reruns with the same seed,
# pool mode equal to spawn mode, command-line errors (exit 2), and a
# workspace only its owner can read (directories 0700, files 0600) unless
# job.shared_workspace, and debug lines with -v or COHORT_LOG=debug.
. "$(dirname "$0")/lib/fake.sh"

# Exact FedAvg: 4 clients all sampled, 3 rounds, examples weighting.
run 4 4 4 3 --workspace-root "$tmp/a" >"$tmp/a.out"
ws=$(ls -d "$tmp"/a/*/)
grep -q "round 3/3  sampled 4  ok 4  failed 0" "$tmp/a.out" || fail "round lines: $(cat "$tmp/a.out")"
python3 - "$ws/results/global_model.safetensors" <<'PY'
import json, struct, sys
f32 = lambda x: struct.unpack('<f', struct.pack('<f', x))[0]
data = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
hdr = json.loads(data[8:8 + n])
body = data[8 + n:]
for name, shape in (("a.weight", [4, 3]), ("a.bias", [4])):
    t = hdr[name]
    assert t["dtype"] == "F32" and t["shape"] == shape, t
    b, e = t["data_offsets"]
    got = struct.unpack('<%df' % ((e - b) // 4), body[b:e])
    for i, g in enumerate(got):
        x = f32(i * f32(0.1))
        for rnd in range(3):
            acc = wsum = 0.0
            for c in range(4):
                w = 100.0 * (c + 1)
                acc += w * f32(x + f32(f32(0.01) * (c + 1)))
                wsum += w
            x = f32(acc / wsum)
        assert abs(g - x) <= 2e-7 * max(1.0, abs(x)), (name, i, g, x)
print("fedavg exact: ok")
PY
grep -q '"key":"test_accuracy"' "$ws/metrics/metrics.jsonl" || fail "no test_accuracy in metrics.jsonl"
[ -f "$ws/checkpoints/round-0003.safetensors" ] && [ -f "$ws/checkpoints/round-0002.safetensors" ] || fail "last two checkpoints"
[ ! -f "$ws/checkpoints/round-0001.safetensors" ] || fail "round-0001 checkpoint should be pruned"

# Same seed twice: identical per-round metrics and model; pool mode too.
run 8 3 3 4 --workspace-root "$tmp/b" >"$tmp/b1.out"
run 8 3 3 4 --workspace-root "$tmp/c" >"$tmp/b2.out"
run 8 3 3 4 --workspace-root "$tmp/d" --set launcher.tasks_per_worker=4 >"$tmp/b3.out"
strip() { sed -e 's/  [0-9.]*s$//' -e 's/workspace .*//' -e 's/model .*//' "$1"; }
diff <(strip "$tmp/b1.out") <(strip "$tmp/b2.out") || fail "reruns differ"
diff <(strip "$tmp/b1.out") <(strip "$tmp/b3.out") || fail "pool mode differs"
m1=$(ls "$tmp"/b/*/results/global_model.safetensors)
cmp "$m1" "$(ls "$tmp"/c/*/results/global_model.safetensors)" || fail "rerun models differ"
cmp "$m1" "$(ls "$tmp"/d/*/results/global_model.safetensors)" || fail "pool model differs"
spawned=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workers_spawned"])' "$(ls "$tmp"/d/*/results/summary.json)")
[ "$spawned" -lt 16 ] || fail "pool mode spawned $spawned workers for 16 tasks"
run 8 3 3 4 --workspace-root "$tmp/e" --set job.seed=2 >"$tmp/b4.out"
cmp -s "$m1" "$(ls "$tmp"/e/*/results/global_model.safetensors)" && fail "another seed gave the same model"

# Usage errors exit 2 with one line and the usage.
for args in "4 5 2 3" "2 2 3 1" "0 1 1 1" "a b c d" "1 2 3"; do
	set +e
	# shellcheck disable=SC2086
	"$orch" $args --workspace-root "$tmp/u" 2>"$tmp/u.err"
	rc=$?
	set -e
	[ $rc -eq 2 ] || fail "'$args' exited $rc"
	grep -q "usage:" "$tmp/u.err" || fail "'$args' printed no usage"
done
set +e
"$orch" --set federation.rounds=three 2>"$tmp/u.err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q 'federation.rounds: expected a positive integer, got "three"' "$tmp/u.err" || fail "bad --set: $rc $(cat "$tmp/u.err")"

for r in a b c d e; do check_clean "$tmp/$r"; done

# Modes: every directory and file of a workspace, whatever wrote it (the
# orchestrator, the prepare step, the workers' logs).
umask 022
modes() { find "$1" -mindepth 1 \( -type d -printf 'd %m %P\n' -o -type f -printf 'f %m %P\n' \) | grep -v -e ' run$' -e ' run/'; }
modes "$ws" | awk '($1 == "d" && $2 != "700") || ($1 == "f" && $2 != "600")' >"$tmp/open.modes"
[ ! -s "$tmp/open.modes" ] || fail "readable by others: $(head "$tmp/open.modes")"
[ "$(stat -c %a "$ws")" = 700 ] || fail "workspace mode $(stat -c %a "$ws")"
[ "$(modes "$ws" | grep -c '^f')" -ge 10 ] || fail "too few files checked: $(modes "$ws")"
run 2 2 2 1 --set job.shared_workspace=true --workspace-root "$tmp/shared" >/dev/null
sws=$(ls -d "$tmp"/shared/*/)
modes "$sws" | awk '($1 == "d" && $2 != "755") || ($1 == "f" && $2 != "644")' >"$tmp/shared.modes"
[ ! -s "$tmp/shared.modes" ] || fail "job.shared_workspace: $(head "$tmp/shared.modes")"

# Debug lines: none by default; with -v (or COHORT_LOG=debug) every move of
# each worker's two state machines and of the round's phase, in
# orchestrator.log.
grep -q " debug: " "$ws/logs/orchestrator.log" && fail "debug lines without -v"
for how in -v env; do
	if [ $how = -v ]; then
		run 2 2 2 1 -v --workspace-root "$tmp/v-$how" >/dev/null 2>&1
	else
		COHORT_LOG=debug run 2 2 2 1 --workspace-root "$tmp/v-$how" >/dev/null 2>&1
	fi
	log=$(ls "$tmp"/v-$how/*/logs/orchestrator.log)
	for move in "connection none -> hello: connected" "connection hello -> busy: task sent" \
		"connection busy -> retiring: result of its last task in" "process running -> exited: reaped: exit status 0" \
		"-> closed: the peer hung up" "finished after 1 tasks"; do
		[ "$(grep -c "debug: .*$move" "$log")" -ge 2 ] || fail "$how: no '$move' in $log"
	done
	for move in "round 1: idle -> fit: started" "round 1: fit -> evaluate: 2 of 2 fits in" \
		"round 1: evaluate -> done: evaluations ended" "round 1: done -> stopped: exit status 0"; do
		grep -q "debug: $move" "$log" || fail "$how: no '$move' in $log"
	done
done
echo "fake_fedavg: ok"
