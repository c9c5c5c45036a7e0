"""Ray Data stage: embed each model reply and its reference reply, and score their similarity (RAVEN)."""

from __future__ import annotations

from typing import Any

import numpy as np


class ReplySimilarity:
    """Actor UDF: loads the sentence encoder once; adds ``cosine`` and ``score`` columns to batches that hold
    ``generated_text`` and ``reference``. An empty (or failed) reply gets cosine 0 without being encoded."""

    def __init__(
        self,
        encoder: str,
        pooling: str = "mean",
        backend: str = "auto",
        prefix: str = "",
        max_length: int = 512,
        trust_remote_code: bool = False,
        num_threads: float = 1.0,
        encode_batch_size: int = 32,
    ) -> None:
        from hiwar.evaluation.raven.encoder import TextEncoder
        from hiwar.models.loader import pick_device

        self.encoder = TextEncoder(
            encoder, pooling, backend, prefix, max_length, trust_remote_code, device=pick_device(num_threads)
        )
        self.encode_batch_size = encode_batch_size

    def __call__(self, batch: Any) -> Any:
        """A pyarrow batch in, the same rows plus ``cosine``, ``score`` and ``reply_chars`` out. Pyarrow keeps the
        other columns (the prompt's nested ``messages``) as they are: numpy batches cannot hold them."""
        import pyarrow as pa

        from hiwar.evaluation.raven.score import cosine_rows, turn_scores

        replies = [t or "" for t in batch.column("generated_text").to_pylist()]
        references = [str(t) for t in batch.column("reference").to_pylist()]
        live = [i for i, reply in enumerate(replies) if reply.strip()]
        cosines = np.zeros(len(replies), dtype=np.float64)
        if live:
            texts = [replies[i] for i in live] + [references[i] for i in live]
            vectors = self.encoder.encode(texts, self.encode_batch_size)
            cosines[live] = cosine_rows(vectors[: len(live)], vectors[len(live) :])
        batch = batch.append_column("cosine", pa.array(cosines, pa.float64()))
        batch = batch.append_column("score", pa.array(turn_scores(cosines), pa.float64()))
        return batch.append_column("reply_chars", pa.array([len(r) for r in replies], pa.int64()))
