"""The config keys GPT-2's descendants share: hiwar's AraGPT2 and Jais ports declare only what differs.

Both hubs' ``config.json`` files use GPT-2's names (``n_embd``, ``n_layer``...) and, where a key is missing, mean
GPT2Config's default (transformers 4 omitted keys equal to the class default). So the names, the defaults and
the aliases to transformers' standard names (``hidden_size``...) are declared once, here.
"""

from __future__ import annotations

from transformers import PreTrainedConfig


class GPT2FamilyConfig(PreTrainedConfig):
    """GPT-2's keys with GPT2Config's defaults; a base for a model's config, never a model type of its own."""

    keys_to_ignore_at_inference = ["past_key_values"]
    attribute_map = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float | int = 0.1
    embd_pdrop: float | int = 0.1
    attn_pdrop: float | int = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True
