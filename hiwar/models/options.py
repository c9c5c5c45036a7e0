"""How a model loads: the config keys every model entry shares (generation's engine, training's and evaluation's
model lists). Kept apart from the loader so config modules import it without pulling in transformers."""

from __future__ import annotations

from pydantic import Field

from hiwar.section import Section


class LoadOptions(Section):
    """Loading keys shared by every model entry; :mod:`hiwar.models.loader` is the one place that reads them."""

    trust_remote_code: bool = Field(
        False, description="Run the model's own code from the hub; off unless asked for (hiwar ports Jais/AraGPT2)."
    )
    revision: str | None = Field(None, description="Hub revision to pin (branch, tag or commit); null: the default.")
    eos_token: str | None = Field(
        None,
        description="End-of-sequence token, for tokenizers that name none (ArabianGPT's AraNizer: '<EOS>'); "
        "it must be in the tokenizer's vocabulary.",
    )
    pad_token: str | None = Field(
        None, description="Padding token (must be in the vocabulary); null: the tokenizer's own, else its EOS."
    )
    allow_weight_mismatch: bool = Field(
        False,
        description="Load even when the checkpoint's weights do not match the model class (missing, unexpected "
        "or differently shaped weights). Off: such a load is an error naming the weights.",
    )
