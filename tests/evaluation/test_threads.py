"""The evaluation's job threads and transformers' lazy imports (a fresh interpreter each: the race needs
transformers not yet imported)."""

from __future__ import annotations

import subprocess
import sys

# Four threads each make the first `from transformers import <name>` of a fresh process, as the evaluation's
# (model, metric) threads do. With transformers 5.19 this fails every time ("cannot import name 'AutoConfig'
# from 'transformers'") unless the names are resolved on the calling thread first.
PROBE = """
import sys
from hiwar.evaluation.run import run_in_threads

def first_import(name):
    def run():
        scope = {}
        exec(f"from transformers import {name} as found", scope)  # the statement the evaluation code runs
        return scope["found"].__name__
    return run

names = ["AutoConfig", "AutoConfig", "AutoTokenizer", "AutoTokenizer"]
assert "transformers" not in sys.modules
print(sorted(run_in_threads({i: first_import(n) for i, n in enumerate(names)}, max_workers=4).items()))
"""


def test_threads_importing_transformers_first_get_every_name() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = [(0, "AutoConfig"), (1, "AutoConfig"), (2, "AutoTokenizer"), (3, "AutoTokenizer")]
    assert proc.stdout.strip() == str(expected)
