#!/usr/bin/env bash
# configs.sh: every job config in configs/ is accepted and runs a round
# (the fake worker stands in for training), started from another
# directory: paths in a config are relative to the config file, so
# configs/cifar10-fedavg-dirichlet.json reads <checkout>/data/cifar-10-
# batches-bin wherever the job is started, and the workspace's config.json
# holds that absolute path (a resume from elsewhere reads the same files).
. "$(dirname "$0")/lib/fake.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$tmp"
n=0
for cfg in "$src"/configs/*.json; do
	name=$(basename "$cfg" .json)
	# The fake worker's model is not a GPT-2: a checkpoint to start from
	# cannot load into it, and it takes shared memory only
	# (tests/e2e/gpt2_text.sh trains the real one).
	init=()
	[ "$name" = gpt2-finetune ] && init=(--set model.init= --set transport.mode=shm)
	run 2 2 2 1 --config "$cfg" --workspace-root "$tmp/$name" --set federation.min_fit=1 "${init[@]}" \
		>"$tmp/$name.out" 2>&1 || fail "$name: $(cat "$tmp/$name.out")"
	n=$((n + 1))
done
[ "$n" -ge 7 ] || fail "only $n configs found in $src/configs"
python3 - "$src" "$tmp" <<'PY' || fail "data paths not resolved against the config file"
import glob, json, sys
src, tmp = sys.argv[1], sys.argv[2]
want = {"cifar10-fedavg-dirichlet": src + "/data/cifar-10-batches-bin",
        "cyclic-cnn": src + "/data/cifar-10-batches-bin",
        "hello-cyclic-mnist": src + "/data/mnist",
        "fedavg-mlp": "/usr/share/datasets/fashion-mnist",
        "gpt2-finetune": src + "/data/text"}
for name, d in want.items():
    ws, = glob.glob(f"{tmp}/{name}/*/config.json")
    got = json.load(open(ws))["data"]["dir"]
    assert got == d, (name, got, d)
c = json.load(open(glob.glob(f"{tmp}/cifar10-fedavg-dirichlet/*/config.json")[0]))
assert c["data"]["partition"] == "dirichlet" and c["data"]["alpha"] == 1.0, c["data"]
assert c["federation"]["clients"] == 2, c["federation"]  # the numbers win
PY
echo "configs: ok ($n configs)"
