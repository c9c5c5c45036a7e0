"""Actor start-up: the imports every engine and scorer actor needs, made cheaper, and done before it is asked.

A fresh Ray actor that runs a transformers model spends its first seconds starting a Python process and importing
torch and transformers, not loading or running the model (``benchmarks/bench_startup.py`` measures each step;
``docs/generation.md``, "Actor start-up", has the figures). This module owns the two cuts that measurably help:

- :func:`defer_sklearn`: transformers' ``generation.candidate_generator`` imports ``sklearn.metrics`` (and with it
  pandas, ``scipy.stats`` and ``scipy.optimize``) whenever scikit-learn is installed, only for assisted decoding's
  confidence-threshold tuning, which hiwar never uses. We import that module with scikit-learn hidden, then give
  it back the real availability check and a ``roc_curve`` that imports scikit-learn on its first call, so its
  behaviour is unchanged and only the import moves. It saves the biggest single block of an actor's start-up.
- Worker preload: :data:`PRELOAD_MODULE` (``hiwar.startup_preload``) runs :func:`warm_imports` in every Ray worker
  process as the worker starts (Ray's ``preload_python_modules``), so the workers Ray starts at ``ray.init`` have
  torch and transformers imported before Ray Data asks for its actors. A task's worker is never reused for an
  actor, so warming workers with a task does not help; preloading does.

The model loader (:mod:`hiwar.models.loader`) calls :func:`defer_sklearn` before it imports any model code, so every
engine and scorer gets the first cut without calling anything. Set ``HIWAR_EAGER_IMPORTS=1`` to turn the deferral
off (``benchmarks/bench_startup.py --variant plain`` measures the "before" this way).
"""

from __future__ import annotations

import os
import sys
from typing import Any

PRELOAD_MODULE = "hiwar.startup_preload"
EAGER_ENV = "HIWAR_EAGER_IMPORTS"
_CANDIDATE_GENERATOR = "transformers.generation.candidate_generator"
_warm = False


def _roc_curve(*args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``roc_curve``, imported on the first call (assisted decoding with a confidence threshold)."""
    from sklearn.metrics import roc_curve

    return roc_curve(*args, **kwargs)


def _sklearn_hidden() -> bool:
    return False


def defer_sklearn() -> bool:
    """Import transformers' candidate generator without importing scikit-learn (see the module docstring).

    Idempotent and safe to call from any constructor: once that module is imported, by us or anyone else, it does
    nothing. Returns True when this call deferred the import.
    """
    if os.environ.get(EAGER_ENV, "") not in ("", "0") or _CANDIDATE_GENERATOR in sys.modules:
        return False
    import transformers.utils as tf_utils
    import transformers.utils.import_utils as tf_import_utils

    real = tf_import_utils.is_sklearn_available
    homes = [m for m in (tf_utils, tf_import_utils) if getattr(m, "is_sklearn_available", None) is real]
    for module in homes:
        module.is_sklearn_available = _sklearn_hidden
    try:
        import transformers.generation.candidate_generator as candidate_generator
    finally:
        for module in homes:
            module.is_sklearn_available = real
        # Any transformers module imported meanwhile that bound the stand-in by name gets the real check back.
        for name, module in list(sys.modules.items()):
            if name.startswith("transformers") and getattr(module, "is_sklearn_available", None) is _sklearn_hidden:
                module.is_sklearn_available = real
    if real() and not hasattr(candidate_generator, "roc_curve"):
        candidate_generator.roc_curve = _roc_curve
    return True


def warm_imports() -> None:
    """Import what every engine and scorer actor needs (torch; transformers' model, generation and tokenizer code;
    the auto classes), scikit-learn deferred. Idempotent: the second call returns at once.

    Model-specific modules (``modeling_gpt2``, hiwar's ports) are left to ``from_pretrained``: each costs little
    once this shared part is in.
    """
    global _warm
    if _warm:
        return
    import torch  # noqa: F401
    import transformers  # noqa: F401

    defer_sklearn()
    import transformers.generation.utils  # noqa: F401 - GenerationMixin: masking, cache, logits processors
    import transformers.modeling_utils  # noqa: F401 - PreTrainedModel: torch.distributed.tensor, torch._dynamo
    import transformers.models.auto.modeling_auto  # noqa: F401 - AutoModelForCausalLM
    import transformers.tokenization_utils_tokenizers  # noqa: F401 - fast tokenizers

    _warm = True


def ray_system_config() -> dict[str, Any]:
    """``ray.init(_system_config=...)`` settings for a local cluster whose workers import torch and transformers as
    they start (before an actor is placed on them)."""
    return {"preload_python_modules": [PRELOAD_MODULE]}


def ray_preload_env() -> dict[str, str]:
    """The same for ``ray start`` (set on every node, before it starts)."""
    return {"RAY_preload_python_modules": PRELOAD_MODULE}
