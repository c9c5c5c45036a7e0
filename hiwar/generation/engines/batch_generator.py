"""What every in-actor engine does with a Ray batch before and after its model runs.

Each row's prompt is formatted (:mod:`.prompt_text`) and tokenized without special tokens (the template's own BOS
is the only one); a row that cannot be formatted, or whose prompt fills the model's window, becomes an error row
at once. The rest are sorted by prompt length and cut into micro-batches; a micro-batch that fails is retried row
by row, so one bad row fails alone. Subclasses say how a micro-batch is generated.
"""

from __future__ import annotations

import logging
from typing import Any

from hiwar.errors import describe_error
from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.common import with_outputs

log = logging.getLogger(__name__)

# A micro-batch's results, one per row: (generated text, prompt tokens, generated tokens, error or "").
Result = tuple[str, int, int, str]


class BatchGenerator:
    """Ray Data UDF base: ``__call__`` maps a pyarrow batch to the same rows plus the four output columns.
    Subclasses set ``cfg``, ``tokenizer`` and ``max_len`` (the model's window) and implement :meth:`_generate`."""

    cfg: EngineConfig
    tokenizer: Any
    max_len: int

    def _micro_batch_size(self, ready: int) -> int:
        """Rows per :meth:`_generate` call, out of ``ready`` rows that are ready to run."""
        return self.cfg.micro_batch_size

    def _generate(self, rows: list[dict], chunk: list[tuple[int, list[int]]]) -> list[Result]:
        """Generate for ``chunk`` ((row index, prompt ids) pairs); raise when the whole micro-batch fails."""
        raise NotImplementedError

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from hiwar.generation.engines.prompt_text import prompt_ids

        rows = batch.to_pylist()
        outputs: list[dict | None] = [None] * len(rows)
        ready = []  # (index, token ids)
        for i, row in enumerate(rows):
            try:
                _, ids = prompt_ids(self.tokenizer, row, self.cfg.prompt_format, self.cfg.jais_language)
            except Exception as err:  # noqa: BLE001 - a bad row becomes an error row
                outputs[i] = with_outputs(row, error=f"cannot format prompt: {describe_error(err)}")
                continue
            if len(ids) >= self.max_len:
                outputs[i] = with_outputs(
                    row,
                    n_prompt=len(ids),
                    error=f"prompt has {len(ids)} tokens; the model takes at most {self.max_len}",
                )
                continue
            ready.append((i, ids))
        if self.cfg.sort_by_length:
            ready.sort(key=lambda item: len(item[1]))
        step = max(1, self._micro_batch_size(len(ready)))
        for start in range(0, len(ready), step):
            chunk = ready[start : start + step]
            for (i, _), (text, n_prompt, n_gen, error) in zip(chunk, self._generate_safe(rows, chunk), strict=True):
                outputs[i] = with_outputs(rows[i], text, n_prompt, n_gen, error)
        return pa.Table.from_pylist(outputs)

    def _generate_safe(self, rows: list[dict], chunk: list[tuple[int, list[int]]]) -> list[Result]:
        """Generate a micro-batch; on failure retry its rows one by one so one bad row fails alone."""
        try:
            return self._generate(rows, chunk)
        except Exception as err:  # noqa: BLE001
            if len(chunk) == 1:
                return [("", len(chunk[0][1]), 0, f"generation failed: {describe_error(err)}")]
            log.warning("micro-batch of %d failed (%s); retrying row by row", len(chunk), describe_error(err))
            return [out for item in chunk for out in self._generate_safe(rows, [item])]
