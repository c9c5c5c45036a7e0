"""Data prep: label masks against hand-written expectations, truncation at turn boundaries, packing."""

from __future__ import annotations

import re

import pytest

from hiwar.prompts import HIWAR_CHAT_TEMPLATE
from hiwar.training.data import (
    IGNORE_INDEX,
    _encode_by_prefixes,
    pack_examples,
    prepare_split,
    tokenize_conversation,
)

WORDS = [
    "المستخدم",
    "المساعد",
    "النظام",
    ":",
    "مرحبا",
    "أهلا",
    "بك",
    "كيف",
    "حالك",
    "بخير",
    "user",
    "assistant",
    "system",
    "شكرا",
]
SPECIALS = ["<pad>", "<bos>", "<eos>", "<|im_start|>", "<|im_end|>"]

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|im_end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TWO_TURNS = [
    {"role": "user", "content": "مرحبا"},
    {"role": "assistant", "content": "أهلا بك"},
    {"role": "user", "content": "كيف حالك"},
    {"role": "assistant", "content": "بخير"},
]

X = None  # a token that carries no loss


@pytest.fixture(scope="module")
def word_tokenizer():
    """One token per word, punctuation mark or special token, so expectations can be written by hand."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS + ["<unk>"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    return fast


def _expect(tokenizer, pairs):
    """(tokens, labels) from hand-written (token, is_loss) pairs."""
    ids = tokenizer.convert_tokens_to_ids([t for t, _ in pairs])
    labels = [i if loss else IGNORE_INDEX for i, (_, loss) in zip(ids, pairs, strict=True)]
    return ids, labels


HIWAR_EXPECTED = [
    ("<bos>", 0),
    ("المستخدم", 0),
    (":", 0),
    ("مرحبا", 0),
    ("المساعد", 0),
    (":", 0),
    ("أهلا", 1),
    ("بك", 1),
    ("<eos>", 1),
    ("المستخدم", 0),
    (":", 0),
    ("كيف", 0),
    ("حالك", 0),
    ("المساعد", 0),
    (":", 0),
    ("بخير", 1),
    ("<eos>", 1),
]

CHATML_EXPECTED = [
    ("<|im_start|>", 0),
    ("user", 0),
    ("مرحبا", 0),
    ("<|im_end|>", 0),
    ("<|im_start|>", 0),
    ("assistant", 0),
    ("أهلا", 1),
    ("بك", 1),
    ("<|im_end|>", 1),
    ("<|im_start|>", 0),
    ("user", 0),
    ("كيف", 0),
    ("حالك", 0),
    ("<|im_end|>", 0),
    ("<|im_start|>", 0),
    ("assistant", 0),
    ("بخير", 1),
    ("<|im_end|>", 1),
]


def test_hiwar_template_masks_assistant_replies_and_their_eos(word_tokenizer):
    word_tokenizer.chat_template = None  # a base model: hiwar's template is used
    ids, labels = _expect(word_tokenizer, HIWAR_EXPECTED)
    out = tokenize_conversation(word_tokenizer, TWO_TURNS, max_seq_len=64)
    assert out["input_ids"] == ids
    assert out["labels"] == labels
    assert out["attention_mask"] == [1] * len(ids)


def test_model_chat_template_with_generation_tags(word_tokenizer):
    word_tokenizer.chat_template = CHATML
    ids, labels = _expect(word_tokenizer, CHATML_EXPECTED)
    out = tokenize_conversation(word_tokenizer, TWO_TURNS, max_seq_len=64)
    assert out["input_ids"] == ids
    assert out["labels"] == labels


def test_all_tokens_mask(word_tokenizer):
    word_tokenizer.chat_template = None
    ids, _ = _expect(word_tokenizer, HIWAR_EXPECTED)
    out = tokenize_conversation(word_tokenizer, TWO_TURNS, max_seq_len=64, mask="all")
    assert out["labels"] == ids


@pytest.mark.parametrize("template,expected", [(HIWAR_CHAT_TEMPLATE, HIWAR_EXPECTED), (CHATML, CHATML_EXPECTED)])
def test_templates_without_generation_tags_give_the_same_mask(word_tokenizer, template, expected):
    untagged = re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", template)
    ids, flags = _encode_by_prefixes(word_tokenizer, TWO_TURNS, untagged)
    assert ids == word_tokenizer.convert_tokens_to_ids([t for t, _ in expected])
    assert flags == [loss for _, loss in expected]


def test_truncation_drops_whole_trailing_turns(word_tokenizer):
    word_tokenizer.chat_template = None
    first_turn, _ = _expect(word_tokenizer, HIWAR_EXPECTED[:9])
    assert len(HIWAR_EXPECTED) == 17
    for limit in (9, 12, 16):  # the second turn never fits, so it goes whole; never cut mid-turn
        out = tokenize_conversation(word_tokenizer, TWO_TURNS, max_seq_len=limit)
        assert out["input_ids"] == first_turn
    assert len(tokenize_conversation(word_tokenizer, TWO_TURNS, max_seq_len=17)["input_ids"]) == 17
    assert tokenize_conversation(word_tokenizer, TWO_TURNS, max_seq_len=8) is None  # no assistant token fits


def test_trailing_user_turn_and_no_assistant(word_tokenizer):
    word_tokenizer.chat_template = None
    out = tokenize_conversation(word_tokenizer, TWO_TURNS[:3], max_seq_len=64)
    assert out["input_ids"] == _expect(word_tokenizer, HIWAR_EXPECTED[:9])[0]
    assert tokenize_conversation(word_tokenizer, TWO_TURNS[:1], max_seq_len=64) is None


def test_prepare_split_counts_skips_and_truncation(word_tokenizer):
    word_tokenizer.chat_template = None
    prep = prepare_split(word_tokenizer, [TWO_TURNS, TWO_TURNS[:1], TWO_TURNS], max_seq_len=12)
    assert prep.stats.conversations == 3
    assert prep.stats.skipped_no_assistant == 1
    assert prep.stats.truncated == 2
    assert prep.stats.tokens == 18
    assert prep.stats.loss_tokens == 6  # أهلا بك <eos>, twice
    assert [len(s["input_ids"]) for s in prep.sequences] == [9, 9]


def _example(n: int, start: int) -> dict[str, list[int]]:
    ids = list(range(start, start + n))
    return {"input_ids": ids, "labels": [t + 1000 for t in ids]}


def test_packing_best_fit_boundaries():
    examples = [_example(5, 0), _example(3, 10), _example(4, 20), _example(2, 30)]
    packed = pack_examples(examples, max_seq_len=8)
    # Best-fit decreasing by hand: 5 -> bin A (3 left); 4 -> bin B (4 left); 3 -> A (tightest fit); 2 -> B.
    assert [p["input_ids"] for p in packed] == [
        [0, 1, 2, 3, 4, 10, 11, 12],
        [20, 21, 22, 23, 30, 31],
    ]
    assert [p["position_ids"] for p in packed] == [[0, 1, 2, 3, 4, 0, 1, 2], [0, 1, 2, 3, 0, 1]]
    # The first token of every conversation is never a target (it would be predicted across the boundary).
    assert packed[0]["labels"] == [-100, 1001, 1002, 1003, 1004, -100, 1011, 1012]
    assert packed[1]["labels"] == [-100, 1021, 1022, 1023, -100, 1031]


def test_prepare_split_packs_within_max_len(word_tokenizer):
    word_tokenizer.chat_template = None
    prep = prepare_split(word_tokenizer, [TWO_TURNS, TWO_TURNS[:2], TWO_TURNS[:2]], max_seq_len=20, packing=True)
    assert [len(s["input_ids"]) for s in prep.sequences] == [17, 18]  # 17 alone; 9 + 9 together
    assert prep.stats.sequences == 2
    assert prep.stats.packed_fill == pytest.approx(35 / 40)


def test_a_long_conversation_is_cut_after_the_last_exchange_that_fits(word_tokenizer):
    """Exchange j has 1 + j user words and 1 + (j % 3) reply words: with the word tokenizer it takes
    5 + its words tokens (two role words, two colons, the EOS), after one BOS. The cut is checked against those
    counts at limits on both sides of exchange ends."""
    word_tokenizer.chat_template = None
    messages, sizes = [], []
    for j in range(40):
        user, reply = ["كيف"] * (1 + j), ["بخير"] * (1 + j % 3)
        messages += [{"role": "user", "content": " ".join(user)}, {"role": "assistant", "content": " ".join(reply)}]
        sizes.append(5 + len(user) + len(reply))
    full = tokenize_conversation(word_tokenizer, messages, max_seq_len=10**6)
    cumulative = [1 + sum(sizes[: j + 1]) for j in range(len(sizes))]
    assert len(full["input_ids"]) == cumulative[-1]
    # On each side of every fourth exchange's end, and past the whole conversation.
    limits = [n + d for n in cumulative[::4] for d in (-1, 0)] + [cumulative[-1] + 1]
    for limit in limits:
        out = tokenize_conversation(word_tokenizer, messages, max_seq_len=limit)
        fits = [n for n in cumulative if n <= limit]
        if not fits:
            assert out is None
            continue
        assert out["input_ids"] == full["input_ids"][: fits[-1]], limit
        assert out["labels"] == full["labels"][: fits[-1]], limit


def test_token_flags_equal_the_overlap_of_each_token_with_each_span():
    """Assistant flags against the definition (a token overlaps a span), on random spans that touch, nest and
    overlap, and random tokens, some of zero width."""
    import random

    from hiwar.training.data import _flag_tokens

    rng = random.Random(0)
    for _ in range(200):
        spans = [(s, s + rng.randrange(0, 6)) for s in (rng.randrange(0, 40) for _ in range(rng.randrange(0, 6)))]
        offsets = [(a, a + rng.randrange(0, 4)) for a in sorted(rng.randrange(0, 45) for _ in range(30))]

        def tokenizer(text, add_special_tokens, return_offsets_mapping, offsets=offsets):
            return {"input_ids": list(range(len(offsets))), "offset_mapping": offsets}

        _, flags = _flag_tokens(tokenizer, "", spans)
        assert flags == [int(any(a < e and b > s for s, e in spans)) for a, b in offsets], (spans, offsets)
