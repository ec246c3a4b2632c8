#!/usr/bin/python3
"""A training script written for NVFlare's Client API (the shape of its
hello-pt examples): it loads its own data, trains a PyTorch MLP on its
site's share and reports through `nvflare.client`. It runs on cohort
unchanged with worker.adapter=nvflare (job.json), which puts cohort's
stand-in for nvflare.client first on the script's PYTHONPATH.

Data: Debian's Fashion-MNIST IDX files, read here with gzip and numpy;
site-K of the N sites takes every N-th training image from K - 1 (N from
the SITES environment variable, 10 by default).
"""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import nvflare.client as flare
from nvflare.client.tracking import SummaryWriter

DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
torch.set_num_threads(1)


def load(images, labels):
    with gzip.open(os.path.join(DATA, images)) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA, labels)) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (torch.from_numpy(x.astype(np.float32)) / 255 - 0.2860) / 0.3530
    return x, torch.from_numpy(y.astype(np.int64))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(F.dropout(x, 0.2, self.training))


def evaluate(net, x, y):
    net.eval()
    with torch.no_grad():
        out = net(x)
    return (F.cross_entropy(out, y).item(),
            (out.argmax(1) == y).float().mean().item())


def main():
    net = Net()
    flare.init()
    site = flare.get_site_name()
    test_x, test_y = load("t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz")
    writer = SummaryWriter()
    while flare.is_running():
        input_model = flare.receive()
        if input_model is None:
            break
        net.load_state_dict(input_model.params)
        loss, accuracy = evaluate(net, test_x, test_y)
        if flare.is_evaluate():
            flare.send(flare.FLModel(metrics={"loss": loss,
                                              "accuracy": accuracy,
                                              "num_examples": len(test_y)}))
            continue
        sites = int(os.environ.get("SITES", "10"))
        k = int(site.split("-")[1]) - 1
        x, y = load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
        x, y = x[k::sites], y[k::sites]
        torch.manual_seed(1000 * input_model.current_round + k)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        net.train()
        steps = 0
        for idx in torch.randperm(len(y)).split(32):
            opt.zero_grad()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            steps += 1
            if steps % 50 == 0:
                writer.add_scalar("train_loss", loss.item(), steps)
        flare.send(flare.FLModel(
            params=net.cpu().state_dict(),
            metrics={"accuracy": accuracy},
            meta={"NUM_STEPS_CURRENT_ROUND": steps}))


if __name__ == "__main__":
    main()
