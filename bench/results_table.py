"""Turns the JSON lines of bench/quant_experiments.sh (or bench/quant_ablations.sh) into the
markdown tables of docs/results.md: one row per run, sizes counted over every tensor of the
model.

    python3 bench/results_table.py runs/quant/results.jsonl
    python3 bench/results_table.py runs/ablations/results.jsonl --ablation

Experiments: accuracy against the FP32 run of the same file. Ablations: each run against its
policy's default run (the one whose name is the policy alone: ptq, hq, fq), averaged over
the seeds present.
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ablation = "--ablation" in sys.argv[2:]


def file_columns(r):
    return (f"{r['trit_file_bytes'] / 1000:.1f} KB | {r['trit_compression_ratio']:.1f}x")


def checked(r):
    """The compressed file's own test accuracy, when trit-train ran it (trit_* keys)."""
    if "trit_test_accuracy" not in r:
        return "not run"
    return (f"{100 * r['trit_test_accuracy']:.2f}%, {r['trit_prediction_differences']} "
            f"differ")


if not ablation:
    base = next((r for r in rows if r.get("quant") == "none"), None)
    print("| run | test acc. | Δ vs FP32 | sparsity | 2-bit/4-bit size | ratio | .trit file | ratio "
          "| .trit on compressed kernels | epochs | train images | train time | flags |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        delta = "" if base is None else f"{100 * (r['test_accuracy'] - base['test_accuracy']):+.2f}"
        images = "all 60000" if not r.get("train_limit") else f"first {r['train_limit']}"
        print(f"| {r['run']} | {100 * r['test_accuracy']:.2f}% | {delta} | {100 * r['sparsity']:.1f}% "
              f"| {r['quantized_bytes'] / 1000:.1f} KB | {r['compression_ratio']:.1f}x "
              f"| {file_columns(r)} | {checked(r)} | {r['epochs']} | {images} "
              f"| {r['train_seconds'] / 60:.1f} min | `{r['flags']}` |")
    sys.exit(0)

# Ablations: group runs by name, average over seeds, compare with the policy's default.
by_run = defaultdict(list)
for r in rows:
    by_run[r["run"]].append(r)


def mean_accuracy(name):
    return statistics.mean(r["test_accuracy"] for r in by_run[name])


print("| run | choice switched | seeds | test acc. | Δ vs default | sparsity | .trit file | ratio |")
print("|---|---|---|---|---|---|---|---|")
for name, runs in by_run.items():
    policy = runs[0]["quant"]
    default = policy if policy in by_run else None
    acc = mean_accuracy(name)
    delta = "—" if default is None or default == name else f"{100 * (acc - mean_accuracy(default)):+.2f}"
    flags = runs[0]["flags"].replace(f"--quant {policy}", "").strip() or "(default)"
    spread = ""
    if len(runs) > 1:
        spread = f" ± {100 * statistics.stdev(r['test_accuracy'] for r in runs):.2f}"
    print(f"| {name} | `{flags}` | {len(runs)} | {100 * acc:.2f}%{spread} | {delta} "
          f"| {100 * runs[0]['sparsity']:.1f}% | {file_columns(runs[0])} |")
