#!/usr/bin/env bash
# sampled_clients.sh: data.samples_per_client gives a federation far larger
# than Fashion-MNIST (200,000 clients) each its own seeded draw of 60
# training samples: the partition file is 40 bytes, prepared.json caps
# every client at its 54 training / 6 held-out samples, fits report 54
# examples, federated evaluation runs on the 6, the model learns, and the
# same job again gives the same model byte for byte; samples_per_client
# with a non-iid partition or more samples than the data holds is an error
# naming the key (test_prepare_run: a claim beyond the draw is refused).
. "$(dirname "$0")/lib/fake.sh"
src=${COHORT_SOURCE_DIR:?}
need_fashion_mnist
cd "$src"
opts=(--config configs/fedavg-mlp.json --set data.samples_per_client=60 --set data.holdout=0.1
	--set evaluate.fraction=0.0001 --set launcher.tasks_per_worker=20 --set output.progress=never
	--set tracking.tensorboard=false --set tracking.report=false)
for r in a b; do
	"$orch" 200000 40 40 3 --workspace-root "$tmp/$r" "${opts[@]}" >"$tmp/$r.out" 2>"$tmp/$r.err" ||
		fail "$r: exit $?: $(tail -5 "$tmp/$r.err")"
done
grep -q "round 3/3  sampled 40  ok 40  failed 0" "$tmp/a.out" || fail "rounds: $(cat "$tmp/a.out")"
ws=$(ls -d "$tmp"/a/*/)
[ "$(stat -c %s "$ws/data/partition.bin")" -eq 40 ] || fail "partition.bin is $(stat -c %s "$ws/data/partition.bin") bytes"
python3 - "$ws" <<'PY' || fail "prepared.json or metrics"
import json, sys
ws = sys.argv[1]
p = json.load(open(ws + "/data/prepared.json"))
assert p["client_train"] == 54 and p["client_holdout"] == 6, p
lines = [json.loads(l) for l in open(ws + "/metrics/metrics.jsonl")]
ex = [l["value"] for l in lines if l.get("key") == "num_examples"]
assert len(ex) == 120 and set(ex) == {54}, (len(ex), set(ex))
fe = [l["value"] for l in lines if l.get("key") == "fed_eval_examples"]
assert fe and set(fe) == {6}, fe
clients = {l["client"] for l in lines if l.get("key") == "num_examples"}
assert max(clients) > 60000, "no client beyond the data's sample count"
acc = [l["value"] for l in lines if l.get("key") == "test_accuracy"]
assert acc[-1] > acc[0] + 0.1, acc  # 54 samples, 2 steps a fit: it learns
PY
cmp "$(model_of "$tmp/a")" "$(model_of "$tmp/b")" || fail "the same job gave another model"
check_clean "$tmp/a"
for bad in "data.partition=dirichlet:set data.partition to iid" \
	"data.samples_per_client=70000:data.samples_per_client: 70000 is more than the 60000"; do
	set +e
	"$orch" 1000 4 4 1 --workspace-root "$tmp/bad" "${opts[@]}" --set "${bad%%:*}" >"$tmp/bad.out" 2>&1
	rc=$?
	set -e
	[ $rc -ne 0 ] && grep -q "${bad#*:}" "$tmp/bad.out" || fail "${bad%%:*}: exit $rc: $(cat "$tmp/bad.out")"
done
echo "sampled_clients: ok"
