"""Reference data for tests/models_test.cpp, run once with Debian's PyTorch and torchvision:
    /usr/bin/python3 tests/reference/make_models.py

Writes two files beside this script:
- model_names.txt: for each model, its parameter count and its state_dict (name and shape
  per line, in order), from torchvision 0.14 (resnet18/34/50, mobilenet_v2) and from the
  CIFAR ResNet defined below (resnet20/32/56, shortcut options A and B). Format:
      model <key> <parameter count>
      <name> <d0> <d1> ...          (no numbers after the name for a scalar)
      end
- models.txt (tests/reference.hpp format): tiny blocks in double with random weights and
  running statistics, their input and their outputs in eval and train mode.
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import BasicBlock, Bottleneck

from refio import ReferenceWriter

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- the CIFAR ResNet of He et al. 2016, with trit's module names ---------------------------
class ShortcutA(nn.Module):
    """Option A: keep every stride-th pixel, zero-pad the channels (half before, half after)."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.before = (planes - in_planes) // 2
        self.after = planes - in_planes - self.before
        self.stride = stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


def cifar_downsample(in_planes, planes, stride, option):
    if stride == 1 and in_planes == planes:
        return None
    if option == "A":
        return ShortcutA(in_planes, planes, stride)
    return nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                         nn.BatchNorm2d(planes))


class CifarResNet(nn.Module):
    def __init__(self, n, num_classes=10, in_channels=3, option="A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        planes_in = 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(planes_in, planes, stride,
                                         cifar_downsample(planes_in, planes, stride, option)))
                planes_in = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def count(model):
    return sum(p.numel() for p in model.parameters())


def write_names(path):
    tv = torchvision.models
    models = {
        "resnet18": tv.resnet18(num_classes=1000),
        "resnet34": tv.resnet34(num_classes=1000),
        "resnet50": tv.resnet50(num_classes=1000),
        "mobilenet_v2": tv.mobilenet_v2(num_classes=1000),
        "mobilenet_v2_w0.5": tv.mobilenet_v2(num_classes=1000, width_mult=0.5),
        "mobilenet_v2_w0.5_c10": tv.mobilenet_v2(num_classes=10, width_mult=0.5),
        "resnet20_A": CifarResNet(3, option="A"),
        "resnet20_B": CifarResNet(3, option="B"),
        "resnet32_A": CifarResNet(5, option="A"),
        "resnet32_B": CifarResNet(5, option="B"),
        "resnet56_A": CifarResNet(9, option="A"),
        "resnet56_B": CifarResNet(9, option="B"),
    }
    # The names are checked only for these; the others give their counts.
    listed = {"resnet18", "resnet50", "mobilenet_v2", "mobilenet_v2_w0.5",
              "resnet20_A", "resnet20_B"}
    lines = []
    for key, model in models.items():
        lines.append(f"model {key} {count(model)}")
        if key in listed:
            for name, t in model.state_dict().items():
                lines.append(" ".join([name] + [str(d) for d in t.shape]))
        lines.append("end")
        print(key, count(model))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


def randomise(module, gen):
    """Random weights and running statistics, so that eval mode is not the identity."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var") or name.endswith("bn1.weight"):
                t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.5)


def write_blocks(path):
    gen = torch.Generator().manual_seed(5)
    w = ReferenceWriter(path)
    blocks = {
        # BasicBlock 4 -> 8 channels, stride 2, 1x1 projection shortcut.
        "basic": (BasicBlock(4, 8, 2, nn.Sequential(nn.Conv2d(4, 8, 1, 2, bias=False),
                                                   nn.BatchNorm2d(8))), [2, 4, 7, 7]),
        # BasicBlock 4 -> 8 channels, stride 2, option-A shortcut.
        "basic_a": (BasicBlock(4, 8, 2, ShortcutA(4, 8, 2)), [2, 4, 7, 7]),
        # Bottleneck 8 -> 4*4 channels, stride 2, projection.
        "bottleneck": (Bottleneck(8, 4, 2, nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False),
                                                        nn.BatchNorm2d(16))), [2, 8, 6, 6]),
        # InvertedResidual 6 -> 6, stride 1, expand 3: residual connection.
        "inverted": (InvertedResidual(6, 6, 1, 3), [2, 6, 5, 5]),
        # InvertedResidual 4 -> 8, stride 2, expand 1: no expansion conv, no residual.
        "inverted_s2": (InvertedResidual(4, 8, 2, 1), [2, 4, 5, 5]),
    }
    for key, (block, shape) in blocks.items():
        block = block.double()
        randomise(block, gen)
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        for name, t in block.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                w.add(f"{key}.{name}", t)
        w.add(f"{key}.x", x)
        block.eval()
        w.add(f"{key}.eval", block(x))
        block.train()
        w.add(f"{key}.train", block(x))
    w.save()


if __name__ == "__main__":
    torch.manual_seed(0)
    write_names(os.path.join(HERE, "model_names.txt"))
    write_blocks(os.path.join(HERE, "models.txt"))
