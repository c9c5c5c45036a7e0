"""Shared fixtures: offline Hugging Face, tiny local models, one local Ray cluster per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing may reach the Hugging Face Hub in tests: fail at once instead of after a 48 s timeout.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

# Ray Data's progress bars fill CI logs without telling a test anything.
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer GPT-2 with a BPE tokenizer trained on hiwar's Arabic text (and hiwar's chat template)."""
    from hiwar.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Path:
    """A random 2-layer Llama sharing the GPT-2 fixture's tokenizer."""
    from hiwar.tiny_models import TinySpec, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", TinySpec(arch="llama"), tokenizer_dir=tiny_gpt2)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Path:
    """A random 1-layer BERT encoder with the tiny models' tokenizer (RAVEN's code path, no hub)."""
    from hiwar.evaluation.raven.tiny_encoder import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("encoder") / "bert", tiny_gpt2)


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray cluster for the whole session (4 logical CPUs so Ray Data and Ray Train never starve).
    Its workers log every model load (``hiwar.models.loader.LOAD_LOG_ENV``), so tests can count them."""
    import os

    import ray

    from hiwar.models.loader import LOAD_LOG_ENV

    # Set before Ray starts: its workers inherit the environment of the process that started it.
    os.environ.setdefault(LOAD_LOG_ENV, str(tmp_path_factory.mktemp("model-loads") / "loads.tsv"))
    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=False, namespace="hiwar-tests", log_to_driver=False)
    yield ray
    ray.shutdown()
