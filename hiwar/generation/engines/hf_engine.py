"""The ``transformers`` engine: an actor-pool UDF running HF ``generate`` (GPU when the actor has one).

Each Ray batch is sorted by prompt length and cut into micro-batches of ``micro_batch_size`` rows, so padding
stays small. Torch threads match the actor's CPUs. Sampling uses per-row seeds (:mod:`.sampler`).
"""

from __future__ import annotations

import logging
from typing import Any

from hiwar.errors import describe_error
from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.common import check_model, with_outputs

log = logging.getLogger(__name__)


class HFGenerator:
    """Ray Data UDF: loads the model once; ``__call__`` maps a pyarrow batch to the same rows plus outputs."""

    def __init__(self, cfg: dict[str, Any], num_threads: int) -> None:
        from hiwar.generation.engines.prompt_text import engine_tokenizer
        from hiwar.models.loader import load_for_inference

        engine = EngineConfig.model_validate(cfg)
        ref = engine.ref()
        tokenizer = engine_tokenizer(ref)
        model, device = load_for_inference(ref, engine.dtype, num_threads)
        self._use(engine, model, tokenizer, device)

    @classmethod
    def on_loaded(cls, cfg: dict[str, Any], model: Any, tokenizer: Any, device: Any) -> HFGenerator:
        """A generator over a model and tokenizer loaded already (``hiwar.evaluation.model_worker`` shares them
        with the perplexity scorer)."""
        generator = cls.__new__(cls)
        generator._use(EngineConfig.model_validate(cfg), model, tokenizer, device)
        return generator

    def _use(self, cfg: EngineConfig, model: Any, tokenizer: Any, device: Any) -> None:
        from hiwar.models.loader import model_positions

        self.cfg, self.model, self.tokenizer, self.device = cfg, model, tokenizer, device
        self.tokenizer.padding_side = "left"
        self.max_len = self.cfg.max_model_len or model_positions(self.model.config) or 1_000_000

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from hiwar.generation.engines.prompt_text import prompt_text

        rows = batch.to_pylist()
        outputs: list[dict | None] = [None] * len(rows)
        ready = []  # (index, token ids)
        for i, row in enumerate(rows):
            try:
                text = prompt_text(self.tokenizer, row, self.cfg.prompt_format, self.cfg.jais_language)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
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
        step = self.cfg.micro_batch_size
        for start in range(0, len(ready), step):
            chunk = ready[start : start + step]
            for (i, _), (text, n_prompt, n_gen, error) in zip(chunk, self._generate_safe(rows, chunk), strict=True):
                outputs[i] = with_outputs(rows[i], text, n_prompt, n_gen, error)
        return pa.Table.from_pylist(outputs)

    def _generate_safe(self, rows: list[dict], chunk: list[tuple[int, list[int]]]) -> list[tuple]:
        """Generate a micro-batch; on failure retry its rows one by one so one bad row fails alone."""
        try:
            return self._generate(rows, chunk)
        except Exception as err:  # noqa: BLE001
            if len(chunk) == 1:
                return [("", len(chunk[0][1]), 0, f"generation failed: {describe_error(err)}")]
            log.warning("micro-batch of %d failed (%s); retrying row by row", len(chunk), describe_error(err))
            return [out for item in chunk for out in self._generate_safe(rows, [item])]

    def _generate(self, rows: list[dict], chunk: list[tuple[int, list[int]]]) -> list[tuple]:
        import torch

        from hiwar.generation.engines.sampler import PerRowSampler

        s = self.cfg.sampling
        width = max(len(ids) for _, ids in chunk)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for _, ids in chunk], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in chunk], device=self.device)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max(1, min(s.max_tokens, self.max_len - width)),
            do_sample=False,
            repetition_penalty=s.repetition_penalty,
            pad_token_id=pad,
            num_beams=1,
        )
        if s.temperature > 0:  # temperature 0 = greedy; otherwise per-row seeded draws
            seeds = [int(rows[i]["seed"]) for i, _ in chunk]
            kwargs["logits_processor"] = [PerRowSampler(seeds, s.temperature, s.top_k, s.top_p)]
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        results = []
        eos = self.tokenizer.eos_token_id
        for (_, ids), seq in zip(chunk, out[:, width:].tolist(), strict=True):
            n_gen = len(seq)
            for j, tok in enumerate(seq):
                if tok == eos or (tok == pad and pad != eos):
                    n_gen = j + 1 if tok == eos else j
                    break
            text = self.tokenizer.decode(seq[:n_gen], skip_special_tokens=True)
            results.append((text, len(ids), n_gen, ""))
        return results


def engine_fields(cfg: EngineConfig) -> dict[str, Any]:
    """Only the EngineConfig part of ``cfg`` (a GenerationConfig carries more), as plain data for actors."""
    return cfg.model_dump(include=set(EngineConfig.model_fields))


def generate_hf(ds: Any, cfg: EngineConfig) -> Any:
    """Run ``ds`` through a pool of :class:`HFGenerator` actors (``cfg.actors`` of them)."""
    check_model(cfg)
    # Ray Data's actor pools restart a dead actor (max_restarts=-1) and retry its batch on a live one
    # (max_task_retries=-1) by default, so a crashed engine actor loses no rows.
    return ds.map_batches(
        HFGenerator,
        fn_constructor_kwargs={"cfg": engine_fields(cfg), "num_threads": int(cfg.num_cpus)},
        batch_format="pyarrow",
        **cfg.ray_args(),
    )
