"""Load models and tokenizers for scoring: once per actor, on the actor's GPU when it has one."""

from __future__ import annotations

from typing import Any

from hiwar.errors import HiwarError
from hiwar.failures import first_line


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


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str, trust_remote_code: bool, dtype: str, device: Any) -> Any:
    """A causal LM in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, trust_remote_code=trust_remote_code, dtype=resolve_dtype(dtype, device)
    )
    return model.to(device).eval()


def model_context(model: Any, tokenizer: Any | None = None) -> int:
    """The longest sequence the model takes (its position limit), for the default sliding window."""
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 1 < limit < 1_000_000 else 2048


def check_loadable(path: str, trust_remote_code: bool) -> str | None:
    """Why ``path`` cannot be loaded (config or tokenizer), or None: a cheap check before any actor starts."""
    from pathlib import Path

    from transformers import AutoConfig

    local = Path(path).expanduser()
    if not local.exists() and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        return f"no such model folder: {path}"
    try:
        AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        load_tokenizer(path, trust_remote_code)
    except Exception as err:  # noqa: BLE001 - any failure here means "cannot load"; the reason is reported
        return f"{type(err).__name__}: {first_line(err)}"
    return None
