"""The base of every config section, kept apart so that section modules import it without cycles."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys and type coercion are errors, not silently accepted."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)
