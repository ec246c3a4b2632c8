#!/usr/bin/env bash
# fake_fedeval.sh: federated evaluation (evaluate.fraction) with the fake
# worker: the per-round fed_eval_loss/accuracy are the exact example-weighted
# means of the evaluating clients' numbers, the evaluators are the seeded
# share of the available clients, a failing evaluator is logged and counted
# without failing the round, every strategy (cyclic after its relay) runs
# it, pool workers serve it, kill -9 then --resume gives the model of a
# run without evaluation, and the missing data.holdout is a config error
# naming both keys.
. "$(dirname "$0")/lib/fake.sh"
fed=(--set evaluate.fraction=0.5 --set data.holdout=0.1)
# Check a workspace's federated evaluation against the fake worker's
# formulas: args WORKSPACE_ROOT EXPECTED_EVALUATORS_PER_ROUND FAILING_CLIENT
# (-1: none). Prints the evaluators of each round.
check_fed() {
	python3 - "$(ls -d "$1"/*/)" "$2" "$3" <<'PY'
import json, sys
ws, want, bad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = [json.loads(l) for l in open(ws + "metrics/metrics.jsonl")]
hist = {h["round"]: h for h in json.load(open(ws + "results/summary.json"))["history"]}
rounds = sorted({l["round"] for l in lines})
for r in rounds:
    task = [l for l in lines if l["round"] == r and "client" in l]
    evals = sorted({l["client"] for l in task if l["key"].startswith("fed_eval_")})
    failed = sorted({l["client"] for l in task if l["key"] == "fed_eval_failed"})
    assert len(evals) == want, (r, evals)
    assert failed == ([bad] if bad in evals else []), (r, failed)
    # Evaluation starts once the round's new model exists: after every fit.
    fit_tasks = [l["task"] for l in task if l["key"] == "num_examples"]
    eval_tasks = [l["task"] for l in task if l["key"].startswith("fed_eval_")]
    assert min(eval_tasks) > max(fit_tasks), (r, fit_tasks, eval_tasks)
    ok = [c for c in evals if c != bad]
    n = sum(10 * (c + 1) for c in ok)
    loss = sum(10 * (c + 1) * (1 + 0.125 * c + 0.5 * r) for c in ok) / n
    acc = sum(10 * (c + 1) * (0.03125 * (c + 1) + 0.0078125 * r) for c in ok) / n
    got = {l["key"]: l["value"] for l in lines if l["round"] == r and "client" not in l}
    assert got["fed_eval_loss"] == loss, (r, got["fed_eval_loss"], loss)
    assert got["fed_eval_accuracy"] == acc, (r, got["fed_eval_accuracy"], acc)
    assert got["fed_eval_ok"] == len(ok) and got["fed_eval_failed"] == len(evals) - len(ok), got
    assert abs(hist[r]["fed_eval_accuracy"] - acc) < 1e-9 and hist[r]["fed_eval_ok"] == len(ok), hist[r]
    print(r, " ".join(map(str, evals)))
PY
}

# Missing held-out data: a config error naming both keys.
set +e
run 4 4 4 1 --workspace-root "$tmp/bad" --set evaluate.fraction=0.5 2>"$tmp/bad.err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "evaluate.fraction" "$tmp/bad.err" && grep -q "data.holdout" "$tmp/bad.err" ||
	fail "fraction without holdout: rc $rc: $(cat "$tmp/bad.err")"
[ ! -e "$tmp/bad" ] || [ -z "$(ls "$tmp/bad")" ] || fail "a workspace was made for a bad config"

# 6 clients, 4 fit, half of the 6 evaluate: 3 a round, exact means, and
# the round line shows fed_acc next to test_acc.
run 6 6 4 3 --workspace-root "$tmp/a" "${fed[@]}" >"$tmp/a.out"
grep -q "^round 3/3  sampled 4  ok 4  failed 0 .* test_acc 0.3000  fed_acc 0\.[0-9]\{4\}  " "$tmp/a.out" ||
	fail "round line: $(cat "$tmp/a.out")"
check_fed "$tmp/a" 3 -1 >"$tmp/a.evals" || fail "fed eval of a"
# The same seed picks the same evaluators; another seed other ones.
run 6 6 4 3 --workspace-root "$tmp/b" "${fed[@]}" >/dev/null
check_fed "$tmp/b" 3 -1 >"$tmp/b.evals" || fail "fed eval of b"
cmp "$tmp/a.evals" "$tmp/b.evals" || fail "same seed, other evaluators"
run 6 6 4 3 --workspace-root "$tmp/s" "${fed[@]}" --set job.seed=7 >/dev/null
check_fed "$tmp/s" 3 -1 >"$tmp/s.evals" || fail "fed eval of seed 7"
! cmp -s "$tmp/a.evals" "$tmp/s.evals" || fail "seeds 1 and 7 picked the same evaluators every round"
# Pool workers (unbound to a client) evaluate for the client of the task.
run 6 6 4 3 --workspace-root "$tmp/p" "${fed[@]}" --set launcher.tasks_per_worker=10 >/dev/null
check_fed "$tmp/p" 3 -1 >"$tmp/p.evals" || fail "fed eval in pool mode"
cmp "$tmp/a.evals" "$tmp/p.evals" || fail "pool mode picked other evaluators"
check_clean "$tmp/p"
# Evaluation does not touch the model.
run 6 6 4 3 --workspace-root "$tmp/off" >"$tmp/off.out"
! grep -q fed_acc "$tmp/off.out" || fail "fed_acc printed with evaluate.fraction 0"
! grep -q fed_eval "$(ls "$tmp"/off/*/metrics/metrics.jsonl)" || fail "fed_eval metrics with evaluate.fraction 0"
cmp "$(model_of "$tmp/a")" "$(model_of "$tmp/off")" || fail "evaluation changed the model"
check_clean "$tmp/a"

# Client 2 fails every evaluate task (all 5 clients evaluate): logged,
# counted, the mean is of the other four, and the job succeeds.
COHORT_FAKE_FAULT=evalexit COHORT_FAKE_FAULT_CLIENT=2 run 5 5 5 2 --workspace-root "$tmp/f" \
	--set evaluate.fraction=1 --set data.holdout=0.1 >"$tmp/f.out" 2>"$tmp/f.err" ||
	fail "a failing evaluator failed the job: $(cat "$tmp/f.err")"
grep -q "^round 2/2  sampled 5  ok 5  failed 0 " "$tmp/f.out" || fail "rounds with a failing evaluator: $(cat "$tmp/f.out")"
grep -q "round 1: client 2 evaluate task [0-9]* failed: worker exited with status 1" "$tmp/f.err" ||
	fail "the failed evaluate task is not named: $(cat "$tmp/f.err")"
check_fed "$tmp/f" 5 2 >/dev/null || fail "fed eval with a failing client"
check_clean "$tmp/f"

# Every strategy; cyclic evaluates the model after the relay.
for s in fedavgm fedadam median trimmed krum cyclic; do
	run 5 5 5 2 --workspace-root "$tmp/$s" --set strategy.name=$s --set federation.min_fit=1 \
		"${fed[@]}" >"$tmp/$s.out" 2>"$tmp/$s.err" || fail "$s: $(cat "$tmp/$s.err")"
	grep -q "^round 2/2 .* fed_acc 0\.[0-9]\{4\}  " "$tmp/$s.out" || fail "$s: $(cat "$tmp/$s.out")"
	check_fed "$tmp/$s" 2 -1 >/dev/null || fail "fed eval of $s"
	check_clean "$tmp/$s"
done

# kill -9 with evaluation on, then --resume: the model of the run without
# evaluation, and the fed_eval metrics of the uninterrupted run.
run 4 4 4 4 --workspace-root "$tmp/ref" "${fed[@]}" >/dev/null
run 4 4 4 4 --workspace-root "$tmp/refoff" >/dev/null
COHORT_FAKE_SLEEP_MS=150 "$orch" 4 4 4 4 --workspace-root "$tmp/k" "${fed[@]}" \
	--set launcher.worker="$fake" --set output.progress=never >"$tmp/k.out" &
pid=$!
for _ in $(seq 200); do
	grep -qs '"round": 2,' "$tmp"/k/*/checkpoints/state.json && break
	sleep 0.05
done
grep -qs '"round": 2,' "$tmp"/k/*/checkpoints/state.json || fail "no round 2 checkpoint"
kill -9 $pid
wait $pid 2>/dev/null || true
for _ in $(seq 40); do [ -z "$(workers_of "$tmp/k")" ] && break; sleep 0.05; done
ws=$(ls -d "$tmp"/k/*/)
run --resume "$ws" >"$tmp/kr.out" || fail "resume: $(cat "$tmp/kr.out")"
grep -q "^round 4/4 .* fed_acc" "$tmp/kr.out" || fail "resume: $(cat "$tmp/kr.out")"
cmp "$(model_of "$tmp/refoff")" "$ws/results/global_model.safetensors" || fail "resumed model differs"
check_fed "$tmp/ref" 2 -1 >"$tmp/ref.evals" || fail "fed eval of ref"
check_fed "$tmp/k" 2 -1 >"$tmp/k.evals" || fail "fed eval after resume"
cmp "$tmp/ref.evals" "$tmp/k.evals" || fail "resume picked other evaluators"
check_clean "$tmp/k"
echo "fake_fedeval: ok"
