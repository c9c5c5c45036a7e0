"""AraGPT2 (Grover GPT-2) port: the forward pass against an independent reference, hub layouts, generation, training.

The tiny checkpoints are laid out as the hub lays out ``aubmindlab/aragpt2-mega`` (both config revisions), with
every weight random (norms included), so a misplaced LayerNorm changes the logits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hiwar.models import register_architectures
from hiwar.models.aragpt2 import AraGPT2Config, AraGPT2LMHeadModel, is_grover_checkpoint
from hiwar.tiny_models import build_tiny_aragpt2

NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
TEXTS = ["مرحبا بك، كيف حالك اليوم؟", "السلام عليكم"]


@pytest.fixture(scope="module")
def hub_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Today's hub layout ("aragpt2") and the older one ("gpt2" config over Grover weights), same weights."""
    root = tmp_path_factory.mktemp("aragpt2")
    current = build_tiny_aragpt2(root / "aragpt2", revision="aragpt2")
    older = build_tiny_aragpt2(root / "gpt2", revision="gpt2", tokenizer_dir=current)
    register_architectures()
    return {"aragpt2": current, "gpt2": older}


def _load(folder: Path, **kwargs: object) -> AraGPT2LMHeadModel:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, **NO_DROPOUT, **kwargs).eval()


def _tokenizer(folder: Path, padding_side: str = "right"):  # noqa: ANN202 - a transformers tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


# --- an independent reference, from the architecture's description, on the hub's weight names -----------------


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def reference_logits(folder: Path, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Grover GPT-2 in plain torch: emb_norm(wte + wpe); per block x += attn(x); x = ln_2(x + mlp(ln_1(x)));
    logits = x @ wte^T. Positions count real tokens only; keys at padding are never attended to."""
    w = load_file(str(folder / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    eps, n_head = cfg["layer_norm_epsilon"], cfg["n_head"]
    batch, length = ids.shape
    mask = torch.ones_like(ids) if mask is None else mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][positions]
    x = _layer_norm(x, w["transformer.emb_norm.weight"], w["transformer.emb_norm.bias"], eps)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    # A padding query would see no key at all: let it see itself (its output is never compared).
    allowed = (causal & mask[:, None, :].bool()) | torch.eye(length, dtype=torch.bool)
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        qkv = x @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: weight is (in, out)
        q, k, v = (t.reshape(batch, length, n_head, -1).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        heads = torch.softmax(scores, dim=-1) @ v
        attn = heads.transpose(1, 2).reshape(batch, length, -1) @ w[p + "attn.c_proj.weight"]
        x = x + attn + w[p + "attn.c_proj.bias"]
        h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        h = _gelu_new(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        h = h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = _layer_norm(x + h, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
    return x @ w["transformer.wte.weight"].T


# --- 1. forward pass ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_logits_match_reference_without_mask(hub_folders: dict[str, Path], attn: str) -> None:
    model = _load(hub_folders["aragpt2"], attn_implementation=attn)
    ids = torch.randint(1, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    torch.testing.assert_close(out.logits, reference_logits(hub_folders["aragpt2"], ids), atol=1e-5, rtol=1e-5)
    assert len(out.hidden_states) == model.config.n_layer + 1  # after emb_norm, then after each block


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_logits_match_reference_with_padding(hub_folders: dict[str, Path], attn: str, side: str) -> None:
    folder = hub_folders["aragpt2"]
    model = _load(folder, attn_implementation=attn)
    batch = _tokenizer(folder, side)(TEXTS, return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask == 0).any()  # the texts differ in length: one row is padded
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # what generate passes; equal to arange for right padding
    with torch.no_grad():
        logits = model(ids, attention_mask=mask, position_ids=positions if side == "left" else None).logits
        alone = model(ids[1:, mask[1].bool()]).logits[0]  # the shorter row, unpadded
    real = mask.bool()
    expected = reference_logits(folder, ids, mask)
    torch.testing.assert_close(logits[real], expected[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1][real[1]], alone, atol=1e-5, rtol=1e-5)


def test_packed_sequences_keep_attention_apart(hub_folders: dict[str, Path]) -> None:
    """hiwar's collator packs conversations with position_ids restarting at 0 and no attention mask."""
    folder = hub_folders["aragpt2"]
    model = _load(folder)
    first, second = torch.arange(3, 10)[None], torch.arange(20, 25)[None]
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(7), torch.arange(5)])[None]
    with torch.no_grad():
        logits = model(packed, position_ids=positions, use_cache=False).logits[0]
    torch.testing.assert_close(logits[:7], reference_logits(folder, first)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[7:], reference_logits(folder, second)[0], atol=1e-5, rtol=1e-5)


# --- 2. both hub revisions load without remote code --------------------------------------------------------------


def _assert_clean(info: dict) -> None:
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info


def test_current_revision_loads_with_auto_classes(hub_folders: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = hub_folders["aragpt2"]
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    model, info = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False, output_loading_info=True)
    _assert_clean(info)
    assert type(model) is AraGPT2LMHeadModel and model.config.model_type == "aragpt2"
    assert model.lm_head.weight is model.transformer.wte.weight
    stored = load_file(str(folder / "model.safetensors"))
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, stored["transformer.wte.weight" if name == "lm_head.weight" else name])
    # Registered code wins over the hub's auto_map even where remote code is allowed: nothing is fetched.
    assert type(AutoConfig.from_pretrained(folder, trust_remote_code=True)) is AraGPT2Config
    assert _tokenizer(folder).eos_token_id == 0


def test_older_gpt2_revision_loads_as_aragpt2(hub_folders: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2LMHeadModel

    folder = hub_folders["gpt2"]
    assert json.loads((folder / "config.json").read_text())["model_type"] == "gpt2"
    assert is_grover_checkpoint(str(folder)) and is_grover_checkpoint(str(hub_folders["aragpt2"]))

    direct, info = AraGPT2LMHeadModel.from_pretrained(folder, output_loading_info=True, **NO_DROPOUT)
    _assert_clean(info)
    via_auto, info = AutoModelForCausalLM.from_pretrained(
        folder, config=AraGPT2Config.from_pretrained(folder, **NO_DROPOUT), output_loading_info=True
    )
    _assert_clean(info)
    # What hiwar's loader builds: AraGPT2Config from the GPT-2 config's keys.
    keys = AutoConfig.from_pretrained(folder).to_dict()
    config = AraGPT2Config(**{k: v for k, v in keys.items() if k not in ("model_type", "architectures", "auto_map")})
    from_keys, info = AutoModelForCausalLM.from_pretrained(folder, config=config, output_loading_info=True)
    _assert_clean(info)
    assert type(via_auto) is AraGPT2LMHeadModel and type(from_keys) is AraGPT2LMHeadModel

    ids = torch.randint(1, direct.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = direct.eval()(ids).logits
    torch.testing.assert_close(logits, reference_logits(folder, ids), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, _load(hub_folders["aragpt2"])(ids).logits, atol=0, rtol=0)

    # The stock GPT-2 class "loads" it too, with only a report: that is the bug this port exists for.
    _, stock = GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True)
    assert {"transformer.emb_norm.weight", "transformer.emb_norm.bias"} <= set(stock["unexpected_keys"])
    assert {"transformer.ln_f.weight", "transformer.ln_f.bias"} <= set(stock["missing_keys"])


def test_is_grover_checkpoint_reads_every_weight_layout(hub_folders: dict[str, Path], tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    state = load_file(str(hub_folders["gpt2"] / "model.safetensors"))
    as_bin = tmp_path / "bin"
    as_bin.mkdir()
    torch.save(state, as_bin / "pytorch_model.bin")
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    index = {"metadata": {}, "weight_map": {name: "model-00001-of-00001.safetensors" for name in state}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)).save_pretrained(gpt2)
    (tmp_path / "empty").mkdir()

    assert is_grover_checkpoint(str(as_bin)) and is_grover_checkpoint(str(sharded))
    assert not is_grover_checkpoint(str(gpt2))
    assert not is_grover_checkpoint(str(tmp_path / "empty")) and not is_grover_checkpoint("aubmindlab/aragpt2-mega")
    # A transformers-4 era pytorch_model.bin (mask buffers, lm_head included) loads clean too.
    (as_bin / "config.json").write_text((hub_folders["gpt2"] / "config.json").read_text())
    _, info = AraGPT2LMHeadModel.from_pretrained(as_bin, output_loading_info=True)
    _assert_clean(info)


# --- 3. generation ------------------------------------------------------------------------------------------------


def _greedy_without_cache(model: AraGPT2LMHeadModel, ids: torch.Tensor, steps: int) -> torch.Tensor:
    for _ in range(steps):
        logits = model(ids, use_cache=False).logits[:, -1]
        logits[:, model.config.eos_token_id] = float("-inf")  # as min_new_tokens does in generate
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids


def test_generate_with_cache_matches_greedy_loop_and_batching(hub_folders: dict[str, Path]) -> None:
    folder = hub_folders["aragpt2"]
    model = _load(folder)
    tokenizer = _tokenizer(folder, "left")
    steps = 8
    settings = {"max_new_tokens": steps, "min_new_tokens": steps, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        singles = []
        for text in TEXTS:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            cached = model.generate(ids, attention_mask=torch.ones_like(ids), use_cache=True, **settings)
            assert torch.equal(cached, _greedy_without_cache(model, ids, steps))
            singles.append(cached[0, ids.shape[1] :])
        batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
        assert (batch["attention_mask"][:, 0] == 0).any()  # left padding in play
        batched = model.generate(**batch, use_cache=True, **settings)[:, batch["input_ids"].shape[1] :]
    for row, single in zip(batched, singles, strict=True):
        assert torch.equal(row, single)


# --- 4. saving, training, precision -------------------------------------------------------------------------------


def test_save_and_reload_gives_identical_logits(hub_folders: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    ids = torch.randint(1, 500, (2, 10), generator=torch.Generator().manual_seed(3))
    for revision, folder in hub_folders.items():
        model = AraGPT2LMHeadModel.from_pretrained(folder).eval()
        out = tmp_path / revision
        model.save_pretrained(out)
        saved = json.loads((out / "config.json").read_text())
        assert saved["model_type"] == "aragpt2" and saved["architectures"] == ["AraGPT2LMHeadModel"]
        assert "auto_map" not in saved  # no pointer to remote code the folder does not carry
        reloaded, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
        _assert_clean(info)
        with torch.no_grad():
            assert torch.equal(model(ids).logits, reloaded.eval()(ids).logits)


def test_gradient_checkpointing_gives_the_same_gradients(hub_folders: dict[str, Path]) -> None:
    model = _load(hub_folders["aragpt2"]).train()
    ids = torch.randint(1, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(4))
    labels = ids.clone()
    labels[:, :5] = -100

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(ids, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert all(block.gradient_checkpointing for block in model.transformer.h)
    checkpointed = grads()
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-5, rtol=1e-5, msg=name)


def test_loss_is_shifted_cross_entropy_ignoring_minus_100(hub_folders: dict[str, Path]) -> None:
    model = _load(hub_folders["aragpt2"])
    ids = torch.randint(1, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(5))
    labels = ids.clone()
    labels[0, :4] = -100
    out = model(ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(
        out.logits[:, :-1].reshape(-1, out.logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    torch.testing.assert_close(out.loss, expected)


def test_trainer_steps_with_gradient_checkpointing_lower_loss_and_change_every_weight(
    hub_folders: dict[str, Path], tmp_path: Path
) -> None:
    from transformers import Trainer, TrainingArguments

    model = _load(hub_folders["aragpt2"])
    ids = torch.randint(1, model.config.vocab_size, (4, 16), generator=torch.Generator().manual_seed(6))
    rows = [{"input_ids": row, "labels": row, "attention_mask": torch.ones_like(row)} for row in ids]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        loss_before = model(ids, labels=ids).loss.item()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        weight_decay=0.0,
        warmup_steps=0,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=rows).train()
    assert model.transformer.h[0].gradient_checkpointing
    model.eval()
    with torch.no_grad():
        loss_after = model(ids, labels=ids).loss.item()
    assert loss_after < loss_before - 0.5
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied after training


def test_bf16_forward_runs(hub_folders: dict[str, Path]) -> None:
    model = _load(hub_folders["aragpt2"])
    ids = torch.randint(1, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        full = model(ids).logits
        half = model.to(torch.bfloat16)(ids, attention_mask=torch.ones_like(ids)).logits
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
    assert (half.float() - full).abs().max() < 0.05 * full.abs().max()


def test_lora_all_linear_adapts_the_conv1d_projections(hub_folders: dict[str, Path]) -> None:
    """hiwar's LoRA default (``all-linear``) must find GPT-2's Conv1D layers and leave the tied head alone."""
    peft = pytest.importorskip("peft")
    model = _load(hub_folders["aragpt2"])
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    wrapped = peft.get_peft_model(model, config)
    adapted = {n.rsplit(".", 1)[-1] for n, m in wrapped.named_modules() if hasattr(m, "lora_A") and n}
    assert {"c_attn", "c_proj", "c_fc"} <= adapted and "lm_head" not in adapted
    # Merging (what hiwar's export does) folds the adapters into the Conv1D (in, out) weights correctly.
    for name, param in wrapped.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    ids = torch.randint(1, model.config.vocab_size, (1, 8), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        adapted_logits = wrapped(input_ids=ids).logits
        merged = wrapped.merge_and_unload()
        torch.testing.assert_close(merged(ids).logits, adapted_logits, atol=1e-4, rtol=1e-4)
    assert type(merged) is AraGPT2LMHeadModel


def test_register_is_idempotent(hub_folders: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    from hiwar.models import aragpt2

    aragpt2.register()
    aragpt2.register()
    assert type(AutoModelForCausalLM.from_pretrained(hub_folders["aragpt2"])) is AraGPT2LMHeadModel


def test_unknown_hub_config_keys_are_kept_not_fatal() -> None:
    config = AraGPT2Config(n_layer=1, n_embd=8, n_head=2, n_ctx=64, summary_type="cls_index", auto_map={"x": "y"})
    assert config.num_hidden_layers == 1 and config.hidden_size == 8 and config.n_ctx == 64
    assert "auto_map" not in config.to_dict()
