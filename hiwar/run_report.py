"""The run's one-page summary (``<run_dir>/REPORT.md``): what each stage made, and where to look next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hiwar.atomic import write_text
from hiwar.config import RESOLVED_NAME, RunConfig
from hiwar.dataset_layout import STATS_FILE
from hiwar.lineage import code_text, code_version
from hiwar.run_layout import RunLayout


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _scalars(data: dict[str, Any], keys: tuple[str, ...] | None = None) -> list[str]:
    """Top-level numbers and strings of a stats file as ``- key: value`` lines."""
    lines = []
    for key, value in data.items():
        if (keys is None or key in keys) and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            lines.append(f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}")
    return lines


def _dataset_section(layout: RunLayout) -> list[str]:
    stats = _read_json(layout.dataset / STATS_FILE)
    lines = ["## Dataset", f"Folder: `{layout.dataset}` (card: `{layout.dataset / 'README.md'}`)", ""]
    if stats is None:
        return lines + ["No stats.json (generation did not finish)."]
    splits = stats.get("splits") or {}
    return (
        lines
        + _scalars(stats.get("counts") or {})
        + _scalars(stats, ("acceptance_rate", "generator"))
        + [f"- split {name}: {count}" for name, count in splits.items() if isinstance(count, int)]
    )


def _models_section(config: RunConfig, layout: RunLayout) -> list[str]:
    lines = ["## Fine-tuned models"]
    if not config.training.models:
        return lines + ["None (training.models is empty)."]
    for spec in config.training.models:
        folder = layout.model_dir(spec)
        lines.append(f"### {spec.name}: `{spec.model}` -> `{folder}`")
        metrics = _read_json(folder / "metrics.json") or _read_json(folder / "final_metrics.json")
        lines.extend(_scalars(metrics) if metrics else ["No final metrics (training did not finish)."])
    return lines


def _evaluation_section(layout: RunLayout) -> list[str]:
    report = layout.evaluation / "report.md"
    lines = ["## Evaluation", f"Full report: `{report}` (JSON, CSV and plots beside it)", ""]
    if not report.is_file():
        return lines + ["No report (evaluation did not finish)."]
    table: list[str] = []
    for line in report.read_text(encoding="utf-8").splitlines():  # the first table: the cross-model summary
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return lines + (table or ["(see the report)"])


def write_run_report(config: RunConfig, layout: RunLayout) -> Path:
    """Write ``REPORT.md`` under the run folder from what the stages left; return its path."""
    lines = [
        "# hiwar run report",
        "",
        f"Run folder: `{layout.run_dir}`; config: `{layout.run_dir / RESOLVED_NAME}`; "
        f"code: {code_text(code_version())}",
        "",
        *_dataset_section(layout),
        "",
        *_models_section(config, layout),
        "",
        *_evaluation_section(layout),
        "",
        "## Human evaluation",
        f"Blind rating sheets: `{layout.human_eval}`. After the raters fill them in: "
        f"`hiwar human-eval analyze {layout.human_eval}`",
        "",
        "## Lineage",
        f"Stage manifests (each stage's key: the config keys and inputs' fingerprints it was made from; seeds, "
        f"code version, times, logs): `{layout.manifests}`",
    ]
    layout.report.parent.mkdir(parents=True, exist_ok=True)
    write_text(layout.report, "\n".join(lines) + "\n")
    return layout.report
