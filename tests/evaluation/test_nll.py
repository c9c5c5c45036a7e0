"""Perplexity core: hand-computed values, the model's own loss, and the strided sliding window."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hiwar.evaluation.perplexity.metrics import bits_per_unit, corpus_perplexity
from hiwar.evaluation.perplexity.nll import IGNORE, effective_stride, plan_windows, score_sequences

ARABIC_TURNS = [
    ("مرحبا، كيف حالك اليوم؟", "أنا بخير والحمد لله، شكرا لسؤالك."),
    ("ما هي أشهر الأكلات في مصر؟", "الكشري والملوخية والفول من أشهر الأكلات."),
    ("وماذا عن الحلويات؟", "البسبوسة وأم علي."),
]


class FixedLogits:
    """A stand-in LM whose next-token logits are a fixed table: only for checking the arithmetic by hand."""

    def __init__(self, table: list[list[float]]) -> None:
        self.table = table

    def __call__(self, input_ids, attention_mask=None):
        import torch

        logits = torch.tensor([[self.table[t] for t in row] for row in input_ids.tolist()], dtype=torch.float32)
        return type("Out", (), {"logits": logits})()


def test_three_token_example_matches_hand_computation() -> None:
    # Vocabulary of 3; logits after token t are table[t]. Sequence 0 -> 1 -> 2 scores p(1|0) and p(2|1).
    table = [[0.0, 1.0, 2.0], [3.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    nll_1 = -(1.0 - math.log(math.exp(0) + math.exp(1) + math.exp(2)))
    nll_2 = -(1.0 - math.log(math.exp(3) + math.exp(0) + math.exp(1)))
    [(nll, count)] = score_sequences(FixedLogits(table), [([0, 1, 2], [0, 1, 2])], window=8)
    assert count == 2
    assert nll == pytest.approx(nll_1 + nll_2, rel=1e-6)
    assert corpus_perplexity(nll, count) == pytest.approx(math.exp((nll_1 + nll_2) / 2), rel=1e-6)
    # Masking the middle token leaves only p(2|1).
    [(nll, count)] = score_sequences(FixedLogits(table), [([0, 1, 2], [IGNORE, IGNORE, 2])], window=8)
    assert (count, nll) == (1, pytest.approx(nll_2, rel=1e-6))


def test_bits_per_byte_and_char_of_known_text() -> None:
    from hiwar.evaluation.perplexity.encoding import text_size

    text = "abc مرحبا 😀"  # 3 + 1 + 5 Arabic letters (2 bytes each) + 1 + one 4-byte emoji
    assert text_size([text]) == (19, 11)
    nll = 2.0 * 19 * math.log(2)  # 2 bits for every byte
    assert bits_per_unit(nll, 19) == pytest.approx(2.0)
    assert bits_per_unit(nll, 11) == pytest.approx(2.0 * 19 / 11)
    assert math.isnan(bits_per_unit(1.0, 0))


@pytest.mark.parametrize(
    ("n", "window", "stride"),
    [(2, 4, 2), (4, 4, 2), (5, 4, 2), (10, 4, 3), (23, 8, None), (23, 8, 8), (23, 8, 1)],
)
def test_windows_score_every_token_once_with_context(n: int, window: int, stride: int | None) -> None:
    windows = plan_windows(n, window, stride)
    scored = [p for w in windows for p in range(w.target_start, w.end)]
    assert scored == list(range(1, n))
    step = effective_stride(window, stride)
    for w in windows:
        assert w.end - w.begin <= window
        assert w.target_start - w.begin >= (1 if w.begin == 0 else window - step)


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2: Path) -> tuple:
    import torch

    from hiwar.models.loader import ModelRef, load_causal_lm, load_tokenizer, pick_device

    pick_device(1)
    return load_causal_lm(ModelRef(str(tiny_gpt2)), torch.float32).eval(), load_tokenizer(ModelRef(str(tiny_gpt2)))


def _conversations(n: int) -> list[list[dict[str, str]]]:
    convs = []
    for k in range(1, n + 1):
        messages = []
        for user, assistant in (ARABIC_TURNS * 3)[:k]:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        convs.append(messages)
    return convs


def test_batched_nll_equals_model_loss_one_sequence_at_a_time(gpt2: tuple) -> None:
    import torch

    from hiwar.evaluation.perplexity.encoding import encode_for_scoring

    model, tokenizer = gpt2
    sequences = [encode_for_scoring(tokenizer, m, mask) for m in _conversations(5) for mask in ("assistant", "all")]
    # A small token budget forces several padded micro-batches of mixed lengths.
    results = score_sequences(model, sequences, window=512, max_tokens_per_batch=300, pad_id=tokenizer.pad_token_id)
    for (ids, labels), (nll, count) in zip(sequences, results, strict=True):
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
        assert count == sum(1 for label in labels[1:] if label != IGNORE)
        assert nll / count == pytest.approx(loss, rel=1e-5)


def _hf_strided_reference(model, ids: list[int], labels: list[int], window: int, stride: int) -> tuple[float, int]:
    """Hugging Face's published strided loop, one window at a time, summing NLL of the new targets."""
    import torch

    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        trg_len = end - prev_end
        target = torch.tensor([labels[begin:end]])
        target[:, :-trg_len] = IGNORE
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids[begin:end]])).logits[0, :-1]
        shifted = target[0, 1:]
        keep = shifted != IGNORE
        total += float(torch.nn.functional.cross_entropy(logits[keep], shifted[keep], reduction="sum"))
        count += int(keep.sum())
        prev_end = end
        if end == len(ids):
            break
    return total, count


def test_sliding_window_matches_full_pass_when_it_fits_and_hf_loop_when_not(gpt2: tuple) -> None:
    from hiwar.evaluation.perplexity.encoding import encode_for_scoring

    model, tokenizer = gpt2
    ids, labels = encode_for_scoring(tokenizer, _conversations(6)[-1], "all")
    assert len(ids) > 64
    [full] = score_sequences(model, [(ids, labels)], window=len(ids))
    [roomy] = score_sequences(model, [(ids, labels)], window=512, stride=7)
    assert roomy[1] == full[1] == len(ids) - 1
    assert roomy[0] == pytest.approx(full[0], rel=1e-5)
    for window, stride in ((32, 16), (40, 39), (24, 5)):
        [windowed] = score_sequences(model, [(ids, labels)], window=window, stride=stride, max_tokens_per_batch=64)
        ref_nll, ref_count = _hf_strided_reference(model, ids, labels, window, stride)
        assert windowed[1] == ref_count == len(ids) - 1
        assert windowed[0] == pytest.approx(ref_nll, rel=1e-5)
        assert windowed[0] != pytest.approx(full[0], rel=1e-4)  # less context really changes the score


@pytest.mark.parametrize("arch", ["gpt2", "llama", "aragpt2", "jais"])
def test_scored_positions_only_logits_equal_the_models_own_loss(
    arch: str, tiny_gpt2: Path, tiny_llama: Path, tmp_path: Path
) -> None:
    """The output head sees only the scored positions (a forward pre-hook): per sequence, the batched NLL still
    equals transformers' own loss, on each architecture hiwar scores (Jais: muP-scaled logits, ALiBi)."""
    import torch

    from hiwar.models.loader import ModelRef, load_causal_lm
    from hiwar.tiny_models import build_tiny_aragpt2, build_tiny_jais

    folders = {
        "gpt2": lambda: tiny_gpt2,
        "llama": lambda: tiny_llama,
        "aragpt2": lambda: build_tiny_aragpt2(tmp_path / "aragpt2"),
        "jais": lambda: build_tiny_jais(tmp_path / "jais"),
    }
    model = load_causal_lm(ModelRef(str(folders[arch]())), torch.float32).eval()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(7)
    sequences = []
    for length in (5, 17, 40, 9):  # mixed lengths: padded rows in one batch
        ids = torch.randint(3, vocab, (length,), generator=generator).tolist()
        labels = [IGNORE if i < length // 2 else t for i, t in enumerate(ids)]  # a prompt half, unscored
        sequences.append((ids, labels))
    results = score_sequences(model, sequences, window=64, max_tokens_per_batch=4096, pad_id=0)
    for (ids, labels), (nll, count) in zip(sequences, results, strict=True):
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
        assert count == sum(1 for label in labels[1:] if label != IGNORE)
        assert nll / count == pytest.approx(loss, rel=1e-5)


def test_passes_default_to_the_devices_size_and_a_given_size_wins() -> None:
    import torch

    from hiwar.evaluation.perplexity.nll import CPU_TOKENS_PER_BATCH, GPU_TOKENS_PER_BATCH, tokens_per_batch

    assert (CPU_TOKENS_PER_BATCH, GPU_TOKENS_PER_BATCH) == (2048, 8192)
    assert tokens_per_batch(None, "cpu") == tokens_per_batch(None, torch.device("cpu")) == 2048
    assert tokens_per_batch(None, "cuda:1") == tokens_per_batch(None, torch.device("cuda", 0)) == 8192
    assert tokens_per_batch(None, "mps") == 8192
    assert tokens_per_batch(512, "cpu") == tokens_per_batch(512, "cuda") == 512


def test_the_default_pass_size_scores_as_a_per_sequence_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no size given, CPU passes hold at most 2048 padded tokens, and the sums equal one sequence per pass."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from hiwar.evaluation.perplexity import nll

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=600, n_embd=32, n_layer=1, n_head=2)).eval()
    lengths = [500, 480, 450, 300, 200, 120, 60, 30]
    sequences = [(ids := torch.randint(0, 50, (n,)).tolist(), ids) for n in lengths]
    seen: list[int] = []
    real = nll._micro_batches

    def spy(sizes: list[int], max_tokens: int) -> list[list[int]]:
        seen.append(max_tokens)
        batches = real(sizes, max_tokens)
        assert all(len(b) * max(sizes[i] for i in b) <= max_tokens for b in batches)
        return batches

    monkeypatch.setattr(nll, "_micro_batches", spy)
    batched = nll.score_sequences(model, sequences, window=600)
    single = [nll.score_sequences(model, [s], window=600, max_tokens_per_batch=600)[0] for s in sequences]
    assert seen[0] == 2048
    assert [c for _, c in batched] == [c for _, c in single] == [n - 1 for n in lengths]
    assert [v for v, _ in batched] == pytest.approx([v for v, _ in single], rel=1e-5)
