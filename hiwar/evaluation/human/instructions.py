"""The raters' instructions, in Arabic and English, written beside the sheets."""

from __future__ import annotations

from pathlib import Path

from hiwar.atomic import write_text
from hiwar.evaluation.human.config import HumanEvalConfig

# Labels for a five-point scale; other scales get labels for their ends only.
FIVE_POINT = [
    ("ضعيف جدًا", "very poor"),
    ("ضعيف", "poor"),
    ("مقبول", "acceptable"),
    ("جيد", "good"),
    ("ممتاز", "excellent"),
]


def _anchors(cfg: HumanEvalConfig) -> list[tuple[int, str, str]]:
    scale = cfg.scale
    if len(scale) == len(FIVE_POINT):
        return [(s, ar, en) for s, (ar, en) in zip(scale, FIVE_POINT, strict=True)]
    return [(scale[0], FIVE_POINT[0][0], FIVE_POINT[0][1]), (scale[-1], FIVE_POINT[-1][0], FIVE_POINT[-1][1])]


def instructions_text(cfg: HumanEvalConfig, n_items: int) -> str:
    """The instructions as Markdown: Arabic first, then English; nothing in it names a model."""
    lo, hi = cfg.scale_min, cfg.scale_max
    names = ", ".join(f"`{c.name}`" for c in cfg.criteria)
    lines = [
        "# تعليمات التقييم / Rating instructions",
        "",
        "## بالعربية",
        "",
        f"ستجد في ملفك {n_items} ردًّا كتبها مساعد آلي في محادثات باللغة العربية. لكل ردّ ترى سياق المحادثة "
        "السابق له (عمود `context`) ثم الرد نفسه (عمود `reply`). قيّم الرد وحده، في ضوء السياق.",
        "",
        f"- ضع في كل عمود من أعمدة المعايير ({names}) عددًا صحيحًا من {lo} إلى {hi}.",
        "- لا تترك أي خانة تقييم فارغة، ولا تغيّر عمود `item` ولا تحذف صفوفًا أو تكررها.",
        "- يمكنك كتابة ملاحظة اختيارية في عمود `comment`.",
        "- قيّم وحدك دون الرجوع إلى المقيّم الآخر، ولا تحاول معرفة النظام الذي كتب الرد.",
        "- احفظ الملف بصيغة CSV UTF-8 (أو أعد ملف JSONL) بالاسم نفسه.",
        "",
        "### المعايير",
        "",
    ]
    lines += [f"- **{c.label_ar}** (`{c.name}`): {c.description_ar}" for c in cfg.criteria]
    lines += ["", "### السلّم", ""] + [f"- {s}: {ar}" for s, ar, _ in _anchors(cfg)]
    lines += [
        "",
        "## In English",
        "",
        f"Your sheet holds {n_items} replies written by an assistant in Arabic conversations. For each you "
        "see the conversation before it (column `context`) and the reply itself (column `reply`). Rate the "
        "reply only, in the light of its context.",
        "",
        f"- In every criterion column ({names}) write a whole number from {lo} to {hi}.",
        "- Leave no score blank; do not change the `item` column, and do not delete or duplicate rows.",
        "- The `comment` column is for optional notes.",
        "- Rate on your own, without consulting the other rater, and do not try to find out which system "
        "wrote a reply.",
        "- Save the file as 'CSV UTF-8' (or return the JSONL file) under the same name.",
        "",
        "### Criteria",
        "",
    ]
    lines += [f"- **{c.label_en}** (`{c.name}`): {c.description_en}" for c in cfg.criteria]
    lines += ["", "### Scale", ""] + [f"- {s}: {en}" for s, _, en in _anchors(cfg)]
    return "\n".join(lines) + "\n"


def write_instructions(cfg: HumanEvalConfig, out_dir: Path, n_items: int) -> Path:
    """Write ``instructions.md`` into ``out_dir`` (the folder handed to raters)."""
    path = out_dir / "instructions.md"
    write_text(path, instructions_text(cfg, n_items))
    return path
