#!/usr/bin/env bash
# fmnist_fedavg.sh: the product's main job with the real worker on IID
# Fashion-MNIST: `10 10 10 5` with the default config reaches >= 0.80 test
# accuracy; the same seed twice gives the same per-round metrics and the same
# model; kill -9 of the orchestrator mid-job then --resume ends with the model
# of the uninterrupted run; nothing is left in /dev/shm or the process table.
set -euo pipefail
build=${COHORT_BUILD_DIR:?}
src=${COHORT_SOURCE_DIR:?}
orch=$build/orchestrator/cohort-orchestrator
. "$(dirname "$0")/lib/fmnist.sh"
run() {
	"$orch" "$@" --config "$src/configs/fedavg-mlp.json" \
		--set data.cache_dir="$tmp/cache" --set output.progress=never
}
# Round-level metrics of a workspace (round, key, value to 10 significant
# digits: a mean over clients is summed in arrival order, so its last bits
# may differ; the model itself is compared byte for byte).
round_metrics() {
	grep -v '"client"' "$1/metrics/metrics.jsonl" | grep -v round_seconds |
		sed 's/{"round":\([0-9]*\),"key":"\([a-z_]*\)","value":\([^,}]*\).*/\1 \2 \3/' |
		awk '{ if ($3 == "null") print $1, $2, $3; else printf "%s %s %.10g\n", $1, $2, $3 }'
}
job_keys() { sed -n 's/.*job key \([0-9]*-[0-9a-f]*\),.*/\1/p' "$1"/*/logs/orchestrator.log; }

run 10 10 10 5 --workspace-root "$tmp/a" >"$tmp/a.out"
cat "$tmp/a.out"
acc=$(sed -n 's/^round 5\/5 .*test_acc \([0-9.]*\).*/\1/p' "$tmp/a.out")
[ -n "$acc" ] || fail "no round 5 line"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.80) }' || fail "test accuracy $acc < 0.80 after 5 rounds"
wa=$(ls -d "$tmp"/a/*/)
[ -f "$wa/results/global_model.safetensors" ] || fail "no final model"
[ -f "$wa/results/summary.json" ] || fail "no summary"

run 10 10 10 5 --workspace-root "$tmp/b" >"$tmp/b.out"
wb=$(ls -d "$tmp"/b/*/)
diff <(round_metrics "$wa") <(round_metrics "$wb") || fail "same seed, different per-round metrics"
cmp "$wa/results/global_model.safetensors" "$wb/results/global_model.safetensors" ||
	fail "same seed, different final model"

# kill -9 once round 2 is checkpointed, then resume. Resuming while the
# orchestrator still runs is refused. (The orchestrator is started directly,
# not through run(), so that $! is its own pid.)
"$orch" 10 10 10 5 --config "$src/configs/fedavg-mlp.json" --workspace-root "$tmp/k" \
	--set data.cache_dir="$tmp/cache" --set output.progress=never >"$tmp/k.out" &
pid=$!
for _ in $(seq 600); do
	grep -qs '"round": [2-4],' "$tmp"/k/*/checkpoints/state.json && break
	sleep 0.02
done
if "$orch" --resume "$(ls -d "$tmp"/k/*/)" >"$tmp/busy.out" 2>&1; then
	fail "resume of a workspace in use was accepted"
fi
grep -q "in use by cohort-orchestrator pid $pid" "$tmp/busy.out" ||
	fail "resume of a busy workspace: $(cat "$tmp/busy.out")"
kill -9 $pid
wait $pid 2>/dev/null || true
wk=$(ls -d "$tmp"/k/*/)
"$orch" --resume "$wk" --set output.progress=never >"$tmp/r.out" || fail "resume failed: $(cat "$tmp/r.out")"
grep -q "round 5/5" "$tmp/r.out" || fail "resume did not finish"
cmp "$wa/results/global_model.safetensors" "$wk/results/global_model.safetensors" ||
	fail "resumed model differs from the uninterrupted run"
n=$(grep -c '"key":"test_accuracy"' "$wk/metrics/metrics.jsonl")
[ "$n" -eq 5 ] || fail "metrics.jsonl has $n test_accuracy lines after resume, expected 5"

# Nothing left behind by any of the runs (the killed one included: the
# resumed run's start removes a dead orchestrator's segments).
sleep 0.2
for k in $(job_keys "$tmp/a") $(job_keys "$tmp/b") $(job_keys "$tmp/k"); do
	if ls /dev/shm | grep -q "^cohort\.$k\."; then fail "segments of job $k left in /dev/shm"; fi
done
if grep -l "$tmp" /proc/[0-9]*/environ 2>/dev/null | grep -q .; then
	fail "worker processes left"
fi
echo "fmnist_fedavg: ok (test accuracy $acc)"
