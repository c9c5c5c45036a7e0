"""Fixtures of the evaluation tests: a tiny local sentence encoder and small conversation sets."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Path:
    """A random 1-layer BERT encoder with the tiny models' tokenizer (RAVEN's code path, no hub)."""
    from hiwar.evaluation.tiny_encoder import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("encoder") / "bert", tiny_gpt2)
