"""The PyTorch side of bench/compare.sh: the same measurement as trit-bench-train (bench/train.cpp).

    /usr/bin/python3 bench/train_torch_bench.py --model resnet20 --threads 2 --batch 64
    /usr/bin/python3 bench/train_torch_bench.py --model resnet18 --small-input --threads 2 --batch 64

train = forward + cross-entropy + backward + SGD step (momentum 0.9, weight decay 5e-4) in
training mode; infer = forward in eval mode under torch.no_grad(). Each figure is batch / the
median of --reps timed steps after 3 warm-up steps, float32 on the CPU with
torch.set_num_threads(threads). peak_rss_mb is the process's peak resident memory
(resource.getrusage ru_maxrss) after the training steps. Prints one line in trit's format:

    model=NAME threads=N batch=B train_img_s=... infer_img_s=... peak_rss_mb=...

Models: torchvision's resnet18/34/50 (--small-input: 3x3 stride-1 stem, no max-pool) and
mobilenet_v2 (--small-input: trit's CIFAR variant, stride 1 in the stem and in the first
24-channel block), and the CIFAR ResNets of He et al. 2016 (resnet20/32/56, option-A
shortcuts) defined below, as in include/trit/models/.
"""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class BasicBlockA(nn.Module):
    """CIFAR ResNet basic block; option A shortcut: stride-2 subsampling, zero-padded channels."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes - in_planes
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.pad:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, depth, num_classes, in_channels):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlockA(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make_model(args):
    name, k, c = args.model, args.num_classes, args.in_channels
    if name in ("resnet20", "resnet32", "resnet56"):
        return CifarResNet(int(name[6:]), k, c)
    if name in ("resnet18", "resnet34", "resnet50"):
        m = getattr(torchvision.models, name)(num_classes=k)
        if args.small_input or c != 3:
            m.conv1 = nn.Conv2d(c, 64, 3 if args.small_input else 7, 1 if args.small_input else 2,
                                1 if args.small_input else 3, bias=False)
        if args.small_input:
            m.maxpool = nn.Identity()
        return m
    if name == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(num_classes=k, width_mult=args.width)
        stem = m.features[0][0]
        if c != 3 or args.small_input:
            m.features[0][0] = nn.Conv2d(c, stem.out_channels, 3, 1 if args.small_input else 2,
                                         1, bias=False)
        if args.small_input:  # first 24-channel block: its depthwise conv to stride 1
            m.features[2].conv[1][0].stride = (1, 1)
        return m
    raise SystemExit(f"unknown model {name}")


def median_seconds(warmup, reps, step):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--small-input", action="store_true")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    model = make_model(args)
    x = torch.rand(args.batch, args.in_channels, args.size, args.size) * 2 - 1
    targets = torch.arange(args.batch) % args.num_classes
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        loss = F.cross_entropy(model(x), targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    train_s = median_seconds(3, args.reps, train_step)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def infer_step():
        with torch.no_grad():
            model(x)

    model.eval()
    infer_s = median_seconds(3, args.reps, infer_step)
    print(f"model={args.model} threads={args.threads} batch={args.batch} "
          f"train_img_s={args.batch / train_s:.1f} infer_img_s={args.batch / infer_s:.1f} "
          f"peak_rss_mb={rss_mb:.1f}")


if __name__ == "__main__":
    main()
