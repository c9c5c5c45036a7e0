"""The one model loader: every engine, trainer and scorer loads its config, tokenizer and weights here.

It decides, in one place:
- whether a model name is a local folder or a hub id (and says "no such model folder" the same way everywhere);
- hiwar's own ports (AraGPT2, Jais) are registered first, so they load without ``trust_remote_code``; an AraGPT2
  checkpoint whose config still says ``gpt2`` (the hub's older revision) loads as AraGPT2, never as GPT-2;
- the tokenizer's EOS and pad tokens (config keys ``eos_token`` / ``pad_token``, else its own, else pad = EOS);
- strict weights: a load that reports missing, unexpected or mismatched weights is an error naming them, unless
  ``allow_weight_mismatch`` is set;
- the model's context length (its positions), which the callers cap their windows and lengths to.

Every failure is a :class:`~hiwar.errors.HiwarError` whose one line names the config key (``where``) and the fix.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.errors import HiwarError, first_line
from hiwar.models.options import LoadOptions

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
POSITION_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")


@dataclass(frozen=True)
class ModelRef:
    """A model to load: its hub id or folder, how to load it, and the config key that named it (for errors)."""

    source: str
    options: LoadOptions = field(default_factory=LoadOptions)
    where: str = "model"  # the config entry that names the model, e.g. "training.models[0] (aragpt2)"

    def fail(self, problem: str) -> HiwarError:
        """A one-line error about this model: ``generation.model='x': ...`` for a section's model key,
        ``training.models[0] (name): model 'x': ...`` for an entry of a list."""
        if self.where.isidentifier() or "." in self.where and " " not in self.where:
            return HiwarError(f"{self.where}.model={self.source!r}: {problem}")
        return HiwarError(f"{self.where}: model {self.source!r}: {problem}")


def model_ref(source: str, spec: LoadOptions, where: str) -> ModelRef:
    """A :class:`ModelRef` from any config entry that carries the loading keys (its other keys are dropped, so
    the reference stays small for actors)."""
    options = LoadOptions.model_validate(spec.model_dump(include=set(LoadOptions.model_fields)))
    return ModelRef(source=source, options=options, where=where)


def local_folder(ref: ModelRef) -> Path | None:
    """The model's local folder, None for a hub id; a path-like name that does not exist is an error.

    A name is a path when it exists, starts with ``.``, ``/`` or ``~``, or has more than one ``/`` (hub ids
    are ``name`` or ``org/name``).
    """
    source = ref.source.strip()
    if not source:
        raise HiwarError(f"{ref.where}: no model given (a hub id or a local folder)")
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ref.fail("is a file; a model is a folder (config.json, tokenizer and weights) or a hub id")
        return path
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ref.fail("no such model folder")
    return None


def _common_kwargs(ref: ModelRef) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": ref.options.trust_remote_code}
    if ref.options.revision:
        kwargs["revision"] = ref.options.revision
    return kwargs


def _source(ref: ModelRef) -> str:
    folder = local_folder(ref)
    return str(folder) if folder is not None else ref.source.strip()


def _prepare_transformers() -> None:
    """Before any transformers model code is imported: defer the optional packages it imports for features hiwar
    does not use (scikit-learn, scipy.optimize; see :mod:`hiwar.startup`; measured: about 3 s of CPU off each fresh
    actor's start on 2 cores), then register hiwar's ports. Both are idempotent and cheap after the first call."""
    from hiwar.models import register_architectures
    from hiwar.startup import defer_optional_imports

    defer_optional_imports()
    register_architectures()


def load_config(ref: ModelRef) -> Any:
    """The model's transformers config (AraGPT2's for a Grover checkpoint whose config says ``gpt2``).

    Raises:
        HiwarError: no such folder, an unknown architecture, remote code needed but not allowed.
    """
    _prepare_transformers()
    from transformers import AutoConfig

    source = _source(ref)
    try:
        config = AutoConfig.from_pretrained(source, **_common_kwargs(ref))
    except Exception as err:  # noqa: BLE001 - any failure here is the model's or the user's; say which model
        raise ref.fail(f"cannot load the model config ({_config_hint(err)})") from err
    return _as_grover_if_needed(config, source)


def _config_hint(err: BaseException) -> str:
    text = first_line(err)
    if "trust_remote_code" in text or "custom code" in text:
        return (
            "it needs the model's own code from the hub, which hiwar does not port (hiwar ports Jais and AraGPT2); "
            "set trust_remote_code: true only if you trust that code"
        )
    return text


def _as_grover_if_needed(config: Any, source: str) -> Any:
    """An older AraGPT2 revision says ``model_type: gpt2`` over Grover weights: load it as AraGPT2."""
    if getattr(config, "model_type", None) != "gpt2" or not Path(source).is_dir():
        return config
    from hiwar.models.aragpt2 import AraGPT2Config, is_grover_checkpoint

    try:
        grover = is_grover_checkpoint(source)
    except Exception:  # noqa: BLE001 - unreadable weights: check_weight_files names the problem
        grover = False
    if not grover:
        return config
    log.info("%s: GPT-2 config over AraGPT2 (Grover) weights; loading it as AraGPT2", source)
    data = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures", "auto_map")}
    return AraGPT2Config(**data, architectures=["AraGPT2LMHeadModel"])


def model_positions(config: Any) -> int | None:
    """The most tokens the model takes (its position limit); None when the config names none (e.g. ALiBi
    models without a limit)."""
    for key in POSITION_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    return None


def context_length(config: Any, tokenizer: Any | None = None, default: int = 2048) -> int:
    """The model's positions, else its tokenizer's ``model_max_length`` when plausible, else ``default``."""
    positions = model_positions(config)
    if positions:
        return positions
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 1 < limit < 1_000_000 else default


def pick_device(num_threads: float = 1.0) -> Any:
    """CUDA when this process sees a GPU, else CPU with ``num_threads`` torch threads (no
    oversubscription)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(max(1, int(num_threads)))
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: Any) -> Any:
    """A torch dtype: ``auto`` is bfloat16 on GPUs and float32 on CPU (exact scores on CPU)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError as err:
        raise HiwarError(f"dtype {dtype!r}: expected auto, float32, bfloat16 or float16") from err


def load_tokenizer(ref: ModelRef, chat_template: str | None = None) -> Any:
    """The model's tokenizer with an EOS and a pad token (and ``chat_template`` set when given).

    Raises:
        HiwarError: the tokenizer cannot load, has no EOS (and ``eos_token`` is not set), or a named token is
            not in its vocabulary.
    """
    _prepare_transformers()
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(_source(ref), **_common_kwargs(ref))
    except HiwarError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ref.fail(f"cannot load the tokenizer ({first_line(err)})") from err
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return apply_special_tokens(tokenizer, ref)


def apply_special_tokens(tokenizer: Any, ref: ModelRef) -> Any:
    """Set EOS and pad from the config keys, else keep the tokenizer's own; pad falls back to EOS (pads never
    reach the loss, and generation stops at EOS before any pad)."""
    for kind in ("eos", "pad"):
        token = getattr(ref.options, f"{kind}_token")
        if token is None:
            continue
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id) and token != tokenizer.unk_token:
            raise ref.fail(f"{kind}_token {token!r} is not in the tokenizer's vocabulary ({len(tokenizer)} tokens)")
        setattr(tokenizer, f"{kind}_token", token)
    if tokenizer.eos_token_id is None:
        found = [
            t for t in ("<EOS>", "</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>") if t in tokenizer.get_vocab()
        ]
        hint = f" (it has {', '.join(map(repr, found))})" if found else ""
        raise ref.fail(f"the tokenizer names no EOS token; set eos_token under {ref.where} to one of its tokens{hint}")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_weight_files(ref: ModelRef) -> None:
    """Open a local folder's weight files (headers only, cheap at any size): missing or corrupt files fail here,
    before any cluster starts, not on a worker. Hub ids are checked when they load."""
    folder = local_folder(ref)
    if folder is None:
        return
    files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    for index in INDEX_FILES:
        if (folder / index).is_file():
            files += _indexed_shards(ref, folder / index)
    if not files:
        raise ref.fail(f"no weights in the folder (expected {' or '.join(WEIGHT_FILES)}, or a sharded index)")
    for path in files:
        problem = _weight_file_problem(path)
        if problem:
            raise ref.fail(f"weights file {path.name} {problem}")


def _indexed_shards(ref: ModelRef, index: Path) -> list[Path]:
    try:
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ref.fail(f"{index.name} is not a valid weight index ({first_line(err)})") from err
    missing = [n for n in names if not (index.parent / n).is_file()]
    if missing:
        raise ref.fail(f"{index.name} names shard(s) that are missing: {', '.join(missing[:3])}")
    return [index.parent / n for n in names]


def _weight_file_problem(path: Path) -> str | None:
    """Why a weight file cannot be read, or None. safetensors: its header parses; .bin: it is a zip archive."""
    if path.stat().st_size == 0:
        return "is empty"
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # noqa: BLE001 - a corrupt header; a truncated one panics in Rust (BaseException)
            return f"is corrupt ({first_line(err)})"
        return None
    import zipfile

    return None if zipfile.is_zipfile(path) else "is not a PyTorch checkpoint (corrupt or truncated)"


def load_causal_lm(ref: ModelRef, dtype: Any = None, **kwargs: Any) -> Any:
    """The causal LM, its weights checked: missing, unexpected or mismatched weights are an error naming them
    unless ``allow_weight_mismatch`` (then logged).

    Args:
        ref: the model.
        dtype: a torch dtype (None: the config's).
        **kwargs: more ``from_pretrained`` arguments (``attn_implementation``...).
    """
    _prepare_transformers()
    from transformers import AutoModelForCausalLM

    config = load_config(ref)
    check_weight_files(ref)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            _source(ref),
            config=config,
            dtype=dtype,
            output_loading_info=True,
            # Shape mismatches come back in the report (and fail below, named) instead of an opaque raise.
            ignore_mismatched_sizes=True,
            **_common_kwargs(ref),
            **kwargs,
        )
    except HiwarError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ref.fail(f"cannot load the weights ({first_line(err)})") from err
    problem = weight_report(info)
    if problem and not ref.options.allow_weight_mismatch:
        raise ref.fail(
            f"weights do not match {type(model).__name__}: {problem}; set allow_weight_mismatch: true to load anyway"
        )
    if problem:
        log.warning("%s: weights do not match %s: %s", ref.source, type(model).__name__, problem)
    fuse_gelu_tanh(model)
    _note_load(ref)
    return model


# When set, the file each causal-LM load appends a line to (process id, model): how tests count the actor pools
# that load a model (one per model in ``hiwar evaluate``: tests/evaluation/test_one_pool.py).
LOAD_LOG_ENV = "HIWAR_MODEL_LOAD_LOG"


def _note_load(ref: ModelRef) -> None:
    import os

    path = os.environ.get(LOAD_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:  # one short append per line: safe across processes
            fh.write(f"{os.getpid()}\t{ref.source}\n")


def load_for_inference(ref: ModelRef, dtype: str, num_threads: float) -> tuple[Any, Any]:
    """The causal LM ready to score or generate, and its device: on this actor's device (:func:`pick_device`:
    a GPU when it has one, else the CPU with ``num_threads`` torch threads), in ``dtype`` resolved for that device
    (:func:`resolve_dtype`), in eval mode."""
    device = pick_device(num_threads)
    return load_causal_lm(ref, resolve_dtype(dtype, device)).to(device).eval(), device


def fuse_gelu_tanh(model: Any) -> int:
    """Swap transformers' ``gelu_new`` (GPT-2's and AraGPT2's activation, five elementwise kernels in Python) for
    torch's fused GELU with the same tanh formula, one kernel; return how many were swapped.

    Same function, rounding aside (about 1e-7 relative); on these CPUs the five kernels took a quarter of a
    perplexity pass of a small GPT-2. Nothing is saved differently: the config still says ``gelu_new``.
    """
    from transformers.activations import GELUTanh, NewGELUActivation

    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is NewGELUActivation:
                setattr(parent, name, GELUTanh())
                swapped += 1
    return swapped


def weight_report(info: dict[str, Any]) -> str:
    """The loading report's problems in one line ("" when the weights match the class exactly)."""
    parts = []
    for key, label in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"), ("mismatched_keys", "shape")):
        names = sorted(str(item[0] if isinstance(item, (tuple, list)) else item) for item in info.get(key) or ())
        if names:
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts)
