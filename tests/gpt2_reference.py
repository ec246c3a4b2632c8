#!/usr/bin/env python3
"""gpt2_reference.py: the PyTorch reference for tests/test_gpt2.c. GPT-2's
forward and backward written out in torch (float64), exactly as Hugging
Face's GPT2LMHeadModel computes it without dropout, and torch.optim.AdamW
with clip_grad_norm_ on a plain vector (float32, as the C engine runs it).
Only torch and numpy; safetensors is read and written by hand.

Usage: gpt2_reference.py IN OUT

IN holds the model's parameters under Hugging Face's names and Conv1D
layouts (wte.weight [V, C], h.N.attn.c_attn.weight [C, 3C], ...), "tokens"
and "targets" (I32 [B, T], target -1 ignored), metadata "n_head", and for
the optimiser "adamw.w", "adamw.g1", "adamw.g2" (F32 [n]) with metadata
adamw.lr, adamw.weight_decay, adamw.beta1, adamw.beta2, adamw.eps and
adamw.max_norm. OUT receives "logits" [B, T, V], "loss" [1],
"grad.<name>" for every parameter, and "adamw.w1", "adamw.w2" (the vector
after each of two steps, clipped gradients g1 then g2) with "adamw.norm1",
"adamw.norm2" (the norms clip_grad_norm_ returned)."""

import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

NUMPY_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """(tensors as numpy arrays by name, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype=NUMPY_DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors):
    """Write float32 tensors (name -> array) packed in the given order."""
    header, blobs, pos = {}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def attention(qkv, n_head):
    """Causal multi-head self-attention of the fused c_attn output [B, T, 3C]."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, v = qkv.split(C, dim=2)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(C // n_head)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    scores = scores.masked_fill(~causal, float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, T, C)


def gpt2(p, tokens, n_head):
    """GPT2LMHeadModel's forward (no dropout): logits [B, T, V]."""
    B, T = tokens.shape
    C = p["wte.weight"].shape[1]
    n_layer = len({k.split(".")[1] for k in p if k.startswith("h.")})

    def ln(x, prefix):
        return F.layer_norm(x, (C,), p[prefix + ".weight"], p[prefix + ".bias"], eps=1e-5)

    def conv1d(x, prefix):
        return x @ p[prefix + ".weight"] + p[prefix + ".bias"]

    x = p["wte.weight"][tokens] + p["wpe.weight"][:T]
    for l in range(n_layer):
        h = "h.%d." % l
        x = x + conv1d(attention(conv1d(ln(x, h + "ln_1"), h + "attn.c_attn"), n_head), h + "attn.c_proj")
        m = F.gelu(conv1d(ln(x, h + "ln_2"), h + "mlp.c_fc"), approximate="tanh")
        x = x + conv1d(m, h + "mlp.c_proj")
    return ln(x, "ln_f") @ p["wte.weight"].T


def adamw_steps(t, meta):
    """Two clipped AdamW steps on adamw.w; the vector and norm after each."""
    w = torch.nn.Parameter(torch.from_numpy(t["adamw.w"]))
    opt = torch.optim.AdamW(
        [w],
        lr=float(meta["adamw.lr"]),
        betas=(float(meta["adamw.beta1"]), float(meta["adamw.beta2"])),
        eps=float(meta["adamw.eps"]),
        weight_decay=float(meta["adamw.weight_decay"]),
    )
    out = {}
    for step in (1, 2):
        w.grad = torch.from_numpy(t["adamw.g%d" % step]).clone()
        norm = torch.nn.utils.clip_grad_norm_([w], float(meta["adamw.max_norm"]))
        opt.step()
        out["adamw.w%d" % step] = w.detach().numpy().copy()
        out["adamw.norm%d" % step] = np.array([float(norm)])
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gpt2_reference.py IN OUT")
    t, meta = read_safetensors(sys.argv[1])
    names = [k for k in t if k not in ("tokens", "targets") and not k.startswith("adamw.")]
    p = {k: torch.tensor(t[k], dtype=torch.float64, requires_grad=True) for k in names}
    tokens = torch.from_numpy(t["tokens"].astype(np.int64))
    targets = torch.from_numpy(t["targets"].astype(np.int64))
    logits = gpt2(p, tokens, int(meta["n_head"]))
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)
    loss.backward()
    out = {"logits": logits.detach().numpy(), "loss": np.array([loss.item()])}
    for k in names:
        out["grad." + k] = p[k].grad.numpy()
    out.update(adamw_steps(t, meta))
    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
