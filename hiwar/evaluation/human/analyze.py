"""``hiwar human-eval analyze``: validate filled sheets, then agreement and quality per criterion and model.

<report>/report.md, report.json   agreement (kappa x3 with bootstrap CIs, rho, exact and within-one
                                  agreement, alpha for 3+ raters) and mean scores, per criterion and model
<report>/scores.csv               per-item scores, unblinded (model, item id, topic, every rater, mean)
<report>/*.png                    score distributions per model; rater-vs-rater confusion matrices
<report>/config.resolved.yaml
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hiwar.config import RunConfig, save_resolved
from hiwar.errors import HiwarError
from hiwar.evaluation.human.export import KEY_NAME, SHEETS_DIR
from hiwar.evaluation.human.stats import describe, ordinal_alpha, pair_stats
from hiwar.evaluation.human.validate import Ratings, SheetProblemsError, validate_sheets
from hiwar.lineage import code_version, fingerprint

log = logging.getLogger(__name__)
ALL = "all models"
KEY_FIELDS = ("export_id", "raters", "criteria", "scale", "items")


def locate(sheets_dir: str | Path, key_path: str | Path | None = None) -> tuple[Path, Path]:
    """The folder of filled sheets and the key: ``sheets_dir`` may be the export folder or its ``sheets/``.

    Raises:
        HiwarError: no such folder, or no key beside it (pass ``key_path``).
    """
    folder = Path(sheets_dir)
    if not folder.is_dir():
        raise HiwarError(f"{folder}: no such folder of rating sheets")
    sheets = folder / SHEETS_DIR if (folder / SHEETS_DIR).is_dir() and not any(folder.glob("rater-*")) else folder
    if key_path is not None:
        key = Path(key_path)
    else:
        key = next((p for p in (folder / KEY_NAME, folder.parent / KEY_NAME) if p.is_file()), folder / KEY_NAME)
    if not key.is_file():
        raise HiwarError(f"{key}: key file not found (it is written by 'hiwar human-eval export'; pass --key)")
    return sheets, key


def load_key(path: Path) -> dict[str, Any]:
    """Read and check the export's key."""
    from hiwar.textfiles import read_text

    try:
        key = json.loads(read_text(path, error=HiwarError))
    except json.JSONDecodeError as err:
        raise HiwarError(f"{path}: not a readable key file ({err})") from err
    missing = [f for f in KEY_FIELDS if not isinstance(key, dict) or f not in key]
    if missing:
        raise HiwarError(f"{path}: not a human-eval key (missing {', '.join(missing)})")
    return key


def criterion_stats(
    matrix: np.ndarray,
    raters: list[str],
    scale: list[int],
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    min_interval_n: int = 2,
) -> dict[str, Any]:
    """Per-rater and rater-average descriptives, every pair's agreement and (3+ raters) ordinal alpha."""
    scored = np.isfinite(matrix)
    average = np.array([np.mean(col[np.isfinite(col)]) for col in matrix.T if np.isfinite(col).any()])
    out: dict[str, Any] = {
        "n_items": int(scored.any(axis=0).sum()),
        "raters": {r: describe(matrix[i][scored[i]]) for i, r in enumerate(raters)},
        "average": describe(average),
        "pairs": [],
    }
    for (i, r1), (j, r2) in itertools.combinations(enumerate(raters), 2):
        both = scored[i] & scored[j]
        pair = pair_stats(matrix[i][both], matrix[j][both], (r1, r2), scale, n_boot, confidence, rng, min_interval_n)
        out["pairs"].append(pair)
    if len(raters) > 2:
        out["krippendorff_alpha_ordinal"] = ordinal_alpha(matrix, scale)
    return out


def analyse(
    key: dict[str, Any], ratings: Ratings, n_boot: int, confidence: float, seed: int, min_interval_n: int = 2
) -> dict[str, Any]:
    """Statistics for all items together (``"all"``) and for each model, per criterion (kappa intervals only from
    ``min_interval_n`` items on)."""
    scale = list(range(key["scale"]["min"], key["scale"]["max"] + 1))
    raters = [r for r in key["raters"] if r in ratings.scores]
    models = sorted({v["model"] for v in key["items"].values()})
    groups = {ALL: sorted(key["items"])}
    groups.update({m: sorted(c for c, v in key["items"].items() if v["model"] == m) for m in models})
    rng = np.random.default_rng(seed)
    return {
        group: {
            crit: criterion_stats(
                ratings.matrix(raters, codes, crit), raters, scale, n_boot, confidence, rng, min_interval_n
            )
            for crit in key["criteria"]
        }
        for group, codes in groups.items()
    }


def score_rows(key: dict[str, Any], ratings: Ratings) -> list[dict[str, Any]]:
    """One unblinded row per item: model, item id, topic, each rater's score and the mean, per criterion."""
    rows = []
    for code in sorted(key["items"], key=lambda c: (key["items"][c]["model"], key["items"][c]["item_id"])):
        meta = key["items"][code]
        row: dict[str, Any] = {
            "item": code,
            "model": meta["model"],
            "item_id": meta["item_id"],
            "topic": meta["topic"],
        }
        for crit in key["criteria"]:
            values = [ratings.scores.get(r, {}).get(code, {}).get(crit) for r in key["raters"]]
            row.update({f"{crit}.{r}": v for r, v in zip(key["raters"], values, strict=True)})
            present = [v for v in values if v is not None]
            row[f"{crit}.mean"] = float(np.mean(present)) if present else None
        rows.append(row)
    return rows


def run_analyze(
    config: RunConfig,
    sheets_dir: str,
    allow_partial: bool = False,
    *,
    key_path: str | None = None,
    out_dir: str | None = None,
    judge_path: str | None = None,
) -> Path:
    """Validate the filled sheets against the key, compute the statistics and write the report folder.

    Args:
        config: the run config (``human_eval``: bootstrap samples, confidence, seed, plots, allow_partial).
        sheets_dir: the export folder, its ``sheets/`` folder, or any folder of filled ``rater-N`` sheets.
        allow_partial: analyse the valid scores even when some cells, rows or sheets have problems.
        key_path: the export's ``key.json`` (default: in ``sheets_dir`` or its parent).
        out_dir: report folder (default: ``report/`` beside the key).
        judge_path: a ``hiwar judge`` output folder of this export's items: adds the judge's agreement with each
            rater and with their mean, beside the raters' own (:mod:`hiwar.judge.calibration`).

    Raises:
        SheetProblemsError: problems in the sheets (all listed) and partial analysis not asked for.
        HiwarError: no key, or fewer than two raters with valid scores.
    """
    from hiwar.evaluation.human.plots import write_plots
    from hiwar.evaluation.human.report import write_report
    from hiwar.outdirs import check_output_dirs

    cfg = config.human_eval
    sheets, key_file = locate(sheets_dir, key_path)
    out = Path(out_dir) if out_dir else key_file.parent / "report"
    check_output_dirs([("--out", out)])
    key = load_key(key_file)
    ratings = validate_sheets(sheets, key)
    partial = allow_partial or cfg.allow_partial
    if ratings.problems and not partial:
        raise SheetProblemsError(sheets, ratings.problems)
    for problem in ratings.problems:
        log.warning("skipped: %s", problem)
    if sum(1 for s in ratings.scores.values() if s) < 2:
        raise HiwarError(f"{sheets}: fewer than two raters have valid scores; nothing to compare")
    seed = cfg.seed if cfg.seed is not None else config.seed
    report = {
        "export_id": key["export_id"],
        "key": str(key_file),
        "sheets": ratings.files,
        "criteria": key["criteria"],
        "scale": key["scale"],
        "raters": key["raters"],
        "models": sorted({v["model"] for v in key["items"].values()}),
        "items": len(key["items"]),
        "bootstrap": {
            "samples": cfg.bootstrap_samples,
            "confidence": cfg.confidence,
            "seed": seed,
            "min_interval_n": cfg.min_interval_n,
        },
        "partial": bool(ratings.problems),
        "problems": ratings.problems,
        "groups": analyse(key, ratings, cfg.bootstrap_samples, cfg.confidence, seed, cfg.min_interval_n),
        "lineage": {
            "code": code_version(),
            "sheets_fingerprint": fingerprint(sorted(ratings.files.values())),
        },
    }
    rows = score_rows(key, ratings)
    if judge_path:
        from hiwar.judge.calibration import add_judge_columns, calibrate, load_judge_scores

        judge, info = load_judge_scores(judge_path, key)
        report["judge_calibration"] = {
            **info,
            **calibrate(key, ratings, judge, cfg.bootstrap_samples, cfg.confidence, seed),
        }
        add_judge_columns(rows, judge, key["criteria"])
    plots = write_plots(key, ratings, out) if cfg.plots else []
    write_report(report, rows, out, plots)
    if judge_path:
        from hiwar.judge.report import calibration_markdown

        with (out / "report.md").open("a", encoding="utf-8") as fh:
            fh.write("\n" + calibration_markdown(report["judge_calibration"]))
    save_resolved(config, out)
    log.info("human-eval report written to %s", out)
    return out
