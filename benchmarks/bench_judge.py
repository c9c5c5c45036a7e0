"""Judge throughput: the judge's Ray Data job against the same engine called directly, in one run.

    python benchmarks/bench_judge.py                   # 600 conversations: about 9 minutes on 2 cores
    python benchmarks/bench_judge.py --rows 8 --max-tokens 8 --layers 2 --hidden 64   # smoke run, ~1 minute

A random GPT-2 (so the judge's long prompt and its generation dominate) judges the same conversations on the
human-eval rubric three ways: (1) directly: the judge's request rows (rubric prompt, per-item seed) through the
transformers engine's actor class in this process with one thread, then the strict parser, before and again after
the pipeline runs (the ratios use the mean of the two times); (2) ``judge_items`` (Ray Data: engine actor pool, parse
stage, shards written) with one actor of 1 CPU; (3) with two actors. One attempt per item (``max_attempts=1``) so
both sides do the same work. Figures are ratios to the baseline measured in this run; pipeline times include Ray
Data's actor start-up and the shard writes. The load average is printed before and after, since a loaded machine
moves every number here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # what Ray gives a 1-CPU actor; the direct baseline runs the same


def build_model(args: argparse.Namespace, root: Path) -> Path:
    from hiwar.tiny_models import TinySpec, build_tiny_model

    spec = TinySpec(layers=args.layers, hidden=args.hidden, heads=max(1, args.hidden // 64), max_positions=2048)
    return build_tiny_model(root / f"gpt2-{args.layers}x{args.hidden}", spec)


def items(n: int) -> list[dict]:
    """``n`` conversation items from the shipped Arabic conversations (cycled, with distinct ids)."""
    from hiwar.assets import load_seed_conversations
    from hiwar.judge.items import conversation_items

    convs = load_seed_conversations()
    out = conversation_items([convs[i % len(convs)] for i in range(n)])
    for i, item in enumerate(out):
        item["item_id"] = f"{item['item_id']}-{i:05d}"
    return out


def judge_cfg(model: Path, args: argparse.Namespace, replicas: int = 1):
    from hiwar.config import load_config

    return load_config(
        overrides=[
            f"judge.model={model}",
            f"judge.sampling.max_tokens={args.max_tokens}",
            "judge.max_attempts=1",
            f"judge.batch_size={args.batch_size}",
            f"judge.micro_batch_size={args.batch_size}",
            f"judge.actors={replicas}",
            f"judge.shard_size={args.shard_size}",
        ]
    )


def direct(rows: list[dict], config) -> float:
    """Seconds for the engine's actor class and the parser on the judge's request rows (model pre-loaded)."""
    import pyarrow as pa

    from hiwar.generation.engines import prepared_engine
    from hiwar.generation.engines.common import engine_fields
    from hiwar.generation.engines.hf_engine import HFGenerator
    from hiwar.judge.job import RequestBuilder
    from hiwar.judge.parse import parse_judgment
    from hiwar.judge.rubric import Rubric

    cfg = prepared_engine(config.judge)
    rubric = Rubric.from_human_eval(config.human_eval)
    build = RequestBuilder(cfg, rubric, config.seed, "judge")
    gen = HFGenerator(engine_fields(cfg), 1)
    start = time.perf_counter()
    requests = [build(item, 1, 0) for item in rows]
    for i in range(0, len(requests), cfg.batch_size):
        for row in gen(pa.Table.from_pylist(requests[i : i + cfg.batch_size])).to_pylist():
            parse_judgment(row["kind"], row["generated_text"], row["error"], False, rubric)
    return time.perf_counter() - start


def pipeline(rows: list[dict], config, work: Path) -> tuple[float, float]:
    """Seconds of ``judge_items`` (actor start-up and shard writes included), and seconds until its first shard
    file was written (the start-up share: nothing is written before the first judgments come back)."""
    from hiwar.judge.job import judge_items
    from hiwar.judge.rubric import Rubric

    rubric = Rubric.from_human_eval(config.human_eval)
    start, wall = time.perf_counter(), time.time()
    results, _ = judge_items(rows, config.judge, rubric, work, config.seed, config.cluster, "judge")
    assert len(results) == len(rows)
    seconds = time.perf_counter() - start
    written = [f.stat().st_mtime for f in work.rglob("*") if f.is_file() and f.parent.name == "shards"]
    return seconds, (min(written) - wall) if written else float("nan")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 600: enough work (about 140 s direct) that the pipeline's fixed start-up (12-14 s) is measured as the small
    # share it is in a real run; at 96 it is a third of the time (docs/judge.md gives both).
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--model-dir", default=None, help="Where to build the random model (default: temp).")
    args = parser.parse_args()

    import ray
    import torch

    root = Path(args.model_dir or tempfile.mkdtemp(prefix="hiwar-bench-judge-"))
    model = build_model(args, root)
    rows = items(args.rows)
    print(f"load average before: {load()} ({os.cpu_count()} CPUs)")
    print(
        f"judge: random GPT-2 {args.layers} layers x {args.hidden}; {args.rows} conversations, rubric prompt, "
        f"{args.max_tokens} new tokens, batch {args.batch_size}, torch {torch.__version__}"
    )
    torch.set_num_threads(1)
    d_s = direct(rows, judge_cfg(model, args))
    print(f"direct (1 thread):   {args.rows / d_s:7.2f} judgments/s ({d_s:.1f} s)")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    times = {}
    for actors in (1, 2):
        p_s, first_s = pipeline(rows, judge_cfg(model, args, actors), root / f"work-{actors}-{time.time_ns()}")
        times[actors] = p_s
        label = f"pipeline ({actors} actor{'s' if actors > 1 else ' '}):"
        print(
            f"{label} {args.rows / p_s:7.2f} judgments/s ({p_s:.1f} s); first shard written after {first_s:.1f} s "
            f"(start-up share at most {first_s / p_s:.0%})"
        )
    ray.shutdown()
    d2_s = direct(rows, judge_cfg(model, args))
    print(f"direct again:        {args.rows / d2_s:7.2f} judgments/s ({d2_s:.1f} s); drift {d2_s / d_s - 1:+.1%}")
    base = (d_s + d2_s) / 2
    for actors, p_s in times.items():
        print(f"ratio pipeline/direct, {actors} actor(s): {base / p_s:.2f} (end to end, start-up included)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
