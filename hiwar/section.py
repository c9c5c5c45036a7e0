"""The base of every config section, kept apart so that section modules import it without cycles."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def non_finite(value: Any, path: str = "") -> str | None:
    """Where in a free-form value (dicts and lists) a non-finite number (inf, nan) sits, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite(item, f"{path}[{key!r}]" if isinstance(key, int) else f"{path}.{key}".lstrip("."))
        if found:
            return found
    return None


class Section(BaseModel):
    """A config section: unknown keys, type coercion and non-finite numbers are errors, not silently accepted.

    ``.inf`` and ``.nan`` are valid YAML floats, but no hiwar setting means anything with them (a learning rate
    of inf trains an all-NaN model): typed fields reject them (``allow_inf_nan``), free-form ones (engine
    arguments, per-model overrides) are searched for them.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            where = non_finite(value)
            if where:
                raise ValueError(f"{where}: not a finite number (inf and nan mean nothing here)")
        return value
