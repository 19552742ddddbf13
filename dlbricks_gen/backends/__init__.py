"""Backends: the one vocabulary of backend names, and each backend's code on the user's side.

The names are those result files, the results store and the suite's Makefile use
(`onnxruntime`, `tvm`); `all` means every backend. `ort` is accepted for `onnxruntime`.
"""

from __future__ import annotations

from ..runtime.backends import DEFAULT, NAMES, TVM

__all__ = ["ALIASES", "ALL", "CHOICES", "DEFAULT", "HELP", "NAMES", "TVM", "parse"]

ALL = "all"
ALIASES = {"ort": DEFAULT}
CHOICES = (*NAMES, ALL)
HELP = "onnxruntime (alias ort), tvm (TVM-compiled kernels, ONNX Runtime where TVM fails) or all"


def parse(name: str, option: str = "--backend") -> tuple[str, ...]:
    """A backend choice -> the backends it names; ValueError for anything else."""
    name = ALIASES.get(name, name)
    if name == ALL:
        return NAMES
    if name not in NAMES:
        raise ValueError(f"{option} must be one of {', '.join(CHOICES)}, not {name!r}")
    return (name,)
