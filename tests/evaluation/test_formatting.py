"""Perplexity formats and masks conversations exactly as training does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hiwar.evaluation.perplexity.encoding import NO_TRUNCATION, encode_for_scoring, scored_contents, text_size

MESSAGES = [
    {"role": "system", "content": "أنت مساعد مفيد."},
    {"role": "user", "content": "ما عاصمة المغرب؟"},
    {"role": "assistant", "content": "عاصمة المغرب هي الرباط."},
    {"role": "user", "content": "وأكبر مدنها؟"},
    {"role": "assistant", "content": "الدار البيضاء."},
    {"role": "user", "content": "شكرا"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_gpt2: Path):
    from hiwar.models.loader import ModelRef, load_tokenizer

    return load_tokenizer(ModelRef(str(tiny_gpt2)))


@pytest.mark.parametrize("mask", ["assistant", "all"])
def test_masks_equal_training(tokenizer, mask: str) -> None:
    from hiwar.training.data import tokenize_conversation

    training = tokenize_conversation(tokenizer, MESSAGES, NO_TRUNCATION, mask=mask)
    assert encode_for_scoring(tokenizer, MESSAGES, mask) == (training["input_ids"], training["labels"])


def test_assistant_mask_covers_replies_and_eos_only(tokenizer) -> None:
    ids, labels = encode_for_scoring(tokenizer, MESSAGES, "assistant")
    scored = tokenizer.decode([t for t in labels if t != -100])
    eos = tokenizer.eos_token
    # Byte-level BPE joins the space after the role marker to the first reply token, hence the strip().
    assert [part.strip() for part in scored.split(eos)] == ["عاصمة المغرب هي الرباط.", "الدار البيضاء.", ""]
    assert "ما عاصمة" not in scored and "المساعد" not in scored


def test_scored_contents_match_the_mask() -> None:
    assert scored_contents(MESSAGES, "assistant") == ["عاصمة المغرب هي الرباط.", "الدار البيضاء."]
    # Training drops messages after the last assistant reply, so bytes do too.
    assert scored_contents(MESSAGES, "all") == [m["content"] for m in MESSAGES[:5]]
    assert text_size(["الرباط"]) == (12, 6)


def test_perplexity_stage_scores_a_batch(tiny_gpt2: Path) -> None:
    import torch

    from hiwar.evaluation.perplexity.stage import PerplexityScorer
    from hiwar.models.loader import ModelRef

    scorer = PerplexityScorer(ModelRef(str(tiny_gpt2)), window=512)
    no_reply = [{"role": "user", "content": "مرحبا"}]
    batch = {
        "id": np.array(["a", "b"], dtype=object),
        "topic": np.array(["t", "t"], dtype=object),
        "messages_json": np.array([json.dumps(MESSAGES), json.dumps(no_reply)], dtype=object),
    }
    out = scorer(batch)
    ids, labels = encode_for_scoring(scorer.tokenizer, MESSAGES, "assistant")
    with torch.no_grad():
        loss = scorer.model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
    assert out["nll"][0] / out["n_tokens"][0] == pytest.approx(loss, rel=1e-5)
    assert out["n_bytes"][0] == len("عاصمة المغرب هي الرباط.الدار البيضاء.".encode())
    assert out["n_tokens"][1] == 0 and "no assistant tokens" in out["note"][1]
