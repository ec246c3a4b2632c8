#!/usr/bin/env bash
# pytorch_gpt2.sh: examples/pytorch-gpt2, a user's own model (model.name
# custom, data.dataset none): the initial model is the script's answer to
# the init task (streamed: 1.7 MB in 1 MiB chunks), FedAvg over the stream
# transport lowers the held-out loss, and the result carries Hugging
# Face's GPT-2 tensor names and shapes; a second job starts from that file
# (model.init) with an extra tensor the module does not hold, which comes
# back unchanged. A script that fails its init task, a custom model
# without worker.command and data.dataset none with a built-in model are
# refused with the reason.
. "$(dirname "$0")/lib/fake.sh"
. "$(dirname "$0")/lib/torch.sh"
cmd="$py examples/pytorch-gpt2/train.py --text docs/protocol.md --embd 128 --steps 15"

"$orch" 3 3 3 3 --config examples/pytorch-gpt2/job.json --workspace-root "$tmp/a" "${quiet[@]}" \
	--set worker.command="$cmd" >"$tmp/a.out" 2>"$tmp/a.err" || fail "exit $?: $(tail -5 "$tmp/a.err")"
grep -q "round 3/3  sampled 3  ok 3  failed 0" "$tmp/a.out" || fail "$(cat "$tmp/a.out")"
ws=$(ls -d "$tmp"/a/*/)
grep -q "initial model from .*init task" "$ws/logs/orchestrator.log" || fail "no init task in the log"
loss() { sed -n "s/^round $1\/3 .*test_loss \([0-9.]*\) .*/\1/p" "$tmp/a.out"; }
"$py" -c "import sys; sys.exit(not float(sys.argv[2]) < float(sys.argv[1]))" "$(loss 1)" "$(loss 3)" ||
	fail "the held-out loss did not fall: round 1 $(loss 1), round 3 $(loss 3)"
"$py" - "$ws/checkpoints/initial.safetensors" "$ws/results/global_model.safetensors" "$tmp/more.safetensors" <<'PY' || fail "the model's names or shapes are not GPT-2's"
import json, struct, sys
import numpy as np
def read(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    h = json.loads(b[8:8 + n])
    return h, b[8 + n:]
init, _ = read(sys.argv[1])
assert init["__metadata__"]["cohort.model"] == "custom", init["__metadata__"]
h, data = read(sys.argv[2])
want = {"wte.weight": [256, 128], "wpe.weight": [64, 128],
        "h.0.attn.c_attn.weight": [128, 384], "h.1.mlp.c_proj.weight": [512, 128],
        "h.1.ln_2.bias": [128], "ln_f.weight": [128]}
for k, shape in want.items():
    assert h[k]["shape"] == shape, (k, h[k]["shape"])
assert not any(k.startswith("lm_head") for k in h), "the output layer is tied to wte"
# The result plus an attn.bias mask, as older Hugging Face files hold.
out, blobs, at = {}, [], 0
for k, v in h.items():
    if k == "__metadata__":
        continue
    blob = data[v["data_offsets"][0]:v["data_offsets"][1]]
    out[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [at, at + len(blob)]}
    blobs.append(blob)
    at += len(blob)
mask = np.tril(np.ones((64, 64), np.float32)).reshape(1, 1, 64, 64).tobytes()
out["h.0.attn.bias"] = {"dtype": "F32", "shape": [1, 1, 64, 64], "data_offsets": [at, at + len(mask)]}
blobs.append(mask)
hb = json.dumps(out).encode()
open(sys.argv[3], "wb").write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
PY
echo "gpt2: init task streamed, loss $(loss 1) -> $(loss 3), Hugging Face names"

"$orch" 3 3 3 1 --config examples/pytorch-gpt2/job.json --workspace-root "$tmp/b" "${quiet[@]}" \
	--set worker.command="$cmd" --set model.init="$tmp/more.safetensors" >"$tmp/b.out" 2>"$tmp/b.err" ||
	fail "model.init: exit $?: $(tail -5 "$tmp/b.err")"
grep -q "round 1/1  sampled 3  ok 3  failed 0" "$tmp/b.out" || fail "model.init: $(cat "$tmp/b.out")"
"$py" - "$tmp/more.safetensors" "$(ls "$tmp"/b/*/results/global_model.safetensors)" <<'PY' || fail "model.init: the extra tensor did not come back unchanged"
import json, struct, sys
def tensor(path, name):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    v = json.loads(b[8:8 + n])[name]
    return b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
assert tensor(sys.argv[1], "h.0.attn.bias") == tensor(sys.argv[2], "h.0.attn.bias")
assert tensor(sys.argv[1], "wte.weight") != tensor(sys.argv[2], "wte.weight")
PY
echo "gpt2: continued from its own file by model.init"

set +e
"$orch" 2 2 2 1 --config examples/pytorch-gpt2/job.json --workspace-root "$tmp/c" "${quiet[@]}" \
	--set worker.command="$py examples/pytorch-gpt2/train.py --text $tmp/no-such.txt" >/dev/null 2>"$tmp/c.err"
rc=$?
"$orch" 2 2 2 1 --workspace-root "$tmp/d" "${quiet[@]}" --set model.name=custom >/dev/null 2>"$tmp/d.err"
rc2=$?
"$orch" 2 2 2 1 --workspace-root "$tmp/e" "${quiet[@]}" --set data.dataset=none >/dev/null 2>"$tmp/e.err"
rc3=$?
set -e
[ $rc -eq 1 ] && grep -q "the initial model from $py: it exited with status 1 before connecting; its log ends \"FileNotFoundError: .*no-such.txt'\"" "$tmp/c.err" ||
	fail "a failing init: exit $rc: $(cat "$tmp/c.err")"
[ $rc2 -eq 2 ] && grep -q "model.name custom is trained by your own program: set worker.command" "$tmp/d.err" ||
	fail "custom without worker.command: exit $rc2: $(cat "$tmp/d.err")"
[ $rc3 -eq 2 ] && grep -q "data.dataset none: only model.name custom" "$tmp/e.err" ||
	fail "dataset none with mlp: exit $rc3: $(cat "$tmp/e.err")"
echo "pytorch_gpt2: ok"
