"""The trained model folder: weights, tokenizer with its chat template, config, lineage and metrics.

    model.safetensors, config.json, generation_config.json   loads with AutoModelForCausalLM and vLLM
    tokenizer files + chat_template.jinja                       the template training used
    adapter/                                                    LoRA runs: the adapter alone (peft)
    trainer_state.json                                          Hugging Face's state at the last step
    config.resolved.yaml, dataset.json, data_stats.json         what it was trained with, and on
    metrics.json, metrics.jsonl                                 final metrics and the training log
    hiwar_model.json                                            manifest and completion marker (hiwar.markers),
                                                                written last

The folder is assembled beside its destination and renamed into place: a killed export leaves no half model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiwar.lineage import write_json
from hiwar.markers import write_marker
from hiwar.run_layout import MODEL_MARKER

if TYPE_CHECKING:
    from hiwar.models.loader import ModelRef

_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin")


def _copy_weights(checkpoint: Path, dest: Path) -> None:
    for item in checkpoint.iterdir():
        if item.is_file() and item.name not in _TRAINING_STATE and not item.name.startswith("rng_state"):
            shutil.copy2(item, dest / item.name)


def _merge_lora(checkpoint: Path, base_model: ModelRef, dest: Path) -> None:
    """Save base + adapter merged into plain weights, and the adapter alone under ``adapter/``."""
    import torch
    from peft import PeftModel

    from hiwar.models.loader import load_causal_lm

    adapter = dest / "adapter"
    adapter.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, adapter / name)
    shutil.copy2(checkpoint / "trainer_state.json", dest / "trainer_state.json")
    base = load_causal_lm(base_model, torch.float32)
    merged = PeftModel.from_pretrained(base, str(checkpoint)).merge_and_unload()
    merged.save_pretrained(dest)


def export_model(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    tokenizer: Any,
    lora: bool,
    base_model: ModelRef | None = None,
    config: Any,
    files: dict[str, dict[str, Any]],
    manifest: dict[str, Any],
    key: dict[str, Any],
    metrics_log: str | Path | None = None,
) -> Path:
    """Write the model folder from the final Hugging Face checkpoint.

    Args:
        checkpoint: the Hugging Face checkpoint folder (inside Ray Train's last checkpoint).
        out_dir: destination; replaced if it exists without a manifest.
        tokenizer: the tokenizer training used (with its chat template and pad token).
        lora: the checkpoint holds a LoRA adapter, to be merged into ``base_model``.
        base_model: the base model, to load for the merge (LoRA only).
        config: the resolved run config (written as ``config.resolved.yaml``).
        files: extra JSON files to write, by name (``dataset.json``, ``metrics.json``...).
        manifest: the lineage fields of ``hiwar_model.json``.
        key: the model's completion key (:func:`hiwar.training.plan.model_key`), written into ``hiwar_model.json``.
        metrics_log: the training's ``metrics.jsonl``, copied beside the model.
    """
    from hiwar.config import save_resolved

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if lora:
        _merge_lora(checkpoint, base_model, partial)
    else:
        _copy_weights(checkpoint, partial)
    tokenizer.save_pretrained(partial)
    save_resolved(config, partial)
    for name, data in files.items():
        write_json(partial / name, data)
    if metrics_log is not None and Path(metrics_log).exists():
        shutil.copy2(metrics_log, partial / "metrics.jsonl")
    write_marker(partial / MODEL_MARKER, key, **manifest)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return out_dir
