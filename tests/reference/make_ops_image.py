"""Reference values for tests/ops_conv_test.cpp and tests/ops_pool_norm_test.cpp.

    /usr/bin/python3 tests/reference/make_ops_image.py   ->  tests/reference/ops_image.txt

Every case stores its inputs (drawn here with a fixed seed), the forward output, a random
upstream gradient `gy` and the gradients of sum(y * gy) with respect to each input, all
computed in float64 so the C++ side can compare both float and double runs.
"""
import os

import torch
import torch.nn.functional as F

from refio import ReferenceWriter

torch.manual_seed(20240611)
torch.set_default_dtype(torch.float64)
out = ReferenceWriter(os.path.join(os.path.dirname(__file__), "ops_image.txt"))


def emit(prefix, fn, inputs):
    """inputs: dict name -> tensor (leaf, requires_grad set). Writes inputs, y, gy, grads."""
    for name, t in inputs.items():
        out.add(f"{prefix}.{name}", t)
    y = fn(**inputs)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    out.add(f"{prefix}.y", y)
    out.add(f"{prefix}.gy", gy)
    for name, t in inputs.items():
        if t.requires_grad:
            out.add(f"{prefix}.g{name}", t.grad)


def leaf(*shape):
    return torch.randn(*shape).requires_grad_()


# ---- conv2d: (name, x shape, w shape, bias?, stride, padding, dilation, groups) --------
conv_cases = [
    ("basic", (2, 3, 7, 6), (4, 3, 3, 3), True, 1, 1, 1, 1),
    ("stride2", (2, 3, 8, 7), (5, 3, 3, 3), False, 2, 1, 1, 1),
    ("dilation2", (1, 2, 9, 8), (3, 2, 3, 3), True, 1, 2, 2, 1),
    ("groups2", (2, 4, 6, 5), (6, 2, 3, 3), True, 1, 1, 1, 2),
    ("depthwise", (2, 4, 7, 6), (4, 1, 3, 3), True, 2, 1, 1, 4),
    ("depthwise_dil", (1, 3, 8, 9), (3, 1, 3, 3), False, 1, 2, 2, 3),
    ("pointwise", (2, 5, 4, 3), (6, 5, 1, 1), True, 1, 0, 1, 1),
    ("pointwise_g2", (2, 4, 3, 3), (6, 2, 1, 1), False, 1, 0, 1, 2),
    ("rect_kernel", (2, 2, 6, 7), (3, 2, 2, 3), True, 2, 1, 1, 1),
    ("pointwise_s2", (2, 3, 5, 5), (4, 3, 1, 1), True, 2, 0, 1, 1),
    ("multiplier2", (1, 2, 5, 5), (4, 1, 3, 3), True, 1, 1, 1, 2),
]
for name, xs, ws, has_bias, s, p, d, g in conv_cases:
    inputs = {"x": leaf(*xs), "w": leaf(*ws)}
    if has_bias:
        inputs["b"] = leaf(ws[0])
    out.add(f"conv.{name}.options", torch.tensor([s, p, d, g], dtype=torch.float64))
    emit(f"conv.{name}",
         lambda x, w, b=None, s=s, p=p, d=d, g=g: F.conv2d(x, w, b, s, p, d, g), inputs)

# ---- pooling -----------------------------------------------------------------------------
pool_cases = [  # (name, fn, x shape)
    ("max_k2", lambda x: F.max_pool2d(x, 2), (2, 3, 6, 7)),
    ("max_k3s2p1", lambda x: F.max_pool2d(x, 3, 2, 1), (2, 2, 7, 6)),
    ("avg_k2", lambda x: F.avg_pool2d(x, 2), (2, 3, 6, 7)),
    ("avg_k3s2p1", lambda x: F.avg_pool2d(x, 3, 2, 1), (2, 2, 7, 6)),
    ("adaptive_1x1", lambda x: F.adaptive_avg_pool2d(x, (1, 1)), (2, 3, 5, 4)),
    ("adaptive_3x2", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (2, 3, 7, 5)),
    ("adaptive_up", lambda x: F.adaptive_avg_pool2d(x, (5, 4)), (1, 2, 3, 3)),
]
for name, fn, xs in pool_cases:
    emit(f"pool.{name}", fn, {"x": leaf(*xs)})

# ---- batch norm --------------------------------------------------------------------------
bn_cases = [  # (name, x shape, affine, training)
    ("train4d", (3, 4, 3, 2), True, True),
    ("eval4d", (3, 4, 3, 2), True, False),
    ("train2d", (5, 3), True, True),
    ("train_noaffine", (2, 3, 2, 2), False, True),
]
for name, xs, affine, training in bn_cases:
    C = xs[1]
    rm = torch.randn(C) * 0.5
    rv = torch.rand(C) + 0.5
    out.add(f"bn.{name}.running_mean", rm)
    out.add(f"bn.{name}.running_var", rv)
    inputs = {"x": leaf(*xs) * 2 + 1}
    inputs["x"] = inputs["x"].detach().requires_grad_()
    if affine:
        inputs["w"] = leaf(C)
        inputs["b"] = leaf(C)
    rm_run, rv_run = rm.clone(), rv.clone()

    def bn(x, w=None, b=None, rm_run=rm_run, rv_run=rv_run, training=training):
        return F.batch_norm(x, rm_run, rv_run, w, b, training, 0.1, 1e-5)

    emit(f"bn.{name}", bn, inputs)
    out.add(f"bn.{name}.running_mean_after", rm_run)
    out.add(f"bn.{name}.running_var_after", rv_run)

# ---- batch norm with the fused epilogue: act(batch_norm(x) + r) --------------------------
# (trit's batch_norm(..., activation, residual)); weights scaled by 4 so ReLU6's cap is hit.
bn_fused_cases = [  # (name, x shape, training, activation, residual?)
    ("train_relu_res", (3, 4, 3, 2), True, "relu", True),
    ("train_relu6", (3, 4, 3, 2), True, "relu6", False),
    ("eval_relu6_res", (3, 4, 3, 2), False, "relu6", True),
    ("train_none_res", (2, 3, 2, 2), True, "none", True),
]
acts = {"relu": F.relu, "relu6": F.relu6, "none": lambda v: v}
for name, xs, training, act, has_res in bn_fused_cases:
    C = xs[1]
    rm = torch.randn(C) * 0.5
    rv = torch.rand(C) + 0.5
    out.add(f"bn.{name}.running_mean", rm)
    out.add(f"bn.{name}.running_var", rv)
    inputs = {"x": (torch.randn(*xs) * 2 + 1).requires_grad_(),
              "w": (torch.randn(C) * 4).requires_grad_(), "b": leaf(C)}
    if has_res:
        inputs["r"] = leaf(*xs)
    rm_run, rv_run = rm.clone(), rv.clone()

    def bn_act(x, w, b, r=None, rm_run=rm_run, rv_run=rv_run, training=training, act=act):
        y = F.batch_norm(x, rm_run, rv_run, w, b, training, 0.1, 1e-5)
        return acts[act](y + r if r is not None else y)

    emit(f"bn.{name}", bn_act, inputs)
    out.add(f"bn.{name}.running_mean_after", rm_run)
    out.add(f"bn.{name}.running_var_after", rv_run)

out.save()
