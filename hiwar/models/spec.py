"""One model entry of a config list (``training.models``, ``evaluation.models``): a model, its short name and how it
loads. Kept on a low floor with the loading keys, so both stages' sections import it without cycles."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, model_validator

from hiwar.models.options import LoadOptions

if TYPE_CHECKING:
    from hiwar.models.loader import ModelRef

# Keys only a model to fine-tune has; an evaluation entry that sets one is an error, not silently ignored.
TRAINING_KEYS = ("output_dir", "overrides")


def default_name(model: str) -> str:
    """A readable, filesystem-safe name for a model folder or hub id (``org/model`` -> ``org--model``)."""
    text = model.rstrip("/").replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    tail = "--".join(parts[-2:]) if parts else "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tail)


class ModelSpec(LoadOptions):
    """A model in a list: a base model to fine-tune, or a model under evaluation."""

    name: str = Field(
        "", description="Short name: output folder, Ray run and report name (default: derived from the model)."
    )
    model: str = Field(
        ...,
        min_length=1,
        validation_alias=AliasChoices("model", "path"),
        description="Hub id or local folder (e.g. <run_dir>/models/aragpt2). Also read as 'path'.",
    )
    output_dir: str | None = Field(
        None, description="training only: the model folder (default: <run_dir>/models/<name>)."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="training only: training keys for this model alone, e.g. {learning_rate: 2.0e-5, fsdp: true}.",
    )

    @model_validator(mode="after")
    def _default_name(self) -> ModelSpec:
        if not self.name:
            self.name = default_name(self.model)
        return self

    def training_keys_set(self) -> list[str]:
        """The training-only keys this entry sets (given in its config, even when empty)."""
        return [key for key in TRAINING_KEYS if key in self.model_fields_set]

    def ref(self, where: str) -> ModelRef:
        """This model for :mod:`hiwar.models.loader`; ``where`` names its list for messages, e.g.
        ``training.models[0]`` (the name is added)."""
        from hiwar.models.loader import model_ref

        return model_ref(self.model, self, f"{where} ({self.name})")
