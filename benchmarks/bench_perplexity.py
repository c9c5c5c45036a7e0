"""Perplexity throughput: hiwar (length-sorted padded batches, Ray Data actor pool) against a plain per-example loop
(one sequence per forward pass, as Hugging Face ``evaluate``'s perplexity does), same model, same data.

    python benchmarks/bench_perplexity.py                       # small defaults, a few minutes on 2 CPU cores
    python benchmarks/bench_perplexity.py --conversations 2000 --hidden 512 --layers 8 --actors 4

Prints both corpus perplexities (they must agree) and tokens per second, as ratios to the baseline measured in
the same run. The Ray figure includes actor start-up and model loading; the in-process figure is the batched
scorer alone. Each scorer's useful FLOP/s (real tokens only, causal attention) is given as a share of this
machine's float32 matrix-multiply peak, measured in the same run (``benchmarks/flops.py``), and the load average
is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


def conversations(n: int) -> list[list[dict[str, str]]]:
    """``n`` conversations: hiwar's hand-written ones, cycled, with a varying number of exchanges."""
    from hiwar.assets import load_seed_conversations

    seeds = [c.messages for c in load_seed_conversations()]
    out = []
    for i in range(n):
        messages = seeds[i % len(seeds)]
        keep = 2 * (1 + i % max(1, len(messages) // 2))  # 1.. all exchanges: lengths vary, as in real data
        out.append(messages[:keep])
    return out


def baseline(model, tokenizer, convs: list, lengths: list[int]) -> tuple[float, int, float]:
    """One conversation per forward pass: ``model(input_ids, labels=...)``; NLL = loss x scored tokens (each
    conversation's token count goes to ``lengths``)."""
    import torch

    from hiwar.training.data import tokenize_conversation

    start, nll, tokens = time.perf_counter(), 0.0, 0
    with torch.inference_mode():
        for messages in convs:
            enc = tokenize_conversation(tokenizer, messages, 100_000)
            lengths.append(len(enc["input_ids"]))
            count = sum(1 for t in enc["labels"][1:] if t != -100)
            loss = model(input_ids=torch.tensor([enc["input_ids"]]), labels=torch.tensor([enc["labels"]])).loss
            nll, tokens = nll + float(loss) * count, tokens + count
    return nll, tokens, time.perf_counter() - start


def hiwar_in_process(model, tokenizer, convs: list, max_tokens: int | None) -> tuple[float, int, float]:
    """hiwar's batched scorer in this process (formatting included, as in the baseline)."""
    from hiwar.evaluation.perplexity.encoding import encode_for_scoring
    from hiwar.evaluation.perplexity.nll import score_sequences
    from hiwar.models.loader import context_length

    start = time.perf_counter()
    sequences = [encode_for_scoring(tokenizer, m, "assistant") for m in convs]
    scores = score_sequences(model, sequences, context_length(model.config), None, max_tokens, tokenizer.pad_token_id)
    return sum(s[0] for s in scores), sum(s[1] for s in scores), time.perf_counter() - start


def hiwar_ray(
    model_dir: Path, convs: list, actors: int, batch_size: int, max_tokens: int | None
) -> tuple[float, int, float]:
    """hiwar's Ray Data job (actor pool; start-up and model loading included). Prints when the first rows came
    back: the start-up share of the job. The clock starts where ``hiwar evaluate`` joins Ray and asks for its warm
    workers (``session.connect(warm=...)``; ``HIWAR_WARM_WORKERS=0`` measures without them)."""
    from hiwar.cluster import warm_workers
    from hiwar.evaluation.config import PerplexityConfig
    from hiwar.evaluation.perplexity.job import scored_dataset
    from hiwar.models.spec import ModelSpec

    rows = [
        {"id": str(i), "topic": "t", "messages_json": json.dumps(m, ensure_ascii=False)} for i, m in enumerate(convs)
    ]
    rows.sort(key=lambda r: -len(r["messages_json"]))
    cfg = PerplexityConfig(
        actors=actors,
        batch_size=batch_size,
        max_tokens_per_batch=max_tokens,
        num_cpus=max(1.0, (os.cpu_count() or 2) / actors),
    )
    start, first, nll, tokens = time.perf_counter(), None, 0.0, 0
    warm_workers.ensure(actors)
    ds = scored_dataset(ModelSpec(model=str(model_dir)), rows, cfg)
    for batch in ds.iter_batches(batch_format="pandas", batch_size=None):  # each block as it comes
        first = first or time.perf_counter() - start
        nll, tokens = nll + float(batch["nll"].sum()), tokens + int(batch["n_tokens"].sum())
    seconds = time.perf_counter() - start
    print(f"Ray job: first rows after {first:.1f} s of {seconds:.1f} s (start-up share {first / seconds:.0%})")
    return nll, tokens, seconds


def main() -> None:
    """Build a tiny model, run the three scorers, print perplexities, tokens/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="Conversations per Ray batch.")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="Padded tokens per forward pass (default: hiwar's, 2048 on CPU)."
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "hiwar-bench-perplexity")
    args = parser.parse_args()

    import ray
    import torch
    from flops import forward_flops, matmul_peak, shaped_peak

    from hiwar.evaluation.perplexity.nll import tokens_per_batch
    from hiwar.models.loader import ModelRef, load_causal_lm, load_tokenizer
    from hiwar.tiny_models import TinySpec, build_tiny_model

    spec = TinySpec(layers=args.layers, hidden=args.hidden, heads=4, max_positions=1024)
    model_dir = build_tiny_model(args.workdir / f"gpt2-{args.layers}x{args.hidden}", spec)
    convs = conversations(args.conversations)
    torch.set_num_threads(os.cpu_count() or 1)
    model, tokenizer = (
        load_causal_lm(ModelRef(str(model_dir)), torch.float32).eval(),
        load_tokenizer(ModelRef(str(model_dir))),
    )
    print(
        f"model: GPT-2 {args.layers} layers x {args.hidden}, {sum(p.numel() for p in model.parameters()):,} "
        f"parameters; {len(convs)} conversations; {os.cpu_count()} CPUs; batched passes of at most "
        f"{tokens_per_batch(args.max_tokens, 'cpu')} padded tokens"
    )
    peak = matmul_peak(threads=os.cpu_count() or 1)
    lengths: list[int] = []
    results = {
        "per-example loop (baseline)": baseline(model, tokenizer, convs, lengths),
        "hiwar batched scorer (in process)": hiwar_in_process(model, tokenizer, convs, args.max_tokens),
    }
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        results[f"hiwar Ray Data job ({args.actors} actors, incl. start-up)"] = hiwar_ray(
            model_dir, convs, args.actors, args.batch_size, args.max_tokens
        )
    finally:
        ray.shutdown()
    base_nll, base_tokens, base_time = results["per-example loop (baseline)"]
    base_ppl = math.exp(base_nll / base_tokens)
    useful = forward_flops(model, lengths)
    longest, mean = max(lengths), sum(lengths) / len(lengths)
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; sequences: mean {mean:.0f}, longest "
        f"{longest} tokens; float32 matmul peak {peak / 1e9:.1f} GFLOP/s (1024^3); the model's MLP shape at the "
        f"mean length {shaped_peak(round(mean), args.hidden) / 1e9:.1f} GFLOP/s"
    )
    print(f"useful work: {useful / 1e9:.2f} GFLOP (real tokens only, causal attention)")
    print(
        f"{'scorer':55s} {'perplexity':>12s} {'rel. diff':>10s} {'tokens/s':>10s} {'speed-up':>9s} "
        f"{'GFLOP/s':>8s} {'of peak':>8s}"
    )
    for name, (nll, tokens, seconds) in results.items():
        ppl = math.exp(nll / tokens)
        assert tokens == base_tokens, f"{name}: scored {tokens} tokens, baseline {base_tokens}"
        print(
            f"{name:55s} {ppl:12.6f} {abs(ppl - base_ppl) / base_ppl:10.2e} {tokens / seconds:10.0f} "
            f"{base_time / seconds:8.2f}x {useful / seconds / 1e9:8.2f} {useful / seconds / peak:8.1%}"
        )


if __name__ == "__main__":
    main()
