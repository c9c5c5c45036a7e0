"""The run's one-page summary (``<run_dir>/REPORT.md``): what each stage made, and where to look next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiwar.config import RunConfig
from hiwar.lineage import code_text, code_version

if TYPE_CHECKING:
    from hiwar.pipeline import RunPaths


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


def _dataset_section(paths: RunPaths) -> list[str]:
    stats = _read_json(paths.dataset / "stats.json")
    lines = ["## Dataset", f"Folder: `{paths.dataset}` (card: `{paths.dataset / 'README.md'}`)", ""]
    if stats is None:
        return lines + ["No stats.json (generation did not finish)."]
    splits = stats.get("splits") or {}
    return (
        lines
        + _scalars(stats.get("counts") or {})
        + _scalars(stats, ("acceptance_rate", "generator"))
        + [f"- split {name}: {count}" for name, count in splits.items() if isinstance(count, int)]
    )


def _models_section(config: RunConfig, paths: RunPaths) -> list[str]:
    lines = ["## Fine-tuned models"]
    if not config.training.models:
        return lines + ["None (training.models is empty)."]
    for spec in config.training.models:
        folder = Path(spec.output_dir) if spec.output_dir else paths.models / spec.name
        lines.append(f"### {spec.name}: `{spec.model}` -> `{folder}`")
        metrics = _read_json(folder / "metrics.json") or _read_json(folder / "final_metrics.json")
        lines.extend(_scalars(metrics) if metrics else ["No final metrics (training did not finish)."])
    return lines


def _evaluation_section(paths: RunPaths) -> list[str]:
    report = paths.evaluation / "report.md"
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


def write_run_report(config: RunConfig, paths: RunPaths) -> Path:
    """Write ``REPORT.md`` under the run folder from what the stages left; return its path."""
    lines = [
        "# hiwar run report",
        "",
        f"Run folder: `{paths.run_dir}`; config: `{paths.run_dir / 'config.resolved.yaml'}`; "
        f"code: {code_text(code_version())}",
        "",
        *_dataset_section(paths),
        "",
        *_models_section(config, paths),
        "",
        *_evaluation_section(paths),
        "",
        "## Human evaluation",
        f"Blind rating sheets: `{paths.human_eval}`. After the raters fill them in: "
        f"`hiwar human-eval analyze {paths.human_eval}`",
        "",
        "## Lineage",
        f"Stage manifests (inputs' fingerprints, seeds, code version, times, logs): `{paths.manifests}`",
    ]
    paths.report.parent.mkdir(parents=True, exist_ok=True)
    paths.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths.report
