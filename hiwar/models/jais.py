"""Jais (``model_type: jais``) for transformers 5: hiwar's own port of the hub's remote code.

The hub's ``modeling_jais.py`` imports names transformers 5 removed, so ``trust_remote_code`` no longer loads it.
This port computes the same function and reads the same checkpoints, under the same weight names:

- a GPT-style pre-norm decoder (``ln_1`` -> attention -> residual, ``ln_2`` -> MLP -> residual, final ``ln_f``),
  with fused ``c_attn`` (q, k, v) and transformers' ``Conv1D`` layout (weights stored ``[in, out]``);
- ALiBi position bias (``position_embedding_type: alibi``): per-head slopes from the ALiBi paper's formula, kept,
  as the hub keeps them, in ``transformer.relative_pe.slopes`` (shape ``[n_head, 1]``); optional linear
  ``alibi_scaling``; ``position_embedding_type: learned`` uses a ``wpe`` table instead;
- a SwiGLU MLP: ``c_proj(c_fc(x) * silu(c_fc2(x)))`` (other activations: ``c_proj(act(c_fc(x)))``);
- muP scales: embeddings times ``mup_embeddings_scale``, logits times ``mup_output_alpha * mup_width_scale``,
  attention scores divided by ``head_dim`` instead of ``sqrt(head_dim)`` when ``mup_scale_qk_dot_by_d``.

:func:`register` makes ``AutoConfig`` / ``AutoModelForCausalLM`` load hub folders without ``trust_remote_code``
(their ``auto_map`` is then ignored).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.pytorch_utils import Conv1D

from hiwar.models.gpt2_family import GPT2FamilyConfig

__all__ = ["JAISLMHeadModel", "JaisConfig", "JaisModel", "alibi_slopes", "register"]


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi slopes (Press et al.): a geometric series from ``2**(-8/n)``; other head counts interleave 2n's."""
    if num_heads <= 0:
        raise ValueError(f"num_heads must be positive, got {num_heads}")
    if math.log2(num_heads).is_integer():
        ratio = 2.0 ** (-8.0 / num_heads)
        return [ratio ** (i + 1) for i in range(num_heads)]
    # Not a power of two: the slopes of the next lower power, then every other slope of twice that power.
    lower = 2 ** math.floor(math.log2(num_heads))
    return alibi_slopes(lower) + alibi_slopes(2 * lower)[0::2][: num_heads - lower]


@strict
class JaisConfig(GPT2FamilyConfig):
    """Configuration of a Jais model, accepting the keys of the hub's ``config.json`` (``configuration_jais.py``).

    GPT-2's keys and defaults are :class:`GPT2FamilyConfig`'s. Jais-specific keys: ``position_embedding_type``
    (``"alibi"`` or ``"learned"``), ``mup_width_scale``, ``mup_embeddings_scale``, ``mup_output_alpha``,
    ``mup_scale_qk_dot_by_d`` and ``alibi_scaling`` (``{"type": "linear", "factor": f}`` or
    ``{"type": "linear", "train_seq_len": n}``). The Cerebras-style aliases ``embeddings_scale``, ``width_scale``
    and ``scale_qk_dot_by_d`` are read too. Other keys (``auto_map``, ``torch_dtype``...) are kept as plain
    attributes.
    """

    model_type = "jais"

    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    add_cross_attention: bool = False
    position_embedding_type: str = "learned"
    mup_width_scale: float | int = 1.0
    mup_embeddings_scale: float | int = 1.0
    mup_output_alpha: float | int = 1.0
    mup_scale_qk_dot_by_d: bool = False
    alibi_scaling: dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        # Cerebras Model Zoo names for the same muP settings, as older ports (vLLM's, llama.cpp's) read them.
        if (value := kwargs.pop("embeddings_scale", None)) is not None:
            self.mup_embeddings_scale = value
        if (value := kwargs.pop("width_scale", None)) is not None:
            self.mup_width_scale, self.mup_output_alpha = value, 1.0
        if (value := kwargs.pop("scale_qk_dot_by_d", None)) is not None:
            self.mup_scale_qk_dot_by_d = value
        super().__post_init__(**kwargs)
        self._check_jais()

    def _check_jais(self) -> None:
        if self.position_embedding_type not in ("alibi", "learned"):
            raise ValueError(f"position_embedding_type must be 'alibi' or 'learned': {self.position_embedding_type!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.add_cross_attention:
            raise ValueError("hiwar's Jais port is decoder-only: add_cross_attention is not supported")
        scaling = self.alibi_scaling
        if scaling is None:
            return
        keys = set(scaling) - {"type"}
        factor, train_len = scaling.get("factor"), scaling.get("train_seq_len")
        well_formed = scaling.get("type") == "linear" and len(keys) == 1 and keys <= {"factor", "train_seq_len"}
        if (
            not well_formed
            or (factor is not None and not (isinstance(factor, float) and factor > 1.0))
            or (train_len is not None and not (isinstance(train_len, int) and train_len > 1))
        ):
            raise ValueError(
                "alibi_scaling must be {'type': 'linear', 'factor': float > 1} or "
                f"{{'type': 'linear', 'train_seq_len': int > 1}}, got {scaling}"
            )

    @property
    def output_logits_scale(self) -> float:
        """muP factor on the logits."""
        return float(self.mup_output_alpha) * float(self.mup_width_scale)

    @property
    def attn_scale(self) -> float:
        """Factor on q.k: 1/d with muP's ``mup_scale_qk_dot_by_d``, 1/sqrt(d) otherwise, 1 when scaling is off."""
        if not self.scale_attn_weights:
            return 1.0
        head_dim = self.n_embd // self.n_head
        return head_dim ** (-1.0 if self.mup_scale_qk_dot_by_d else -0.5)


class JaisAlibi(nn.Module):
    """The ALiBi bias; ``slopes`` is a frozen parameter so that checkpoints carry it under the hub's name."""

    def __init__(self, config: JaisConfig):
        super().__init__()
        self.scaling = config.alibi_scaling
        self.slopes = nn.Parameter(torch.tensor(alibi_slopes(config.n_head)).unsqueeze(-1), requires_grad=False)

    def forward(self, query_length: int, key_length: int) -> torch.Tensor:
        """Bias ``[heads, query_length, key_length]``; the queries are the last ``query_length`` keys."""
        device = self.slopes.device
        query_pos = torch.arange(key_length - query_length, key_length, device=device)[:, None]
        key_pos = torch.arange(key_length, device=device)[None, :]
        distance = (key_pos - query_pos).abs().to(self.slopes.dtype)
        # Frozen as on the hub: from_pretrained hands parameters back trainable, so cut the gradient here.
        slopes = self.slopes.detach()
        scale = 1.0
        if self.scaling and "factor" in self.scaling:
            scale = float(self.scaling["factor"])
        elif self.scaling and key_length > self.scaling["train_seq_len"]:
            scale = key_length / self.scaling["train_seq_len"]
        return -(slopes / scale).unsqueeze(-1) * distance


class JaisAttention(nn.Module):
    def __init__(self, config: JaisConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.scale = config.attn_scale
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= float(layer_idx + 1)
        self.c_attn = Conv1D(3 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.attn_pdrop = float(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states: torch.Tensor, bias: torch.Tensor, past_key_values: Cache | None) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        q, k, v = self.c_attn(hidden_states).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if past_key_values is not None:
            k, v = past_key_values.update(k, v, self.layer_idx)
        # ``bias`` already holds ALiBi and the (causal, padding) mask, so SDPA runs with an explicit float mask.
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.attn_pdrop if self.training else 0.0, scale=self.scale
        )
        out = out.transpose(1, 2).reshape(batch, length, width)
        return self.resid_dropout(self.c_proj(out))


class JaisMLP(nn.Module):
    def __init__(self, config: JaisConfig):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.swiglu = config.activation_function == "swiglu"
        self.c_fc = Conv1D(inner, config.n_embd)
        if self.swiglu:
            self.c_fc2 = Conv1D(inner, config.n_embd)
        else:
            self.act = ACT2FN[config.activation_function]
        self.c_proj = Conv1D(config.n_embd, inner)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            # The hub's SwiGLU gates c_fc with silu(c_fc2), in that order.
            inner = self.c_fc(hidden_states) * nn.functional.silu(self.c_fc2(hidden_states))
        else:
            inner = self.act(self.c_fc(hidden_states))
        return self.dropout(self.c_proj(inner))


class JaisBlock(nn.Module):
    def __init__(self, config: JaisConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = JaisAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = JaisMLP(config)

    def forward(self, hidden_states: torch.Tensor, bias: torch.Tensor, past_key_values: Cache | None) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(self.ln_1(hidden_states), bias, past_key_values)
        return hidden_states + self.mlp(self.ln_2(hidden_states))


class JaisPreTrainedModel(PreTrainedModel):
    config_class = JaisConfig
    config: JaisConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = False
    _no_split_modules = ["JaisBlock"]
    # Slopes and distances in float32 whatever the model's dtype (bf16 cannot hold distances past 256 exactly),
    # as vLLM's kernels compute ALiBi.
    _keep_in_fp32_modules_strict = ["relative_pe"]
    # Older checkpoints (GPT-2 code of transformers 4.28) saved the causal-mask buffers; the mask is built here.
    _keys_to_ignore_on_load_unexpected = [r"\.attn\.bias$", r"\.attn\.masked_bias$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, Conv1D):
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif isinstance(module, JaisAttention | JaisMLP):
            # GPT-2's scaled init of the residual projections (2 residual paths per block).
            init.normal_(module.c_proj.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))
        elif isinstance(module, JaisAlibi):
            init.copy_(module.slopes, torch.tensor(alibi_slopes(self.config.n_head)).unsqueeze(-1))


class JaisModel(JaisPreTrainedModel):
    """The Jais decoder without the language-model head (the hub's ``JAISModel``)."""

    def __init__(self, config: JaisConfig):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        alibi = config.position_embedding_type == "alibi"
        self.wpe = None if alibi else nn.Embedding(config.n_positions, config.n_embd)
        self.relative_pe = JaisAlibi(config) if alibi else None
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([JaisBlock(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.wte = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        batch, length = inputs_embeds.shape[:2]

        hidden_states = inputs_embeds
        if self.wpe is not None:
            if position_ids is None:
                position_ids = torch.arange(past, past + length, device=inputs_embeds.device).unsqueeze(0)
            hidden_states = hidden_states + self.wpe(position_ids)
        hidden_states = self.drop(hidden_states * self.config.mup_embeddings_scale)

        bias = self._attention_bias(attention_mask, batch, length, past, hidden_states)
        for block in self.h:
            hidden_states = block(hidden_states, bias, past_key_values if use_cache else None)
        return BaseModelOutputWithPast(
            last_hidden_state=self.ln_f(hidden_states), past_key_values=past_key_values if use_cache else None
        )

    def _attention_bias(
        self, attention_mask: torch.Tensor | None, batch: int, length: int, past: int, like: torch.Tensor
    ) -> torch.Tensor:
        """Additive bias ``[batch or 1, heads or 1, length, past + length]``: ALiBi plus causal and padding masks."""
        total = past + length
        device = like.device
        allowed = torch.ones(length, total, dtype=torch.bool, device=device).tril(diagonal=past)[None, None]
        if attention_mask is not None:
            if attention_mask.dim() != 2 or attention_mask.shape != (batch, total):
                raise ValueError(f"attention_mask must be 2D [batch, past + length] = [{batch}, {total}]")
            allowed = allowed & attention_mask.bool()[:, None, None, :]
        bias = torch.zeros((), dtype=like.dtype, device=device)
        if self.relative_pe is not None:
            bias = self.relative_pe(length, total).to(like.dtype)[None]
        # The dtype's lowest value, not -inf: a row that is all padding stays finite (uniform) instead of NaN.
        return bias.masked_fill(~allowed, torch.finfo(like.dtype).min)


class JAISLMHeadModel(JaisPreTrainedModel, GenerationMixin):
    """Jais with its language-model head; the architecture name of the hub's checkpoints."""

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: JaisConfig):
        super().__init__(config)
        self.transformer = JaisModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Causal-LM forward; ``labels`` (unshifted, -100 ignored) give the mean next-token loss."""
        out = self.transformer(
            input_ids=input_ids,
            past_key_values=past_key_values,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
        )
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(out.last_hidden_state[:, keep, :]) * self.config.output_logits_scale
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=out.past_key_values)


def register() -> None:
    """Make transformers' auto classes know ``model_type: jais`` (idempotent)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    AutoConfig.register("jais", JaisConfig, exist_ok=True)
    AutoModel.register(JaisConfig, JaisModel, exist_ok=True)
    AutoModelForCausalLM.register(JaisConfig, JAISLMHeadModel, exist_ok=True)
