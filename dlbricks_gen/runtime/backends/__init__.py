"""The backends a suite measures with, and the one definition of their names (result files,
suite.json, the Makefile's BACKEND= and dlbricks-gen's --backend all use these).

onnxruntime.py times a brick's ONNX graph with ONNX Runtime; tvm.py times its TVM kernel
(kernels/<digest>.so), falling back to ONNX Runtime where there is none. Both import only core/.
"""

from __future__ import annotations

NAMES = ("onnxruntime", "tvm")
DEFAULT, TVM = NAMES  # ONNX Runtime first: the reference every suite has


def result_name(brick: str, backend: str = DEFAULT) -> str:
    """results/<brick>.json for ONNX Runtime, results/<brick>.tvm.json for the TVM run."""
    return f"{brick}.json" if backend == DEFAULT else f"{brick}.{backend}.json"


def summary_line(result: dict) -> str:
    """One line per result for the console: id, backend when not the default, the median."""
    from ..core.results import format_seconds

    head = f"{result['kind']} {result['id'][:16]}"
    if result.get("backend_requested", result["backend"]) != DEFAULT:
        head += f" [{result['backend']}{', fallback' if result.get('fallback') else ''}]"
    if result["status"] != "ok":
        return f"{head}: error: {result['error']}"
    s = result["stats"]
    return (f"{head}: median {format_seconds(s['median'])}, trimmed mean "
            f"{format_seconds(s['trimmed_mean_20'])} (n={s['n']} x {s['loops']} loops, "
            f"CI +-{s['ci95_rel']:.1%}{'' if s['target_reached'] else ', target not reached'})")
