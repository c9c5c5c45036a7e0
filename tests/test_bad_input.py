"""User mistakes, one class per test: each is one line on stderr naming the file, key or row, exit status 2, no
traceback, and nothing started (no Ray, no output written) before the mistake is found."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hiwar.assets import load_seed_conversations
from hiwar.cli import cli
from hiwar.records_io import write_jsonl

BAD_BYTE = b"\xff"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line(result: Result, *words: str, code: int = 2) -> str:
    """The single stderr line of a failed command, checked: status, one line, no traceback, ``words`` in it."""
    assert isinstance(result.exception, SystemExit), result.exception  # a HiwarError, not a crash
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def unwritable_dir(path: Path) -> Iterator[Path]:
    """A folder nobody may write in, root included: immutable (chattr +i); chmod only protects from non-root."""
    path.mkdir(parents=True)
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0:
        try:
            yield path
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    elif os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
    else:
        pytest.skip("running as root without chattr: no way to make a folder root cannot write")


@pytest.fixture
def seed_jsonl(tmp_path: Path) -> Path:
    return write_jsonl(load_seed_conversations()[:6], tmp_path / "convs.jsonl")


@pytest.fixture
def export(tmp_path: Path, seed_jsonl: Path) -> Path:
    """A human-eval export (two blank rater sheets and the key) of the seed conversations."""
    out = tmp_path / "he"
    result = invoke("human-eval", "export", seed_jsonl, "--model", "m", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_files_that_are_not_utf8(tmp_path: Path, seed_jsonl: Path, export: Path) -> None:
    # A config with one stray byte in a comment, through the real console script: no traceback anywhere.
    config = tmp_path / "run.yaml"
    config.write_bytes(b"seed: 3\n# caf" + BAD_BYTE + b"\ngeneration:\n  engine: vllm\n")
    hiwar = Path(sys.executable).with_name("hiwar")
    proc = subprocess.run([str(hiwar), "config", "-c", str(config)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"Error: {config}: line 2 (byte offset 13): byte 0xff is not UTF-8 text; save the file as UTF-8"
    )
    # A JSONL dataset (line 3 holds the byte), read by training and by human-eval export alike.
    data = tmp_path / "bad.jsonl"
    lines = seed_jsonl.read_bytes().splitlines(keepends=True)
    data.write_bytes(b"".join(lines[:2]) + lines[2].replace(b'"id"', b'"i' + BAD_BYTE + b'd"', 1))
    where = f"{data}: line 3 (byte offset {len(lines[0]) + len(lines[1]) + 3}): byte 0xff is not UTF-8"
    one_line(invoke("train", "--dataset", data, "--set", "training.models=[{name: a, model: nowhere}]"), where)
    one_line(invoke("human-eval", "export", data, "--model", "m", "--out", tmp_path / "he2"), where)
    # A rater sheet: analyze lists every sheet's problem, one per line; this one names line and byte.
    sheet = export / "sheets" / "rater-1.csv"
    sheet.write_bytes(sheet.read_bytes().replace(b"item", b"it" + BAD_BYTE + b"em", 1))
    result = invoke("human-eval", "analyze", export)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"  {sheet}: line 1 (byte offset 5): byte 0xff is not UTF-8 text; save it as 'CSV UTF-8'" in result.stderr


def test_output_locations_that_cannot_be_written(tmp_path: Path, seed_jsonl: Path, export: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n", encoding="utf-8")
    under = a_file / "sub"
    model = "training.models=[{name: a, model: nowhere}]"
    one_line(
        invoke("generate", "--set", f"generation.output_dir={a_file}"), f"generation.output_dir={a_file}: is a file"
    )
    one_line(
        invoke("train", "--set", f"run_dir={under}", "--set", model), f"run_dir={under / 'models' / 'a'}: lies under"
    )
    one_line(invoke("evaluate", "-m", "x", "--set", f"evaluation.output_dir={under}"), "evaluation.output_dir=")
    one_line(invoke("human-eval", "export", seed_jsonl, "--model", "m", "--out", a_file), f"--out={a_file}: is a file")
    one_line(invoke("human-eval", "analyze", export, "--out", under), f"--out={under}: lies under {a_file}, which is")
    # The pipeline checks every stage's folders before the first stage: nothing is written, no Ray starts.
    stages = f"evaluation.output_dir={under}"
    one_line(invoke("pipeline", "--set", f"run_dir={tmp_path / 'run'}", "--set", stages), "evaluation.output_dir=")
    assert not (tmp_path / "run").exists()
    with unwritable_dir(tmp_path / "locked") as locked:
        one_line(invoke("generate", "--set", f"run_dir={locked}"), f"run_dir={locked / 'dataset'}: cannot write in")
        assert not (locked / "dataset").exists()


def test_huge_grid_with_a_small_limit() -> None:
    from hiwar.generation.config import GridConfig
    from hiwar.generation.grid import build_grid

    start = time.perf_counter()
    rows = build_grid(GridConfig(target_total=10**12, limit=3), "v1", 0)
    assert len(rows) == 3 and {r.sample_index for r in rows} == {0}
    assert time.perf_counter() - start < 5  # rows are made per sample index: the grid is never built whole
    result = invoke("generate", "--set", "generation.grid.target_total=1000000000000")
    one_line(result, "generation.grid: target_total=1000000000000 makes 1,000,000,000,000 rows", "grid.limit")


def test_unreachable_cluster_times_out(tmp_path: Path, seed_jsonl: Path, tiny_gpt2: Path) -> None:
    # The real console script, in its own process: a Ray that other tests started in this one would answer instead.
    address = f"127.0.0.1:{free_port()}"
    hiwar = Path(sys.executable).with_name("hiwar")
    start = time.perf_counter()
    sets = [f"run_dir={tmp_path}", f"training.models=[{{name: a, model: '{tiny_gpt2}'}}]"]
    sets += [f"cluster.address={address}", "cluster.connect_timeout_s=1"]
    args = [str(hiwar), "--log-level", "ERROR", "train", "--dataset", str(seed_jsonl)]
    proc = subprocess.run(args + [a for s in sets for a in ("--set", s)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error: ")]
    assert f"cluster.address='{address}': no Ray cluster answered" in line and "within 1 s" in line
    assert time.perf_counter() - start < 60
    start = time.perf_counter()
    result = invoke("doctor", "--address", address, "--timeout", "1")  # doctor reports it and goes on
    assert result.exit_code == 0 and f"--address='{address}': no Ray cluster answered" in result.output
    assert time.perf_counter() - start < 60


def test_wrong_words(tmp_path: Path, export: Path) -> None:
    one_line(invoke("jobs", "status", ""), "job id '': give a job id")
    one_line(
        invoke("config", "--set", "generation.engine=[a"), "--set 'generation.engine=[a': value: line 1: not valid"
    )
    # A rater sheet replaced by unrelated text names the columns it lacks, not "no scores filled in".
    (export / "sheets" / "rater-1.csv").write_text("Dear team,\nplease find my notes below.\n", encoding="utf-8")
    (export / "sheets" / "rater-1.jsonl").unlink()
    result = invoke("human-eval", "analyze", export)
    assert result.exit_code == 2 and "Traceback" not in result.output
    criteria = json.loads((export / "key.json").read_text(encoding="utf-8"))["criteria"]
    missing = ", ".join(repr(c) for c in ["item", *criteria])
    assert f"rater-1.csv: not a rating sheet: column(s) {missing} missing" in result.stderr


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("training:\n  learning_rate: .inf\n", "training.learning_rate: Input should be a finite number (got inf)"),
        ("generation:\n  engine_kwargs: {gpu_memory_utilization: .nan}\n", "gpu_memory_utilization: not a finite"),
        ("generation:\n  validation: {min_turns: 12}\n", "min_turns (12) is above max_turns (10)"),
        ("generation:\n  sampling: {top_k: -7}\n", "generation.sampling.top_k: Input should be greater than or equal"),
        ("seed: 1\ngeneration:\n  engine: vllm\nseed: 2\n", "key 'seed' is given twice (lines 1 and 4)"),
    ],
)
def test_bad_values_are_rejected(tmp_path: Path, text: str, words: str) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(text, encoding="utf-8")
    one_line(invoke("config", "-c", config), f"Error: {config}: ", words)


def test_submit_checks_the_command_here() -> None:
    server = f"http://127.0.0.1:{free_port()}"  # nothing answers there: the check must come first
    one_line(invoke("submit", "--address", server, "--", "bogus-subcommand"), "No such command 'bogus-subcommand'")
    one_line(invoke("submit", "--address", server, "--", "jobs", "statuz", "x"), "Did you mean 'status'?")
    one_line(invoke("submit", "--address", server, "--", "generate", "--bogus"), "No such option '--bogus'")
    one_line(invoke("submit", "--address", server, "--", "doctor"), "no Ray job server answers")  # a good command


def test_empty_conversations_are_refused_by_every_command(tmp_path: Path) -> None:
    rows = [c.to_row() for c in load_seed_conversations()[:2]]
    rows[1]["messages"] = [{"role": "user", "content": " "}, {"role": "assistant", "content": ""}]
    data = tmp_path / "empty.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    where = f"{data}: line 2: every message's 'content' is empty"
    model = "training.models=[{name: a, model: nowhere}]"
    one_line(invoke("train", "--dataset", data, "--set", model, "--set", f"run_dir={tmp_path / 'r'}"), where)
    one_line(invoke("evaluate", "-m", "nowhere", "--dataset", data, "--set", f"run_dir={tmp_path / 'r'}"), where)
    one_line(invoke("human-eval", "export", data, "--model", "m", "--out", tmp_path / "he"), where)


def test_pipeline_checks_every_stage_before_the_first(tmp_path: Path, tiny_gpt2: Path) -> None:
    run = tmp_path / "run"
    result = invoke(
        "pipeline",
        "--set",
        f"run_dir={run}",
        "--set",
        f"generation.model={tiny_gpt2}",
        "--set",
        "generation.sampling.max_tokens=16",
        "--set",
        f"training.models=[{{name: a, model: '{tmp_path / 'typo'}'}}]",
    )
    one_line(result, "training.models[0] (a)", str(tmp_path / "typo"))
    assert not run.exists()  # no dataset generated, no manifest, no Ray session
