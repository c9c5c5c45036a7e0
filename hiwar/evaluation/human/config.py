"""The ``human_eval`` config section (owned by hiwar/evaluation/human/)."""

from __future__ import annotations

from pydantic import Field

from hiwar.section import Section


class HumanEvalConfig(Section):
    """Blind rating sheets and agreement analysis."""

    raters: int = Field(2, ge=2, description="Number of raters (sheets).")
    output_dir: str | None = Field(None, description="Sheets folder (default: <run_dir>/human_eval).")
