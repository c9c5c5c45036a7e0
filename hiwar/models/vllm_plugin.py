"""hiwar's vLLM plugin (entry point ``vllm.general_plugins: hiwar_models``).

vLLM calls :func:`register` in every process it starts (front end, engine core, workers). It must stay cheap:
the vLLM model classes are registered by ``"module:Class"`` string and imported only when vLLM builds the model.
"""

from __future__ import annotations

# Architecture name (config.json ``architectures``) -> the vLLM model class serving it, imported lazily.
VLLM_MODELS = {
    "JAISLMHeadModel": "hiwar.models.jais_vllm:JAISLMHeadModel",
}


def register() -> None:
    """Register hiwar's model ports with vLLM and its configs with transformers (idempotent)."""
    from vllm import ModelRegistry

    from hiwar.models import register_architectures

    # vLLM reads config.json with AutoConfig: it must know ``model_type: jais`` without trust_remote_code.
    register_architectures()
    known = ModelRegistry.get_supported_archs()
    for arch, target in VLLM_MODELS.items():
        if arch not in known:  # a vLLM that serves the architecture itself keeps its own class
            ModelRegistry.register_model(arch, target)
