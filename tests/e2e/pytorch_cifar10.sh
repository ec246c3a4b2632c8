#!/usr/bin/env bash
# pytorch_cifar10.sh: examples/pytorch-cifar10 (the seeds' CIFAR-10 CNN in
# plain PyTorch) on a small generated CIFAR-10 in the official binary
# format (tests/e2e/lib/make_cifar.py: learnable colours and bands): FedAvg
# on a Dirichlet split and cyclic weight transfer each learn it (test
# accuracy at least 0.95) and land within 0.01 of the built-in worker's
# cnn on the same federation.
. "$(dirname "$0")/lib/fake.sh"
. "$(dirname "$0")/lib/torch.sh"
"$py" tests/e2e/lib/make_cifar.py "$tmp/data"
quiet+=(--set data.dir="$tmp/data/cifar-10-batches-bin" --set train.epochs=2)
acc_of() { sed -n 's/^done: .*test_acc \([0-9.]*\),.*/\1/p' "$1"; }

for variant in job cyclic; do
	for who in pytorch builtin; do
		extra=()
		[ $who = builtin ] && extra=(--set worker.command= --set launcher.mode=spawn)
		"$orch" 4 4 4 4 --config examples/pytorch-cifar10/$variant.json --workspace-root "$tmp/$variant-$who" \
			"${quiet[@]}" "${extra[@]}" >"$tmp/$variant-$who.out" 2>"$tmp/$variant-$who.err" ||
			fail "$variant $who: exit $?: $(tail -5 "$tmp/$variant-$who.err")"
		grep -q "round 4/4  sampled 4  ok 4  failed 0" "$tmp/$variant-$who.out" ||
			fail "$variant $who: $(cat "$tmp/$variant-$who.out")"
	done
	a=$(acc_of "$tmp/$variant-pytorch.out") b=$(acc_of "$tmp/$variant-builtin.out")
	"$py" -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(not (a >= 0.95 and abs(a - b) <= 0.01))" "$a" "$b" ||
		fail "$variant: test accuracy $a, the built-in cnn's $b (want >= 0.95 and within 0.01)"
	check_clean "$tmp/$variant-pytorch"
	echo "$variant: test_acc $a, built-in $b"
done
grep -q '"key":"step_epoch_loss"' "$(ls "$tmp"/job-pytorch/*/metrics/metrics.jsonl)" ||
	fail "cohort.log's epoch losses are not in metrics.jsonl"
echo "pytorch_cifar10: ok"
