"""The tiny-model factory: builds offline, loads with transformers, generates, reuses a finished folder."""

from __future__ import annotations

import json
from pathlib import Path

from hiwar.tiny_models import BOS, EOS, PAD, SPEC_FILE, TinySpec, build_tiny_model, build_tokenizer


def test_gpt2_loads_and_generates(tiny_gpt2: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    assert model.config.model_type == "gpt2"
    assert model.config.n_layer == 2
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (BOS, EOS, PAD)
    assert model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "مرحبا"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False, min_new_tokens=8)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 8


def test_tokenizer_learned_arabic(tiny_gpt2: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    text = "المستخدم: ما هي عاصمة مصر؟"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    # Byte-level BPE would need one token per UTF-8 byte (2 per Arabic letter) without learned merges.
    assert len(ids) < len(text.encode("utf-8")) / 3
    assert tokenizer.decode(ids) == text


def test_llama_shape_shares_tokenizer(tiny_llama: Path, tiny_gpt2: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert model.config.model_type == "llama"
    assert model.config.num_hidden_layers == 2
    assert AutoTokenizer.from_pretrained(tiny_llama).get_vocab() == AutoTokenizer.from_pretrained(tiny_gpt2).get_vocab()


def test_same_spec_is_reused_and_deterministic(tmp_path: Path, tiny_gpt2: Path) -> None:
    spec = TinySpec(hidden=32, heads=2, seed=3)
    first = build_tiny_model(tmp_path / "m", spec, tokenizer_dir=tiny_gpt2)
    weights = (first / "model.safetensors").read_bytes()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    build_tiny_model(tmp_path / "m", spec, tokenizer_dir=tiny_gpt2)
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert json.loads((first / SPEC_FILE).read_text())["hidden"] == 32
    again = build_tiny_model(tmp_path / "m2", spec, tokenizer_dir=tiny_gpt2)
    assert (again / "model.safetensors").read_bytes() == weights  # same seed, same weights


def test_tokenizer_on_given_texts(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    build_tokenizer(tmp_path / "t", vocab_size=300, texts=["سلام عليكم"] * 20)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "t")
    assert tokenizer.chat_template is not None
    assert tokenizer.decode(tokenizer("سلام")["input_ids"]) == "سلام"
