"""Negative log-likelihood of token sequences, batched, with a strided sliding window for long sequences.

The method is Hugging Face's "perplexity of fixed-length models": windows of ``window`` tokens start every
``stride`` tokens; each window scores only the tokens that no earlier window scored, so every token is scored
exactly once, with at least ``window - stride`` preceding tokens as context (all of them inside the first
window). The first token of a sequence has no context and is never scored (with hiwar's formats it is BOS or
template markup).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

IGNORE = -100
# Padded tokens per forward pass when the config leaves it open (``perplexity.max_tokens_per_batch: null``). On CPU,
# smaller passes are faster: their activations stay in the caches. Measured here (2 threads, 2026-12-02, load about
# 1): GPT-2 4x256 scored 13.0k tokens/s at 2048 against 10.5k at 8192 (12.6k at 1024, 12.2k at 4096); 4x512 3.6k
# against 2.9k; 4x1024 1.0k against 0.87k. A GPU wants large passes to fill its cores.
CPU_TOKENS_PER_BATCH = 2048
GPU_TOKENS_PER_BATCH = 8192


@dataclass(frozen=True)
class Window:
    """One forward pass: input positions ``[begin, end)``; label positions ``[target_start, end)`` are
    scored."""

    begin: int
    end: int
    target_start: int


def effective_stride(window: int, stride: int | None) -> int:
    """The stride actually used: ``window // 2`` by default, at most ``window - 1`` (every target has
    context)."""
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens, got {window}")
    return max(1, min(stride if stride is not None else window // 2, window - 1))


def plan_windows(n_tokens: int, window: int, stride: int | None = None) -> list[Window]:
    """Hugging Face's strided windows: starts at 0, stride, 2*stride...; each scores the tokens after the previous
    window's end, so positions ``1 .. n_tokens - 1`` are scored once each (position 0 has no context)."""
    stride = effective_stride(window, stride)
    windows: list[Window] = []
    prev_end = 0
    for begin in range(0, max(n_tokens - 1, 0), stride):
        end = min(begin + window, n_tokens)
        windows.append(Window(begin, end, max(prev_end, begin + 1)))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def window_pieces(ids: list[int], labels: list[int], window: int, stride: int | None) -> list[tuple[list, list]]:
    """(input ids, labels) per window; labels outside the window's targets are ``IGNORE``."""
    pieces = []
    for w in plan_windows(len(ids), window, stride):
        head = w.target_start - w.begin
        pieces.append((ids[w.begin : w.end], [IGNORE] * head + labels[w.target_start : w.end]))
    return pieces


def _micro_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped so that (rows x longest row) stays within ``max_tokens``; longest first, so padding is
    small."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def forward_nll(model: Any, pieces: list[tuple[list, list]], pad_id: int, device: Any) -> list[tuple[float, int]]:
    """Summed NLL (nats) and scored-token count of each (ids, labels) piece, in one right-padded forward
    pass."""
    import torch

    longest = max(len(ids) for ids, _ in pieces)
    input_ids = torch.full((len(pieces), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(pieces), longest), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(pieces), longest), dtype=torch.long)
    for row, (ids, labs) in enumerate(pieces):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    # The logits at position t predict the label at t + 1: only positions whose next label is scored matter.
    target = labels[:, 1:]
    rows, cols = (target != IGNORE).nonzero(as_tuple=True)
    logits = scored_logits(model, input_ids.to(device), attention.to(device), rows.to(device), cols.to(device))
    nll = token_nll(logits, target[rows, cols].to(device)).double().cpu()
    sums = torch.zeros(len(pieces), dtype=torch.float64).index_add_(0, rows, nll)
    counts = torch.bincount(rows, minlength=len(pieces))
    return [(float(s), int(c)) for s, c in zip(sums.tolist(), counts.tolist(), strict=True)]


def scored_logits(model: Any, input_ids: Any, attention: Any, rows: Any, cols: Any) -> Any:
    """The logits at positions ``(rows[i], cols[i])`` only, shape ``(len(rows), vocab)``.

    The output head (``get_output_embeddings``) is given just those positions' hidden states, through a forward
    pre-hook, so the vocabulary projection and the float32 softmax skip the prompt, the user turns and the
    padding, as vLLM computes logits only where it samples. What a model does to the head's output (Jais' muP
    scale) is elementwise and still applies. A model whose logits come back in another shape is run again
    whole (with a warning); one without an output head (a test stand-in) is run whole.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        return model(input_ids=input_ids, attention_mask=attention).logits[rows, cols]
    handle = head.register_forward_pre_hook(lambda _module, args: (args[0][rows, cols], *args[1:]))
    try:
        logits = model(input_ids=input_ids, attention_mask=attention, use_cache=False).logits
    finally:
        handle.remove()
    if logits.dim() == 2 and logits.shape[0] == len(rows):
        return logits
    log.warning(
        "%s: logits of shape %s, not one row per scored token; scoring whole", type(model).__name__, tuple(logits.shape)
    )
    return model(input_ids=input_ids, attention_mask=attention, use_cache=False).logits[rows, cols]


# Scored positions whose float32 logits are held at once (64,000-word vocabulary: 256 MB).
NLL_CHUNK = 1024


def token_nll(logits: Any, targets: Any) -> Any:
    """Each position's NLL (nats) in float32, ``NLL_CHUNK`` positions at a time: the logits may be bfloat16,
    and a whole batch of them in float32 can be GBs."""
    import torch

    if len(targets) == 0:
        return torch.zeros(0, dtype=torch.float32)
    return torch.cat(
        [
            torch.nn.functional.cross_entropy(
                logits[i : i + NLL_CHUNK].float(), targets[i : i + NLL_CHUNK], reduction="none"
            )
            for i in range(0, len(targets), NLL_CHUNK)
        ]
    )


def tokens_per_batch(max_tokens: int | None, device: Any) -> int:
    """``max_tokens`` when given, else :data:`CPU_TOKENS_PER_BATCH` on a CPU and :data:`GPU_TOKENS_PER_BATCH` on
    any other device."""
    if max_tokens:
        return max_tokens
    kind = getattr(device, "type", str(device).split(":")[0])
    return CPU_TOKENS_PER_BATCH if kind == "cpu" else GPU_TOKENS_PER_BATCH


def score_sequences(
    model: Any,
    sequences: list[tuple[list[int], list[int]]],
    window: int,
    stride: int | None = None,
    max_tokens_per_batch: int | None = None,
    pad_id: int = 0,
    device: Any = "cpu",
) -> list[tuple[float, int]]:
    """Summed NLL (nats) and scored-token count per (input ids, labels) sequence.

    Labels follow the Hugging Face convention (not shifted; ``-100`` is not scored). Windows of all sequences
    are sorted by length and packed into padded micro-batches of at most ``max_tokens_per_batch`` tokens
    (:func:`tokens_per_batch` for the device when None).
    """
    import torch

    pieces, owner = [], []
    for index, (ids, labels) in enumerate(sequences):
        for piece in window_pieces(list(ids), list(labels), window, stride):
            if any(label != IGNORE for label in piece[1][1:]):  # a window with nothing to score is skipped
                pieces.append(piece)
                owner.append(index)
    totals = [(0.0, 0)] * len(sequences)
    with torch.inference_mode():
        for batch in _micro_batches([len(p[0]) for p in pieces], tokens_per_batch(max_tokens_per_batch, device)):
            for i, (nll, count) in zip(
                batch, forward_nll(model, [pieces[i] for i in batch], pad_id, device), strict=True
            ):
                total_nll, total_count = totals[owner[i]]
                totals[owner[i]] = (total_nll + nll, total_count + count)
    return totals
