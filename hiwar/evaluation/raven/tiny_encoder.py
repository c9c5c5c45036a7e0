"""A tiny, random, local sentence encoder (BERT shape) for tests and the local CPU demo: no hub access needed.

Its similarities mean nothing linguistically; it exercises RAVEN's code path (tokenize, encode, mean-pool,
cosine) exactly as a real multilingual encoder would.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_encoder(
    out_dir: str | Path, tokenizer_dir: str | Path, hidden: int = 32, layers: int = 1, seed: int = 0
) -> Path:
    """Build (or reuse) a random BertModel with the tokenizer from ``tokenizer_dir``; loads with
    ``AutoModel``."""
    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file() and (out_dir / "tokenizer_config.json").is_file():
        return out_dir
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    # An encoder embeds plain text. Real ones carry no chat template; sentence-transformers >= 6 would apply
    # one (the decoder's role markers) to every text.
    tokenizer.chat_template = None
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
