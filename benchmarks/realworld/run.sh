#!/usr/bin/env bash
# Build the real-world ONNX corpus in its own venv (never the project's .venv, never in CI).
#   bash benchmarks/realworld/run.sh [OUT]     (default OUT: realworld-models/ in the current folder)
# VENV=/path/to/venv overrides the venv location (default .venv-torch/ in the repository, git-ignored).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${VENV:-.venv-torch}"
if [ ! -x "$venv/bin/python" ]; then
  python3.11 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONHASHSEED=0
exec "$venv/bin/python" "$here/make_corpus.py" "$@"
