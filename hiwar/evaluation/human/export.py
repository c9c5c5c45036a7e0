"""``hiwar human-eval export``: sample replies, blind them, and write one sheet per rater plus the key.

<out>/sheets/instructions.md      hand this folder to the raters
<out>/sheets/rater-N.csv|.jsonl   one sheet per rater, items in its own shuffled order
<out>/key.json                    item and system codes -> models; never give it to raters
<out>/config.resolved.yaml
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig, save_resolved
from hiwar.errors import HiwarError
from hiwar.evaluation.human.instructions import write_instructions
from hiwar.evaluation.human.items import RatingItem, load_items
from hiwar.evaluation.human.sample import sample_items
from hiwar.evaluation.human.sheets import has_scores, read_sheet, sheet_name, write_sheet
from hiwar.lineage import code_version, write_json
from hiwar.record import utc_now
from hiwar.run_layout import RunLayout

log = logging.getLogger(__name__)
KEY_NAME = "key.json"
SHEETS_DIR = "sheets"


def export_dir(config: RunConfig, out_dir: str | None = None) -> Path:
    """Where an export goes: ``out_dir``, else the run's human-eval folder (:mod:`hiwar.run_layout`)."""
    return Path(out_dir) if out_dir else RunLayout(config).human_eval


def output_places(config: RunConfig, out_dir: str | None = None) -> list[tuple[str, Path]]:
    """Where ``hiwar human-eval export`` writes, named by the option or config key that decides it."""
    return [("--out", Path(out_dir))] if out_dir else RunLayout(config).output_places("human-eval")


# human_eval keys read by `human-eval analyze` only: a change to them leaves an export current.
ANALYSIS_KEYS = frozenset({"output_dir", "bootstrap_samples", "confidence", "plots", "allow_partial", "min_interval_n"})


def export_key(config: RunConfig, inputs: list[Path]) -> dict[str, Any]:
    """What an export depends on (:mod:`hiwar.markers`): the keys that decide the sheets, the seed and the
    fingerprint of the input files (the pipeline's human-eval stage)."""
    from hiwar.lineage import fingerprint
    from hiwar.markers import flatten

    cfg = config.human_eval
    return {
        **flatten(cfg, "human_eval", skip=ANALYSIS_KEYS),
        "seed": cfg.seed if cfg.seed is not None else config.seed,
        "input files": fingerprint(inputs) if inputs and all(p.is_file() for p in inputs) else None,
    }


def build_key(items: list[RatingItem], config: RunConfig, seed: int) -> dict[str, Any]:
    """Blind codes and per-rater orders for the sampled items, all drawn from ``seed``.

    System codes (S1, S2...) are given to the models in a shuffled order and item codes (Q0001...) to the
    items in a shuffled order, so neither the codes nor their order tell which model wrote a reply.
    """
    cfg = config.human_eval
    rng = random.Random(seed)
    models = sorted({i.model for i in items})
    systems = {model: f"S{n + 1}" for n, model in enumerate(rng.sample(models, len(models)))}
    shuffled = rng.sample(items, len(items))
    width = max(4, len(str(len(items))))
    codes = {f"Q{n + 1:0{width}d}": item for n, item in enumerate(shuffled)}
    raters = [sheet_name(r + 1) for r in range(cfg.raters)]
    order = {r: random.Random(f"{seed}:{r}").sample(sorted(codes), len(codes)) for r in raters}
    key = {
        "raters": raters,
        "criteria": [c.name for c in cfg.criteria],
        "scale": {"min": cfg.scale_min, "max": cfg.scale_max},
        "seed": seed,
        "systems": {code: model for model, code in sorted(systems.items(), key=lambda kv: kv[1])},
        "items": {
            code: {
                "model": it.model,
                "system": systems[it.model],
                "item_id": it.item_id,
                "topic": it.topic,
                "source": it.source,
            }
            for code, it in codes.items()
        },
        "order": order,
    }
    key["export_id"] = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return key


def _sheet_rows(key: dict[str, Any], by_code: dict[str, RatingItem], rater: str, max_ctx: int | None) -> list[dict]:
    rows = []
    for code in key["order"][rater]:
        item = by_code[code]
        context = item.context[-max_ctx:] if max_ctx else item.context
        rows.append(
            {
                "item": code,
                "system": key["items"][code]["system"],
                "topic": item.topic,
                "context": context,
                "reply": item.reply,
            }
        )
    return rows


def _guard_filled(out: Path, key: dict[str, Any], criteria: list[str]) -> bool:
    """True when ``out`` already holds this very export; raise when it holds another one with scores in it."""
    old_key = out / KEY_NAME
    if not old_key.is_file():
        return False
    try:
        old_id = json.loads(old_key.read_text(encoding="utf-8")).get("export_id")
    except (json.JSONDecodeError, AttributeError):
        old_id = None
    if old_id == key["export_id"]:
        return True
    filled = [p.name for p in sorted((out / SHEETS_DIR).glob("rater-*")) if has_scores(read_sheet(p), criteria)]
    if filled:
        raise HiwarError(
            f"{out}: holds another export (export id {old_id}) whose sheets already have scores "
            f"({', '.join(filled)}); pass another --out or move that folder away"
        )
    for stale in (out / SHEETS_DIR).glob("rater-*"):
        stale.unlink()
    return False


def summary_text(out: Path) -> str:
    """``hiwar human-eval export``'s console lines: what to hand to the raters, what to keep from them."""
    return f"sheets for the raters: {out / SHEETS_DIR}\nkey (keep it from the raters): {out / KEY_NAME}"


def run_export(
    config: RunConfig, inputs: list[str], out_dir: str | None = None, *, model_name: str | None = None
) -> Path:
    """Sample, blind and write the rating sheets; return the export folder.

    Args:
        config: the run config (its ``human_eval`` section decides criteria, scale, sample size and seed).
        inputs: dataset folders, conversation files or replies files (see ``hiwar.evaluation.human.items``).
        out_dir: export folder (default: ``human_eval.output_dir``, else ``<run_dir>/human_eval``).
        model_name: model name for conversation records (default: each record's ``generator.model``).

    Rerunning with the same inputs and config rewrites nothing and leaves filled sheets alone.

    Raises:
        DataError: missing or malformed inputs. HiwarError: ``out_dir`` holds another, already rated export.
    """
    from hiwar.outdirs import check_output_dirs

    check_output_dirs(output_places(config, out_dir))
    cfg = config.human_eval
    seed = cfg.seed if cfg.seed is not None else config.seed
    items = load_items(inputs, model_name=model_name, split=cfg.split)
    sampled = sample_items(items, cfg.samples_per_model, cfg.stratify_by_topic, seed)
    key = build_key(sampled, config, seed)
    out = export_dir(config, out_dir)
    criteria = key["criteria"]
    if _guard_filled(out, key, criteria):
        log.info("%s already holds export %s; nothing rewritten", out, key["export_id"])
        return out
    by_code = {code: it for code, it in zip(key["items"], _items_in_code_order(key, sampled), strict=True)}
    sheets = out / SHEETS_DIR
    for rater in key["raters"]:
        write_sheet(_sheet_rows(key, by_code, rater, cfg.max_context_messages), criteria, sheets / rater)
    write_instructions(cfg, sheets, len(by_code))
    key.update(
        inputs=[str(p) for p in inputs],
        created_at=utc_now(),
        code=code_version(),
        counts={m: sum(1 for it in sampled if it.model == m) for m in sorted({i.model for i in sampled})},
    )
    write_json(out / KEY_NAME, key)
    save_resolved(config, out)
    log.info("exported %d items for %d raters to %s", len(by_code), len(key["raters"]), sheets)
    return out


def _items_in_code_order(key: dict[str, Any], sampled: list[RatingItem]) -> list[RatingItem]:
    index = {(it.model, it.item_id): it for it in sampled}
    return [index[(v["model"], v["item_id"])] for v in key["items"].values()]
