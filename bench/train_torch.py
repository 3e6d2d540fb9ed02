"""The PyTorch side of trit's training comparison: the same network, data, batch size,
optimizer and thread count as `trit-train`, timed the same way (training images per second
over the epochs, evaluation excluded).

    /usr/bin/python3 bench/train_torch.py --model lenet --epochs 3 --threads 2

Reads Fashion-MNIST's gzipped IDX files from the Debian package dataset-fashion-mnist.
Prints one JSON line like trit-train's last line.
"""
import argparse
import gzip
import json
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load(root, train):
    prefix = "train" if train else "t10k"
    x = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz")).float().div_(255)
    y = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz")).long()
    return x.unsqueeze(1), y


class LeNet(nn.Module):
    """trit's models::lenet(): two 5x5 conv + max-pool stages, two linear layers."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5, padding=2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 5 * 5, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="lenet")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--schedule", choices=["constant", "cosine"], default="cosine")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.data, True)
    xte, yte = load(a.data, False)
    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    n = xtr.shape[0]
    steps = a.epochs * ((n + a.batch - 1) // a.batch)
    # Cosine annealing per step from lr to 0, as trit-train's --schedule cosine.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) \
        if a.schedule == "cosine" else None
    train_seconds = 0.0
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched:
                sched.step()
        train_seconds += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                          for i in range(0, xte.shape[0], 1000))
        print(f"epoch {epoch + 1}: test accuracy {correct / xte.shape[0]:.4f}", flush=True)
    print(json.dumps({"framework": "pytorch " + torch.__version__, "model": a.model,
                      "threads": a.threads, "batch": a.batch, "epochs": a.epochs,
                      "test_accuracy": correct / xte.shape[0],
                      "train_seconds": round(train_seconds, 2),
                      "images_per_second": round(a.epochs * n / train_seconds, 1)}))


if __name__ == "__main__":
    main()
