"""The vllm engine's two runners on CPU, end to end: in the pool's own actors against Ray Data LLM's processor.

    python benchmarks/bench_vllm_runner.py                  # 1 and 2 engines, 2 rounds each: ~8 min on 2 cores
    python benchmarks/bench_vllm_runner.py --engines 2 --rounds 3

One local Ray (2 CPUs) for the whole run. Per round and engine count, the same rows (16 chat prompts, 20 new tokens
each, per-row seeds) go through ``generate_texts`` with ``vllm_runner: in_actor`` and then ``ray_data_llm``; each
time is the wall time of building and running the dataset to the last row, so it is mostly the engines' start-up.
The ratio is Ray Data LLM's time over the in-actor time of the same round (above 1: the actor is faster). The
machine is shared: each line carries the 1-minute load average, and the rounds alternate the runners.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

ROWS = 16
RUNNERS = ("in_actor", "ray_data_llm")


def run_once(model: Path, runner: str, engines: int) -> tuple[float, int]:
    """Seconds to the last row and generated tokens, for one runner with ``engines`` engines."""
    import ray.data

    from hiwar.generation.config import EngineConfig
    from hiwar.generation.engines import generate_texts

    cfg = EngineConfig(
        engine="vllm",
        model=str(model),
        dtype="float32",
        max_model_len=256,
        actors=engines,
        batch_size=4,
        vllm_runner=runner,
        sampling={"max_tokens": 20, "temperature": 0.7},
    )
    rows = [
        {"request_id": str(i), "seed": i, "messages": [{"role": "user", "content": f"اكتب جملة عن البحر رقم {i}"}]}
        for i in range(ROWS)
    ]
    start = time.perf_counter()
    out = generate_texts(ray.data.from_items(rows), cfg).take_all()
    seconds = time.perf_counter() - start
    errors = [r["error"] for r in out if r["error"]]
    if len(out) != ROWS or errors:
        raise SystemExit(f"{runner}: {len(out)} rows, errors: {errors[:2]}")
    return seconds, sum(int(r["num_generated_tokens"]) for r in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="1,2", help="engine counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import ray

    from hiwar.generation.config import EngineConfig
    from hiwar.generation.engines.common import check_model
    from hiwar.tiny_models import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "gpt2")
        check_model(
            EngineConfig(engine="vllm", model=str(model), max_model_len=256, sampling={"max_tokens": 20})
        )  # the driver's imports, once
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        print(f"{'engines':>7} {'round':>5} {'in_actor s':>10} {'ray_data_llm s':>14} {'ratio':>6} {'load':>5}")
        for engines in (int(n) for n in args.engines.split(",")):
            for rnd in range(1, args.rounds + 1):
                times = {}
                for runner in RUNNERS:
                    times[runner], _ = run_once(model, runner, engines)
                ratio = times["ray_data_llm"] / times["in_actor"]
                print(
                    f"{engines:>7} {rnd:>5} {times['in_actor']:>10.1f} {times['ray_data_llm']:>14.1f} "
                    f"{ratio:>5.2f}x {os.getloadavg()[0]:>5.2f}",
                    flush=True,
                )
        ray.shutdown()


if __name__ == "__main__":
    main()
