#!/usr/bin/env bash
# nvflare_client.sh: examples/nvflare-client, a script written for NVFlare's
# Client API (import nvflare.client as flare, FLModel, tracking's
# SummaryWriter), runs unchanged with worker.adapter=nvflare: FedAvg in
# fork-server mode learns Fashion-MNIST, its SummaryWriter scalars reach
# metrics.jsonl; without the adapter the same script fails its tasks with
# the ImportError in the round line.
. "$(dirname "$0")/lib/fake.sh"
. "$(dirname "$0")/lib/torch.sh"

"$orch" 4 4 4 2 --config examples/nvflare-client/job.json --workspace-root "$tmp/flare" "${quiet[@]}" \
	>"$tmp/flare.out" 2>"$tmp/flare.err" || fail "exit $?: $(tail -5 "$tmp/flare.err")"
grep -q "round 2/2  sampled 4  ok 4  failed 0" "$tmp/flare.out" || fail "$(cat "$tmp/flare.out")"
acc=$(sed -n 's/^done: .*test_acc \([0-9.]*\),.*/\1/p' "$tmp/flare.out")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.75) }' || fail "test accuracy $acc after 2 rounds (at least 0.75 expected)"
jsonl=$(ls "$tmp"/flare/*/metrics/metrics.jsonl)
keys=$(grep -o '"key":"[a-z_]*"' "$jsonl" | sort -u | tr '\n' ' ')
[ "$(grep -c '"key":"train_loss"' "$jsonl")" -gt 0 ] || fail "no SummaryWriter scalar in metrics.jsonl (keys: $keys)"
check_clean "$tmp/flare"

"$orch" 2 2 2 1 --config examples/nvflare-client/job.json --workspace-root "$tmp/none" "${quiet[@]}" \
	--set worker.adapter=none >"$tmp/none.out" 2>&1 && fail "the script ran without the adapter: $(cat "$tmp/none.out")"
grep -q "No module named 'nvflare'" "$tmp/none.out" || fail "no ImportError in the output: $(tail -5 "$tmp/none.out")"
echo "NVFlare script: test_acc $acc; without the adapter: ImportError"
