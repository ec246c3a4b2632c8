#!/usr/bin/python3
"""The Fashion-MNIST MLP of the hello-cyclic / quickstart examples, in
plain PyTorch, trained by cohort: fc1 (784 -> 128) -> ReLU -> dropout 0.2
-> fc2 (128 -> 10), SGD with the task's learning rate, momentum and weight
decay, on exactly the client's share of cohort's partition.

The tensor names (fc1.weight, fc1.bias, fc2.weight, fc2.bias) are those of
cohort's model "mlp", so the job's initial model and every global model
load straight into the module. Run by job.json beside it; with
launcher.mode fork-server, torch is imported once and every task runs in
a forked child.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import cohort
import cohort.torch as ct

# One thread per worker: the launcher runs one worker per core.
torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(F.dropout(x, 0.2, self.training))


def fit(net, task):
    cfg = task.config
    x, y = (torch.from_numpy(a) for a in task.samples("train"))
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"],
                          momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    # Every forked child starts from the server's random state: the
    # task's seed (cohort's, per client and round) makes them differ, and
    # makes a job repeat exactly.
    torch.manual_seed(int(cfg["seed"]))
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    bs, every = int(cfg["batch_size"]), int(cfg["progress_every"])
    net.train()
    step, total, right, seen = 0, 0.0, 0, 0
    for _ in range(int(cfg["epochs"])):
        for idx in torch.randperm(len(y), generator=g).split(bs):
            opt.zero_grad()
            out = net(x[idx])
            loss = F.cross_entropy(out, y[idx])
            loss.backward()
            opt.step()
            step += 1
            total += loss.item() * len(idx)
            right += (out.argmax(1) == y[idx]).sum().item()
            seen += len(idx)
            if every and step % every == 0:
                cohort.log("loss", loss.item(), step=step)
    return len(y), {"loss": total / max(seen, 1),
                    "accuracy": right / max(seen, 1)}


@torch.no_grad()
def evaluate(net, task):
    x, y = (torch.from_numpy(a) for a in task.samples())
    net.eval()
    loss, right = 0.0, 0
    for xb, yb in zip(x.split(1000), y.split(1000)):
        out = net(xb)
        loss += F.cross_entropy(out, yb, reduction="sum").item()
        right += (out.argmax(1) == yb).sum().item()
    return len(y), {"loss": loss / len(y), "accuracy": right / len(y)}


def main():
    net = Net()
    cohort.init()  # launcher.mode fork-server: each task forks from here
    while cohort.running():
        task = cohort.receive()
        if task is None:
            break
        net.load_state_dict(ct.state_dict_from(task.params))
        if task.kind == "fit":
            n, metrics = fit(net, task)
            cohort.send(ct.params_from(net), num_examples=n, metrics=metrics)
        else:
            n, metrics = evaluate(net, task)
            cohort.send(num_examples=n, metrics=metrics)


if __name__ == "__main__":
    main()
