"""The ``transformers`` engine: an actor-pool UDF running HF ``generate`` (GPU when the actor has one).

Each Ray batch is sorted by prompt length and cut into micro-batches of ``micro_batch_size`` rows, so padding
stays small (:mod:`.batch_generator`). Torch threads match the actor's CPUs. Sampling uses per-row seeds
(:mod:`.sampler`).
"""

from __future__ import annotations

from typing import Any

from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.batch_generator import BatchGenerator, Result
from hiwar.generation.engines.common import check_model, engine_fields


class HFGenerator(BatchGenerator):
    """Ray Data UDF: loads the model once; each micro-batch is one padded HF ``generate`` call."""

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

    def _generate(self, rows: list[dict], chunk: list[tuple[int, list[int]]]) -> list[Result]:
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


def generate_hf(ds: Any, cfg: EngineConfig) -> Any:
    """Run ``ds`` through a pool of :class:`HFGenerator` actors (``cfg.actors`` of them)."""
    check_model(cfg)
    # Ray Data's actor pools restart a dead actor (max_restarts=-1) and retry its batch on a live one
    # (max_task_retries=-1) by default, so a crashed engine actor loses no rows.
    return ds.map_batches(
        HFGenerator,
        fn_constructor_kwargs={"cfg": engine_fields(cfg), "num_threads": cfg.threads()},
        batch_format="pyarrow",
        **cfg.ray_args(),
    )
