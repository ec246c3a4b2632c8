#!/usr/bin/env python3
"""hf_gpt2_check.py: score a token stream with the GPT-2 of a Hugging Face
directory (results/huggingface/ of a gpt2 job), reading only what
transformers' from_pretrained would read: config.json and
model.safetensors. The names and shapes must be GPT2LMHeadModel's for that
config (prefix-less GPT2Model names, Conv1D [in, out] weights, no
lm_head.weight: tied); tokenizer files vocab.json and merges.txt must be
there too. The model runs in torch float64 (tests/gpt2_reference.py's
forward).

Usage: hf_gpt2_check.py HF_DIR IDS_FILE SEQ_LEN

IDS_FILE holds token ids one per line (cohort-tokenize's output). The
stream is cut into windows of SEQ_LEN + 1 ids overlapping by one (the last
one may be shorter), as cohort's evaluation cuts it; prints the mean
next-token cross-entropy over every predicted token. Exits 1 with a
message on any mismatch."""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import gpt2, read_safetensors  # noqa: E402


def fail(msg):
    print("hf_gpt2_check: " + msg, file=sys.stderr)
    sys.exit(1)


def expected_shapes(c):
    """GPT2Model's parameter names and shapes for config c."""
    C, V, P = c["n_embd"], c["vocab_size"], c["n_positions"]
    want = {"wte.weight": [V, C], "wpe.weight": [P, C], "ln_f.weight": [C], "ln_f.bias": [C]}
    for l in range(c["n_layer"]):
        h = "h.%d." % l
        want.update({
            h + "ln_1.weight": [C], h + "ln_1.bias": [C],
            h + "attn.c_attn.weight": [C, 3 * C], h + "attn.c_attn.bias": [3 * C],
            h + "attn.c_proj.weight": [C, C], h + "attn.c_proj.bias": [C],
            h + "ln_2.weight": [C], h + "ln_2.bias": [C],
            h + "mlp.c_fc.weight": [C, 4 * C], h + "mlp.c_fc.bias": [4 * C],
            h + "mlp.c_proj.weight": [4 * C, C], h + "mlp.c_proj.bias": [C],
        })
    return want


def main():
    if len(sys.argv) != 4:
        fail("usage: hf_gpt2_check.py HF_DIR IDS_FILE SEQ_LEN")
    d, ids_path, T = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for f in ("config.json", "model.safetensors", "vocab.json", "merges.txt"):
        if not os.path.isfile(os.path.join(d, f)):
            fail("%s/%s is missing" % (d, f))
    c = json.load(open(os.path.join(d, "config.json")))
    if c.get("model_type") != "gpt2" or c.get("architectures") != ["GPT2LMHeadModel"]:
        fail("config.json is not a GPT2LMHeadModel's: %r" % c)
    if c.get("activation_function") != "gelu_new" or c["n_embd"] % c["n_head"]:
        fail("config.json: activation %r, n_embd %r, n_head %r" % (
            c.get("activation_function"), c["n_embd"], c["n_head"]))
    tensors, meta = read_safetensors(os.path.join(d, "model.safetensors"))
    if meta.get("format") != "pt":
        fail("model.safetensors metadata format is %r, from_pretrained wants 'pt'" % meta.get("format"))
    want = expected_shapes(c)
    got = {k: list(v.shape) for k, v in tensors.items()}
    if got != want:
        extra = sorted(set(got) - set(want))
        missing = sorted(set(want) - set(got))
        wrong = sorted(k for k in set(got) & set(want) if got[k] != want[k])
        fail("tensors do not match config.json: extra %s, missing %s, shapes %s" % (extra[:3], missing[:3], wrong[:3]))
    vocab = json.load(open(os.path.join(d, "vocab.json")))
    if len(vocab) != c["vocab_size"]:
        fail("vocab.json has %d entries, config.json vocab_size %d" % (len(vocab), c["vocab_size"]))
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in tensors.items()}
    ids = [int(x) for x in open(ids_path).read().split()]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, T):
            w = ids[start:start + T + 1]
            x = torch.tensor([w[:-1]])
            y = torch.tensor([w[1:]])
            logits = gpt2(p, x, c["n_head"])
            total += F.cross_entropy(logits[0], y[0], reduction="sum").item()
            count += y.numel()
    print("%.6f" % (total / count))


if __name__ == "__main__":
    main()
