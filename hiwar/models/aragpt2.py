"""AraGPT2 (``aubmindlab/aragpt2-large`` / ``-mega``): the "Grover" variant of GPT-2, as a transformers model.

The hub's own code for it imports names transformers 5 removed, and the stock ``GPT2LMHeadModel`` computes a
different function (it loads the weights with only a load report). This port follows ``aragpt2/grover/
modeling_gpt2.py`` of ``aub-mind/arabert``. Against GPT-2, a block of the Grover variant is::

    x = x + attn(x)                  # attention reads the raw residual stream (no norm before it)
    x = ln_2(x + mlp(ln_1(x)))       # ln_1 before the MLP; ln_2 normalises the sum (post-norm)

and the embeddings are ``emb_norm(dropout(wte + wpe))`` with no final ``ln_f``. Weight names and the Conv1D
layout (weights stored as ``(in, out)``) are GPT-2's, so the hub's files load as they are; ``lm_head`` is tied to
``transformer.wte``.

:func:`register` makes ``AutoConfig``/``AutoModelForCausalLM``/``AutoTokenizer`` know ``model_type: aragpt2``
without ``trust_remote_code``. :func:`is_grover_checkpoint` recognises the hub's older revision, whose config says
``gpt2`` over Grover weights.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.pytorch_utils import Conv1D
from transformers.utils import can_return_tuple
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from hiwar.models.gpt2_family import GPT2FamilyConfig

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class AraGPT2Config(GPT2FamilyConfig):
    """AraGPT2's config: GPT-2's keys and names (``n_embd``, ``n_layer``, ...), as the hub's config.json has them.

    Every key and default is :class:`GPT2FamilyConfig`'s: a key missing from the hub's file means GPT-2's value.
    The hub's ``auto_map`` (remote code) is dropped: this class is the implementation, and a saved fine-tune must
    not point at code files it does not carry.
    """

    model_type = "aragpt2"

    def __post_init__(self, **kwargs: Any) -> None:
        kwargs.pop("auto_map", None)
        super().__post_init__(**kwargs)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> tuple[dict, dict]:
        """The config file's dict; a ``gpt2`` one is read as AraGPT2's (the hub's older Grover revision).

        Only ``AraGPT2Config.from_pretrained`` (and so ``AraGPT2LMHeadModel.from_pretrained``) comes here: the
        caller chose this class for the folder, so transformers' "model of type gpt2" warning would be noise.
        """
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == "gpt2":
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs


def eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention (for ``attn_implementation="eager"`` and attention weights); output (b, t, h, d)."""
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]  # eager masks are additive (0 / dtype min)
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class AraGPT2Attention(nn.Module):
    """Causal self-attention over the fused ``c_attn`` projection (q, k, v in that order, GPT-2's Conv1D)."""

    def __init__(self, config: AraGPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(f"n_embd ({self.embed_dim}) must be divisible by n_head ({self.num_heads})")
        self.scaling = self.head_dim**-0.5  # Grover builds every block with scale=True
        self.is_causal = True
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query, key, value = (
            t.view(shape).transpose(1, 2) for t in self.c_attn(hidden_states).split(self.embed_dim, dim=2)
        )
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)
        # "sdpa" (the default) runs torch's scaled_dot_product_attention; flash and other kernels plug in the same way.
        attend: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention)
        dropout = self.attn_dropout.p if self.training else 0.0
        output, weights = attend(
            self, query, key, value, attention_mask, dropout=dropout, scaling=self.scaling, **kwargs
        )
        output = self.c_proj(output.reshape(*output.shape[:-2], -1).contiguous())
        return self.resid_dropout(output), weights


class AraGPT2MLP(nn.Module):
    """GPT-2's MLP: ``c_fc``, activation, ``c_proj`` (Conv1D)."""

    def __init__(self, config: AraGPT2Config) -> None:
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = Conv1D(inner, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, inner)
        self.act = ACT2FN[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(hidden_states))))


class AraGPT2Block(GradientCheckpointingLayer):
    """One Grover block: raw-stream attention, then ``ln_2(x + mlp(ln_1(x)))``."""

    def __init__(self, config: AraGPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = AraGPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = AraGPT2MLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        use_cache: bool | None = False,
        **kwargs: Any,
    ) -> torch.Tensor:
        attn_output, _ = self.attn(hidden_states, attention_mask, past_key_values=past_key_values, **kwargs)
        hidden_states = hidden_states + attn_output
        return self.ln_2(hidden_states + self.mlp(self.ln_1(hidden_states)))


class AraGPT2PreTrainedModel(PreTrainedModel):
    """Shared settings: weight init, attention kernels, checkpointing, FSDP wrapping unit."""

    config_class = AraGPT2Config
    config: AraGPT2Config
    base_model_prefix = "transformer"
    _input_embed_layer = "wte"
    supports_gradient_checkpointing = True
    _no_split_modules = ["AraGPT2Block"]  # FSDP auto-wrap and device maps keep a block whole
    _skip_keys_device_placement = ["past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {"hidden_states": AraGPT2Block, "attentions": OutputRecorder(AraGPT2Attention, index=1)}
    # Checkpoints saved by transformers 4 (the hub's older revision) carry the causal-mask buffers of that era's
    # attention; masks are built per call now.
    _keys_to_ignore_on_load_unexpected = [r"\.attn\.bias$", r"\.attn\.masked_bias$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2's init: normal(initializer_range); residual projections scaled by 1/sqrt(2 * n_layer)."""
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, Conv1D):
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        if isinstance(module, (AraGPT2Attention, AraGPT2MLP)):
            init.normal_(module.c_proj.weight, mean=0.0, std=std / (2 * self.config.n_layer) ** 0.5)


class AraGPT2Model(AraGPT2PreTrainedModel):
    """The decoder stack without a head: ``wte``, ``wpe``, ``emb_norm``, blocks ``h.N`` (no ``ln_f``)."""

    def __init__(self, config: AraGPT2Config) -> None:
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.emb_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.h = nn.ModuleList(AraGPT2Block(config, i) for i in range(config.n_layer))
        self.post_init()

    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        """Hidden states of the last block (and the KV cache when ``use_cache``)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if use_cache is None:
            # No cache while training: it is useless there, and it would hide packed position_ids from the mask builder.
            use_cache = self.config.use_cache and not self.training
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)
        if position_ids is None:
            past_seen = past_key_values.get_seq_length() if past_key_values is not None else 0
            position_ids = (torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen).unsqueeze(0)
        hidden_states = inputs_embeds + self.wpe(position_ids).to(inputs_embeds.device)
        if token_type_ids is not None:  # GPT-2 (and Grover) embed segment ids with the token table
            hidden_states = hidden_states + self.wte(token_type_ids)
        hidden_states = self.emb_norm(self.drop(hidden_states))  # the reference drops out before this norm

        # Padding, the causal rule, the cache offset and packed sequences (position_ids restarting at 0) become one
        # mask in the form the attention kernel wants (None when sdpa's own is_causal suffices).
        mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            position_ids=position_ids,
        )
        for block in self.h:
            # position_ids reach the attention kernel too: flash-attention's varlen path reads packed sequences there.
            hidden_states = block(
                hidden_states,
                mask,
                past_key_values=past_key_values,
                use_cache=use_cache,
                position_ids=position_ids,
                **kwargs,
            )
        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states, past_key_values=past_key_values if use_cache else None
        )


class AraGPT2LMHeadModel(AraGPT2PreTrainedModel, GenerationMixin):
    """AraGPT2 with its language-model head (tied to ``transformer.wte``); ``labels`` give the shifted LM loss."""

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: AraGPT2Config) -> None:
        super().__init__(config)
        self.transformer = AraGPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.loss_type = "ForCausalLM"  # transformers guesses it from the class name, which does not say so
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Logits over the vocabulary; with ``labels`` (-100 = ignored; shifted inside) also the mean loss."""
        outputs = self.transformer(
            input_ids,
            past_key_values=past_key_values,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:
            # transformers' causal-LM loss: shift, ignore -100, float32, num_items_in_batch under gradient accumulation.
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


def _weight_file(path: str, name: str, revision: str | None) -> Path | None:
    """``name`` in the model folder, or (hub id) from the hub cache or a normal download; None if absent."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder / name if (folder / name).is_file() else None
    from transformers.utils import cached_file

    try:
        quiet = {"_raise_exceptions_for_missing_entries": False, "_raise_exceptions_for_connection_errors": False}
        found = cached_file(path, name, revision=revision, **quiet)
    except (OSError, ValueError):  # not a hub id, no such repo, offline without it in the cache
        return None
    return Path(found) if found else None


def _weight_names(path: str, revision: str | None) -> list[str]:
    for name in INDEX_FILES:
        if (index := _weight_file(path, name, revision)) is not None:
            return list(json.loads(index.read_text())["weight_map"])
    if (single := _weight_file(path, WEIGHT_FILES[0], revision)) is not None:
        with single.open("rb") as handle:  # safetensors: 8-byte header length, JSON header, then the tensors
            (size,) = struct.unpack("<Q", handle.read(8))
            return [name for name in json.loads(handle.read(size)) if name != "__metadata__"]
    if (pickled := _weight_file(path, WEIGHT_FILES[1], revision)) is not None:
        # mmap onto the meta device: the names without reading the tensors (5.5 GB for mega).
        return list(torch.load(pickled, map_location="meta", mmap=True, weights_only=True))
    return []


def is_grover_checkpoint(path: str, revision: str | None = None) -> bool:
    """Whether ``path`` holds AraGPT2 (Grover) weights, whatever its config.json says.

    Grover weights have ``transformer.emb_norm.*`` and no ``transformer.ln_f.*``; GPT-2's have ``ln_f`` and no
    ``emb_norm``. Only weight names are read: a ``*.index.json`` when the weights are sharded, else the
    ``model.safetensors`` header, else the keys of ``pytorch_model.bin`` (memory-mapped, no tensor read).

    The loader calls it on checkpoints whose config says ``model_type: gpt2`` (the hub's older aragpt2-mega
    revision). When it returns True, load them as AraGPT2: ``AraGPT2LMHeadModel.from_pretrained(path)``, or
    ``AutoModelForCausalLM.from_pretrained(path, config=AraGPT2Config.from_pretrained(path))``.

    Args:
        path: a model folder, or a hub id (its weight index or file then comes from the hub cache, downloaded
            if missing, as loading would; offline and not cached gives False).
        revision: hub revision, for a hub id.

    Returns:
        False for a checkpoint without weight files, or one that is not Grover's.
    """
    names = _weight_names(path, revision)
    has_emb_norm = any(n.split(".")[-2:-1] == ["emb_norm"] for n in names)
    has_ln_f = any(n.split(".")[-2:-1] == ["ln_f"] for n in names)
    return has_emb_norm and not has_ln_f


def register() -> None:
    """Make transformers' auto classes load ``model_type: aragpt2`` with this port (idempotent).

    After it, ``AutoConfig``/``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained`` take the hub's current
    aragpt2 folders with ``trust_remote_code=False``; their ``auto_map`` is then never followed (transformers also
    prefers a registered class over remote code when ``trust_remote_code=True``). The tokenizer is GPT-2's
    byte-level BPE, as the hub ships it.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, GPT2Tokenizer

    AutoConfig.register(AraGPT2Config.model_type, AraGPT2Config, exist_ok=True)
    AutoModel.register(AraGPT2Config, AraGPT2Model, exist_ok=True)
    AutoModelForCausalLM.register(AraGPT2Config, AraGPT2LMHeadModel, exist_ok=True)
    AutoTokenizer.register(AraGPT2Config, tokenizer_class=GPT2Tokenizer, exist_ok=True)
