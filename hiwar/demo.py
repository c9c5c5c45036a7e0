"""``hiwar demo``: the whole blueprint in miniature, on this machine's CPU, with no download.

1. Build a byte-level BPE tokenizer on hiwar's Arabic text and three random tiny models: a teacher (Llama shape), a
   student (GPT-2 shape) and a sentence encoder for RAVEN (while Ray starts).
2. Train the teacher with ``hiwar train`` (in Ray Train's local mode) on the bundled hand-written conversations, each
   turned into a generation request (the v1 prompt for its topic and country) answered by its transcript, so that
   the teacher writes transcripts in the format the generation parser expects. It plays Jais-13b-chat.
3. Run ``hiwar pipeline`` on a config the demo writes (``<out>/demo.yaml``): generate a few hundred conversations
   with the teacher through Ray Data, validate and dedup them, split them, fine-tune the student with Ray Train,
   evaluate the student and the teacher (perplexity, bits per byte, RAVEN), export blind
   human-evaluation sheets and write the run report.

Rerunning the same command resumes: finished models, stages and shards are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hiwar.atomic import write_text
from hiwar.config import RunConfig, load_config
from hiwar.record import Conversation, Generator
from hiwar.run_layout import RunLayout

log = logging.getLogger(__name__)

SEED_SPLIT = 8  # hand-written conversations held out as the teacher's validation set
TURNS = 2  # exchanges per demo conversation: short transcripts are what a tiny teacher learns in a few minutes
# Rows per HF generate call, for the teacher's generation and RAVEN's replies: a tiny model's forward pass costs little
# more for 32 rows than for 8, so wider micro-batches pay here (64 prompts, 1 thread: 17.4 s at 8 rows, 12.7 s at
# 32; the same tokens, as each row has its own seed). The engine's default stays 8, where a large model's KV cache
# must fit.
MICRO_BATCH = 32


def teacher_example(conv: Conversation, prompt_version: str = "v1", max_turns: int | None = None) -> Conversation:
    """A hand-written conversation as a generation request (system + instruction) answered by its transcript.

    With ``max_turns``, only the first exchanges are kept, and the instruction asks for that many.
    """
    from hiwar.generation.grid import GridRow
    from hiwar.generation.prompting import instruction_messages
    from hiwar.prompts import load_prompt

    prompt = load_prompt(prompt_version)
    messages = [m for m in conv.messages if m["role"] in ("user", "assistant")][: 2 * max_turns if max_turns else None]
    n_turns = sum(1 for m in messages if m["role"] == "assistant")
    row = GridRow(id=conv.id, topic=conv.topic, country=conv.country, sample_index=0, seed=0, n_turns=n_turns)
    marker = {"user": prompt.user_marker, "assistant": prompt.assistant_marker}
    transcript = "\n".join(f"{marker[m['role']]} {m['content']}" for m in messages)
    return Conversation(
        id=f"teacher-{conv.id}",
        messages=[*instruction_messages(row, prompt_version), {"role": "assistant", "content": transcript}],
        topic=conv.topic,
        country=conv.country,
        generator=Generator(model="human", engine="handwritten"),
        created_at=conv.created_at,  # fixed: a rerun writes the same dataset, so the trained teacher stays current
        metadata={"source": conv.id},
    )


def write_teacher_dataset(out_dir: Path) -> Path:
    """The teacher's SFT data as a hiwar dataset folder (train and validation splits)."""
    from hiwar.assets import load_seed_conversations
    from hiwar.records_io import write_parquet

    examples = [teacher_example(c, max_turns=TURNS) for c in load_seed_conversations()]
    write_parquet(examples[SEED_SPLIT:], out_dir / "data" / "train-00000.parquet")
    write_parquet(examples[:SEED_SPLIT], out_dir / "data" / "validation-00000.parquet")
    return out_dir


def model_paths(models_dir: Path) -> dict[str, Path]:
    """Where :func:`build_models` puts the tiny models."""
    return {name: models_dir / name for name in ("teacher-base", "student-base", "encoder")}


def build_models(models_dir: Path) -> dict[str, Path]:
    """Tokenizer, teacher base, student base and encoder, built once (reused when already complete)."""
    from hiwar.evaluation.raven.tiny_encoder import build_tiny_encoder
    from hiwar.tiny_models import TinySpec, build_tiny_model

    paths = model_paths(models_dir)
    # Llama shape for the teacher: with rotary positions a tiny model learns turn alternation (which role marker
    # comes next) several times faster than GPT-2's learned absolute positions did here.
    teacher = build_tiny_model(
        paths["teacher-base"], TinySpec(arch="llama", layers=2, hidden=128, heads=4, max_positions=1024)
    )
    student = build_tiny_model(
        paths["student-base"],
        TinySpec(arch="gpt2", layers=2, hidden=64, heads=2, max_positions=1024, seed=1),
        tokenizer_dir=teacher,
    )
    encoder = build_tiny_encoder(paths["encoder"], tokenizer_dir=teacher)
    return {"teacher-base": teacher, "student-base": student, "encoder": encoder}


def demo_config(out: Path, models: dict[str, Path], conversations: int, workers: int) -> dict[str, Any]:
    """The run config of the demo, as YAML data (written to ``<out>/demo.yaml`` for the user to read and rerun)."""
    train_common = {
        "num_workers": workers,
        "resources_per_worker": {"CPU": 1.0},
        "max_seq_len": 1024,
        "per_device_train_batch_size": 8,
        "learning_rate": 3.0e-3,
        "warmup_steps": 0.05,
        "lr_scheduler_type": "constant_with_warmup",
        "logging_steps": 10,
        "eval_steps": None,
    }
    return {
        "run_dir": str(out),
        "seed": 0,
        "cluster": {"include_dashboard": True, "dashboard_host": "127.0.0.1"},
        "generation": {
            "engine": "transformers",
            "model": str(out / "models" / "teacher"),
            "actors": 1,
            # One engine with a torch thread per training worker: the stage has those cores to itself. On two cores
            # one actor of 2 threads generated the 300 rows in 20.0 s against 23.6 s with 1 (the same outputs: seeds
            # are per row); two 1-thread actors gained nothing (two start-ups). It asks Ray for one CPU only, so the
            # light parse-and-validate tasks keep one beside it and shards are written as they fill (asking for 2 of
            # 2 CPUs held them all back to the end of the stage, where a kill would lose the lot).
            "num_cpus": 1.0,
            "torch_threads": workers,
            "batch_size": 64,
            "micro_batch_size": MICRO_BATCH,
            # No repetition penalty: a tiny model's role markers are single tokens, and penalising them breaks turns.
            # Two exchanges take at most ~200 tokens: a longer output is a runaway (rejected as truncated), and a batch
            # decodes until its longest row stops, so a lower cap saves time without losing conversations.
            "sampling": {"temperature": 0.7, "top_p": 0.95, "repetition_penalty": 1.0, "max_tokens": 208},
            "grid": {"target_total": conversations, "min_turns": TURNS, "max_turns": TURNS},
            "splits": {"train": 0.8, "validation": 0.1, "test": 0.1},
        },
        "training": {
            **train_common,
            "models": [{"name": "student", "model": str(models["student-base"])}],
            "max_steps": 40,
            "save_steps": 20,  # a checkpoint halfway: a demo killed in training resumes from it
        },
        "evaluation": {
            # The fine-tuned student comes from the training stage; the teacher plays the instruction-tuned
            # baseline. (Add student-base here to see what fine-tuning changed; it costs another minute.)
            "models": [{"name": "teacher", "path": str(out / "models" / "teacher")}],
            "raven": {
                "encoder": str(models["encoder"]),
                "max_conversations": 20,
                "max_turns": 2,
                "bootstrap_samples": 200,
                "engine": {
                    "micro_batch_size": MICRO_BATCH,
                    "sampling": {"temperature": 0.0, "max_tokens": 64, "repetition_penalty": 1.0, "top_p": 1.0},
                },
            },
        },
        "human_eval": {"samples_per_model": 10},
        # The teacher is a fixture, not the subject: it trains in Ray Train's local mode (num_workers 0, in this
        # process, 2 threads), which skips ~35 s of worker start-up. 150 steps x 8 transcripts (14 passes over
        # the 85 hand-written ones) teach the turn format (about a quarter of its generations pass validation)
        # without memorising them (300 steps x 16 did: a quarter of the outputs were then exact duplicates).
        "_teacher": {
            **train_common,
            "num_workers": 0,
            "resources_per_worker": {"CPU": float(workers)},
            "max_steps": 150,
        },
    }


def train_teacher(out: Path, models: dict[str, Path], data: dict[str, Any]) -> Path:
    """Fine-tune the teacher on the hand-written transcripts with ``hiwar train`` (Ray Train)."""
    from hiwar.training.run import run_train

    teacher_data = write_teacher_dataset(out / "teacher_data")
    config = RunConfig.model_validate(
        {
            "run_dir": str(out),
            "seed": data["seed"],
            "cluster": data["cluster"],
            "training": {**data["_teacher"], "models": [{"name": "teacher", "model": str(models["teacher-base"])}]},
        }
    )
    return run_train(config, dataset=str(teacher_data))[0]


def run_demo(
    out_dir: str | Path = "runs/demo", conversations: int = 300, workers: int = 2, echo: Callable[[str], None] = print
) -> Any:
    """Run the miniature blueprint end to end; return the pipeline result."""
    from hiwar.cluster.session import connect_during, shutdown
    from hiwar.outdirs import check_output_dirs
    from hiwar.pipeline import run_pipeline

    out = Path(out_dir).resolve()
    check_output_dirs([("--out", out)])
    echo(f"hiwar demo: everything lands in {out}")
    models = model_paths(out / "models")
    data = demo_config(out, models, conversations, workers)
    teacher_settings = data.pop("_teacher")
    config_path = out / "demo.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(config_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    config = load_config(config_path)
    data["_teacher"] = teacher_settings
    # Building the models (mostly importing torch and transformers, ~10 s here) while Ray starts; the generate
    # stage's engines get warm workers, warming while the teacher trains. A rerun after generation finished asks
    # for none: they would only take CPU from the stages left.
    generated = RunLayout(config).manifest("generate").exists()
    warm = 0 if generated else config.generation.warm_actors()
    session, _ = connect_during(config.cluster, lambda: build_models(out / "models"), warm=warm)
    echo(f"Ray dashboard: {session.dashboard_url or 'off'}")
    try:
        echo("1/2 training the teacher on the hand-written conversations (Ray Train, local mode)...")
        train_teacher(out, models, data)
        echo(f"2/2 hiwar pipeline -c {config_path}")
        result = run_pipeline(config, on_stage=lambda o: echo(f"  {o.stage:<11} {o.status} ({o.seconds:.0f} s)"))
    finally:
        shutdown(session)
    echo(f"report: {out / 'REPORT.md'}")
    return result
