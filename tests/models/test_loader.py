"""The one model loader: path vs hub id, strict weights, EOS/pad from the config, context caps, <unk> report, and
ArabianGPT's real tokenizer family (AraNizer) on a tiny checkpoint laid out like the family's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hiwar.errors import ConfigError, HiwarError
from hiwar.models.loader import ModelRef, check_weight_files, load_causal_lm, load_tokenizer, local_folder
from hiwar.models.options import LoadOptions
from tests.models.arabiangpt import build_tiny_arabiangpt

REPLIES = ["القاهرة هي العاصمة.", "عفوا يا صديقي"]
MESSAGES = [
    {"role": "user", "content": "ما عاصمة مصر؟"},
    {"role": "assistant", "content": REPLIES[0]},
    {"role": "user", "content": "شكرا"},
    {"role": "assistant", "content": REPLIES[1]},
]


@pytest.fixture(scope="module")
def arabiangpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_arabiangpt(tmp_path_factory.mktemp("agpt") / "declared")


@pytest.fixture(scope="module")
def arabiangpt_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_arabiangpt(tmp_path_factory.mktemp("agpt") / "raw", declare=False)


def _ref(path: Path | str, where: str = "training.models[0] (m)", **options: object) -> ModelRef:
    return ModelRef(str(path), LoadOptions(**options), where)


@pytest.mark.parametrize("name", ["./nope", "/no/such/model", "~/nope-hiwar", "a/b/c"])
def test_a_path_that_does_not_exist_is_no_such_folder(name: str) -> None:
    with pytest.raises(HiwarError, match=r"^training.models\[0\] \(m\): model '.*': no such model folder$"):
        local_folder(_ref(name))


def test_a_hub_id_is_not_a_path_and_fails_offline_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from hiwar.models.loader import load_config

    assert local_folder(_ref("riotu-lab/ArabianGPT-08B-V2")) is None
    with pytest.raises(HiwarError) as err:
        load_config(_ref("riotu-lab/ArabianGPT-08B-V2", where="generation"))
    text = str(err.value)
    assert text.startswith("generation.model='riotu-lab/ArabianGPT-08B-V2': cannot load the model config")
    assert "\n" not in text


def test_weights_that_do_not_match_the_class_are_named(tiny_gpt2: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny_gpt2, bad)
    state = load_file(str(bad / "model.safetensors"))
    state["transformer.emb_norm.weight"] = state.pop("transformer.ln_f.weight")  # a Grover name on GPT-2
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(HiwarError) as err:
        load_causal_lm(_ref(bad))
    text = str(err.value)
    assert "weights do not match GPT2LMHeadModel" in text
    assert "missing: transformer.ln_f.weight" in text and "unexpected: transformer.emb_norm.weight" in text
    assert "allow_weight_mismatch" in text and "\n" not in text
    model = load_causal_lm(_ref(bad, allow_weight_mismatch=True))  # the explicit flag lets it load
    assert type(model).__name__ == "GPT2LMHeadModel"


def test_missing_and_corrupt_weight_files_fail_before_loading(tiny_gpt2: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-weights"
    shutil.copytree(tiny_gpt2, empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(HiwarError, match="no weights in the folder"):
        check_weight_files(_ref(empty))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_gpt2, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    with pytest.raises(HiwarError, match="weights file model.safetensors is corrupt"):
        check_weight_files(_ref(corrupt))
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_gpt2, sharded)
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(HiwarError, match="names shard.s. that are missing: model-00002-of-00002.safetensors"):
        check_weight_files(_ref(sharded))


def test_aranizer_without_eos_gets_one_line_naming_the_key(arabiangpt_raw: Path) -> None:
    with pytest.raises(HiwarError) as err:
        load_tokenizer(_ref(arabiangpt_raw))
    text = str(err.value)
    assert "the tokenizer names no EOS token; set eos_token under training.models[0] (m)" in text
    assert "(it has '<EOS>')" in text and "\n" not in text
    with pytest.raises(HiwarError, match="eos_token '</s>' is not in the tokenizer's vocabulary"):
        load_tokenizer(_ref(arabiangpt_raw, eos_token="</s>"))


def test_aranizer_with_the_config_keys_pads_and_ends_as_the_family_does(arabiangpt_raw: Path) -> None:
    tokenizer = load_tokenizer(_ref(arabiangpt_raw, eos_token="<EOS>", pad_token="<PAD>"))
    assert (tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id) == (64000, 64001, 0)
    only_eos = load_tokenizer(_ref(arabiangpt_raw, eos_token="<EOS>"))
    assert only_eos.pad_token_id == 64000  # pad falls back to EOS


def test_aranizer_masks_are_exactly_the_replies_plus_eos(arabiangpt: Path) -> None:
    from hiwar.training.data import IGNORE_INDEX, tokenize_conversation

    tokenizer = load_tokenizer(_ref(arabiangpt))
    encoded = tokenize_conversation(tokenizer, MESSAGES, 1000)
    scored = [t for t, label in zip(encoded["input_ids"], encoded["labels"], strict=True) if label != IGNORE_INDEX]
    expected = []
    for reply in REPLIES:  # each reply tokenized on its own, then the family's <EOS> (64000)
        expected += tokenizer(reply, add_special_tokens=False)["input_ids"] + [64000]
    assert scored == expected
    assert all(label in (IGNORE_INDEX, tok) for tok, label in zip(encoded["input_ids"], encoded["labels"], strict=True))


def test_diacritics_the_sentencepiece_aranizer_cannot_read_are_reported(arabiangpt: Path) -> None:
    from hiwar.training.data import prepare_split

    tokenizer = load_tokenizer(_ref(arabiangpt))
    voweled = [{"role": "user", "content": "مرحبا"}, {"role": "assistant", "content": "مُحَمَّدٌ يُحِبُّ القِرَاءَةَ"}]
    stats = prepare_split(tokenizer, [MESSAGES, voweled], 1000).stats
    ids = tokenizer("مُحَمَّدٌ يُحِبُّ القِرَاءَةَ", add_special_tokens=False)["input_ids"]
    assert stats.unk_tokens == ids.count(0) > 0  # <unk> is id 0 in AraNizer
    assert stats.unk_share == pytest.approx(stats.unk_tokens / stats.tokens)
    assert {"ُ", "َ", "ّ", "ٌ", "ِ"} <= set(stats.unk_characters)  # damma, fatha, shadda, dammatan, kasra


def test_max_seq_len_is_capped_to_the_positions_or_refused_when_set(arabiangpt: Path, tmp_path: Path) -> None:
    from hiwar.config import load_config
    from hiwar.training.run import fit_max_seq_len

    model = [f"training.models=[{{name: agpt, model: {arabiangpt}}}]"]
    default = load_config(None, model)
    spec = default.training.models[0]
    assert default.training.max_seq_len == 1024
    assert fit_max_seq_len(default, spec).max_seq_len == 768  # capped: the default was not the user's choice
    explicit = load_config(None, [*model, "training.max_seq_len=2048"])
    with pytest.raises(ConfigError, match=r"training.max_seq_len=2048: above agpt's 768 positions"):
        fit_max_seq_len(explicit, explicit.training.models[0])
    fits = load_config(None, [*model, "training.max_seq_len=512"])
    assert fit_max_seq_len(fits, fits.training.models[0]).max_seq_len == 512


def test_a_long_conversation_never_reaches_past_the_positions(arabiangpt: Path) -> None:
    """Without the cap, a conversation longer than 768 tokens crashed in the position embedding."""
    import torch

    from hiwar.training.data import prepare_split

    tokenizer = load_tokenizer(_ref(arabiangpt))
    long_turns = [m for _ in range(200) for m in MESSAGES]
    split = prepare_split(tokenizer, [long_turns], 768)
    assert split.stats.truncated == 1 and max(len(s["input_ids"]) for s in split.sequences) <= 768
    model = load_causal_lm(_ref(arabiangpt))
    with torch.no_grad():
        model(torch.tensor([split.sequences[0]["input_ids"]]))


def test_weights_of_another_shape_are_named(tiny_gpt2: Path, tmp_path: Path) -> None:
    shaped = tmp_path / "shaped"
    shutil.copytree(tiny_gpt2, shaped)
    config = json.loads((shaped / "config.json").read_text())
    (shaped / "config.json").write_text(json.dumps({**config, "n_inner": 8}))  # the MLP's weights are 4 x 64 wide
    with pytest.raises(HiwarError) as err:
        load_causal_lm(_ref(shaped))
    assert "weights do not match GPT2LMHeadModel: shape: transformer.h.0.mlp.c_fc.bias" in str(err.value)
    assert "\n" not in str(err.value)


def test_gelu_new_is_fused_and_logits_unchanged(tiny_gpt2: Path) -> None:
    """The loader swaps GPT-2's five-kernel ``gelu_new`` for torch's fused tanh GELU: one per layer, and the
    logits equal a stock transformers load of the same folder."""
    import torch
    from transformers import GPT2LMHeadModel
    from transformers.activations import GELUTanh, NewGELUActivation

    from hiwar.models.loader import ModelRef, load_causal_lm

    ours = load_causal_lm(ModelRef(str(tiny_gpt2)), torch.float32).eval()
    stock = GPT2LMHeadModel.from_pretrained(str(tiny_gpt2), dtype=torch.float32).eval()
    kinds = [type(m) for m in ours.modules()]
    assert kinds.count(GELUTanh) == stock.config.n_layer and NewGELUActivation not in kinds
    assert sum(type(m) is NewGELUActivation for m in stock.modules()) == stock.config.n_layer
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, stock(ids).logits, rtol=1e-5, atol=1e-5)
