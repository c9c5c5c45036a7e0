"""A tiny ArabianGPT-shaped checkpoint: GPT-2 with the AraNizer SentencePiece-BPE tokenizer (from the ``aranizer``
package's JSON file) plus ``<EOS>`` and ``<PAD>`` at 64000 and 64001, 768 positions, as the family's public
fine-tunes lay it out. ``declare=False`` leaves EOS/PAD undeclared in the tokenizer config, as a raw AraNizer
file is (the case hiwar's ``eos_token`` / ``pad_token`` keys are for)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def aranizer_file(name: str = "SP_tokenizer_64.0K.json") -> Path:
    """A tokenizer file shipped by ``aranizer`` (found without importing it: it does not import on current
    setuptools)."""
    spec = importlib.util.find_spec("aranizer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the aranizer package is not installed (scripts/install.sh installs it)")
    folder = Path(spec.submodule_search_locations[0]) / "tokenizers"
    return next(folder.rglob(name))


def build_tiny_arabiangpt(out_dir: Path, declare: bool = True, positions: int = 768) -> Path:
    """Save the tokenizer and a random 2-layer GPT-2 (vocab 64002) to ``out_dir``."""
    import torch
    from tokenizers import AddedToken, Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer.from_file(str(aranizer_file()))
    tok.add_special_tokens([AddedToken("<EOS>", special=True), AddedToken("<PAD>", special=True)])
    names = {"eos_token": "<EOS>", "pad_token": "<PAD>"} if declare else {}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", **names)
    fast.model_max_length = positions
    fast.save_pretrained(out_dir)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=64002,
        n_positions=positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=None,
        eos_token_id=64000,
        pad_token_id=64001,
    )
    GPT2LMHeadModel(config).save_pretrained(out_dir, safe_serialization=True)
    return out_dir
