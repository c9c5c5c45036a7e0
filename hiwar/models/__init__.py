"""Model architectures hiwar owns (ports of families the libraries no longer run) and the one model loader.

- :mod:`hiwar.models.aragpt2`: AraGPT2 ("Grover" GPT-2 variant), registered as ``model_type: aragpt2``.
- :mod:`hiwar.models.jais`: Jais (ALiBi, SwiGLU, muP scales), registered as ``model_type: jais``.
- :mod:`hiwar.models.vllm_plugin`: the vLLM plugin (entry point ``vllm.general_plugins``) for the same ports.

:func:`register_architectures` makes ``AutoConfig`` / ``AutoModelForCausalLM`` know them, without
``trust_remote_code``. It is idempotent and cheap after the first call; every hiwar loader calls it.
"""

from __future__ import annotations

_registered = False


def register_architectures() -> None:
    """Register hiwar's ports with transformers' auto classes (once per process)."""
    global _registered
    if _registered:
        return
    from hiwar.models import aragpt2, jais

    aragpt2.register()
    jais.register()
    _registered = True
