"""Generation fixtures: a tiny model taught to write known transcripts, and run configs around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.generation.teach import grid_overrides


@pytest.fixture(scope="session")
def taught_model(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Path:
    """A 2-layer GPT-2 (hidden 128) fine-tuned so greedy decoding writes the teach module's transcripts."""
    from hiwar.tiny_models import TinySpec, build_tiny_model
    from tests.generation.teach import teach

    root = tmp_path_factory.mktemp("taught")
    base = build_tiny_model(root / "base", TinySpec(hidden=128, heads=4, max_positions=1024), tokenizer_dir=tiny_gpt2)
    return teach(base, root / "model")


def run_overrides(run_dir: Path, model: Path | str, *extra: str) -> list[str]:
    """``--set`` overrides for a small greedy run over the taught grid."""
    return [
        f"run_dir={run_dir}",
        "cluster.include_dashboard=false",
        f"generation.model={model}",
        *grid_overrides(),
        "generation.sampling.temperature=0",
        "generation.sampling.repetition_penalty=1.0",
        "generation.sampling.max_tokens=300",
        "generation.shard_size=2",
        "generation.batch_size=2",
        "generation.splits.train=0.5",
        "generation.splits.validation=0.5",
        "generation.splits.test=0.0",
        *extra,
    ]
