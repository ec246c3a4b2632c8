#!/usr/bin/env bash
# gpt2_text.sh: federated training of a real (tiny) GPT-2 on text with the
# built-in worker: configs/gpt2-finetune.json's job at the tiny preset, on
# Debian's license texts as JSONL documents tokenized with GPT-2's real BPE
# (tools/fetch-gpt2-bpe.sh), 4 clients x 3 rounds. The validation
# perplexity falls every round; a stream-transport job killed with -9
# after round 1 and resumed ends with the shm job's model byte for byte;
# results/huggingface/ holds a GPT-2 that PyTorch, reading only those
# files, scores on the validation text exactly as the job's last round did
# (tests/hf_gpt2_check.py), and evaluate.max_tokens scores the first N
# tokens; the final model starts again as model.init.
# A gpt2 job on images, on a GPU, with too long sequences or a missing
# model.init (before anything is prepared) is refused saying why.
set -euo pipefail
build=${COHORT_BUILD_DIR:?}
src=${COHORT_SOURCE_DIR:?}
orch=$build/orchestrator/cohort-orchestrator
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
py=/usr/bin/python3
bpe=$(bash "$src/tools/fetch-gpt2-bpe.sh") || fail "GPT-2's tokenizer files could not be fetched"

# Documents: the paragraphs of the license texts every Debian has
# (base-files), every 8th one held out.
mkdir -p "$tmp/text"
"$py" - "$tmp/text" <<'PY'
import json, sys
out = sys.argv[1]
paras = []
for name in ("GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0"):
    for p in open("/usr/share/common-licenses/" + name, encoding="utf-8").read().split("\n\n"):
        p = " ".join(p.split())
        if len(p) > 40:
            paras.append(p)
with open(out + "/train.jsonl", "w") as t, open(out + "/validation.jsonl", "w") as v:
    for i, p in enumerate(paras):
        (v if i % 8 == 0 else t).write(json.dumps({"text": p}) + "\n")
PY

args=(--config "$src/configs/gpt2-finetune.json" --set output.progress=never
	--set model.preset=tiny --set model.init= --set data.dir="$tmp/text"
	--set data.tokenizer="$bpe" --set data.cache_dir="$tmp/cache"
	--set train.seq_len=32 --set train.grad_accum=1 --set train.lr=0.003
	--set train.warmup_steps=5 --set train.min_lr=0.0003 --set train.weight_decay=0.0
	--set launcher.max_concurrent=2)
run() { "$orch" 4 4 4 3 "${args[@]}" "$@"; }
ppl() { sed -n "s/^round $2\/3 .*test_ppl \([0-9.]*\).*/\1/p" "$1"; }

run --workspace-root "$tmp/shm" --set transport.mode=shm >"$tmp/shm.out" 2>"$tmp/shm.err" ||
	fail "shm job: $(tail -5 "$tmp/shm.err")"
cat "$tmp/shm.out"
for r in 1 2 3; do
	grep -q "^round $r/3  sampled 4  ok 4  failed 0" "$tmp/shm.out" || fail "round $r: $(cat "$tmp/shm.out")"
done
p1=$(ppl "$tmp/shm.out" 1) p2=$(ppl "$tmp/shm.out" 2) p3=$(ppl "$tmp/shm.out" 3)
awk -v a="$p1" -v b="$p2" -v c="$p3" 'BEGIN { exit !(a > b && b > c && a < 50257) }' ||
	fail "validation perplexity did not fall every round: $p1 $p2 $p3"
ws=$(ls -d "$tmp"/shm/*/)
model=$ws/results/global_model.safetensors

# The stream transport, killed with -9 once round 1 is checkpointed, then
# resumed: the shm job's model.
"$orch" 4 4 4 3 "${args[@]}" --set transport.mode=stream --workspace-root "$tmp/k" >"$tmp/k.out" 2>&1 &
pid=$!
for _ in $(seq 1200); do
	grep -qs '"round": [12],' "$tmp"/k/*/checkpoints/state.json && break
	sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null || true
wk=$(ls -d "$tmp"/k/*/)
sleep 1
"$orch" --resume "$wk" --set output.progress=never >"$tmp/r.out" 2>&1 || fail "resume: $(tail -5 "$tmp/r.out")"
grep -q "resuming after round [12]" "$tmp/r.out" || fail "resume: $(cat "$tmp/r.out")"
cmp "$model" "$wk/results/global_model.safetensors" || fail "the resumed stream job's model differs from shm's"

# Hugging Face's layout: PyTorch scores the validation text with the
# exported files alone, as the job's last central evaluation did.
hf=$ws/results/huggingface
for f in config.json model.safetensors vocab.json merges.txt; do
	[ -s "$hf/$f" ] || fail "results/huggingface/$f missing"
done
"$py" -c "import json,sys; v=[json.loads(l)['text'] for l in open(sys.argv[1])]; sys.stdout.write(''.join(t + '<|endoftext|>' for t in v))" \
	"$tmp/text/validation.jsonl" >"$tmp/val.txt"
"$build/worker/cohort-tokenize" --tokenizer "$bpe" --special "$tmp/val.txt" >"$tmp/val.ids"
want=$(sed -n 's/^round 3\/3 .*test_loss \([0-9.]*\).*/\1/p' "$tmp/shm.out")
got=$("$py" "$src/tests/hf_gpt2_check.py" "$hf" "$tmp/val.ids" 32) || fail "hf_gpt2_check: $got"
awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 1e-3 && d > -1e-3) }' ||
	fail "PyTorch's loss of results/huggingface is $got, the job's last test_loss $want"

# evaluate.max_tokens: an evaluation scores the first N tokens only (no
# training here: epochs 0, the result as the model).
run --workspace-root "$tmp/cap" --set model.init="$model" --set federation.rounds=1 --set train.epochs=0 \
	--set evaluate.max_tokens=100 >"$tmp/cap.out" 2>&1 || fail "max_tokens: $(tail -5 "$tmp/cap.out")"
head -101 "$tmp/val.ids" >"$tmp/val101.ids"
want=$(sed -n 's/^round 1\/1 .*test_loss \([0-9.]*\).*/\1/p' "$tmp/cap.out")
got=$("$py" "$src/tests/hf_gpt2_check.py" "$hf" "$tmp/val101.ids" 32) || fail "hf_gpt2_check: $got"
awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 1e-3 && d > -1e-3) }' ||
	fail "evaluate.max_tokens 100: test_loss $want, PyTorch on the first 100 predicted tokens $got"

# The final model as the next job's start: its first round scores at least
# as well as the last one.
run --workspace-root "$tmp/again" --set model.init="$model" --set federation.rounds=1 >"$tmp/again.out" 2>&1 ||
	fail "model.init from a result: $(tail -5 "$tmp/again.out")"
grep -q "initial model from model.init" "$(ls -d "$tmp"/again/*/)/logs/orchestrator.log" || fail "model.init not read"
pa=$(sed -n 's/^round 1\/1 .*test_ppl \([0-9.]*\).*/\1/p' "$tmp/again.out")
awk -v a="$pa" -v b="$p3" 'BEGIN { exit !(a < b) }' || fail "restarted from the result: ppl $pa, not below $p3"

# Refusals.
if "$orch" 2 2 2 1 --set model.name=gpt2 --workspace-root "$tmp/x" >"$tmp/x.out" 2>&1; then fail "gpt2 on images accepted"; fi
grep -q "model.name gpt2 trains on text: set data.dataset text" "$tmp/x.out" || fail "$(cat "$tmp/x.out")"
if run --workspace-root "$tmp/y" --set worker.device=cuda >"$tmp/y.out" 2>&1; then fail "gpt2 on cuda accepted"; fi
grep -q "model gpt2 trains on the CPU only so far" "$tmp/y.out" || fail "$(cat "$tmp/y.out")"
if run --workspace-root "$tmp/z" --set train.seq_len=65 >"$tmp/z.out" 2>&1; then fail "seq_len 65 accepted"; fi
grep -q "train.seq_len 65 is longer than the model's context (model.n_ctx 64)" "$tmp/z.out" || fail "$(cat "$tmp/z.out")"
if run --workspace-root "$tmp/w" --set model.init="$tmp/none.safetensors" >"$tmp/w.out" 2>&1; then fail "a missing model.init accepted"; fi
grep -q "model.init $tmp/none.safetensors: no such file (a GPT-2 from the Hugging Face hub: docs/gpt2.md" "$tmp/w.out" ||
	fail "$(cat "$tmp/w.out")"
[ ! -d "$(ls -d "$tmp"/w/*/ 2>/dev/null | head -1)data" ] || fail "a job refused for its model.init prepared its data first"
echo "gpt2_text: ok (validation perplexity $p1 -> $p2 -> $p3)"
