"""The import cache (:mod:`hiwar.import_cache`): transformers gets the same answers from it as from its own scans,
and a changed install, a changed file or a damaged cache file means the scan runs again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hiwar.import_cache as ic

# A fresh interpreter: the cache acts only where transformers is first imported. It prints what transformers
# learned (which module holds each name, which distribution provides each package) and the same two answers
# computed afresh by transformers' own, uncached functions.
FRESH_PROCESS = """
import hashlib, importlib.metadata, json, sys
import hiwar
from hiwar import import_cache
import transformers
import transformers.utils.import_utils as iu
from pathlib import Path

def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()

models = Path(iu.__file__).parent.parent / "models"
import transformers.models
learned = {
    f"{lazy.__name__}.{key}": value
    for lazy in (transformers, transformers.models)
    for key, value in (
        ("class_to_module", lazy._class_to_module),
        ("modules", sorted(lazy._modules)),
        ("missing_backends", {k: sorted(v) for k, v in lazy._object_missing_backend.items()}),
        ("all", sorted(lazy.__all__)),
    )
}
from hiwar.startup import defer_optional_imports
defer_optional_imports()  # as hiwar's loader does first (sklearn and scipy would add seconds to this test)
gpt2 = transformers.GPT2LMHeadModel.__module__  # its import runs transformers/__init__ again (processing_utils)
hits = dict(import_cache.hits)  # before the calls below, which would count too
define = iu.define_import_structure
uncached = define
while hasattr(uncached, "__wrapped__"):  # hiwar's cache, then transformers' lru_cache
    uncached = uncached.__wrapped__
print(json.dumps({
    "hits": hits,
    "installed": any(type(f).__name__ == "_Finder" for f in sys.meta_path),
    "learned": {k: digest(v) for k, v in learned.items()},
    "n_names": len(learned["transformers.class_to_module"]),
    "mapping_is_real": iu.PACKAGE_DISTRIBUTION_MAPPING == importlib.metadata.packages_distributions(),
    "structure_is_real": define(models, prefix="models") == uncached(models, prefix="models")
        and define(models / "__init__.py") == uncached(models / "__init__.py"),
    "gpt2": gpt2,
}))
"""


def fresh(cache: Path, **env: str) -> subprocess.Popen:
    """Start :data:`FRESH_PROCESS` with ``cache`` as hiwar's cache folder (:func:`report` reads its answer)."""
    return subprocess.Popen(
        [sys.executable, "-c", FRESH_PROCESS],
        env={**os.environ, ic.DIR_ENV: str(cache), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def report(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_transformers_learns_the_same_names_from_the_cache(tmp_path: Path) -> None:
    off_proc = fresh(tmp_path / "off", **{ic.SWITCH_ENV: "0"})  # beside the cold run: two cores, two processes
    cold = report(fresh(tmp_path / "on"))
    warm, off = report(fresh(tmp_path / "on")), report(off_proc)
    assert not off["installed"] and off["hits"] == {"packages_distributions": 0, "import_structure": 0}
    assert not (tmp_path / "off").exists()
    # Computed and written by transformers/__init__; read back when transformers runs that file again for
    # processing_utils (``direct_transformers_import``), which its own lru_cache had answered before.
    assert cold["hits"] == {"packages_distributions": 0, "import_structure": 1}
    written = sorted(p.name.split("-")[0] for p in (tmp_path / "on" / "imports").iterdir())
    assert written == ["import_structure", "import_structure", "packages_distributions"]  # with and without prefix
    # transformers/__init__ and transformers/models/__init__ from the files, then __init__'s second run from memory
    assert warm["hits"] == {"packages_distributions": 1, "import_structure": 3}
    assert off["n_names"] > 1000  # every model class, not an empty structure
    assert len(off["learned"]) == 8
    for run in (off, cold, warm):
        assert run["learned"] == off["learned"] and run["gpt2"] == "transformers.models.gpt2.modeling_gpt2"
        assert run["mapping_is_real"]
    # transformers' own answer, once its __init__ has added its names, is no longer the bare structure: the
    # check only means something where the answer came from the cache.
    assert cold["structure_is_real"] and warm["structure_is_real"]


def test_a_changed_key_or_a_damaged_file_computes_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ic.DIR_ENV, str(tmp_path))
    calls: list[int] = []

    def compute() -> dict:
        calls.append(1)
        return {"a": [len(calls)]}

    def get(key: str) -> dict:
        return ic.cached("unit", ["same identity"], key, compute, dict, dict)

    assert get("k1") == {"a": [1]} and get("k1") == {"a": [1]} and len(calls) == 1
    assert get("k2") == {"a": [2]} and len(calls) == 2  # a new key: computed and rewritten
    assert get("k2") == {"a": [2]} and len(calls) == 2
    (file,) = (tmp_path / "imports").iterdir()
    file.write_text('{"key": "k2", "val')  # half a file
    assert get("k2") == {"a": [3]} and len(calls) == 3
    assert json.loads(file.read_text()) == {"key": "k2", "value": {"a": [3]}}


def test_an_unwritable_cache_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(ic.DIR_ENV, str(blocker))  # imports/ cannot be made under a file
    assert ic.cached("unit", [], "k", lambda: {"x": [1]}, dict, dict) == {"x": [1]}
    assert ic.cached("unit", [], "k", lambda: {"x": [2]}, dict, dict) == {"x": [2]}


def test_an_answer_json_cannot_hold_is_returned_and_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ic.DIR_ENV, str(tmp_path))
    odd = {"a": object()}
    assert ic.cached("unit", [], "k", lambda: odd, dict, dict) is odd  # json.dump fails on the object
    assert ic.cached("unit", [], "k", lambda: odd, lambda v: 1 / 0, dict) is odd  # the encoder fails
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no file, not even a temporary one


def test_the_fingerprint_follows_every_python_file(tmp_path: Path) -> None:
    tree = tmp_path / "models"
    (tree / "gpt2").mkdir(parents=True)
    (tree / "gpt2" / "modeling_gpt2.py").write_text("__all__ = ['A']\n")
    (tree / "README.md").write_text("not code")
    rules = tmp_path / "import_utils.py"
    rules.write_text("# rules\n")
    first = ic.tree_fingerprint(tree, rules)
    assert ic.tree_fingerprint(tree, rules) == first
    (tree / "README.md").write_text("still not code, longer")
    assert ic.tree_fingerprint(tree, rules) == first
    os.utime(tree / "gpt2" / "modeling_gpt2.py", ns=(1, 1))  # edited in place: only its time changes
    touched = ic.tree_fingerprint(tree, rules)
    assert touched != first
    (tree / "llama").mkdir()
    (tree / "llama" / "__init__.py").write_text("")
    added = ic.tree_fingerprint(tree, rules)
    assert added != touched
    rules.write_text("# other rules\n")
    assert ic.tree_fingerprint(tree, rules) != added


def test_distribution_folders_change_with_an_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "foo-1.0.dist-info").mkdir(parents=True)
    (tmp_path / "plain").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path / "plain"), str(site), str(tmp_path / "missing.zip")])
    (folder,) = ic.distribution_folders()
    assert folder[0] == str(site) and folder[2] == ["foo-1.0.dist-info"]
    (site / "foo-1.0.dist-info").rename(site / "foo-1.1.dist-info")  # an upgrade
    (again,) = ic.distribution_folders()
    assert again[2] == ["foo-1.1.dist-info"]


def test_switched_off_it_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ic.SWITCH_ENV, "0")
    before = list(sys.meta_path)
    assert ic.install() is False and sys.meta_path == before
