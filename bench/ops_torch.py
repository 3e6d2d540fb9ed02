"""PyTorch's GFLOP/s for the conv2d shapes and passes of bench/ops.cpp (trit-bench-ops).

    /usr/bin/python3 bench/ops_torch.py [--threads N] [--reps R] [--batch B]

FLOPs per pass = 2 * N * O * C/G * KH * KW * OH * OW; median of R timed runs after two
warm-ups; float32 on the CPU, torch.set_num_threads(N).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=torch.get_num_threads())
parser.add_argument("--reps", type=int, default=7)
parser.add_argument("--batch", type=int, default=64)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(1)

LAYERS = [  # net, C, O, H=W, K, groups  (same list as bench/ops.cpp)
    ("ResNet-20", 16, 16, 32, 3, 1), ("ResNet-20", 32, 32, 16, 3, 1),
    ("ResNet-20", 64, 64, 8, 3, 1), ("ResNet-18", 64, 64, 32, 3, 1),
    ("ResNet-18", 128, 128, 16, 3, 1), ("ResNet-18", 256, 256, 8, 3, 1),
    ("ResNet-18", 512, 512, 4, 3, 1), ("MobileNetV2", 96, 96, 32, 3, 96),
    ("MobileNetV2", 144, 144, 16, 3, 144), ("MobileNetV2", 96, 576, 8, 1, 1),
]


def median_seconds(setup, body):
    times = []
    for r in range(args.reps + 2):
        state = setup()
        t0 = time.perf_counter()
        body(state)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def sgemm_gflops():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    s = median_seconds(lambda: None, lambda _: torch.mm(a, b))
    return 2 * 1024**3 / s * 1e-9


sgemm = sgemm_gflops()
print(f"torch {torch.__version__}: batch {args.batch}, {args.threads} threads, "
      f"median of {args.reps} reps")
print(f"torch sgemm 1024^3: {sgemm:.1f} GFLOP/s\n")
print(f"{'net':<11} {'layer':<22} {'forward':>9} {'grad input':>11} {'grad weight':>12}  (GFLOP/s)")
for net, C, O, HW, K, G in LAYERS:
    x = torch.randn(args.batch, C, HW, HW)
    w = torch.randn(O, C // G, K, K)
    gy = torch.randn(args.batch, O, HW, HW)
    flops = 2.0 * args.batch * O * (C // G) * K * K * HW * HW
    conv = lambda xi, wi: F.conv2d(xi, wi, None, 1, K // 2, 1, G)

    with torch.no_grad():
        fwd = median_seconds(lambda: None, lambda _: conv(x, w))

    def backward_of(x_grad):
        def setup():
            xi = x.clone().requires_grad_(x_grad)
            wi = w.clone().requires_grad_(not x_grad)
            return conv(xi, wi)
        return median_seconds(setup, lambda y: y.backward(gy))

    bin_, bw = backward_of(True), backward_of(False)
    layer = f"{C}->{O} {K}x{K} {'dw ' if G > 1 else ''}{HW}x{HW}"
    print(f"{net:<11} {layer:<22} {flops / fwd * 1e-9:9.1f} {flops / bin_ * 1e-9:11.1f} "
          f"{flops / bw * 1e-9:12.1f}", flush=True)
