"""Turns the JSON lines of bench/quant_experiments.sh into the markdown table of
docs/results.md: one row per run, sizes counted over every tensor of the model.

    python3 bench/results_table.py runs/quant/results.jsonl
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
base = next((r for r in rows if r.get("quant") == "none"), None)
print("| run | test acc. | Δ vs FP32 | sparsity | 2-bit/4-bit size | ratio | .trit file | ratio |"
      " epochs | train time | flags |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    delta = "" if base is None else f"{100 * (r['test_accuracy'] - base['test_accuracy']):+.2f}"
    print(f"| {r['run']} | {100 * r['test_accuracy']:.2f}% | {delta} | {100 * r['sparsity']:.1f}% "
          f"| {r['quantized_bytes'] / 1000:.1f} KB | {r['compression_ratio']:.1f}x "
          f"| {r['trit_file_bytes'] / 1000:.1f} KB | {r['trit_compression_ratio']:.1f}x "
          f"| {r['epochs']} | {r['train_seconds'] / 60:.1f} min | `{r['flags']}` |")
