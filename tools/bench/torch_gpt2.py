"""torch_gpt2.py: PyTorch's side of tools/bench's gpt2 suite: the same GPT-2
(GPT2LMHeadModel's math, no dropout, the head tied to wte), the same batch,
sequence length and threads as cohort-gpt2-bench --train, one training
step being forward, backward, gradient clipping to 1.0 and AdamW (lr 3e-4,
betas 0.9/0.95, weight decay 0.1); prints the same line of numbers.

    /usr/bin/python3 torch_gpt2.py THREADS LAYERS HEADS CHANNELS VOCAB B T
"""

import math
import resource
import sys
import time

import torch
import torch.nn.functional as F


def params(layers, channels, vocab, positions):
    """Parameters in Hugging Face's names and Conv1D [in, out] layouts,
    U(-0.02, 0.02) (ln weights 1): the shapes cohort's gpt2_manifest has."""
    C = channels
    shapes = {"wte.weight": (vocab, C), "wpe.weight": (positions, C)}
    for i in range(layers):
        h = "h.%d." % i
        shapes.update({
            h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
            h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
            h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
            h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
            h + "mlp.c_fc.weight": (C, 4 * C), h + "mlp.c_fc.bias": (4 * C,),
            h + "mlp.c_proj.weight": (4 * C, C), h + "mlp.c_proj.bias": (C,),
        })
    shapes.update({"ln_f.weight": (C,), "ln_f.bias": (C,)})
    out = {}
    for name, shape in shapes.items():
        t = torch.empty(shape).uniform_(-0.02, 0.02)
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            t.fill_(1.0)
        out[name] = t.requires_grad_()
    return out


def forward(p, tokens, heads, layers):
    """The logits [B, T, V]."""
    B, T = tokens.shape
    C = p["wte.weight"].shape[1]

    def ln(x, prefix):
        return F.layer_norm(x, (C,), p[prefix + ".weight"], p[prefix + ".bias"], eps=1e-5)

    def conv1d(x, prefix):
        return torch.addmm(p[prefix + ".bias"], x.view(-1, x.shape[-1]),
                           p[prefix + ".weight"]).view(*x.shape[:-1], -1)

    def attention(qkv):
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(C // heads)
        s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
        return (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)

    x = p["wte.weight"][tokens] + p["wpe.weight"][:T]
    for i in range(layers):
        h = "h.%d." % i
        x = x + conv1d(attention(conv1d(ln(x, h + "ln_1"), h + "attn.c_attn")), h + "attn.c_proj")
        x = x + conv1d(F.gelu(conv1d(ln(x, h + "ln_2"), h + "mlp.c_fc"), approximate="tanh"),
                       h + "mlp.c_proj")
    return ln(x, "ln_f") @ p["wte.weight"].T


def main():
    threads, layers, heads, channels, vocab, B, T = (int(a) for a in sys.argv[1:8])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    p = params(layers, channels, vocab, 1024)
    tokens = torch.randint(0, vocab, (B, T + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    opt = torch.optim.AdamW(p.values(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    flops = 6 * sum(t.numel() for t in p.values()) * B * T
    steps = 4 if flops > 1e11 else 12
    best = float("inf")
    for step in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(forward(p, x, heads, layers).view(-1, vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if step > 0:
            best = min(best, dt)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("tokens_per_s %.1f ms_per_step %.2f peak_mib %.1f" % (B * T / best, best * 1e3, peak))


if __name__ == "__main__":
    main()
