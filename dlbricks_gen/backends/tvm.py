"""The TVM backend on the user's side: kernels for a suite, and whole models for `e2e`.

compile --backend tvm: every unique brick -> kernels/<digest>.so, compiled with TVM.

The kernels and kernels/tvm.json (target, TVM version, per-brick status) go into the suite,
whose runtime (dlbricks_runtime/backends/tvm.py) loads and times them, and tunes them in
`make tune`. A brick TVM cannot import or compile is marked "fallback" with its error: the suite
measures it with ONNX Runtime in the TVM run and records that. Imports tvm: only when asked.

e2e --backend tvm: whole models compiled like the bricks (weights as runtime parameters, the
same target), with the schedules of a tuning database (the suite's results/tuning), and timed
by the same timing loop. A model TVM cannot import or compile is measured by ONNX Runtime and
recorded as a fallback, as in the suite.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path

import onnx
from onnx import numpy_helper

from ..frontend.roles import weight_names
from ..ir.spec import brick_spec
from ..passes.partition import Partition
from ..runtime.backends import onnxruntime
from ..runtime.backends import tvm as tvm_backend
from ..runtime.core.data import input_feeds
from ..runtime.core.results import error_result, one_line
from ..runtime.core.settings import Settings
from ..runtime.core.spec import model_inputs

TVM_PACKAGES = ("apache-tvm", "apache-tvm-ffi")
TUNING_PACKAGES = ("psutil", "cloudpickle", "xgboost-cpu")


@dataclass(frozen=True, slots=True)
class KernelReport:
    built: int
    reused: int
    fallback: tuple[tuple[str, str], ...]  # (digest, error)
    compile_s: float


def compile_kernels(parts: Partition, suite_dir: Path, target: dict,
                    progress: Callable[[str], None] | None = None) -> KernelReport:
    """Build the kernels that are missing or were built for another target or TVM version;
    kernels already built (or tuned) for the same target and TVM are kept."""
    kernel_dir = suite_dir / "kernels"
    old = tvm_backend.read_info(kernel_dir)
    version = metadata.version("apache-tvm")
    same = old.get("target") == target and old.get("tvm") == version
    kernels: dict[str, dict] = {}
    info = {"version": tvm_backend.INFO_VERSION, "target": target, "tvm": version, "kernels": kernels}
    built, reused, seconds = 0, 0, 0.0
    fallback: list[tuple[str, str]] = []
    for index, (digest, brick) in enumerate(parts.bricks, 1):
        path = kernel_dir / f"{digest}.so"
        entry = old.get("kernels", {}).get(digest) if same else None
        if entry and (entry.get("status") != "ok" or path.is_file()):
            kernels[digest] = entry
            reused += 1
            continue
        if progress:
            progress(f"TVM kernel [{index}/{len(parts.bricks)}] {digest[:16]}")
        start = time.perf_counter()
        try:
            tvm_backend.build_brick(brick_spec(digest, brick), target, path)
            kernels[digest] = {"status": "ok", "tuned_trials": 0}
            built += 1
        except Exception as exc:  # noqa: BLE001 - any TVM failure means: ONNX Runtime measures it
            error = one_line(exc)
            kernels[digest] = {"status": "fallback", "error": error}
            fallback.append((digest, error))
            path.unlink(missing_ok=True)
        seconds += time.perf_counter() - start
    for stale in kernel_dir.glob("*.so"):
        if stale.stem not in kernels:
            stale.unlink()
    tvm_backend.write_info(kernel_dir, info)
    (suite_dir / "requirements-tvm.txt").write_text(requirements(), encoding="utf-8")
    return KernelReport(built, reused, tuple(fallback), seconds)


def requirements() -> str:
    """What the vendor adds for the TVM bricks: the TVM the kernels were built with."""
    lines = [f"{name}=={metadata.version(name)}" for name in TVM_PACKAGES]
    tuning = []
    for name in TUNING_PACKAGES:
        try:
            tuning.append(f"{name}>={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            tuning.append(name)
    return ("# The TVM runtime the kernels in kernels/ were built with (make run, make check);\n"
            "# apache-tvm-ffi is pinned: 0.1.15.x crashes in meta-schedule tuning (make tune).\n"
            + "\n".join(lines) + "\n# make tune only:\n" + "\n".join(tuning) + "\n")


# --- e2e --backend tvm ------------------------------------------------------------------------

def model_arrays(model: onnx.ModelProto, weights: list[str]) -> list:
    """The kernel's arguments: the model's inputs (seeded random), then its weights' values."""
    feeds = input_feeds(model_inputs(model))
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
              if t.name in set(weights)}
    return [*feeds.values(), *(values[name] for name in weights)]


def tuned_tasks(mod, target: dict, database_dir: Path | None) -> dict:
    """How many of the module's tunable tasks have records in the database."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    tasks = ms.relax_integration.extract_tasks(tvm_backend.fuse(mod, target),
                                               tvm.target.Target(target))
    if database_dir is None or not (Path(database_dir) / "database_workload.json").is_file():
        return {"tasks": len(tasks), "tuned_tasks": 0}
    database = ms.database.JSONDatabase(work_dir=str(database_dir))
    return {"tasks": len(tasks),
            "tuned_tasks": sum(database.has_workload(t.dispatched[0]) for t in tasks)}


def measure_model(model: onnx.ModelProto, settings: Settings, *, kind: str, id: str,
                  target: dict, database_dir: Path | None = None, tune_trials: int = 0) -> dict:
    """One result (backend "tvm", or the ONNX Runtime fallback) of a whole model.
    `tune_trials`: first tune the model's tasks that have no records in database_dir, this
    many trials per task (what tuning this model on its own would add to the bricks')."""
    start = time.perf_counter()
    arrays = None
    try:
        weights = weight_names(model)
        arrays = model_arrays(model, weights)
        mod = tvm_backend.to_relax(onnx.ModelProto.FromString(model.SerializeToString()), weights)
        tasks = tuned_tasks(mod, target, database_dir)
        missing = tasks["tasks"] - tasks["tuned_tasks"]
        if tune_trials and database_dir is not None and missing:
            stats = tvm_backend.tune_module(mod, target, database_dir, tune_trials * missing,
                                            only_missing=True)
            tasks = {**tuned_tasks(mod, target, database_dir), "tune_s": stats["tune_s"],
                     "tuned_here": stats["tuned_tasks"]}
        executable = tvm_backend.build(mod, target, database_dir)
    except Exception as exc:  # noqa: BLE001 - TVM cannot take it: ONNX Runtime measures it
        result = onnxruntime.measure_model(model, settings, kind=kind, id=id)
        result["backend_requested"] = tvm_backend.BACKEND
        result["fallback"] = one_line(exc if arrays is not None else f"inputs: {exc}")
        return result
    compile_s = time.perf_counter() - start - tasks.get("tune_s", 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.so"
        try:
            tvm_backend.export(executable, path)
        except Exception as exc:  # noqa: BLE001
            return error_result(kind=kind, id=id, error=exc, settings=settings,
                                backend=tvm_backend.BACKEND)
        import tvm

        extra = {"target": target, "tvm": tvm.__version__, "compile_s": compile_s, **tasks}
        return tvm_backend.measure_kernel(path, arrays, settings, kind=kind, id=id, extra=extra)


def measure_function(target: dict, database_dir: Path | None, tune_trials: int = 0):
    """The `measure` of e2e.measure_all for the TVM backend."""
    return partial(measure_model, target=target, database_dir=database_dir,
                   tune_trials=tune_trials)
