"""Before any actor starts: can this model run on this engine? (``hiwar doctor --model`` and every command.)

Each problem is one line naming the model and the fix; a command stops on the first one (exit 2) instead of
failing minutes later on an engine actor or a Ray Train worker for a reason that was knowable here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hiwar.errors import HiwarError
from hiwar.models.loader import (
    ModelRef,
    check_weight_files,
    load_config,
    load_tokenizer,
    local_folder,
    model_positions,
)

log = logging.getLogger(__name__)

ENGINE_NAMES = ("transformers", "vllm", "openai")
# hiwar's own ports that vLLM cannot serve (AraGPT2's post-norm blocks are not vLLM's GPT-2).
NOT_ON_VLLM = {"aragpt2": "AraGPT2 (Grover) has no vLLM implementation"}


@dataclass
class ModelCheck:
    """What the preflight found about one model on one engine."""

    ref: ModelRef
    engine: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def vllm_problem(config: Any) -> str | None:
    """Why vLLM cannot serve a model with this config (its registry plus hiwar's plugin), or None."""
    reason = NOT_ON_VLLM.get(getattr(config, "model_type", ""))
    if reason:
        return f"{reason}; use engine: transformers"
    from vllm import ModelRegistry

    from hiwar.models.vllm_plugin import register

    register()  # the plugin that engine processes load by entry point; the driver needs it for this look-up
    archs = list(getattr(config, "architectures", None) or [])
    supported = set(ModelRegistry.get_supported_archs())
    if archs and not any(arch in supported for arch in archs):
        return f"vLLM has no implementation of {', '.join(archs)}; use engine: transformers"
    return None


def transformers_problem(config: Any) -> str | None:
    """Why transformers has no causal-LM class for this config, or None."""
    from transformers import AutoModelForCausalLM

    if type(config) in AutoModelForCausalLM._model_mapping:  # noqa: SLF001 - the auto class's own lookup table
        return None
    if getattr(config, "auto_map", None) and "AutoModelForCausalLM" in config.auto_map:
        return None  # remote code the user allowed (trust_remote_code) provides the class
    return f"transformers has no causal-LM class for model_type {getattr(config, 'model_type', '?')!r}"


def check_model(
    ref: ModelRef,
    engine: str = "transformers",
    max_model_len: int | None = None,
    max_tokens: int | None = None,
    weights: bool = True,
) -> ModelCheck:
    """Every check that needs no actor: folder or hub id, config and architecture (and whether remote code is
    needed), the engine's support, tokenizer with EOS/pad, chat template or prompt format, weight files, and
    context against ``max_model_len`` + ``max_tokens``."""
    result = ModelCheck(ref=ref, engine=engine)
    if engine == "openai":  # a served model: nothing local to check
        return result
    try:
        local_folder(ref)
        config = load_config(ref)
    except HiwarError as err:
        result.problems.append(str(err))
        return result
    positions = model_positions(config)
    result.facts.update(
        architecture=", ".join(getattr(config, "architectures", None) or [config.model_type]),
        model_type=config.model_type,
        positions=positions,
        remote_code=bool(getattr(config, "auto_map", None)) and ref.options.trust_remote_code,
    )
    engine_problem = vllm_problem(config) if engine == "vllm" else transformers_problem(config)
    if engine_problem:
        result.problems.append(ref.fail(engine_problem).args[0])
    try:
        tokenizer = load_tokenizer(ref)
        result.facts.update(
            eos=tokenizer.eos_token,
            pad=tokenizer.pad_token,
            template="own chat template" if getattr(tokenizer, "chat_template", None) else "hiwar's (none of its own)",
        )
        if weights:
            check_weight_files(ref)
    except HiwarError as err:
        result.problems.append(str(err))
    result.problems += context_problems(ref, positions, max_model_len, max_tokens)
    return result


def context_problems(ref: ModelRef, positions: int | None, max_model_len: int | None, max_tokens: int | None) -> list:
    """``max_model_len`` and ``max_tokens`` against the model's positions."""
    if not positions:
        return []
    problems = []
    if max_model_len and max_model_len > positions:
        problems.append(ref.fail(f"max_model_len={max_model_len} is above the model's {positions} positions").args[0])
    if max_tokens and max_tokens >= (max_model_len or positions):
        problems.append(
            ref.fail(
                f"sampling.max_tokens={max_tokens} leaves no room for a prompt in {max_model_len or positions} tokens"
            ).args[0]
        )
    return problems


def require_runnable(ref: ModelRef, engine: str = "transformers", **limits: Any) -> ModelCheck:
    """:func:`check_model`, raising the first problem as one line (the count of others after it)."""
    result = check_model(ref, engine, **limits)
    if result.problems:
        more = len(result.problems) - 1
        raise HiwarError(result.problems[0] + (f" (and {more} more problem(s): hiwar doctor --model)" if more else ""))
    return result


def config_model_refs(config: Any) -> list[tuple[ModelRef, str]]:
    """Every model a run config names, with the engine it runs on there: the generator, the models to
    fine-tune, the models to evaluate (perplexity always runs on transformers), and every enabled judge."""
    found: list[tuple[ModelRef, str]] = []
    gen = config.generation
    if gen.model:
        found.append((gen.ref("generation"), gen.engine))
    found += [(spec.ref(f"training.models[{i}]"), "transformers") for i, spec in enumerate(config.training.models)]
    found += [(spec.ref("evaluation.models"), "transformers") for spec in config.evaluation.model_specs()]
    judges = (("judge", config.judge), ("generation.judge", gen.judge), ("evaluation.judge", config.evaluation.judge))
    found += [(judge.ref(key), judge.engine) for key, judge in judges if judge.enabled and judge.model]
    return found


def run_model_checks(refs: list[tuple[ModelRef, str]], engines: tuple[str, ...] = ()) -> list[ModelCheck]:
    """:func:`check_model` for each model, on the given engines (default: the engine each is configured for)."""
    checks: list[ModelCheck] = []
    for ref, engine in refs:
        first, *others = engines or (engine,)
        checks.append(check_model(ref, first))
        for name in others:
            if not checks[-1].facts and first != "openai":  # its config did not load: the same on every engine
                checks.append(ModelCheck(ref=ref, engine=name, problems=list(checks[-1].problems)))
            else:
                checks.append(check_model(ref, name))
    return checks


def format_checks(checks: list[ModelCheck]) -> str:
    """One line per model and engine: ``ok`` with what was found, or ``--`` with the problem and fix."""
    lines = []
    for check in checks:
        if check.ok:
            facts = check.facts
            detail = ", ".join(
                f"{k} {facts[k]}" for k in ("architecture", "positions", "eos", "pad", "template") if k in facts
            )
            lines.append(f"ok  {check.engine:<12} {check.ref.source}  ({detail or 'served model, not checked'})")
        else:
            lines += [f"--  {check.engine:<12} {check.ref.source}  {problem}" for problem in check.problems]
    return "\n".join(lines)
