"""Test helper: a tiny GPT-2 fine-tuned for a few seconds so greedy decoding writes known transcripts.

It learns, for the prompts of a small grid, to answer with shipped hand-written conversations in the generator's output
format (role-marker lines, then EOS). Topics listed in ``BAD_TOPICS`` are taught a malformed transcript
(roles swapped) so the reject path is exercised by the same real model.
"""

from __future__ import annotations

from pathlib import Path

GOOD_TOPICS = ("public_transportation", "recycling", "traffic_rules")
BAD_TOPICS = ("sleep_habits",)
COUNTRIES = ("EG",)
# traffic_rules is taught the same transcript as public_transportation: a real exact duplicate.
DUPLICATE_OF = {"traffic_rules": "public_transportation"}

TRANSIT = (
    "المستخدم: ما أفضل وسيلة للتنقل في المدينة؟\n"
    "المساعد: المترو هو الأسرع لأنه لا يتأثر بزحام الشوارع.\n"
    "المستخدم: وهل التذكرة غالية؟\n"
    "المساعد: لا، سعرها مناسب ويمكن شراء اشتراك شهري أرخص."
)
RECYCLING = (
    "المستخدم: كيف أبدأ بإعادة التدوير في البيت؟\n"
    "المساعد: افصل الورق والبلاستيك والزجاج في أكياس مختلفة.\n"
    "المستخدم: وأين أضعها بعد ذلك؟\n"
    "المساعد: في حاويات الفرز القريبة من الحي أو في مراكز الجمع."
)
# Roles swapped: the assistant opens and the user closes.
SLEEP_BAD = (
    "المساعد: كم ساعة تنام كل ليلة؟\n"
    "المستخدم: أنام نحو خمس ساعات فقط بسبب العمل.\n"
    "المساعد: هذا قليل، فالبالغ يحتاج من سبع إلى تسع ساعات.\n"
    "المستخدم: سأحاول النوم مبكرا من اليوم."
)


def grid_overrides(countries: tuple[str, ...] = COUNTRIES) -> list[str]:
    """Config overrides that give the grid the model was taught on (4 topics, 2 turns each)."""
    topics = ",".join(GOOD_TOPICS + BAD_TOPICS)
    return [
        f"generation.grid.topics=[{topics}]",
        f"generation.grid.countries=[{','.join(countries)}]",
        "generation.grid.per_pair=1",
        "generation.grid.min_turns=2",
        "generation.grid.max_turns=2",
    ]


def targets() -> dict[str, str]:
    """Topic -> the transcript the model must write for it."""
    return {
        "public_transportation": TRANSIT,
        "traffic_rules": TRANSIT,
        "recycling": RECYCLING,
        "sleep_habits": SLEEP_BAD,
    }


def teach(base_dir: Path, out_dir: Path, max_steps: int = 400, lr: float = 5e-3) -> Path:
    """Fine-tune the tiny model at ``base_dir`` on the grid's prompts -> targets; save to ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hiwar.config import load_config
    from hiwar.generation.grid import build_grid
    from hiwar.generation.prompting import request_rows
    from hiwar.prompts import render_messages

    tok = AutoTokenizer.from_pretrained(base_dir)
    cfg = load_config(overrides=[f"generation.model={base_dir}", *grid_overrides()]).generation
    want = targets()
    seqs = []
    for req in request_rows(build_grid(cfg.grid, cfg.prompt_version, 0), cfg):
        prompt = tok(render_messages(tok, req["messages"], add_generation_prompt=True), add_special_tokens=False)[
            "input_ids"
        ]
        answer = tok(want[req["topic"]], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        seqs.append((prompt, answer))
    width = max(len(p) + len(a) for p, a in seqs)
    ids = torch.full((len(seqs), width), tok.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    for i, (p, a) in enumerate(seqs):
        ids[i, : len(p) + len(a)] = torch.tensor(p + a)
        labels[i, len(p) : len(p) + len(a)] = torch.tensor(a)
    mask = (labels != -100) | (torch.arange(width) < torch.tensor([len(p) for p, _ in seqs])[:, None])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    targets_mask = labels[:, 1:] != -100
    for step in range(max_steps):  # noqa: B007 - the step count is recorded after the loop
        out = model(input_ids=ids, attention_mask=mask.long(), labels=labels)
        # Stop once every target token is the argmax under teacher forcing: greedy decoding then
        # follows exactly the same path, so it reproduces every transcript.
        right = out.logits[:, :-1].argmax(-1) == labels[:, 1:]
        if bool(right[targets_mask].all()):
            break
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    else:
        raise RuntimeError(f"the tiny model did not learn the transcripts in {max_steps} steps")
    model.config.hiwar_teach_steps = step
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
