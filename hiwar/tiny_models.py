"""Tiny, random, local models for tests, benchmarks and the demo: built offline in seconds.

A byte-level BPE tokenizer trained with ``tokenizers`` on hiwar's own Arabic text (the shipped conversations,
topics, countries and prompts), with special tokens and hiwar's chat template, plus a random causal LM (GPT-2 or
Llama shape) saved as a folder that ``AutoModelForCausalLM.from_pretrained`` and vLLM both load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

BOS = "<|bos|>"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
UNK = "<|unk|>"
# The role markers of hiwar's chat template and of the generation transcript format, each one token: a tiny model
# then learns turn structure (which marker comes next) instead of spelling markers out piece by piece.
ROLE_MARKERS = ("النظام:", "المستخدم:", "المساعد:")
SPEC_FILE = "hiwar_tiny_spec.json"


@dataclass(frozen=True)
class TinySpec:
    """Shape of a tiny model. The defaults give ~0.2M parameters; raise ``hidden``/``layers`` for benchmarks."""

    arch: Literal["gpt2", "llama"] = "gpt2"
    layers: int = 2
    hidden: int = 64
    heads: int = 2
    max_positions: int = 512
    vocab_size: int = 2000
    seed: int = 0


def arabic_corpus() -> list[str]:
    """hiwar's own Arabic text: conversations (with role markers), topic and country names, prompt text."""
    from hiwar.assets import asset_path, load_countries, load_topics
    from hiwar.prompts import available_versions, load_prompt

    texts: list[str] = []
    conv_path = asset_path("conversations.jsonl")
    if conv_path.exists():
        for line in conv_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                for msg in json.loads(line)["messages"]:
                    marker = "المستخدم: " if msg["role"] == "user" else "المساعد: "
                    texts.append(marker + msg["content"])
    for item in (*load_topics(), *load_countries()):
        texts.append(f"{item['ar']} {item['en']}")
    for version in available_versions():
        prompt = load_prompt(version)
        texts.extend([prompt.system, prompt.instruction])
    return texts


def build_tokenizer(out_dir: str | Path, vocab_size: int = 2000, texts: list[str] | None = None) -> Path:
    """Train a byte-level BPE tokenizer on Arabic text and save it as a ``PreTrainedTokenizerFast`` folder."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from hiwar.prompts import HIWAR_CHAT_TEMPLATE

    out_dir = Path(out_dir)
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts if texts is not None else arabic_corpus(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(m, normalized=False, special=False) for m in ROLE_MARKERS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
    fast.chat_template = HIWAR_CHAT_TEMPLATE
    fast.model_max_length = 100_000
    fast.save_pretrained(out_dir)
    return out_dir


def _model_config(spec: TinySpec, tokenizer: object) -> object:
    vocab = len(tokenizer)  # type: ignore[arg-type]
    ids = {
        "bos_token_id": tokenizer.bos_token_id,  # type: ignore[attr-defined]
        "eos_token_id": tokenizer.eos_token_id,  # type: ignore[attr-defined]
        "pad_token_id": tokenizer.pad_token_id,  # type: ignore[attr-defined]
    }
    if spec.arch == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=vocab,
            n_positions=spec.max_positions,
            n_embd=spec.hidden,
            n_layer=spec.layers,
            n_head=spec.heads,
            **ids,
        )
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=spec.hidden,
        intermediate_size=2 * spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=False,
        **ids,
    )


def build_tiny_model(
    out_dir: str | Path, spec: TinySpec | None = None, tokenizer_dir: str | Path | None = None
) -> Path:
    """Build (or reuse, when ``out_dir`` already holds the same spec) a random tiny causal LM with its tokenizer.

    Args:
        out_dir: folder to write; it loads with ``AutoModelForCausalLM.from_pretrained(out_dir)`` and vLLM.
        spec: model shape; GPT-2 with 2 layers by default.
        tokenizer_dir: reuse this tokenizer folder instead of training one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = spec or TinySpec()
    out_dir = Path(out_dir)
    spec_path = out_dir / SPEC_FILE
    if spec_path.exists() and json.loads(spec_path.read_text()) == asdict(spec):
        return out_dir
    if tokenizer_dir is None:
        build_tokenizer(out_dir, vocab_size=spec.vocab_size)
        tokenizer_dir = out_dir
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(_model_config(spec, tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    spec_path.write_text(json.dumps(asdict(spec)))  # written last: it marks a complete folder
    return out_dir
