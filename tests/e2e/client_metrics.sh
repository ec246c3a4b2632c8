#!/usr/bin/env bash
# client_metrics.sh: output.client_metrics = summary keeps, per round, the
# mean, sum, min, max and 10th/50th/90th percentiles of every per-client
# number (fits and federated evaluations) in place of the per-client lines:
# the same job with all lines gives the same numbers (computed here from
# those lines; percentiles as numpy's default); no per-client line is written but a
# failed fit's; the report says participation is not recorded; TensorBoard
# and the round line are unchanged; child runs are refused with it.
. "$(dirname "$0")/lib/fake.sh"
opts=(--set evaluate.fraction=0.5 --set data.holdout=0.1 --set tracking.report=true
	--set job.seed=5)
run 20 10 10 3 --workspace-root "$tmp/all" "${opts[@]}" >"$tmp/all.out" ||
	fail "all: $(cat "$tmp/all.out")"
run 20 10 10 3 --workspace-root "$tmp/sum" "${opts[@]}" \
	--set output.client_metrics=summary >"$tmp/sum.out" || fail "summary: $(cat "$tmp/sum.out")"
grep "^round" "$tmp/all.out" | sed 's/ *[0-9.]*s$//' >"$tmp/all.rounds"
grep "^round" "$tmp/sum.out" | sed 's/ *[0-9.]*s$//' >"$tmp/sum.rounds"
[ "$(wc -l <"$tmp/all.rounds")" -ge 3 ] || fail "no round lines: $(cat "$tmp/all.out")"
cmp -s "$tmp/all.rounds" "$tmp/sum.rounds" || fail "round lines differ: $(diff "$tmp/all.rounds" "$tmp/sum.rounds")"
python3 - "$tmp"/all/*/metrics/metrics.jsonl "$tmp"/sum/*/metrics/metrics.jsonl <<'PY' || fail "summaries"
import json, math, sys

def percentile(v, q):  # numpy's default: linear between closest ranks
    v = sorted(v)
    pos = q / 100 * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])

def lines(p):
    return [json.loads(l) for l in open(p)]

every, summ = lines(sys.argv[1]), lines(sys.argv[2])
per = {}
for l in every:
    if "client" in l and not l["key"].startswith("step_"):
        per.setdefault((l["round"], l["key"]), []).append(l["value"])
assert per, "the all job wrote no per-client lines"
assert not [l for l in summ if "client" in l], "summary job wrote per-client lines"
got = {(l["round"], l["key"]): l["value"] for l in summ}
stats = {"mean": lambda v: math.fsum(v) / len(v), "sum": math.fsum, "min": min, "max": max,
         "p10": lambda v: percentile(v, 10), "p50": lambda v: percentile(v, 50),
         "p90": lambda v: percentile(v, 90)}
checked = 0
for (rnd, key), vals in per.items():
    for name, fn in stats.items():
        want = float(fn([float(x) for x in vals]))
        have = got.get((rnd, "client_%s_%s" % (key, name)))
        assert have is not None, "round %d: no client_%s_%s" % (rnd, key, name)
        assert abs(have - want) <= 1e-9 * max(1.0, abs(want)), (rnd, key, name, have, want)
        checked += 1
keys = {k for _, k in per}
for k in ("num_examples", "loss", "fed_eval_loss", "fed_eval_accuracy"):
    assert k in keys, "no per-client %s in the all job: %s" % (k, sorted(keys))
# the round-level lines of both jobs are the same (train_loss up to the
# order the fits ended in)
rl = lambda ls: sorted((l["round"], l["key"], l["value"]) for l in ls
                       if "client" not in l and not l["key"].startswith("client_")
                       and l["key"] != "round_seconds")
a, b = rl(every), rl(summ)
assert [x[:2] for x in a] == [x[:2] for x in b], "round-level keys differ"
for x, y in zip(a, b):
    assert x[2] == y[2] or abs(x[2] - y[2]) <= 1e-12 * abs(x[2]), (x, y)
print("checked", checked, "summaries of", len(keys), "keys")
PY
grep -q "Per-client participation is not recorded" "$tmp"/sum/*/results/report.html ||
	fail "the report does not say participation is not recorded"
grep -q "Per-client participation is not recorded" "$tmp"/all/*/results/report.html &&
	fail "the all job's report says participation is not recorded"
ls "$tmp"/sum/*/tensorboard/events.* >/dev/null || fail "no TensorBoard file"
# A failed fit keeps its per-client line in summary mode.
COHORT_FAKE_FAULT=exit1 COHORT_FAKE_FAULT_CLIENT=2 run 6 3 6 1 --workspace-root "$tmp/fault" \
	--set output.client_metrics=summary --set federation.min_fit=3 >"$tmp/fault.out" 2>&1 ||
	fail "fault job: $(cat "$tmp/fault.out")"
grep -q '"client":2,.*"key":"failed"' "$tmp"/fault/*/metrics/metrics.jsonl ||
	fail "failed fit not recorded: $(cat "$tmp/fault.out")"
[ "$(grep -c '"client"' "$tmp"/fault/*/metrics/metrics.jsonl)" -eq 1 ] || fail "more per-client lines than the failure"
set +e
run 4 4 4 1 --workspace-root "$tmp/bad" --set output.client_metrics=summary \
	--set tracking.child_runs=true >"$tmp/bad.out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "tracking.child_runs" "$tmp/bad.out" && grep -q "output.client_metrics" "$tmp/bad.out" ||
	fail "child_runs with summary: exit $rc: $(cat "$tmp/bad.out")"
echo "client_metrics: ok"
