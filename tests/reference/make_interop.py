"""Reference files for tests/safetensors_test.cpp and tests/models_parity_test.cpp, run once
with Debian's PyTorch and torchvision:
    /usr/bin/python3 tests/reference/make_interop.py

Debian has no python3-safetensors, so save_file() below writes the format by hand the way the
reference implementation (safetensors.torch.save_file) does: u64 little-endian header length,
compact JSON header ("__metadata__" first, then the tensors by name), padded with spaces to a
multiple of 8 bytes, then the data ordered by dtype alignment (largest first), then by name.

Writes into tests/reference/interop/:
- dtypes.safetensors     one small tensor of each dtype trit reads (values in the test)
- tiny.safetensors       state_dict of Sequential(Conv2d(2, 3, 3), BatchNorm2d(3)) with BN's
                         int64 num_batches_tracked, and metadata; the same values, an input
                         and the eval-mode output go to tests/reference/interop.txt
- <model>.safetensors    eval-mode state_dicts with random weights and BN running statistics:
                         resnet20 (CIFAR ResNet of make_models.py, shortcut A) and torchvision
                         mobilenet_v2(num_classes=10, width_mult=0.25)
- <model>_io.safetensors "input" [2, 3, 32, 32] and "logits" [2, 10] of that model (computed
                         in float64, stored as float32; in full in interop.txt as
                         "<model>.logits"); for mobilenet_v2 also "logits_small_input", the
                         same weights run with trit's small_input strides (features.0 and
                         features.2 at stride 1)
- <model>_header.json    the exact safetensors header trit must write for torchvision's
                         resnet18 / resnet50 with 10 classes (names, order, shapes, dtypes,
                         offsets): full weights would be 45 and 94 MB, too big to commit
"""
import json
import os
import struct
import sys

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "interop")
sys.path.insert(0, HERE)
from make_models import CifarResNet  # noqa: E402  (the CIFAR ResNet with trit's names)
from refio import ReferenceWriter  # noqa: E402

DTYPES = {torch.float64: ("F64", 8), torch.float32: ("F32", 4), torch.float16: ("F16", 2),
          torch.bfloat16: ("BF16", 2), torch.int64: ("I64", 8), torch.int32: ("I32", 4),
          torch.int16: ("I16", 2), torch.int8: ("I8", 1), torch.uint8: ("U8", 1),
          torch.bool: ("BOOL", 1)}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: take the raw 16-bit patterns
        t = t.view(torch.int16)
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def save_file(tensors, path, metadata=None):
    """safetensors.torch.save_file, by hand."""
    order = sorted(tensors, key=lambda name: (-DTYPES[tensors[name].dtype][1], name))
    offsets, blobs, offset = {}, [], 0
    for name in order:
        blob = tensor_bytes(tensors[name])
        offsets[name] = (offset, offset + len(blob))
        blobs.append(blob)
        offset += len(blob)
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name]
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


def trit_header(state_dict, metadata=None):
    """The header trit's save_safetensors writes: tensors in state_dict order, F32 except
    num_batches_tracked (I64), whose data comes first (8-byte aligned), compact JSON padded
    to 8 bytes."""
    def is_i64(name):
        return name.endswith("num_batches_tracked")

    offsets, offset = {}, 0
    for i64 in (True, False):
        for name, t in state_dict.items():
            if is_i64(name) == i64:
                size = t.numel() * (8 if i64 else 4)
                offsets[name] = [offset, offset + size]
                offset += size
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    for name, t in state_dict.items():
        header[name] = {"dtype": "I64" if is_i64(name) else "F32", "shape": list(t.shape),
                        "data_offsets": offsets[name]}
    text = json.dumps(header, separators=(",", ":"))
    return text + " " * ((8 - len(text) % 8) % 8)


def randomise(model, gen, in_channels=3):
    """Random weights (He-scaled), BN affine parameters, and running statistics that are
    those of random batches, perturbed: activations stay O(1) through the depth, so the
    logits depend on the input, and eval mode is not the identity. num_batches_tracked is a
    random non-zero count."""
    nn = torch.nn
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        for m in bns:  # cumulative average over the batches below
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for _ in range(4):
            model(torch.randn(16, in_channels, 32, 32, generator=gen))
        for m in bns:
            m.momentum = 0.1
            std = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.1 * std)
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=gen) * 0.5 + 0.75)
            # A floor: a depthwise conv on a 1x1 map (MobileNetV2's last stages at 32x32)
            # leaves channels of near-zero variance, whose BN would amplify rounding 1000x.
            m.running_var.clamp_(min=0.1)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=gen)))


def write_dtypes():
    tensors = {
        "f64": torch.tensor([[1.0, -2.5, 1e-300], [3.25, 0.0, -0.0]], dtype=torch.float64),
        "f32": torch.tensor([1.5, -3.0e38, 1.0e-45], dtype=torch.float32),
        # 1.5, -2, 2^-14 (smallest normal), 2^-24 (smallest subnormal), 65504 (largest), inf
        "f16": torch.tensor([1.5, -2.0, 2.0 ** -14, 2.0 ** -24, 65504.0, float("inf")],
                            dtype=torch.float16),
        "bf16": torch.tensor([1.0, -0.0078125, 2.0 ** 127], dtype=torch.bfloat16),
        "i64": torch.tensor([0, -7, 123456789], dtype=torch.int64),
        "i32": torch.tensor([[-1], [2147483647]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 5], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True], dtype=torch.bool),
        "scalar": torch.tensor(42, dtype=torch.int64),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"), {"format": "pt", "note": "dtypes"})


def write_tiny(gen, w):
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    randomise(model, gen, in_channels=2)
    model.eval()
    save_file(dict(model.state_dict()), os.path.join(OUT, "tiny.safetensors"), {"format": "pt"})
    # The same values as text, an input and the eval-mode output, for the test to compare.
    for name, t in model.state_dict().items():
        w.add(f"tiny.{name}", t)
    x = torch.randn(1, 2, 5, 5, generator=gen)
    w.add("tiny.x", x)
    with torch.no_grad():
        w.add("tiny.y", model(x))


def write_model(key, model, gen, w, small_input_variant=None):
    """Weights in float32 (as saved); the logits computed in float64 from those same weights
    and input: the exact answer, free of PyTorch's own rounding (a random network amplifies
    float32 rounding to ~1e-4 here). The io file holds them rounded to float32; the text
    file (tests/reference/interop.txt) in full, for trit's double-precision check."""
    randomise(model, gen)
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    save_file(dict(model.state_dict()), os.path.join(OUT, f"{key}.safetensors"), {"format": "pt"})
    model.double()
    io = {"input": x}
    with torch.no_grad():
        logits = {"logits": model(x.double())}
        if small_input_variant:
            small_input_variant(model)
            logits["logits_small_input"] = model(x.double())
    for name, y in logits.items():
        io[name] = y.float()
        w.add(f"{key}.{name}", y)
    save_file(io, os.path.join(OUT, f"{key}_io.safetensors"))


def mobilenet_small_input(model):
    """trit's small_input MobileNetV2: stride 1 in features.0 and the first block of the
    second row (features.2, its depthwise conv), which, built with stride 1, adds its input
    when its channel counts agree (they do at width 0.25: 8 -> 8)."""
    model.features[0][0].stride = (1, 1)
    block = model.features[2]
    block.conv[1][0].stride = (1, 1)
    block.use_res_connect = block.conv[0][0].in_channels == block.out_channels
    assert block.use_res_connect


def write_header(key, model):
    path = os.path.join(OUT, f"{key}_header.json")
    with open(path, "w") as f:
        f.write(trit_header(model.state_dict(), {"model": key}))
    print(f"wrote {path}")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2024)
    w = ReferenceWriter(os.path.join(HERE, "interop.txt"))
    write_dtypes()
    write_tiny(gen, w)
    write_model("resnet20", CifarResNet(3, num_classes=10, option="A"), gen, w)
    write_model("mobilenet_v2", torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25),
                gen, w, mobilenet_small_input)
    w.save()
    write_header("resnet18", torchvision.models.resnet18(num_classes=10))
    write_header("resnet50", torchvision.models.resnet50(num_classes=10))
