"""FLOP accounting for the CPU benchmarks: this machine's matrix-multiply peak, measured in the same run, and the
useful FLOPs of a GPT-2-style forward pass, so a scorer's throughput reads as a share of what the CPUs can do.

Useful FLOPs count real tokens only (no padding) and causal attention's lower triangle only: they are the same
for every scorer of the same data, so their ratio to the peak says how much of the machine each scorer uses.
"""

from __future__ import annotations

import time
from typing import Any


def matmul_peak(n: int = 1024, repeats: int = 7, threads: int | None = None) -> float:
    """Best float32 FLOP/s of an ``n x n`` by ``n x n`` matrix product on this process's torch threads."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm the kernels and the allocator
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def shaped_peak(tokens: int, hidden: int, repeats: int = 7) -> float:
    """Best float32 FLOP/s of the model's own largest product shape: ``tokens x hidden`` by ``hidden x 4 hidden``
    (the MLP's first layer), i.e. what one sequence of ``tokens`` can get from the CPUs at most."""
    import torch

    a, b = torch.randn(tokens, hidden), torch.randn(hidden, 4 * hidden)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * tokens * hidden * 4 * hidden / best


def forward_flops(model: Any, lengths: list[int]) -> float:
    """Useful FLOPs of one forward pass over sequences of ``lengths`` tokens each (full logits, as both scorers
    compute them): 2 x (block weights + LM head) per token, plus causal attention's 2 x hidden x T^2 per layer
    (Q.K^T and A.V over the lower triangle)."""
    cfg = model.config
    hidden, layers = cfg.hidden_size, cfg.num_hidden_layers
    head = model.get_output_embeddings().weight.numel()
    embeddings = sum(m.weight.numel() for m in model.modules() if type(m).__name__ == "Embedding")
    block_weights = sum(p.numel() for p in model.parameters() if p.dim() == 2) - embeddings
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        block_weights -= head  # an untied head is a 2-D parameter of its own: counted once, below
    tokens = sum(lengths)
    return 2.0 * (block_weights + head) * tokens + sum(2.0 * hidden * t * t * layers for t in lengths)
