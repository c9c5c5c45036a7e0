"""Per-row seeded sampling for HF ``generate``: each row's tokens depend on its own seed only.

HF samples a whole batch from one global RNG, so a row's text would depend on which rows share its batch.
Instead ``generate`` runs greedy, and this logits processor (run last) draws each row's token from that row's
own ``torch.Generator`` after temperature, top-k and top-p, then masks every other token. Greedy then picks
exactly the drawn token. A row's draws are its own, so batching, sorting and retries do not change what it
generates (up to floating-point differences in the logits between batch shapes).
"""

from __future__ import annotations

from typing import Any


class PerRowSampler:
    """A ``LogitsProcessor``: draws one token per row from that row's generator."""

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(int(s) & 0x7FFF_FFFF_FFFF_FFFF) for s in seeds]
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float().cpu() / self.temperature
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            drop = cum - sorted_logits.softmax(-1) >= self.top_p  # keep the smallest set reaching top_p
            logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
        probs = logits.softmax(-1)
        picked = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, picked.to(scores.device), 0.0)
        return out
