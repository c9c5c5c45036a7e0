"""CLI start-up: ``hiwar --help`` (and each command's ``--help``) against a bare ``python -c pass``, same interpreter.

    python benchmarks/bench_cli_startup.py              # 10 runs of each, a few seconds
    python benchmarks/bench_cli_startup.py --runs 30

Prints the median wall time of each and its ratio to the bare interpreter measured in the same run: heavy packages
(torch, ray, transformers, vllm) are imported inside the commands, so the help stays within a small multiple of a
bare start. Also says which heavy packages, if any, ``hiwar --help`` imported (tests/test_cli.py asserts none).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "ray", "transformers", "vllm", "datasets", "pyarrow")
HELP = "from hiwar.cli import cli\ntry:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"


def median_seconds(code: str, runs: int) -> float:
    """Median wall time of ``python -c code`` over ``runs`` fresh interpreters."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heavy_imports() -> list[str]:
    """The heavy packages that ``hiwar --help`` leaves in ``sys.modules``."""
    code = HELP.format(args=["--help"]) + f"import sys\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return eval(out.strip().splitlines()[-1])  # noqa: S307 - our own printed list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="interpreters started per measurement")
    args = parser.parse_args()
    from hiwar.cli import cli

    bare = median_seconds("pass", args.runs)
    rows = [("python -c pass (baseline)", bare)]
    rows.append(("hiwar --help", median_seconds(HELP.format(args=["--help"]), args.runs)))
    per_command = max(3, args.runs // 3)
    for name in sorted(cli.commands):
        rows.append((f"hiwar {name} --help", median_seconds(HELP.format(args=[name, "--help"]), per_command)))
    print(f"{'command':<32} {'median s':>9} {'x baseline':>11}")
    for label, seconds in rows:
        print(f"{label:<32} {seconds:>9.3f} {seconds / bare:>11.1f}")
    print(f"heavy packages imported by hiwar --help: {heavy_imports() or 'none'}")


if __name__ == "__main__":
    main()
