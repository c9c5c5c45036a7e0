"""Ray Data stage: summed NLL, scored tokens, bytes and characters of each conversation, for one model."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from hiwar.models.loader import ModelRef

log = logging.getLogger(__name__)


class PerplexityScorer:
    """Actor UDF: loads the model once, then scores batches of conversations (column ``messages_json``).

    Output columns: ``id``, ``topic``, ``nll`` (nats, summed), ``n_tokens`` (scored), ``n_input_tokens``,
    ``n_bytes`` and ``n_chars`` (of the scored contents), ``note`` (why a conversation scored nothing, else
    "").
    """

    def __init__(
        self,
        model: ModelRef,
        mask: str = "assistant",
        window: int | None = None,
        stride: int | None = None,
        max_tokens_per_batch: int | None = None,
        dtype: str = "auto",
        num_threads: float = 1.0,
    ) -> None:
        from hiwar.models.loader import load_for_inference, load_tokenizer

        tokenizer = load_tokenizer(model)
        lm, device = load_for_inference(model, dtype, num_threads)
        self._use(lm, tokenizer, device, mask, window, stride, max_tokens_per_batch)

    @classmethod
    def on_loaded(
        cls,
        lm: Any,
        tokenizer: Any,
        device: Any,
        mask: str = "assistant",
        window: int | None = None,
        stride: int | None = None,
        max_tokens_per_batch: int | None = None,
    ) -> PerplexityScorer:
        """A scorer over a model and tokenizer loaded already (``hiwar.evaluation.model_worker`` shares them
        with the reply generator)."""
        scorer = cls.__new__(cls)
        scorer._use(lm, tokenizer, device, mask, window, stride, max_tokens_per_batch)
        return scorer

    def _use(
        self,
        lm: Any,
        tokenizer: Any,
        device: Any,
        mask: str,
        window: int | None,
        stride: int | None,
        max_tokens: int | None,
    ) -> None:
        from hiwar.models.loader import context_length

        self.model, self.tokenizer, self.device = lm, tokenizer, device
        context = context_length(lm.config, tokenizer)
        self.window = min(window or context, context)
        self.stride, self.mask, self.max_tokens = stride, mask, max_tokens

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from hiwar.evaluation.perplexity.encoding import encode_for_scoring, scored_contents, text_size
        from hiwar.evaluation.perplexity.nll import score_sequences

        encoded, sizes, notes = [], [], []
        for raw in batch["messages_json"]:
            messages = json.loads(raw)
            note = f"no {self.mask} tokens to score after formatting"
            try:
                pair = encode_for_scoring(self.tokenizer, messages, self.mask)
            except (ValueError, TypeError, KeyError) as err:  # a template that cannot format this one
                pair, note = None, f"cannot format: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
            encoded.append(pair if pair is not None else ([], []))
            sizes.append(text_size(scored_contents(messages, self.mask)))
            notes.append("" if pair is not None else note)
        scores = score_sequences(
            self.model,
            encoded,
            self.window,
            self.stride,
            self.max_tokens,
            self.tokenizer.pad_token_id,
            self.device,
        )
        for i, (_, count) in enumerate(scores):
            if count == 0 and not notes[i]:
                notes[i] = "no scored tokens"
        return {
            "id": batch["id"],
            "topic": batch["topic"],
            "nll": np.array([s[0] for s in scores], dtype=np.float64),
            "n_tokens": np.array([s[1] for s in scores], dtype=np.int64),
            "n_input_tokens": np.array([len(e[0]) for e in encoded], dtype=np.int64),
            "n_bytes": np.array([s[0] for s in sizes], dtype=np.int64),
            "n_chars": np.array([s[1] for s in sizes], dtype=np.int64),
            "note": np.array(notes, dtype=object),
        }
