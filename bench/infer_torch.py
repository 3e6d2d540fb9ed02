"""PyTorch's FP32 inference speed of the CIFAR ResNet, the reference for trit-bench-infer.

    /usr/bin/python3 bench/infer_torch.py [--depth 20] [--in-channels 1] [--size 28]
                                          [--shortcut A] [--threads 2] [--reps 21]

The network is the CIFAR ResNet of tests/reference/make_models.py (the twin of trit's
models::CifarResNet), in eval mode under torch.no_grad(), on random images. Images per second
at batch 1 and 64: batch over the median of R timed forwards (5 R at batch 1) after 3 warm-ups,
as trit-bench-infer measures. The last line is a JSON object with batch1_torch_img_s and
batch64_torch_img_s.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from make_models import CifarResNet  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, default=20, choices=[20, 32, 56])
parser.add_argument("--in-channels", type=int, default=1)
parser.add_argument("--size", type=int, default=28)
parser.add_argument("--num-classes", type=int, default=10)
parser.add_argument("--shortcut", default="A", choices=["A", "B"])
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--reps", type=int, default=21)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(1)

model = CifarResNet((args.depth - 2) // 6, args.num_classes, args.in_channels, args.shortcut)
model.eval()


def median_seconds(reps, step):
    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


img_s = {}
with torch.no_grad():
    for batch in (1, 64):
        x = torch.randn(batch, args.in_channels, args.size, args.size)
        reps = 5 * args.reps if batch == 1 else args.reps
        img_s[batch] = batch / median_seconds(reps, lambda: model(x))

load = os.getloadavg()[0]
print(f"torch {torch.__version__} resnet{args.depth} ({args.in_channels}x{args.size}x{args.size}, "
      f"shortcut {args.shortcut}), {args.threads} threads, load {load:.2f}")
print(f"images/s  batch 1 {img_s[1]:.1f}  batch 64 {img_s[64]:.1f}")
print(json.dumps({"model": f"resnet{args.depth}", "threads": args.threads,
                  "batch1_torch_img_s": round(img_s[1], 1),
                  "batch64_torch_img_s": round(img_s[64], 1)}))
