"""Training throughput: ``hiwar train`` on 2 Ray Train workers vs a plain single-process HF ``Trainer``.

Both runs use the same tiny model, the same prepared sequences (hiwar's seed conversations, repeated), the
same collator, hyperparameters, global batch and step count, and the same total CPU threads (2 workers x N
threads against 1 process x 2N threads). Throughput is real (non-padding) training tokens per second of the
training loop (Hugging Face's ``train_runtime``); the Ray run's end-to-end wall time (Ray start, data prep,
export) is printed beside it. Then the share of padding tokens that batching leaves, without and with packing.

    python benchmarks/bench_training.py                     # ~4 min on 2 cores

The default 90 steps let the per-run fixed costs (the first step's DDP set-up, the checkpoint Ray Train reports
and copies at the end) fade: measured here, 30 steps gave a ratio of 0.87 and 90 steps 0.98.
    python benchmarks/bench_training.py --steps 60 --hidden 256 --layers 6 --threads 2

Targets (issue 4): Ray Train overhead under 10% at equal total CPUs; padding under 5% with packing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=90, help="optimizer steps per run")
    parser.add_argument("--batch", type=int, default=4, help="sequences per Ray worker per step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per Ray worker")
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=4, help="copies of the seed conversations")
    parser.add_argument("--no-packing", action="store_true", help="time unpacked batches instead")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    return parser.parse_args()


def build_inputs(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """A tiny GPT-2 and a dataset folder of the seed conversations repeated ``--repeat`` times."""
    from dataclasses import replace

    from hiwar.assets import load_seed_conversations
    from hiwar.records_io import write_parquet
    from hiwar.tiny_models import TinySpec, build_tiny_model

    spec = TinySpec(layers=args.layers, hidden=args.hidden, heads=max(2, args.hidden // 64), max_positions=1024)
    model = build_tiny_model(work / "model", spec)
    seeds = load_seed_conversations()
    records = [replace(r, id=f"{r.id}-{k}") for k in range(args.repeat) for r in seeds]
    write_parquet(records, work / "dataset" / "data" / "train-00000.parquet")
    return model, work / "dataset"


def run_config(work: Path, model: Path, args: argparse.Namespace) -> object:
    from hiwar.config import RunConfig

    return RunConfig.model_validate(
        {
            "run_dir": str(work / "run"),
            "cluster": {"num_cpus": 4, "include_dashboard": False, "log_to_driver": False},
            "training": {
                "models": [{"name": "bench", "model": str(model)}],
                "max_seq_len": args.max_seq_len,
                "packing": not args.no_packing,
                "max_steps": args.steps,
                "save_steps": args.steps,
                "logging_steps": args.steps,
                "validation_split": None,
                "per_device_train_batch_size": args.batch,
                "num_workers": 2,
                "resources_per_worker": {"CPU": 1.0},
                "torch_threads": args.threads,
            },
        }
    )


def plain_trainer(config: object, dataset: Path, threads: int) -> dict[str, float]:
    """One process, ``threads`` torch threads, global batch = 2 workers' batches, no Ray."""
    import torch

    from hiwar.dataset_layout import read_split
    from hiwar.training.collate import SFTCollator
    from hiwar.training.data import prepare_split
    from hiwar.training.run import _prepare_tokenizer
    from hiwar.training.worker import SequenceDataset, _sft_trainer_class, load_model, training_arguments

    torch.set_num_threads(threads)
    spec = config.training.models[0]
    settings = config.training.for_model(spec).model_copy(
        update={"per_device_train_batch_size": 2 * config.training.per_device_train_batch_size}
    )
    tokenizer, _ = _prepare_tokenizer(spec, 0)
    prep = prepare_split(
        tokenizer,
        [c.messages for c in read_split(dataset, "train")],
        settings.max_seq_len,
        settings.mask,
        settings.packing,
    )
    collator = SFTCollator(pad_id=tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as out:
        args = training_arguments(settings, config.seed, out, has_eval=False, precision="fp32")
        trainer = _sft_trainer_class()(
            model=load_model(spec, settings, "fp32"),
            args=args,
            train_dataset=SequenceDataset(prep.sequences),
            data_collator=collator,
        )
        output = trainer.train()
    runtime = float(output.metrics["train_runtime"])
    return {
        "train_runtime_s": runtime,
        "train_tokens": collator.real_tokens,
        "tokens_per_s": collator.real_tokens / runtime,
        "padding_share": collator.padding_share,
    }


def ray_train(config: object, dataset: Path) -> dict[str, float]:
    """``run_train`` with 2 Ray Train workers; its metrics.json plus the end-to-end wall time."""
    from hiwar.training.run import run_train

    start = time.perf_counter()
    [out] = run_train(config, dataset=str(dataset))
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    return {**metrics, "wall_s": wall}


def padding_shares(config: object, dataset: Path, batch: int, seed: int = 0) -> dict[str, float]:
    """Padding share of batches of ``batch`` sequences: shuffled (HF's random sampler) without and with packing,
    and with packing in length-grouped batches (HF's ``LengthGroupedSampler``, what ``group_by_length`` uses)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from hiwar.dataset_layout import read_split
    from hiwar.training.collate import SFTCollator
    from hiwar.training.data import prepare_split
    from hiwar.training.run import _prepare_tokenizer

    spec = config.training.models[0]
    tokenizer, _ = _prepare_tokenizer(spec, 0)
    convs = [c.messages for c in read_split(dataset, "train")]
    shares = {}
    for name, packing, grouped in (
        ("no_packing", False, False),
        ("packing", True, False),
        ("packing_grouped", True, True),
    ):
        sequences = prepare_split(tokenizer, convs, config.training.max_seq_len, packing=packing).sequences
        if grouped:
            lengths = [len(s["input_ids"]) for s in sequences]
            generator = torch.Generator().manual_seed(seed)
            order = list(LengthGroupedSampler(batch, lengths=lengths, generator=generator))
        else:
            order = list(range(len(sequences)))
            random.Random(seed).shuffle(order)
        collator = SFTCollator(pad_id=tokenizer.pad_token_id)
        for start in range(0, len(order), batch):
            collator([sequences[i] for i in order[start : start + batch]])
        shares[name] = collator.padding_share
    return shares


def main() -> int:
    args = parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="hiwar-bench-training-"))
    model, dataset = build_inputs(work, args)
    config = run_config(work, model, args)
    print(
        f"work folder: {work}; {args.steps} steps, global batch {2 * args.batch} sequences, "
        f"packing={'off' if args.no_packing else 'on'}, "
        f"2 x {args.threads} threads vs 1 x {2 * args.threads}"
    )
    base = plain_trainer(config, dataset, threads=2 * args.threads)
    ray = ray_train(config, dataset)
    pads = padding_shares(config, dataset, batch=2 * args.batch)
    ratio = ray["tokens_per_s"] / base["tokens_per_s"]
    results = {"plain_trainer": base, "ray_train": ray, "padding": pads, "ray_over_plain_tokens_per_s": ratio}
    print(
        f"plain HF Trainer, 1 process x {2 * args.threads} threads: {base['tokens_per_s']:.0f} tokens/s "
        f"({base['train_tokens']} tokens in {base['train_runtime_s']:.1f} s)"
    )
    print(
        f"hiwar train, 2 Ray Train workers x {args.threads}: {ray['tokens_per_s']:.0f} tokens/s "
        f"({ray['train_tokens']} tokens in {ray['train_runtime_s']:.1f} s; "
        f"wall {ray['wall_s']:.1f} s with Ray start, data prep and export)"
    )
    print(f"ratio Ray Train / plain: {ratio:.2f} (overhead {100 * (1 - ratio):+.1f}%; target < 10%)")
    print(
        f"padding share: {100 * pads['no_packing']:.1f}% without packing, "
        f"{100 * pads['packing']:.1f}% with packing in shuffled batches, "
        f"{100 * pads['packing_grouped']:.1f}% with packing in length-grouped batches (hiwar's default with "
        f"packing; {100 * ray['padding_share']:.1f}% counted in the Ray run itself); "
        f"ratio grouped/unpacked {pads['packing_grouped'] / max(pads['no_packing'], 1e-12):.3f}; target < 5%"
    )
    (work / "bench_training.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
