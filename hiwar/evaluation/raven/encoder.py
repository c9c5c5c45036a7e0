"""Sentence embeddings for RAVEN: any Hugging Face encoder with mean (or CLS) pooling, or
sentence-transformers."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Average of the token states where ``attention_mask`` is 1 (padding does not count)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def is_sentence_transformers_model(path: str) -> bool:
    """Whether ``path`` is a sentence-transformers model: a local folder with its ``modules.json``, or an id
    from the ``sentence-transformers/`` organisation."""
    return (Path(path) / "modules.json").is_file() or path.startswith("sentence-transformers/")


class TextEncoder:
    """Embeds texts into vectors; loads the encoder once.

    Args:
        path: hub id or folder.
        pooling: ``mean`` over attention-masked tokens, or ``cls`` (first token).
        backend: ``transformers``, ``sentence-transformers`` or ``auto`` (sentence-transformers when it is
            installed and ``path`` is such a model; the model's own pooling and normalisation then apply).
        prefix: prepended to every text (e5 models expect ``"query: "``).
        max_length: encoder tokens per text; longer texts are truncated.
    """

    def __init__(
        self,
        path: str,
        pooling: str = "mean",
        backend: str = "auto",
        prefix: str = "",
        max_length: int = 512,
        trust_remote_code: bool = False,
        device: Any = None,
    ) -> None:
        from hiwar.models.loader import pick_device
        from hiwar.startup import defer_optional_imports

        # The encoder loads outside hiwar's model loader, so it defers transformers' unused optional imports itself:
        # scikit-learn and scipy cost a fresh encoder actor 3.2 s here (9.9 s -> 6.7 s after torch, 2026-12-02).
        defer_optional_imports()
        self.device = device or pick_device()
        self.pooling, self.prefix, self.max_length = pooling, prefix, max_length
        use_st = backend == "sentence-transformers" or (
            backend == "auto"
            and importlib.util.find_spec("sentence_transformers") is not None
            and is_sentence_transformers_model(path)
        )
        self.backend = "sentence-transformers" if use_st else "transformers"
        if use_st:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(path, device=str(self.device), trust_remote_code=trust_remote_code)
        else:
            from transformers import AutoModel, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            self.model = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code).to(self.device).eval()
            if self.tokenizer.pad_token_id is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Float32 embeddings, one row per text (not normalised; cosine normalises)."""
        texts = [self.prefix + t for t in texts]
        if self.backend == "sentence-transformers":
            return np.asarray(self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True), dtype=np.float32)
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = self.tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**enc).last_hidden_state
                pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, enc["attention_mask"])
                out.append(pooled.float().cpu().numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), dtype=np.float32)
