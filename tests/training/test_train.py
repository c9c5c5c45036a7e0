"""Real Ray Train runs on tiny models: 2 CPU workers with one killed mid-run, LoRA, local mode (a killed
`hiwar demo` resuming its training stage is in tests/test_demo_pipeline.py)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from hiwar.assets import load_seed_conversations
from hiwar.config import RunConfig
from hiwar.dataset_layout import read_split, split_files
from hiwar.lineage import fingerprint
from hiwar.prompts import HIWAR_CHAT_TEMPLATE
from hiwar.records_io import write_parquet
from hiwar.training.callbacks import read_metrics
from hiwar.training.data import IGNORE_INDEX, tokenize_conversation
from hiwar.training.run import run_train
from tests.ray_processes import kill_one_actor
from tests.ray_train_snapshot import wait_for_checkpoint

pytestmark = [pytest.mark.train, pytest.mark.ray]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hiwar dataset folder: 80 seed conversations for training, the rest for validation."""
    records = load_seed_conversations()
    root = tmp_path_factory.mktemp("dataset")
    write_parquet(records[:80], root / "data" / "train-00000.parquet")
    write_parquet(records[80:], root / "data" / "validation-00000.parquet")
    return root


def _training(model: Path, **extra: object) -> dict:
    return {
        "models": [{"name": "tiny", "model": str(model)}],
        "max_seq_len": 256,
        "max_steps": 8,
        "save_steps": 4,
        "eval_steps": 4,
        "logging_steps": 1,
        "learning_rate": 3.0e-3,
        "warmup_steps": 0.0,
        "per_device_train_batch_size": 4,
        "resources_per_worker": {"CPU": 1.0},
        **extra,
    }


def _config(tmp_path: Path, model: Path, **extra: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "run_dir": str(tmp_path / "run"),
            "cluster": {"include_dashboard": False},
            "training": _training(model, **extra),
        }
    )


def _heldout_loss(model: object, tokenizer: object, dataset: Path) -> float:
    """Mean assistant-token loss over the validation split, computed here with plain forward passes."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for conv in read_split(dataset, "validation"):
            ex = tokenize_conversation(tokenizer, conv.messages, 256)
            labels = torch.tensor([ex["labels"]])
            n = int((labels[:, 1:] != IGNORE_INDEX).sum())
            total += float(model(input_ids=torch.tensor([ex["input_ids"]]), labels=labels).loss) * n
            count += n
    return total / count


def _generates(model: object, tokenizer: object) -> None:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "مرحبا"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.fixture(scope="module")
def two_workers(ray_local, tiny_gpt2: Path, dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One Ray Train run of 2 CPU workers, 16 steps, one of whose workers is killed after the first registered
    checkpoint (as on a lost node): the tests below check the model it saved and how it got there. One run for
    both, as each costs most of a minute of start-up here."""
    root = tmp_path_factory.mktemp("two-workers")
    config = _config(root, tiny_gpt2, max_steps=16, save_steps=4, eval_steps=8, max_failures=1)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["models"] = run_train(config, dataset=str(dataset_dir))
        except BaseException as err:  # surfaced below, in the test's thread
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for_checkpoint(
        root / "run" / "train" / "tiny", thread.is_alive, lambda: f"training {outcome}", 400, poll_s=0.2
    )
    kill_one_actor("RayTrainWorker")  # one of the two workers dies
    thread.join(600)
    assert not thread.is_alive() and "error" not in outcome, outcome
    [out] = outcome["models"]
    return {"root": root, "config": config, "out": out}


def test_two_cpu_workers_fine_tune_and_save_a_loadable_model(two_workers: dict, tiny_gpt2, dataset_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, config = two_workers["out"], two_workers["config"]
    assert out == two_workers["root"] / "run" / "models" / "tiny"

    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    tuned = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tuned_params = dict(tuned.named_parameters())
    for name, before in base.named_parameters():
        assert not torch.equal(before, tuned_params[name]), f"{name} did not change"
    assert _heldout_loss(tuned, tokenizer, dataset_dir) < _heldout_loss(base, tokenizer, dataset_dir) - 0.05
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_gpt2).chat_template
    _generates(tuned, tokenizer)

    manifest = json.loads((out / "hiwar_model.json").read_text())
    files = split_files(dataset_dir, "train") + split_files(dataset_dir, "validation")
    assert manifest["dataset"]["fingerprint"] == fingerprint(files)
    assert (manifest["global_step"], manifest["template"], manifest["mask"]) == (
        16,
        "chat_template",
        "assistant",
    )
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 16
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["train_tokens"] > 0 and metrics["eval_loss"] is not None
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows if "eval_loss" in r] == [8, 16]
    assert (out / "config.resolved.yaml").is_file() and (out / "model.safetensors").is_file()

    stamp = (out / "hiwar_model.json").stat().st_mtime_ns  # a finished model is skipped on rerun
    assert run_train(config, dataset=str(dataset_dir)) == [out]
    assert (out / "hiwar_model.json").stat().st_mtime_ns == stamp


def test_local_mode_trains_in_this_process_and_saves_a_loadable_model(ray_local, tiny_gpt2, dataset_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Packed, so batches are length-grouped (group_by_length defaults on with packing): one real run covers both.
    config = _config(tmp_path, tiny_gpt2, num_workers=0, resources_per_worker={"CPU": 2.0}, packing=True)
    [out] = run_train(config, dataset=str(dataset_dir))
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    tuned = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tuned_params = dict(tuned.named_parameters())
    assert all(not torch.equal(p, tuned_params[n]) for n, p in base.named_parameters())
    assert _heldout_loss(tuned, tokenizer, dataset_dir) < _heldout_loss(base, tokenizer, dataset_dir) - 0.05
    _generates(tuned, tokenizer)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["global_step"]) == (1, 8)
    assert metrics["padding_share"] < 0.2  # packed rows batched by length leave little padding
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 8
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r] == list(range(1, 9))


def test_fsdp_is_refused_in_local_mode(tmp_path, tiny_gpt2):
    with pytest.raises(ValueError, match="fsdp shards across Ray Train workers"):
        _config(tmp_path, tiny_gpt2, num_workers=0, fsdp=True, use_gpu=True)


def test_workers_failing_past_max_failures_end_in_one_line(ray_local, tiny_gpt2, dataset_dir, tmp_path, monkeypatch):
    import yaml
    from click.testing import CliRunner
    from ray.train import WorkerGroupError

    import hiwar.training.run as train_run
    from hiwar.cli import cli

    class FailingTrainer:  # what TorchTrainer.fit raises once the worker group failed max_failures + 1 times
        def fit(self) -> None:
            cause = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\n(stack follows)")
            raise WorkerGroupError("[Rank 1 Error Snippet]:\nCUDA out of memory.", {1: cause})

    monkeypatch.setattr(train_run, "_trainer", lambda *args: FailingTrainer())
    config = tmp_path / "run.yaml"
    run_dir = tmp_path / "run"
    config.write_text(yaml.safe_dump({"run_dir": str(run_dir), "training": _training(tiny_gpt2)}))
    result = CliRunner().invoke(cli, ["train", "-c", str(config), "--dataset", str(dataset_dir)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: training.models (tiny): training failed after training.max_failures=0 restart(s): RuntimeError: "
        "CUDA out of memory. Tried to allocate 2.00 GiB; fix the cause and rerun the same command, it resumes "
        f"from the latest checkpoint in {run_dir / 'train' / 'tiny'}"
    )
    assert not (run_dir / "models" / "tiny").exists()


def test_lora_changes_only_adapters_and_saves_a_merged_model(ray_local, tiny_gpt2, dataset_dir, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = tmp_path / "base"  # a base model without a chat template, like AraGPT2
    shutil.copytree(tiny_gpt2, base_dir)
    (base_dir / "chat_template.jinja").unlink(missing_ok=True)
    tok_config = json.loads((base_dir / "tokenizer_config.json").read_text())
    tok_config.pop("chat_template", None)
    (base_dir / "tokenizer_config.json").write_text(json.dumps(tok_config))

    config = _config(
        tmp_path,
        base_dir,
        max_steps=3,
        save_steps=3,
        eval_steps=3,
        num_workers=1,
        lora={"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0},
    )
    [out] = run_train(config, dataset=str(dataset_dir))

    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert adapter and all("lora_" in key for key in adapter)
    assert all(t.abs().sum() > 0 for k, t in adapter.items() if "lora_B" in k)  # B starts at zero: it trained
    base = dict(AutoModelForCausalLM.from_pretrained(base_dir).named_parameters())
    merged = dict(AutoModelForCausalLM.from_pretrained(out).named_parameters())
    changed = {name for name, p in merged.items() if not torch.equal(p, base[name])}
    adapted = {
        name
        for name in base
        if name.endswith(("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"))
    }
    assert changed == adapted  # embeddings, norms and biases are untouched; only adapted weights moved
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_parameters"] == sum(t.numel() for t in adapter.values())

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == HIWAR_CHAT_TEMPLATE
    assert json.loads((out / "hiwar_model.json").read_text())["template"] == "hiwar"
    _generates(AutoModelForCausalLM.from_pretrained(out), tokenizer)


def test_worker_killed_mid_run_restarts_from_the_checkpoint(two_workers: dict) -> None:
    out = two_workers["out"]
    metrics = json.loads((out / "metrics.json").read_text())
    # Ray Train restarted the worker group within the same run; it went on from the registered checkpoint.
    assert metrics["global_step"] == 16 and metrics["world_size"] == 2
    assert 4 <= metrics["resumed_from_step"] < 16 and metrics["resumed_from_step"] % 4 == 0
    # Every step logged once: the lines of steps run again after the checkpoint replaced the first attempt's.
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r] == list(range(1, 17))
