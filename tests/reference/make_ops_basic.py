"""Reference values for the non-convolution ops (tests/ops_elementwise_test.cpp and
tests/ops_nn_functional_test.cpp). Inputs are drawn here with a fixed seed and written
beside the outputs, so C++ computes on the same numbers.

    /usr/bin/python3 tests/reference/make_ops_basic.py
"""
import os

import torch
import torch.nn.functional as F

from refio import ReferenceWriter

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
out = ReferenceWriter(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_basic.txt"))


def add(key, t):
    out.add(key, t)
    return t


def grads_of(y, inputs, prefix):
    """Gradients of sum(v * y) for a random v (written as prefix.v) w.r.t. each input."""
    v = add(prefix + ".v", torch.rand(y.shape) + 0.5)
    gs = torch.autograd.grad((y * v).sum(), inputs)
    for i, g in enumerate(gs):
        add(f"{prefix}.grad{i}", g)


def leaf(key, t):
    return add(key, t).clone().requires_grad_(True)


# ---- elementwise, broadcasting ----
x = leaf("bx", torch.randn(2, 3, 4))
y = leaf("by", torch.rand(3, 1) + 0.5)
z = leaf("bz", torch.randn(4))
s = leaf("bs", torch.tensor(1.7))
add("add_xy", x + y)
add("sub_xy", x - y)
add("mul_zx", z * x)
d = add("div_xy", x / y)
grads_of(d, (x, y), "div_xy")
m = add("mul_xs", x * s)
grads_of(m, (x, s), "mul_xs")
grads_of(z * x, (z, x), "mul_zx")

u = add("ux", torch.randn(3, 5))
p = add("up", torch.rand(3, 5) + 0.1)
add("exp", u.exp())
add("log", p.log())
add("sqrt", p.sqrt())
add("pow_up_2.5", p.pow(2.5))
add("pow_ux_3", u.pow(3))
add("abs", u.abs())
add("sign", u.sign())
add("clamp", u.clamp(-0.5, 0.7))
add("scalar_ops", 2.0 / p - 3.0 * u + (1.0 - u) / 4.0)

# ---- reductions ----
r = add("rx", torch.randn(2, 3, 4))
add("sum_all", r.sum())
add("sum_1", r.sum(1))
add("sum_02_keep", r.sum((0, 2), keepdim=True))
add("sum_m1", r.sum(-1))
add("mean_all", r.mean())
add("mean_0m1", r.mean((0, -1)))
add("mean_1_keep", r.mean(1, keepdim=True))

# ---- shape ----
add("transpose_02", r.transpose(0, 2))
add("permute_120", r.permute(1, 2, 0))
r2 = add("rx2", torch.randn(2, 2, 4))
r3 = add("rx3", torch.randn(2, 3, 1))
add("concat_1", torch.cat([r, r2], 1))
add("concat_m1", torch.cat([r, r3, r], -1))

# ---- linalg ----
a = leaf("ma", torch.randn(3, 4))
b = leaf("mb", torch.randn(4, 5))
grads_of(add("matmul", a @ b), (a, b), "matmul")
ba = leaf("bma", torch.randn(2, 3, 4))
bb = leaf("bmb", torch.randn(2, 4, 5))
grads_of(add("bmm", torch.bmm(ba, bb)), (ba, bb), "bmm")
lx = leaf("lin_x", torch.randn(5, 4))
lw = leaf("lin_w", torch.randn(3, 4))
lb = leaf("lin_b", torch.randn(3))
grads_of(add("linear", F.linear(lx, lw, lb)), (lx, lw, lb), "linear")

# ---- activations ----
ax = torch.randn(4, 6) * 4
ax[0, 0], ax[0, 1], ax[0, 2] = 0.0, 6.0, -0.0
ax = add("ax", ax)
add("relu", F.relu(ax))
add("relu6", F.relu6(ax))
add("leaky_relu", F.leaky_relu(ax))
add("leaky_relu_0.2", F.leaky_relu(ax, 0.2))
add("sigmoid", torch.sigmoid(ax))
add("tanh", torch.tanh(ax))
sx = leaf("sx", torch.randn(4, 6) * 3)
grads_of(add("softmax_m1", F.softmax(sx, -1)), (sx,), "softmax_m1")
grads_of(add("softmax_0", F.softmax(sx, 0)), (sx,), "softmax_0")
grads_of(add("log_softmax_m1", F.log_softmax(sx, -1)), (sx,), "log_softmax_m1")
s3 = leaf("sx3", torch.randn(2, 3, 4))
grads_of(add("softmax3_1", F.softmax(s3, 1)), (s3,), "softmax3_1")
grads_of(add("log_softmax3_1", F.log_softmax(s3, 1)), (s3,), "log_softmax3_1")
big = add("big_logits", torch.tensor([[1000.0, 0.0, -1000.0], [-500.0, -500.0, 200.0]]))
add("log_softmax_big", F.log_softmax(big, -1))

# ---- losses ----
logits = leaf("ce_logits", torch.randn(6, 5) * 2)
targets = torch.tensor([0, 4, 2, 2, 1, 3])
add("ce_targets", targets)
for eps in (0.0, 0.1):
    key = f"ce_{eps}"
    l = add(key, F.cross_entropy(logits, targets, label_smoothing=eps))
    add(key + ".grad", torch.autograd.grad(l * 1.5, logits)[0])  # seed 1.5
ma_ = leaf("mse_a", torch.randn(3, 4))
mb_ = leaf("mse_b", torch.randn(3, 4))
l = add("mse", F.mse_loss(ma_, mb_))
ga, gb = torch.autograd.grad(l, (ma_, mb_))
add("mse.grad0", ga)
add("mse.grad1", gb)

out.save()
