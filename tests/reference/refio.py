"""Writes reference tensors in the text format tests/reference.hpp reads.

Used by the make_*.py scripts beside it, run once with Debian's PyTorch:
    /usr/bin/python3 tests/reference/make_ops_basic.py
"""
import torch


class ReferenceWriter:
    def __init__(self, path):
        self.path = path
        self.lines = []

    def add(self, key, tensor):
        t = torch.as_tensor(tensor).detach().to(torch.float64).contiguous()
        self.lines.append(f"name {key}")
        self.lines.append("shape " + " ".join(str(d) for d in t.shape))
        self.lines.append(" ".join(f"{v:.17g}" for v in t.flatten().tolist()))

    def save(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        print(f"wrote {self.path}: {len(self.lines) // 3} tensors")
