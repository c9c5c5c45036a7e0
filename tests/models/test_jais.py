"""hiwar's Jais port on transformers 5, against a reference forward pass written here from the architecture.

The reference reads the checkpoint's tensors by their hub names and computes, in plain torch: embeddings times
``mup_embeddings_scale``; per block ``x + c_proj(attn(ln_1(x)))`` then ``x + c_proj(c_fc(h) * silu(c_fc2(h)))``
with ``h = ln_2(x)``; causal attention with scores ``q.k / head_dim`` (muP) plus ALiBi ``-slope * distance``;
``ln_f``; logits ``h @ W_out.T`` times ``mup_output_alpha * mup_width_scale``. Conv1D weights are ``[in, out]``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

PROMPTS = ["المستخدم: مرحبا كيف حالك", "ما هي عاصمة مصر؟", "السلام عليكم ورحمة الله وبركاته يا صديقي"]


def reference_slopes(heads: int) -> torch.Tensor:
    """ALiBi slopes, from the paper: 2^(-8i/n) for a power of two n; else those of the power below, then the
    odd-indexed slopes of twice that power."""
    p = 2 ** math.floor(math.log2(heads))
    slopes = [2 ** (-8 * i / p) for i in range(1, p + 1)]
    slopes += [2 ** (-8 * i / (2 * p)) for i in range(1, 2 * p + 1, 2)][: heads - p]
    return torch.tensor(slopes, dtype=torch.float64)


def reference_logits(state: dict[str, torch.Tensor], cfg: dict, ids: list[int]) -> torch.Tensor:
    """Logits [len(ids), vocab] of one unpadded sequence, in float64."""
    t = {k: v.double() for k, v in state.items()}
    d, heads, n = cfg["n_embd"], cfg["n_head"], len(ids)
    hd = d // heads
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = t["transformer.wte.weight"][torch.tensor(ids)]
    if cfg.get("position_embedding_type", "learned") == "learned":
        x = x + t["transformer.wpe.weight"][:n]
    x = x * cfg.get("mup_embeddings_scale", 1.0)
    qk_power = 1.0 if cfg.get("mup_scale_qk_dot_by_d") else 0.5
    pos = torch.arange(n, dtype=torch.float64)
    distance = pos[:, None] - pos[None, :]  # query i, key j: i - j >= 0 where attended
    if cfg.get("position_embedding_type") == "alibi":
        factor = (cfg.get("alibi_scaling") or {}).get("factor", 1.0)
        alibi = -(reference_slopes(heads) / factor)[:, None, None] * distance
    else:
        alibi = torch.zeros(heads, n, n, dtype=torch.float64)
    future = distance < 0

    def ln(v: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(v, (d,), t[f"{name}.weight"], t[f"{name}.bias"], eps)

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}"
        h = ln(x, f"{p}.ln_1")
        qkv = h @ t[f"{p}.attn.c_attn.weight"] + t[f"{p}.attn.c_attn.bias"]
        q, k, v = (m.view(n, heads, hd).transpose(0, 1) for m in qkv.split(d, dim=-1))
        scores = q @ k.transpose(1, 2) / hd**qk_power + alibi
        probs = scores.masked_fill(future, float("-inf")).softmax(-1)
        attn = (probs @ v).transpose(0, 1).reshape(n, d)
        x = x + attn @ t[f"{p}.attn.c_proj.weight"] + t[f"{p}.attn.c_proj.bias"]
        h = ln(x, f"{p}.ln_2")
        up = h @ t[f"{p}.mlp.c_fc.weight"] + t[f"{p}.mlp.c_fc.bias"]
        gate = h @ t[f"{p}.mlp.c_fc2.weight"] + t[f"{p}.mlp.c_fc2.bias"]
        x = x + (up * F.silu(gate)) @ t[f"{p}.mlp.c_proj.weight"] + t[f"{p}.mlp.c_proj.bias"]
    x = ln(x, "transformer.ln_f")
    head = t.get("lm_head.weight", t["transformer.wte.weight"])
    return x @ head.T * cfg.get("mup_output_alpha", 1.0) * cfg.get("mup_width_scale", 1.0)


def read_folder(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors")), json.loads((folder / "config.json").read_text())


def load(folder: Path, **kwargs):
    from transformers import AutoModelForCausalLM

    from hiwar.models import register_architectures

    register_architectures()
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, trust_remote_code=False, output_loading_info=True, **kwargs
    )
    return model.eval(), info


@pytest.fixture(scope="module")
def jais_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny Jais: 3 heads (ALiBi's non-power-of-two rule), tied head, muP scales != 1."""
    from hiwar.tiny_models import build_tiny_jais

    return build_tiny_jais(tmp_path_factory.mktemp("jais") / "tiny")


@pytest.fixture(scope="module")
def jais(jais_dir: Path):
    return load(jais_dir)[0]


@pytest.fixture(scope="module")
def tokenizer(jais_dir: Path):
    from transformers import AutoTokenizer

    from hiwar.models import register_architectures

    register_architectures()  # AutoTokenizer reads config.json too: without it, the auto_map asks for remote code
    return AutoTokenizer.from_pretrained(jais_dir, padding_side="left")


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def test_slopes_follow_the_alibi_formula() -> None:
    from hiwar.models.jais import alibi_slopes

    for heads in (1, 2, 3, 4, 5, 6, 8, 12, 40, 64):
        torch.testing.assert_close(torch.tensor(alibi_slopes(heads), dtype=torch.float64), reference_slopes(heads))
    # Jais-13b's 40 heads: 32 slopes 2^(-i/4), then 2^(-1/8), 2^(-3/8), ... 2^(-15/8).
    assert alibi_slopes(40)[32:] == pytest.approx([2 ** (-k / 8) for k in range(1, 16, 2)])


def test_hub_folder_loads_without_remote_code_and_with_no_key_left_over(jais_dir: Path) -> None:
    from hiwar.models.jais import JaisConfig, JAISLMHeadModel

    model, info = load(jais_dir)
    assert isinstance(model, JAISLMHeadModel) and isinstance(model.config, JaisConfig)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert info["mismatched_keys"] == set() and info["error_msgs"] == []
    assert not list(jais_dir.glob("*.py"))  # the auto_map points to code that is not there: it must not be needed
    assert model.config.auto_map["AutoModelForCausalLM"] == "modeling_jais.JAISLMHeadModel"
    stored, _ = read_folder(jais_dir)
    assert set(stored) == set(model.state_dict()) - {"lm_head.weight"}  # tied head: stored once, as on the hub
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()


@pytest.mark.parametrize("heads", [3, 4])
def test_logits_match_the_reference(tmp_path: Path, jais_dir: Path, heads: int) -> None:
    from hiwar.tiny_models import build_tiny_jais

    folder = build_tiny_jais(tmp_path / "m", tokenizer_dir=jais_dir, hidden=32 * heads, heads=heads, seed=heads)
    state, cfg = read_folder(folder)
    assert cfg["mup_embeddings_scale"] != 1 and cfg["mup_output_alpha"] * cfg["mup_width_scale"] != 1
    model, _ = load(folder)
    ids = list(range(5, 45, 3))
    with torch.no_grad():
        got = model(torch.tensor([ids])).logits[0].double()
    torch.testing.assert_close(got, reference_logits(state, cfg, ids), atol=1e-5, rtol=1e-5)


def test_left_padded_batch_matches_the_reference_per_sequence(jais, jais_dir: Path, tokenizer) -> None:
    state, cfg = read_folder(jais_dir)
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    assert (batch["attention_mask"] == 0).any()  # there is padding to mask
    with torch.no_grad():
        logits = jais(**batch).logits.double()
    for row, text in enumerate(PROMPTS):
        ids = encode(tokenizer, text)
        torch.testing.assert_close(logits[row, -len(ids) :], reference_logits(state, cfg, ids), atol=1e-5, rtol=1e-5)


def test_untied_head_and_learned_positions_and_alibi_scaling_match_the_reference() -> None:
    from hiwar.models.jais import JaisConfig, JAISLMHeadModel

    base = dict(vocab_size=50, n_positions=32, n_embd=64, n_layer=2, n_head=2, n_inner=96)
    base.update(activation_function="swiglu", mup_embeddings_scale=3.0, mup_output_alpha=1.5, mup_width_scale=0.5)
    ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    for extra in (
        {"position_embedding_type": "learned", "tie_word_embeddings": False},
        {"position_embedding_type": "alibi", "alibi_scaling": {"type": "linear", "factor": 2.0}},
        {"position_embedding_type": "alibi", "mup_scale_qk_dot_by_d": True, "tie_word_embeddings": False},
    ):
        cfg = {**base, **extra}
        torch.manual_seed(0)
        model = JAISLMHeadModel(JaisConfig(**cfg)).eval()
        for p in model.parameters():  # random norms and biases too
            if p.requires_grad:
                p.data.normal_(0.0, 0.3)
        state = dict(model.state_dict())
        if cfg.get("tie_word_embeddings", True):
            state.pop("lm_head.weight")
        with torch.no_grad():
            got = model(torch.tensor([ids])).logits[0].double()
        torch.testing.assert_close(got, reference_logits(state, cfg, ids), atol=1e-5, rtol=1e-5)


def test_generate_with_cache_equals_a_greedy_loop_without_cache(jais, tokenizer) -> None:
    ids = torch.tensor([encode(tokenizer, PROMPTS[0])])
    loop, loop_logits = ids, []
    with torch.no_grad():
        for _ in range(12):
            logits = jais(loop, use_cache=False).logits[:, -1]
            loop_logits.append(logits)
            loop = torch.cat([loop, logits.argmax(-1, keepdim=True)], dim=1)
        out = jais.generate(
            ids, max_new_tokens=12, do_sample=False, use_cache=True, output_logits=True, return_dict_in_generate=True
        )
    assert out.sequences.tolist() == loop.tolist()
    assert len(set(loop[0, ids.shape[1] :].tolist())) > 3  # a real path through the vocabulary, not one token
    torch.testing.assert_close(torch.cat(out.logits), torch.cat(loop_logits), atol=1e-5, rtol=1e-5)


def test_left_padded_batched_generate_equals_unbatched(jais, tokenizer) -> None:
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        batched = jais.generate(**batch, max_new_tokens=10, do_sample=False)[:, batch["input_ids"].shape[1] :]
        for row, text in enumerate(PROMPTS):
            alone = jais.generate(torch.tensor([encode(tokenizer, text)]), max_new_tokens=10, do_sample=False)
            assert batched[row].tolist() == alone[0, -10:].tolist()


def test_labels_give_the_shifted_cross_entropy(jais, tokenizer) -> None:
    ids = torch.tensor([encode(tokenizer, PROMPTS[1])])
    labels = ids.clone()
    labels[0, :2] = -100
    with torch.no_grad():
        out = jais(ids, labels=labels)
    expected = F.cross_entropy(out.logits[0, :-1], labels[0, 1:], ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)


def test_save_and_reload_round_trip(tmp_path: Path, jais, tokenizer) -> None:
    from safetensors.torch import load_file

    jais.save_pretrained(tmp_path / "saved")
    reloaded, info = load(tmp_path / "saved")
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    ignore = {"_name_or_path": None, "transformers_version": None}
    assert reloaded.config.to_dict() | ignore == jais.config.to_dict() | ignore
    saved = load_file(str(tmp_path / "saved" / "model.safetensors"))
    assert "transformer.relative_pe.slopes" in saved and "lm_head.weight" not in saved
    ids = torch.tensor([encode(tokenizer, PROMPTS[2])])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, jais(ids).logits, atol=0, rtol=0)


def test_old_checkpoints_with_mask_buffers_load_cleanly(tmp_path: Path, jais_dir: Path, jais) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "old"
    shutil.copytree(jais_dir, folder)
    state = load_file(str(folder / "model.safetensors"))
    n = json.loads((folder / "config.json").read_text())["n_positions"]
    for i in range(2):  # as transformers 4.28's GPT-2 code saved them, plus a stored copy of the tied head
        state[f"transformer.h.{i}.attn.bias"] = torch.ones(n, n, dtype=torch.bool).tril().view(1, 1, n, n)
        state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    state["lm_head.weight"] = state["transformer.wte.weight"].clone()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    model, info = load(folder)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    ids = torch.tensor([list(range(1, 20))])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, jais(ids).logits, atol=0, rtol=0)


def test_config_reads_hub_aliases_and_rejects_bad_alibi_scaling() -> None:
    from hiwar.models.jais import JaisConfig

    cfg = JaisConfig(embeddings_scale=14.6, width_scale=0.5, scale_qk_dot_by_d=True, auto_map={"AutoConfig": "x.Y"})
    assert (cfg.mup_embeddings_scale, cfg.output_logits_scale, cfg.mup_scale_qk_dot_by_d) == (14.6, 0.5, True)
    assert JaisConfig(n_embd=64, n_head=2, mup_scale_qk_dot_by_d=True).attn_scale == 1 / 32
    assert JaisConfig(n_embd=64, n_head=2).attn_scale == pytest.approx(32**-0.5)
    for bad in ({"type": "linear", "factor": 1}, {"type": "dynamic", "factor": 2.0}, {"type": "linear"}):
        with pytest.raises(ValueError, match="alibi_scaling"):
            JaisConfig(alibi_scaling=bad)


def test_register_is_idempotent() -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from hiwar.models.jais import JaisConfig, JAISLMHeadModel, register

    register()
    register()
    assert type(AutoConfig.for_model("jais")) is JaisConfig
    assert AutoModelForCausalLM.from_config(JaisConfig(n_layer=1, n_embd=32, n_head=2)).__class__ is JAISLMHeadModel


def test_slopes_stay_frozen_in_training_and_float32_in_bf16(jais_dir: Path) -> None:
    model, _ = load(jais_dir)
    model.train()
    slopes = model.transformer.relative_pe.slopes
    before = slopes.detach().clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1, weight_decay=0.1)
    ids = torch.tensor([list(range(3, 30))])
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    assert slopes.grad is None and torch.equal(slopes, before)
    half, _ = load(jais_dir, dtype=torch.bfloat16)
    assert half.transformer.relative_pe.slopes.dtype == torch.float32
    assert half.transformer.wte.weight.dtype == torch.bfloat16
    with torch.no_grad():
        logits = half(ids, attention_mask=torch.ones_like(ids).index_fill(1, torch.tensor([0, 1]), 0)).logits
    assert torch.isfinite(logits).all()
