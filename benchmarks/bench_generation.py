"""Generation throughput: the Ray Data pipeline against the same engine called directly, in one run.

    python benchmarks/bench_generation.py              # 400 prompts: about 7 minutes on 2 cores
    python benchmarks/bench_generation.py --rows 512 --max-tokens 64 --layers 8 --hidden 768

A random GPT-2 of about 20M parameters (so generation dominates) answers the same grid prompts with the same
sampling three ways: (1) directly, the transformers engine's actor class called in this process with one thread
(and OMP_NUM_THREADS=1, as Ray sets for a 1-CPU actor), before and again after the pipeline runs, the ratios using
the mean of the two times; (2) the `generate_texts` Ray Data pipeline with one actor of 1 CPU; (3) with two actors.
Then the engine's length-sorted micro-batching against unsorted, directly, on prompts of mixed lengths. Figures are
ratios to the baselines measured in this run. End-to-end pipeline times include Ray Data's actor start-up (process,
imports, model load) and the warm workers' (:mod:`hiwar.cluster.warm_workers`, asked for when the clock starts, as
``hiwar generate`` asks when it joins Ray; ``--cold`` turns them off); the "steady" rates count the rows that arrive
after the first batch, over the time after it.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray gives a 1-CPU actor OMP_NUM_THREADS=1; the direct baseline runs under the same setting (without it the
# direct engine measured about 4% slower here, which would flatter the pipeline).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def build_model(args: argparse.Namespace, root: Path) -> Path:
    from hiwar.tiny_models import TinySpec, build_tiny_model

    spec = TinySpec(layers=args.layers, hidden=args.hidden, heads=args.hidden // 64, max_positions=2048)
    return build_tiny_model(root / f"gpt2-{args.layers}x{args.hidden}", spec)


def grid_rows(model: Path, n: int, mixed: bool, seed: int = 0) -> list[dict]:
    """``n`` engine rows from the prompt grid; ``mixed`` prepends 0-6 shipped messages to vary prompt
    lengths."""
    from hiwar.assets import load_seed_conversations
    from hiwar.config import load_config
    from hiwar.generation.grid import build_grid
    from hiwar.generation.prompting import request_rows

    cfg = load_config(overrides=[f"generation.model={model}", f"generation.grid.limit={n}"]).generation
    rows = request_rows(build_grid(cfg.grid, cfg.prompt_version, 0), cfg)
    if mixed:
        rng = random.Random(seed)
        history = [m for c in load_seed_conversations() for m in c.messages]
        for row in rows:
            k = rng.randrange(0, 7)
            start = rng.randrange(0, len(history) - 8)
            row["messages"] = row["messages"][:1] + history[start : start + 2 * k] + row["messages"][1:]
    return rows


def engine_cfg(model: Path, args: argparse.Namespace, **update: object):
    from hiwar.generation.config import EngineConfig, SamplingConfig

    sampling = SamplingConfig(temperature=0.3, top_p=0.9, repetition_penalty=1.2, max_tokens=args.max_tokens)
    cfg = EngineConfig(
        engine="transformers",
        model=str(model),
        sampling=sampling,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
    )
    return cfg.model_copy(update=update)


def direct(rows: list[dict], cfg, threads: int = 1) -> tuple[float, int]:
    """Seconds and generated tokens of the engine's actor class called in this process (model pre-loaded)."""
    import pyarrow as pa

    from hiwar.generation.engines import prepared_engine
    from hiwar.generation.engines.common import engine_fields
    from hiwar.generation.engines.hf_engine import HFGenerator

    # As generate_texts hands it to its actors: the prompt format resolved ('auto' is not a format an actor runs).
    gen = HFGenerator(engine_fields(prepared_engine(cfg)), threads)
    start = time.perf_counter()
    tokens = 0
    for i in range(0, len(rows), cfg.batch_size):
        out = gen(pa.Table.from_pylist(rows[i : i + cfg.batch_size]))
        tokens += sum(out.column("num_generated_tokens").to_pylist())
        failed = [e for e in out.column("error").to_pylist() if e]
        if failed:  # a baseline that generates nothing would flatter nothing and mean nothing
            raise SystemExit(f"the direct engine failed {len(failed)} row(s): {failed[0]}")
    return time.perf_counter() - start, tokens


def pipeline(rows: list[dict], cfg) -> tuple[float, float, int, float]:
    """Through ``generate_texts``: whole seconds (actor start-up included), steady rows/s (after the first
    batch arrives, so start-up is left out), generated tokens, and seconds to the first rows.

    The clock starts where ``hiwar generate`` joins Ray: it asks for the run's warm workers there
    (``session.connect(warm=actors)``), so their start-up is inside the measured time."""
    import ray.data

    from hiwar.cluster import warm_workers
    from hiwar.generation.engines import generate_texts

    start = time.perf_counter()
    warm_workers.ensure(cfg.actors)
    blocks = max(1, len(rows) // cfg.batch_size)
    ds = generate_texts(ray.data.from_items(rows, override_num_blocks=blocks), cfg)
    first, first_rows, n, tokens = None, 0, 0, 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        n += batch.num_rows
        tokens += sum(batch.column("num_generated_tokens").to_pylist())
        if first is None:
            first, first_rows = time.perf_counter(), n
    end = time.perf_counter()
    steady = (n - first_rows) / max(end - first, 1e-9)
    return end - start, steady, tokens, first - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400, help="Enough that actor start-up (~20 s) fades.")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--sort-rows", type=int, default=64, help="Rows of the sorted/unsorted comparison.")
    parser.add_argument("--model-dir", default=None, help="Where to build the random model (default: temp).")
    parser.add_argument("--cold", action="store_true", help="No warm workers (HIWAR_WARM_WORKERS=0): the before.")
    args = parser.parse_args()
    if args.cold:
        os.environ["HIWAR_WARM_WORKERS"] = "0"

    import ray
    import torch

    root = Path(args.model_dir or tempfile.mkdtemp(prefix="hiwar-bench-"))
    model = build_model(args, root)
    from transformers import AutoModelForCausalLM

    params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model).parameters())
    print(
        f"model: GPT-2 {args.layers} layers x {args.hidden}, {params / 1e6:.1f}M parameters (random); "
        f"{args.rows} prompts, {args.max_tokens} new tokens, batch {args.batch_size}, "
        f"torch {torch.__version__}"
    )
    rows = grid_rows(model, args.rows, mixed=False)
    cfg = engine_cfg(model, args)
    torch.set_num_threads(1)
    d_s, d_tok = direct(rows, cfg)
    print(f"direct (1 thread):      {args.rows / d_s:7.2f} rows/s {d_tok / d_s:8.1f} tok/s ({d_s:.1f} s)")

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    results = {}
    for actors in (1, 2):
        p_s, steady, p_tok, first_s = pipeline(rows, cfg.model_copy(update={"actors": actors}))
        results[actors] = (p_s, steady)
        print(
            f"pipeline ({actors} actor{'s' if actors > 1 else ' '}):     {args.rows / p_s:7.2f} rows/s "
            f"{p_tok / p_s:8.1f} tok/s ({p_s:.1f} s with start-up); steady {steady:.2f} rows/s; first rows after "
            f"{first_s:.1f} s; start-up share {1 - args.rows / steady / p_s:.0%} (time beyond the steady rate)"
        )
    ray.shutdown()
    # The baseline again after the pipeline runs: a machine whose speed drifts shows here, and the ratios use
    # the mean of the two baseline times.
    d2_s, d2_tok = direct(rows, cfg)
    print(
        f"direct again:           {args.rows / d2_s:7.2f} rows/s {d2_tok / d2_s:8.1f} tok/s ({d2_s:.1f} s); "
        f"drift {d2_s / d_s - 1:+.1%}"
    )
    base_s = (d_s + d2_s) / 2
    direct_rate = args.rows / base_s
    for actors, (p_s, steady) in results.items():
        target = 0.95 if actors == 1 else 1.8
        print(
            f"ratio pipeline/direct, {actors} actor(s): {base_s / p_s:.2f} end-to-end, "
            f"{steady / direct_rate:.2f} steady (target >= {target})"
        )

    mixed = grid_rows(model, args.sort_rows, mixed=True)
    big = engine_cfg(model, args, batch_size=args.sort_rows)
    torch.set_num_threads(os.cpu_count() or 1)
    u_s, _ = direct(mixed, big.model_copy(update={"sort_by_length": False}), threads=os.cpu_count() or 1)
    s_s, _ = direct(mixed, big, threads=os.cpu_count() or 1)
    print(
        f"unsorted vs length-sorted micro-batches ({args.sort_rows} mixed-length prompts, micro-batch "
        f"{args.micro_batch_size}): {u_s:.1f} s vs {s_s:.1f} s -> sorted is {u_s / s_s:.2f}x as fast"
    )


if __name__ == "__main__":
    main()
