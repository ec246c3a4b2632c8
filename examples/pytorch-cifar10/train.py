#!/usr/bin/python3
"""The CIFAR-10 CNN of the NVFlare and Flower examples cohort was started
from, in plain PyTorch, trained by cohort: conv 3->6 (5x5), max-pool,
conv 6->16 (5x5), max-pool, then 400 -> 120 -> 84 -> 10, SGD with
momentum, on the client's share of cohort's partition (FedAvg on a
Dirichlet split in job.json, cyclic weight transfer in cyclic.json).

Its state_dict names (conv1, conv2, fc1, fc2, fc3) are those of cohort's
model "cnn": the job's initial model and every global model load straight
in, and the built-in worker trains the same network for comparison.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import cohort
import cohort.torch as ct

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def train(net, task):
    """Local epochs over this client's images; (examples, metrics)."""
    cfg = task.config
    images, labels = (torch.from_numpy(a) for a in task.samples("train"))
    torch.manual_seed(int(cfg["seed"]))  # forked children differ by task
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg["lr"],
                                momentum=cfg["momentum"])
    criterion = nn.CrossEntropyLoss()
    net.train()
    running, batches = 0.0, 0
    for epoch in range(int(cfg["epochs"])):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), int(cfg["batch_size"])):
            idx = order[start:start + int(cfg["batch_size"])]
            optimizer.zero_grad()
            loss = criterion(net(images[idx]), labels[idx])
            loss.backward()
            optimizer.step()
            running += loss.item()
            batches += 1
        cohort.log("epoch_loss", running / max(batches, 1), step=epoch + 1)
    return len(labels), {"loss": running / max(batches, 1)}


def test(net, task):
    images, labels = (torch.from_numpy(a) for a in task.samples())
    net.eval()
    with torch.no_grad():
        outputs = net(images)
    loss = F.cross_entropy(outputs, labels).item()
    correct = (outputs.argmax(1) == labels).sum().item()
    return len(labels), {"loss": loss, "accuracy": correct / len(labels)}


def main():
    net = Net()
    cohort.init()
    while cohort.running():
        task = cohort.receive()
        if task is None:
            break
        net.load_state_dict(ct.state_dict_from(task.params))
        if task.kind == "fit":
            n, metrics = train(net, task)
            cohort.send(ct.params_from(net), num_examples=n, metrics=metrics)
        else:
            n, metrics = test(net, task)
            cohort.send(num_examples=n, metrics=metrics)


if __name__ == "__main__":
    main()
