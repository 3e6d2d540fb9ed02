"""Reference values for tests/nn_test.cpp: each layer's forward with its weights, and a small
Sequential's forward, state_dict and gradients. float64, seed 0.

    /usr/bin/python3 tests/reference/make_nn.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from refio import ReferenceWriter

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
w = ReferenceWriter(os.path.join(os.path.dirname(__file__), "nn.txt"))


def add_module(prefix, m):
    for k, v in m.state_dict().items():
        w.add(f"{prefix}.{k}", v)


# Linear(5, 3)
lin = nn.Linear(5, 3)
x = torch.randn(4, 5)
add_module("linear", lin)
w.add("linear.x", x)
w.add("linear.y", lin(x))

# Conv2d(4, 6, 3, stride=2, padding=1) and a grouped, dilated one without bias.
conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
x = torch.randn(2, 4, 7, 7)
add_module("conv", conv)
w.add("conv.x", x)
w.add("conv.y", conv(x))
gconv = nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False)
add_module("gconv", gconv)
w.add("gconv.y", gconv(x))

# BatchNorm2d(3): two training forwards, then eval.
bn = nn.BatchNorm2d(3, momentum=0.2)
with torch.no_grad():
    bn.weight.copy_(torch.randn(3))
    bn.bias.copy_(torch.randn(3))
w.add("bn.weight", bn.weight)
w.add("bn.bias", bn.bias)
x1 = torch.randn(4, 3, 5, 5) * 2 + 1
x2 = torch.randn(4, 3, 5, 5)
w.add("bn.x1", x1)
w.add("bn.x2", x2)
w.add("bn.y1", bn(x1))
w.add("bn.y2", bn(x2))
for k in ["running_mean", "running_var", "num_batches_tracked"]:
    w.add(f"bn.{k}", getattr(bn, k))
bn.eval()
w.add("bn.y_eval", bn(x1))

# Activations on values spread over [-8, 8].
x = torch.randn(3, 4) * 4
w.add("act.x", x)
w.add("act.relu", nn.ReLU()(x))
w.add("act.relu6", nn.ReLU6()(x))
w.add("act.leaky_relu", nn.LeakyReLU(0.2)(x))
w.add("act.sigmoid", nn.Sigmoid()(x))
w.add("act.tanh", nn.Tanh()(x))

# Pooling and Flatten.
x = torch.randn(2, 3, 7, 6)
w.add("pool.x", x)
w.add("pool.max", nn.MaxPool2d(3, 2, 1)(x))
w.add("pool.avg", nn.AvgPool2d(2)(x))
w.add("pool.adaptive", nn.AdaptiveAvgPool2d((3, 2))(x))
w.add("pool.flatten", nn.Flatten()(x))

# A small net: forward in train and eval mode, loss gradients of every parameter.
net = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
print(list(net.state_dict().keys()))
print("parameters", sum(p.numel() for p in net.parameters()))
print(net)
add_module("seq", net)  # initial state
x = torch.randn(6, 3, 8, 8)
targets = torch.tensor([0, 1, 2, 3, 4, 0])
w.add("seq.x", x)
y = net(x)
w.add("seq.y_train", y)
F.cross_entropy(y, targets).backward()
for k, p in net.named_parameters():
    w.add(f"seq.grad.{k}", p.grad)
for k, v in net.state_dict().items():
    if "running" in k or "num_batches" in k:
        w.add(f"seq.after.{k}", v)
net.eval()
w.add("seq.y_eval", net(x))
w.save()
