"""The ``vllm`` engine inside the actor's own process: vLLM's offline ``LLM``, one engine per pool actor.

Ray Data LLM's processor runs its engine as an ``AsyncLLM``, whose engine core always lives in a second process;
inside a Ray actor vLLM starts that process with ``spawn``, so it imports torch, transformers and vLLM all over
again (about 30 s on 2 CPUs) before the first row. On CPU with one engine per actor (tensor x pipeline parallel
1) nothing needs that process: with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and the ``uni`` executor the engine core
and its worker run in the actor itself. Rows are formatted and checked as the transformers engine does
(:mod:`.batch_generator`); each Ray batch goes to the engine whole (vLLM schedules it), each row with its own
``SamplingParams`` (its seed, and its JSON schema when it has one).
"""

from __future__ import annotations

import os
from typing import Any

from hiwar.generation.config import EngineConfig
from hiwar.generation.engines.batch_generator import BatchGenerator, Result

# Read by vLLM when its engine starts (vllm.envs), so it is set in the actor before the engine is built.
IN_PROCESS_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


class VLLMGenerator(BatchGenerator):
    """Ray Data UDF: one in-process vLLM engine per actor."""

    def __init__(self, cfg: dict[str, Any], on_gpu: bool) -> None:
        from hiwar.generation.engines.prompt_text import engine_tokenizer
        from hiwar.generation.engines.vllm_params import engine_kwargs

        self.cfg = EngineConfig.model_validate(cfg)
        self.tokenizer = engine_tokenizer(self.cfg.ref())
        os.environ[IN_PROCESS_ENV] = "0"
        from vllm import LLM

        kwargs = {"distributed_executor_backend": "uni", **engine_kwargs(self.cfg, on_gpu)}
        self.llm = LLM(model=self.cfg.model, **kwargs)
        self.max_len = int(self.llm.llm_engine.model_config.max_model_len)

    def _micro_batch_size(self, ready: int) -> int:
        return ready  # the engine's scheduler batches; a micro-batch would only idle it between calls

    def _generate(self, rows: list[dict], chunk: list[tuple[int, list[int]]]) -> list[Result]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        from hiwar.generation.engines.vllm_params import sampling_params

        params = []
        for i, _ in chunk:
            kwargs = sampling_params(self.cfg, rows[i])
            guide = kwargs.pop("structured_outputs", None)
            guided = StructuredOutputsParams(**guide) if guide else None
            params.append(SamplingParams(**kwargs, structured_outputs=guided))
        try:
            outputs = self.llm.generate([{"prompt_token_ids": ids} for _, ids in chunk], params, use_tqdm=False)
        except Exception:
            self._abort_unfinished()  # else the retries' runs would also step (and return) this call's requests
            raise
        return [(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids), "") for o in outputs]

    def _abort_unfinished(self) -> None:
        engine = self.llm.llm_engine
        left = list(engine.output_processor.request_states)
        if left:
            engine.abort_request(left)
