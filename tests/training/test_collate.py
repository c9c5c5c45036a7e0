"""Batching and packed attention on real tiny models: a packed conversation sees only itself."""

from __future__ import annotations

import pytest

from hiwar.assets import load_seed_conversations
from hiwar.training.collate import SFTCollator
from hiwar.training.data import IGNORE_INDEX, pack_examples, tokenize_conversation


def test_collator_pads_unpacked_rows():
    collator = SFTCollator(pad_id=0)
    batch = collator([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["use_cache"] is False
    assert (collator.real_tokens, collator.pad_tokens) == (4, 2)
    assert collator.padding_share == pytest.approx(2 / 6)


def test_collator_packed_rows_and_flattened():
    rows = [
        {"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "position_ids": [0, 1, 0]},
        {"input_ids": [4], "labels": [-100], "position_ids": [0]},
    ]
    batch = SFTCollator(pad_id=9)(rows)
    assert "attention_mask" not in batch  # packed: masks come from position_ids
    assert batch["position_ids"].tolist() == [
        [0, 1, 0],
        [0, 0, 1],
    ]  # the padding tail is a segment of its own
    assert batch["labels"].tolist() == [[-100, 2, 3], [-100, -100, -100]]
    flat = SFTCollator(pad_id=9, flatten=True)(rows)
    assert flat["input_ids"].tolist() == [[1, 2, 3, 4]]
    assert flat["position_ids"].tolist() == [[0, 1, 0, 0]]


@pytest.mark.parametrize("arch", ["tiny_gpt2", "tiny_llama"])
def test_packed_sequences_attend_only_within_their_conversation(arch, request):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = request.getfixturevalue(arch)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
    convs = [c.messages for c in load_seed_conversations()[:3]]
    examples = [tokenize_conversation(tokenizer, m, max_seq_len=512) for m in convs]
    packed = pack_examples(examples, max_seq_len=sum(len(e["input_ids"]) for e in examples))
    assert len(packed) == 1
    batch = SFTCollator(pad_id=tokenizer.pad_token_id)(packed)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        start = 0
        for size in sorted((len(e["input_ids"]) for e in examples), reverse=True):  # packing order: longest first
            ids = next(e["input_ids"] for e in examples if len(e["input_ids"]) == size)
            alone = model(input_ids=torch.tensor([ids])).logits[0]
            torch.testing.assert_close(logits[start : start + size], alone, atol=1e-4, rtol=1e-4)
            start += size


def test_masks_agree_with_transformers_on_byte_level_bpe(tiny_gpt2):
    """Where transformers' own assistant mask works (byte-level BPE), ours is identical."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    for conv in load_seed_conversations()[:10]:
        ours = tokenize_conversation(tokenizer, conv.messages, max_seq_len=100_000)
        ref = tokenizer.apply_chat_template(
            conv.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        if conv.messages[-1]["role"] != "assistant":
            continue
        assert ours["input_ids"] == list(ref["input_ids"])
        assert [int(t != IGNORE_INDEX) for t in ours["labels"]] == list(ref["assistant_masks"])
        assert sum(ref["assistant_masks"]) > 0
