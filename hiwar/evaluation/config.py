"""The ``evaluation`` config section (owned by the evaluation stage; see hiwar/evaluation/)."""

from __future__ import annotations

from pydantic import Field

from hiwar.section import Section


class EvaluationConfig(Section):
    """Which models are scored, on what, and how."""

    models: list[str] = Field(default_factory=list, description="Hub ids or local folders to evaluate.")
    output_dir: str | None = Field(None, description="Report folder (default: <run_dir>/evaluation).")
