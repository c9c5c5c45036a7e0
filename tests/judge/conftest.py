"""Judge fixtures: a tiny model with room for the judge's prompt, and small judged inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiwar.record import Conversation, Generator


@pytest.fixture(scope="session")
def judge_model(tmp_path_factory: pytest.TempPathFactory, tiny_gpt2: Path) -> Path:
    """The tiny GPT-2 fixture's tokenizer on a random 2-layer GPT-2 with 2048 positions (the rubric prompt is
    about 900 tokens of this tokenizer)."""
    from hiwar.tiny_models import TinySpec, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("judge") / "gpt2", TinySpec(max_positions=2048), tiny_gpt2)


def conversation(conv_id: str, topic: str, last_reply: str, model: str = "gen-model") -> Conversation:
    """A two-exchange Arabic conversation whose last reply is ``last_reply`` (tests put score tags there)."""
    return Conversation(
        id=conv_id,
        topic=topic,
        country="EG",
        generator=Generator(model=model, engine="openai", prompt_version="v1"),
        messages=[
            {"role": "user", "content": "مرحبا، عندي سؤال عن السفر"},
            {"role": "assistant", "content": "أهلا بك، تفضل بسؤالك."},
            {"role": "user", "content": "ما أفضل وقت للزيارة؟"},
            {"role": "assistant", "content": last_reply},
        ],
    )


def write_dataset(folder: Path, convs: list[Conversation], split: str = "test") -> Path:
    """A hiwar dataset folder holding ``convs`` as its ``split``."""
    from hiwar.records_io import write_parquet_shards

    (folder / "data").mkdir(parents=True, exist_ok=True)
    write_parquet_shards(convs, folder / "data", prefix=split, rows_per_shard=1000)
    return folder
