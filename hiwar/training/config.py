"""The ``training`` config section (owned by the training stage; see hiwar/training/)."""

from __future__ import annotations

from pydantic import Field

from hiwar.section import Section


class TrainingConfig(Section):
    """How models are fine-tuned."""

    model: str = Field("", description="Hub id or local folder of the base model.")
    trust_remote_code: bool = Field(False, description="Off unless asked for.")
    output_dir: str | None = Field(None, description="Model folder (default: <run_dir>/model).")
