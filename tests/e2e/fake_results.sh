#!/usr/bin/env bash
# fake_results.sh: what a finished job leaves in results/ for a user, with
# the fake worker: global_model.safetensors carries the model, its layers,
# the dataset and its normalisation, the round, the strategy and cohort's
# version in its metadata (still "format": "pt"); report.html shows the
# job's settings, charts federated evaluation, and says central evaluation
# was off instead of drawing an empty accuracy chart.
. "$(dirname "$0")/lib/fake.sh"
check=$(dirname "$0")/../safetensors_check.py

# FedAvgM, central evaluation off, half the clients evaluate each round.
run 6 6 4 3 --workspace-root "$tmp/a" --set strategy.name=fedavgm \
	--set strategy.server_lr=0.5 --set evaluate.central=false \
	--set evaluate.fraction=0.5 --set data.holdout=0.1 \
	--set data.partition=dirichlet --set data.alpha=0.3 >"$tmp/a.out"
ws=$(ls -d "$tmp"/a/*/)

# The model's metadata: every value a string, the round and the rest.
python3 "$check" "$ws/results/global_model.safetensors" >"$tmp/meta" ||
	fail "safetensors_check: $(cat "$tmp/meta")"
version=$("$orch" --version | awk '{print $2}')
for want in "meta format=pt" "meta model=mlp" "meta round=3" "meta strategy=fedavgm" \
	"meta dataset=fashion-mnist" "meta normalize_mean=[0.2860]" \
	"meta normalize_std=[0.3530]" "meta layers=a=Linear(3,4)" \
	"meta cohort_version=$version"; do
	grep -qxF "$want" "$tmp/meta" || fail "metadata lacks '$want': $(cat "$tmp/meta")"
done
grep -q "^meta architecture=.*Linear(128,classes)" "$tmp/meta" || fail "no architecture: $(cat "$tmp/meta")"

# The report: the settings, the federated evaluation, no empty chart.
html=$ws/results/report.html
grep -q '<table id="settings"' "$html" || fail "report without a settings table"
for want in "<th>strategy</th><td>fedavgm (server_lr 0.5, server_momentum 0.9, weighting examples)</td>" \
	"<th>partition</th><td>dirichlet (alpha 0.3), holdout 0.1</td>" "<th>clients</th><td>6</td>" \
	"<th>model</th><td>mlp</td>" "<th>rounds</th><td>3</td>"; do
	grep -qF "$want" "$html" || fail "report lacks '$want'"
done
grep -q '<svg id="chart-fed-eval"' "$html" || fail "report without the federated evaluation chart"
! grep -q '<svg id="chart-accuracy"' "$html" || fail "an accuracy chart without test accuracy"
grep -q "Central evaluation was off" "$html" || fail "the report does not say central evaluation was off"
check_clean "$tmp/a"
echo "fake_results: ok"
