"""Actor start-up: the imports every engine and scorer actor needs, made cheaper, and done before it is asked.

A fresh Ray actor that runs a transformers model spends its first seconds starting a Python process and importing
torch and transformers, not loading or running the model (``benchmarks/bench_startup.py`` measures each step;
``docs/generation.md``, "Actor start-up", has the figures). This module owns the cuts that measurably help:

- :func:`defer_optional_imports`: transformers imports two heavy optional packages eagerly, for features hiwar
  never uses: ``generation.candidate_generator`` imports ``sklearn.metrics`` (with pandas and ``scipy.stats``: 2.9 s on
  these 2 cores) for assisted decoding's confidence threshold, and ``loss.loss_utils`` imports
  ``scipy.optimize`` (0.2-0.7 s) for object-detection losses. The ``Trainer`` adds a third, ``data.metrics``
  (``sklearn.metrics`` and ``scipy.stats`` for GLUE scores, 1.8 s), deferred in Ray Train's workers
  (``defer_optional_imports(trainer=True)``). We import those modules with the package's
  availability check answering "no", then give them back the real check and, when the package is installed, a
  stand-in for each function they use (``roc_curve``, ``linear_sum_assignment``...) that imports the package on
  its first call. Their behaviour is unchanged; only the import moves to where it is used.
- Warm workers: :func:`warm_worker` is the setup hook of the Ray workers that hiwar starts ahead of its model actors
  (:mod:`hiwar.cluster.warm_workers`), so an actor placed on one finds torch and transformers already imported.
  Only those workers warm: a cluster-wide preload (Ray's ``preload_python_modules``), tried first, made every
  worker import torch, Ray Data's helper actors and plain tasks included (8.5-10 s of CPU and about 450 MB each),
  and slowed the demo from 145 to 165 s. Warming workers with a task does not help: Ray never gives a worker that
  ran a task to an actor.

The model loader (:mod:`hiwar.models.loader`) calls :func:`defer_optional_imports` before it imports any model code,
so every engine and scorer gets the first cut without calling anything; RAVEN's encoder, which loads its model
outside the loader, calls it itself. ``HIWAR_EAGER_IMPORTS=1`` turns the
deferral off (``benchmarks/bench_startup.py --variants plain`` measures the "before" that way).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

EAGER_ENV = "HIWAR_EAGER_IMPORTS"
# What every engine and scorer actor imports, whatever its model.
WARM_MODULES = (
    "transformers.generation.utils",  # GenerationMixin: masks, caches, logits processors
    "transformers.modeling_utils",  # PreTrainedModel
    "transformers.models.auto.modeling_auto",  # AutoModelForCausalLM
    "transformers.tokenization_utils_tokenizers",  # fast tokenizers
    "pandas",  # pyarrow imports it on an actor's first Table.from_pylist: 0.8 s of that first batch's 0.9 s
    # Every hiwar model actor is a Ray Data map actor, whose class lives in ray.data: 0.19-0.34 s after the above.
    "ray.data._internal.execution.operators.actor_pool_map_operator",
)
warmed_at: float | None = None  # time.time() when warm_imports finished in this process (None: not yet)
_lock = threading.RLock()  # one deferral at a time: the stand-in check must not leak into another thread's import


def _on_first_call(module: str, name: str) -> Callable[..., Any]:
    """A stand-in for ``module.name`` that imports it on its first call (and on every call: the import is cached)."""

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = name
    stand_in.__doc__ = f"``{module}.{name}``, imported on the first call."
    return stand_in


def _stand_ins(module: str, *names: str) -> dict[str, Callable[..., Any]]:
    return {name: _on_first_call(module, name) for name in names}


# (module transformers imports eagerly, the availability check that guards its import, {name it binds: stand-in})
DEFERRED: tuple[tuple[str, str, dict[str, Callable[..., Any]]], ...] = (
    ("transformers.generation.candidate_generator", "is_sklearn_available", _stand_ins("sklearn.metrics", "roc_curve")),
    ("transformers.loss.loss_utils", "is_scipy_available", _stand_ins("scipy.optimize", "linear_sum_assignment")),
)
# What the Hugging Face ``Trainer`` adds (``transformers.trainer`` -> ``data.data_collator`` -> ``data.metrics``):
# GLUE/XNLI metrics import ``sklearn.metrics`` and ``scipy.stats`` (1.8 s here). Not in :data:`DEFERRED`: importing
# ``transformers.data`` costs 0.3 s that an engine or scorer, which never imports the Trainer, would pay for nothing.
TRAINER_DEFERRED: tuple[tuple[str, str, dict[str, Callable[..., Any]]], ...] = (
    (
        "transformers.data.metrics",
        "is_sklearn_available",
        {
            **_stand_ins("scipy.stats", "pearsonr", "spearmanr"),
            **_stand_ins("sklearn.metrics", "f1_score", "matthews_corrcoef"),
        },
    ),
)


def defer_optional_imports(trainer: bool = False) -> int:
    """Import the modules of :data:`DEFERRED` (and, with ``trainer``, :data:`TRAINER_DEFERRED`) without the optional
    packages they import (see the module docstring).

    Idempotent and cheap after the first call: a module already imported, by us or anyone else, is left alone.
    Returns how many modules this call imported with their package deferred.
    """
    if os.environ.get(EAGER_ENV, "") not in ("", "0"):
        return 0
    done = 0
    with _lock:
        for target, check, stand_ins in DEFERRED + (TRAINER_DEFERRED if trainer else ()):
            if target not in sys.modules:
                done += _import_hiding(target, check, stand_ins)
    return done


def _import_hiding(target: str, check: str, stand_ins: dict[str, Callable[..., Any]]) -> int:
    import transformers.utils as tf_utils
    import transformers.utils.import_utils as tf_import_utils

    real = vars(tf_import_utils).get(check)
    if real is None:  # a transformers without this check: nothing to hide
        return 0

    def hidden() -> bool:
        return False

    # vars(), not getattr: transformers' lazy modules import submodules on a missing attribute.
    homes = [m for m in (tf_utils, tf_import_utils) if vars(m).get(check) is real]
    before = set(sys.modules)
    for module in homes:
        setattr(module, check, hidden)
    try:
        importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name != target:
            raise
        return 0  # a transformers without this module: nothing to defer
    finally:
        for module in homes:
            setattr(module, check, real)
        # Every module imported meanwhile that bound the stand-in check gets the real one back and, when the
        # package is installed, a stand-in for the function it would have imported.
        for name in set(sys.modules) - before:
            namespace = getattr(sys.modules[name], "__dict__", {})
            if namespace.get(check) is hidden:
                namespace[check] = real
                if real():
                    for attr, stand_in in stand_ins.items():
                        namespace.setdefault(attr, stand_in)
    return 1


def warm_imports() -> None:
    """Import what every engine and scorer actor needs: torch, transformers' model, generation and tokenizer code,
    the auto classes and pandas, with :func:`defer_optional_imports` first. Idempotent: later calls return at once.

    Model-specific modules (``modeling_gpt2``, hiwar's ports) are left to ``from_pretrained``: each costs little
    once this shared part is in.
    """
    global warmed_at
    if warmed_at is not None:
        return
    import torch  # noqa: F401
    import transformers  # noqa: F401

    defer_optional_imports()
    for name in WARM_MODULES:
        importlib.import_module(name)
    warmed_at = time.time()


def warm_worker() -> None:
    """Ray's worker setup hook for hiwar's model actors (:mod:`hiwar.cluster.warm_workers`): :func:`warm_imports`,
    never raising, since a setup hook that raises ends its worker; an actor there then imports on demand."""
    from hiwar.cluster.warm_workers import mark

    log = logging.getLogger(__name__)
    for step in (lambda: mark("registered"), warm_imports, lambda: mark("warm")):
        try:
            step()
        except Exception:  # noqa: BLE001 - a worker must start even when its warm-up cannot run
            log.exception("hiwar worker warm-up failed; actors will import on demand")
