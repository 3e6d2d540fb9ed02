"""Reference values for tests/optim_test.cpp: optimizer trajectories and LR schedules.

Problem: linear regression pred = X W^T + b, loss = mean((pred - Y)^2), in float64, with
X [8, 4], Y [8, 3], W [3, 4], b [3] drawn from seed 0. For each optimizer configuration the
parameters after each of 10 steps are stored as <config>.W.<k>, <config>.b.<k> (k = 1..10).
Schedules: the learning rate after t = 0..n-1 scheduler steps as lr.<name>.

    /usr/bin/python3 tests/reference/make_optim.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from refio import ReferenceWriter

torch.manual_seed(0)
w = ReferenceWriter(os.path.join(os.path.dirname(__file__), "optim.txt"))

X = torch.randn(8, 4, dtype=torch.float64)
Y = torch.randn(8, 3, dtype=torch.float64)
W0 = torch.randn(3, 4, dtype=torch.float64)
b0 = torch.randn(3, dtype=torch.float64)
for k, v in [("X", X), ("Y", Y), ("W0", W0), ("b0", b0)]:
    w.add(k, v)

configs = {
    "sgd_plain": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_dampening": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam_weight_decay": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01),
    "adamw_weight_decay": lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.1, eps=1e-6),
}
for name, make in configs.items():
    W = W0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    opt = make([W, b])
    for k in range(1, 11):
        opt.zero_grad()
        loss = ((X @ W.T + b - Y) ** 2).mean()
        loss.backward()
        opt.step()
        w.add(f"{name}.W.{k}", W)
        w.add(f"{name}.b.{k}", b)


def schedule(name, n, make_scheduler, lr=0.1):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    w.add(f"lr.{name}", torch.tensor(lrs, dtype=torch.float64))


S = torch.optim.lr_scheduler
schedule("step", 12, lambda o: S.StepLR(o, step_size=3, gamma=0.5))
schedule("multistep", 12, lambda o: S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.1))
schedule("cosine", 25, lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001))
schedule("warmup", 10, lambda o: S.LinearLR(o, start_factor=0.1, total_iters=5))
schedule("warmup_cosine", 20, lambda o: S.SequentialLR(
    o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=10)],
    milestones=[5]))
schedule("onecycle", 20, lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=20, cycle_momentum=False))
w.save()
