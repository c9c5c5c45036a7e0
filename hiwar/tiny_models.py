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


def gpt2_style_tokenizer(
    out_dir: Path, tokenizer_dir: str | Path | None = None, config_for_positions: int | None = None
) -> None:
    """A GPT-2-style byte-level BPE as AraGPT2's and Jais' hub folders ship it (``vocab.json``, ``merges.txt``,
    ``tokenizer.json``), trained on hiwar's Arabic text with ``<|endoftext|>`` = id 0, or copied from
    ``tokenizer_dir``. ``config_for_positions``: also write a ``tokenizer_config.json`` naming
    ``<|endoftext|>`` as BOS, EOS, PAD and UNK with that ``model_max_length`` (Jais' layout; AraGPT2 has none)."""
    import shutil

    out_dir.mkdir(parents=True, exist_ok=True)
    files = ("vocab.json", "merges.txt", "tokenizer.json")
    if config_for_positions is not None:
        files += ("tokenizer_config.json",)
    if tokenizer_dir is not None:
        for name in files:
            shutil.copyfile(Path(tokenizer_dir) / name, out_dir / name)
        return
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=[EOS],  # first, so id 0, as in both hub vocabularies
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(arabic_corpus(), trainer=trainer)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer.model.save(str(out_dir))  # vocab.json + merges.txt
    if config_for_positions is not None:
        special = {f"{role}_token": EOS for role in ("bos", "eos", "pad", "unk")}
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": config_for_positions, **special}
        (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def build_tiny_aragpt2(
    out_dir: str | Path,
    revision: Literal["aragpt2", "gpt2"] = "aragpt2",
    tokenizer_dir: str | Path | None = None,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 2,
    positions: int = 128,
    seed: int = 0,
) -> Path:
    """A random tiny AraGPT2 (Grover) folder laid out as the hub lays out ``aubmindlab/aragpt2-mega``.

    ``revision="aragpt2"`` is today's hub layout: ``model_type: aragpt2``, ``AraGPT2LMHeadModel`` and an
    ``auto_map`` to remote code (which hiwar never runs). ``revision="gpt2"`` is the older one: a GPT-2 config over
    Grover weights, saved as transformers 4 saved them (with ``lm_head.weight`` and the attention mask buffers).
    Weights use the hub's names; every tensor is random, norms included, so a swapped norm shows in the logits.
    The tokenizer is a byte-level BPE (``vocab.json``, ``merges.txt``, ``tokenizer.json``; no tokenizer config, no
    chat template) trained on hiwar's Arabic text, with ``<|endoftext|>`` = id 0 as BOS and EOS.

    Args:
        out_dir: folder to write (created).
        revision: which hub config to mimic.
        tokenizer_dir: copy the tokenizer files from this folder instead of training them.
        layers, hidden, heads, positions: model shape.
        seed: seed of the random weights.
    """

    import torch
    from safetensors.torch import save_file

    from hiwar.models.aragpt2 import AraGPT2Config, AraGPT2LMHeadModel

    out_dir = Path(out_dir)
    gpt2_style_tokenizer(out_dir, tokenizer_dir)
    vocab_size = len(json.loads((out_dir / "vocab.json").read_text(encoding="utf-8")))
    shape = {"n_layer": layers, "n_embd": hidden, "n_head": heads, "n_positions": positions, "vocab_size": vocab_size}
    config: dict[str, object] = {
        **shape,
        "n_ctx": positions,
        "n_inner": None,
        "activation_function": "gelu_new",
        "attn_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "resid_pdrop": 0.1,
        "layer_norm_epsilon": 1e-05,
        "initializer_range": 0.02,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "use_cache": True,
        "torch_dtype": "float32",
    }
    if revision == "aragpt2":
        config["architectures"] = ["AraGPT2LMHeadModel"]
        config["model_type"] = "aragpt2"
        config["auto_map"] = {
            "AutoConfig": "configuration_aragpt2.AraGPT2Config",
            "AutoModelForCausalLM": "modeling_aragpt2.AraGPT2LMHeadModel",
        }
    else:
        config["architectures"] = ["GPT2LMHeadModel"]
        config["model_type"] = "gpt2"
        config["task_specific_params"] = {
            "text-generation": {"do_sample": True, "max_length": 50, "num_beams": 5, "top_p": 0.95}
        }
    torch.manual_seed(seed)
    model = AraGPT2LMHeadModel(AraGPT2Config(**shape))
    state: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        is_norm_weight = name.endswith(".weight") and ("ln_" in name or "emb_norm" in name)
        state[name] = (1.0 + 0.2 * torch.randn_like(tensor)) if is_norm_weight else 0.2 * torch.randn_like(tensor)
    if revision == "gpt2":
        state["lm_head.weight"] = state["transformer.wte.weight"].clone()
        causal = torch.tril(torch.ones(positions, positions, dtype=torch.uint8)).view(1, 1, positions, positions)
        for i in range(layers):
            state[f"transformer.h.{i}.attn.bias"] = causal.clone()
            state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out_dir


def build_tiny_jais(
    out_dir: str | Path,
    tokenizer_dir: str | Path | None = None,
    layers: int = 2,
    hidden: int = 96,
    heads: int = 3,
    positions: int = 256,
    seed: int = 0,
    tie_word_embeddings: bool = True,
) -> Path:
    """A random tiny Jais folder laid out as the hub lays out ``inceptionai/jais-13b-chat``.

    ``config.json`` carries the hub's keys (``model_type: jais``, ``JAISLMHeadModel``, an ``auto_map`` to remote
    code that hiwar never runs, ALiBi, SwiGLU with an ``n_inner`` of 8/3 the width, and muP scales far from 1 so
    that a missing scale shows in the logits). ``model.safetensors`` holds the hub's weight names, Conv1D layout
    and the stored ALiBi slopes; ``lm_head.weight`` only when ``tie_word_embeddings`` is false. The tokenizer is a
    byte-level BPE (``vocab.json``, ``merges.txt``, ``tokenizer.json``) trained on hiwar's Arabic text, with
    ``<|endoftext|>`` = id 0 as BOS, EOS and PAD, and no chat template (Jais' prompt format is plain text).

    Args:
        out_dir: folder to write (created).
        tokenizer_dir: copy the tokenizer files from this folder instead of training them.
        layers, hidden, heads, positions: model shape. The defaults give a head size of 32, the smallest that
            vLLM's CPU attention accepts, and 3 heads, which takes ALiBi's non-power-of-two slope rule.
        seed: seed of the random weights.
        tie_word_embeddings: share ``lm_head`` with ``wte`` (the hub's default) or store a separate head.
    """

    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    gpt2_style_tokenizer(out_dir, tokenizer_dir, config_for_positions=positions)
    vocab_size = len(json.loads((out_dir / "vocab.json").read_text(encoding="utf-8")))
    inner = 8 * hidden // 3
    config: dict[str, object] = {
        "architectures": ["JAISLMHeadModel"],
        "auto_map": {
            "AutoConfig": "configuration_jais.JAISConfig",
            "AutoModel": "modeling_jais.JAISModel",
            "AutoModelForCausalLM": "modeling_jais.JAISLMHeadModel",
        },
        "model_type": "jais",
        "vocab_size": vocab_size,
        "n_positions": positions,
        "n_embd": hidden,
        "n_layer": layers,
        "n_head": heads,
        "n_inner": inner,
        "activation_function": "swiglu",
        "position_embedding_type": "alibi",
        "mup_embeddings_scale": 14.6,
        "mup_output_alpha": 2.22,
        "mup_width_scale": 0.25,
        "mup_scale_qk_dot_by_d": True,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "attn_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
        "layer_norm_epsilon": 1e-05,
        "initializer_range": 0.02,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
        "use_cache": True,
        "torch_dtype": "float32",
        "transformers_version": "4.28.0",
    }
    if not tie_word_embeddings:
        config["tie_word_embeddings"] = False
    # Hub names and shapes; Conv1D weights are [in, out]. Written from this list, not from hiwar's port, so a
    # port whose names drift from the hub's fails the load test.
    shapes = {"transformer.wte.weight": (vocab_size, hidden), "transformer.ln_f.weight": (hidden,)}
    shapes["transformer.ln_f.bias"] = (hidden,)
    for i in range(layers):
        for name, shape in {
            "ln_1.weight": (hidden,),
            "ln_1.bias": (hidden,),
            "attn.c_attn.weight": (hidden, 3 * hidden),
            "attn.c_attn.bias": (3 * hidden,),
            "attn.c_proj.weight": (hidden, hidden),
            "attn.c_proj.bias": (hidden,),
            "ln_2.weight": (hidden,),
            "ln_2.bias": (hidden,),
            "mlp.c_fc.weight": (hidden, inner),
            "mlp.c_fc.bias": (inner,),
            "mlp.c_fc2.weight": (hidden, inner),
            "mlp.c_fc2.bias": (inner,),
            "mlp.c_proj.weight": (inner, hidden),
            "mlp.c_proj.bias": (hidden,),
        }.items():
            shapes[f"transformer.h.{i}.{name}"] = shape
    if not tie_word_embeddings:
        shapes["lm_head.weight"] = (vocab_size, hidden)
    # Every tensor random (norms around 1, biases included), so a swapped or skipped one shows in the logits.
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        noise = torch.randn(shape, generator=generator)
        if name.endswith(".weight") and ".ln_" in name:
            state[name] = 1.0 + 0.2 * noise
        else:
            state[name] = (0.2 if name.endswith(("wte.weight", "lm_head.weight")) else 0.3) * noise
    # The hub stores ALiBi's slopes, [heads, 1]: 2**(-8k/p) for k = 1..p (p: largest power of two <= heads), then
    # for the remaining heads every other slope of 2p heads, 2**(-4k/p) for k = 1, 3, 5...
    p = 2 ** (heads.bit_length() - 1)
    exponents = [8.0 * k / p for k in range(1, p + 1)] + [4.0 * k / p for k in range(1, 2 * (heads - p), 2)]
    state["transformer.relative_pe.slopes"] = torch.tensor([2.0**-e for e in exponents]).unsqueeze(-1)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out_dir
