"""Reference values for tests/depthwise_test.cpp: depthwise 3x3 convolutions (groups == C ==
O) at padding 1, stride 1 and 2, on the plane sizes that take each loop form of
kernels/depthwise.hpp (rows of 16 and 32, short rows, odd sizes, 1x1 planes). Inputs,
weights, biases and output gradients are generated here (seeded), so both sides compute on
identical numbers.

    /usr/bin/python3 tests/reference/make_depthwise.py
"""
import os

import torch

from refio import ReferenceWriter

torch.manual_seed(7)
here = os.path.dirname(os.path.abspath(__file__))
w = ReferenceWriter(os.path.join(here, "depthwise.txt"))

# name, x shape (N, C, H, W), stride, bias
cases = [
    ("s1_5x6", (2, 3, 5, 6), 1, True),
    ("s1_4x4", (3, 2, 4, 4), 1, False),
    ("s1_1x1", (2, 2, 1, 1), 1, True),
    ("s1_32x32", (1, 1, 32, 32), 1, True),
    ("s1_16x17", (1, 2, 16, 17), 1, False),
    ("s2_8x8", (2, 3, 8, 8), 2, True),
    ("s2_5x7", (2, 2, 5, 7), 2, False),
    ("s2_1x2", (1, 2, 1, 2), 2, True),
    ("s2_32x32", (1, 1, 32, 32), 2, True),
]
for name, shape, stride, has_bias in cases:
    n, c, h, wd = shape
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    weight = torch.randn((c, 1, 3, 3), dtype=torch.float64, requires_grad=True)
    bias = torch.randn(c, dtype=torch.float64, requires_grad=True) if has_bias else None
    y = torch.nn.functional.conv2d(x, weight, bias, stride=stride, padding=1, groups=c)
    gy = torch.randn(y.shape, dtype=torch.float64)
    y.backward(gy)
    k = f"dw.{name}."
    w.add(k + "stride", torch.tensor([stride]))
    w.add(k + "x", x)
    w.add(k + "w", weight)
    if has_bias:
        w.add(k + "b", bias)
        w.add(k + "gb", bias.grad)
    w.add(k + "y", y)
    w.add(k + "gy", gy)
    w.add(k + "gx", x.grad)
    w.add(k + "gw", weight.grad)
w.save()
