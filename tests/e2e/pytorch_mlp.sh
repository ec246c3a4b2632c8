#!/usr/bin/env bash
# pytorch_mlp.sh: examples/pytorch-mlp, a user's plain PyTorch script, run
# as its README runs it: FedAvg in fork-server mode and the cyclic variant
# reach the built-in worker's test accuracy on the same federation within
# 0.01; spawned and pooled it gives the forked model; its per-step losses
# (cohort.log) reach metrics.jsonl.
. "$(dirname "$0")/lib/fake.sh"
. "$(dirname "$0")/lib/torch.sh"

acc_of() { sed -n 's/^done: .*test_acc \([0-9.]*\),.*/\1/p' "$1"; }
close() { "$py" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 0.01)" "$1" "$2"; }

# name, clients, rounds, the example's config, the built-in's config
while read -r name n rounds example builtin; do
	"$orch" $n $n $n $rounds --config "$example" --workspace-root "$tmp/$name" "${quiet[@]}" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" || fail "$name: exit $?: $(tail -5 "$tmp/$name.err")"
	grep -q "round $rounds/$rounds  sampled $n  ok $n  failed 0" "$tmp/$name.out" ||
		fail "$name: $(cat "$tmp/$name.out")"
	"$orch" $n $n $n $rounds --config "$builtin" --workspace-root "$tmp/$name-builtin" "${quiet[@]}" \
		>"$tmp/$name-builtin.out" 2>&1 || fail "$name, built-in: $(tail -5 "$tmp/$name-builtin.out")"
	a=$(acc_of "$tmp/$name.out") b=$(acc_of "$tmp/$name-builtin.out")
	[ -n "$a" ] && [ -n "$b" ] && close "$a" "$b" ||
		fail "$name: test accuracy $a, the built-in worker's $b (more than 0.01 apart)"
	check_clean "$tmp/$name"
	echo "$name: test_acc $a, built-in $b"
done <<LIST
fedavg 10 3 examples/pytorch-mlp/job.json configs/fedavg-mlp.json
cyclic 5 2 examples/pytorch-mlp/cyclic.json configs/cyclic-mlp.json
LIST
grep -q '"key":"step_loss"' "$(ls "$tmp"/fedavg/*/metrics/metrics.jsonl)" ||
	fail "cohort.log's per-step losses are not in metrics.jsonl"

# Spawned (torch imported by every task's process) and pooled, the same
# model as forked, byte for byte (the script seeds torch from the task).
for mode in fork-server spawn pool; do
	extra=(--set launcher.mode=spawn)
	[ $mode = fork-server ] && extra=()
	[ $mode = pool ] && extra+=(--set launcher.tasks_per_worker=3)
	"$orch" 3 3 3 1 --config examples/pytorch-mlp/job.json --workspace-root "$tmp/$mode" "${quiet[@]}" \
		--set evaluate.central=false "${extra[@]}" >"$tmp/$mode.out" 2>"$tmp/$mode.err" ||
		fail "$mode: exit $?: $(tail -5 "$tmp/$mode.err")"
	grep -q "round 1/1  sampled 3  ok 3  failed 0" "$tmp/$mode.out" || fail "$mode: $(cat "$tmp/$mode.out")"
	cmp "$(model_of "$tmp/fork-server")" "$(model_of "$tmp/$mode")" ||
		fail "$mode gives another model than fork-server"
done
echo "pytorch_mlp: ok"
