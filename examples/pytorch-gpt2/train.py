#!/usr/bin/python3
"""A GPT-2 in plain PyTorch, with Hugging Face's GPT-2 tensor names (wte,
wpe, h.N.ln_1, h.N.attn.c_attn, h.N.attn.c_proj, h.N.ln_2, h.N.mlp.c_fc,
h.N.mlp.c_proj, ln_f; Conv1D weights stored [in, out]; the output layer
tied to wte), trained by cohort with FedAvg over the stream transport on a
text file, byte by byte (a vocabulary of 256; Debian packages no GPT-2
tokenizer).

Its model is cohort's model "custom": the job's initial model is the one
this script answers cohort's init task with (a freshly initialised GPT-2
of the size its options give), or model.init, a safetensors file with
these names (a checkpoint of an earlier job; Hugging Face's GPT-2 files
use the same names). Tensors of the global model this module does not
have (older Hugging Face files carry attn.bias masks) are sent back as
they came.

    train.py --text FILE [--layers 2 --embd 64 --heads 4 --ctx 64]
             [--steps 20] [--batch 8]

Client c of N trains on the c-th of N slices of the first 90% of the file;
an evaluation reports the loss (nats per byte) and the next-byte accuracy
on 32 fixed windows of the last 10%.
"""
import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import cohort
import cohort.torch as ct

torch.set_num_threads(1)


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 linear layer: weight [in, out]."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0, 0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return y.reshape(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        att = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = Conv1D(d, 4 * d)
        self.c_proj = Conv1D(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab, ctx, layers, d, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        nn.init.normal_(self.wte.weight, 0, 0.02)
        nn.init.normal_(self.wpe.weight, 0, 0.01)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1])
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied output layer


def windows(data, n, ctx, gen):
    """n random (input, next byte) windows of ctx bytes of data."""
    at = torch.randint(0, len(data) - ctx - 1, (n,), generator=gen)
    x = torch.stack([data[i:i + ctx] for i in at])
    y = torch.stack([data[i + 1:i + ctx + 1] for i in at])
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    with open(a.text, "rb") as f:
        text = torch.from_numpy(np.frombuffer(f.read(), np.uint8).copy())
    split = len(text) * 9 // 10
    train_text, test_text = text[:split].long(), text[split:].long()
    net = GPT2(256, a.ctx, a.layers, a.embd, a.heads)

    cohort.init()
    while cohort.running():
        task = cohort.receive()
        if task is None:
            break
        seed = int(task.config["seed"])
        if task.kind == "init":
            torch.manual_seed(seed)
            net = GPT2(256, a.ctx, a.layers, a.embd, a.heads)
            cohort.send(ct.params_from(net))
            continue
        own = net.state_dict()
        net.load_state_dict({k: v for k, v in
                             ct.state_dict_from(task.params).items()
                             if k in own})
        gen = torch.Generator().manual_seed(seed)
        if task.kind == "fit":
            clients = int(task.config["clients"])
            size = len(train_text) // clients
            mine = train_text[task.client_id * size:
                              (task.client_id + 1) * size]
            opt = torch.optim.AdamW(net.parameters(), lr=task.config["lr"],
                                    weight_decay=task.config["weight_decay"])
            net.train()
            total = 0.0
            for step in range(a.steps):
                x, y = windows(mine, a.batch, a.ctx, gen)
                loss = F.cross_entropy(net(x).flatten(0, 1), y.flatten())
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
                cohort.log("loss", loss.item(), step=step + 1)
            update = ct.params_from(net)
            # What this module does not hold goes back as it came.
            update.update({k: v for k, v in task.params.items()
                           if k not in update})
            cohort.send(update, num_examples=len(mine),
                        metrics={"loss": total / a.steps})
        else:
            net.eval()
            with torch.no_grad():
                # The same 32 windows every round: losses compare.
                at = torch.linspace(0, len(test_text) - a.ctx - 2, 32).long()
                x = torch.stack([test_text[i:i + a.ctx] for i in at])
                y = torch.stack([test_text[i + 1:i + a.ctx + 1] for i in at])
                out = net(x).flatten(0, 1)
                loss = F.cross_entropy(out, y.flatten()).item()
                acc = (out.argmax(1) == y.flatten()).float().mean().item()
            cohort.send(num_examples=len(test_text),
                        metrics={"loss": loss, "accuracy": acc})


if __name__ == "__main__":
    main()
