"""Child processes that run a module of this package: the runner's worker, TVM's tuning and
kernel probes. The child runs `python -B -m <module>` in the folder holding the top package
(the suite folder in a suite), so it imports this very copy; -B: it writes no __pycache__."""

from __future__ import annotations

import sys
from pathlib import Path


def package_root(module: str, file: str) -> Path:
    """The folder holding the top package of `module` (its __spec__.name), defined in `file`."""
    return Path(file).resolve().parents[module.count(".")]


def python_module(module: str, *args: str) -> list[str]:
    """The command running `python -m module args...` with this Python, writing no bytecode."""
    return [sys.executable, "-B", "-m", module, *args]
