"""e2e --backend tvm: whole models compiled like the bricks (weights as runtime parameters, the
same target), with the schedules of a tuning database (the suite's results/tuning), and timed
by the same harness loop. A model TVM cannot import or compile is measured by ONNX Runtime and
recorded as a fallback, as in the suite."""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path

import onnx
from onnx import numpy_helper

from .e2e import weight_names
from .runtime import harness, tvm_backend


def model_arrays(model: onnx.ModelProto, weights: list[str]) -> list:
    """The kernel's arguments: the model's inputs (seeded random), then its weights' values."""
    feeds = harness.input_feeds(harness.model_inputs(model))
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


def measure_model(model: onnx.ModelProto, settings: harness.Settings, *, kind: str, id: str,
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
        result = harness.measure_model(model, settings, kind=kind, id=id)
        result["backend_requested"] = tvm_backend.BACKEND
        result["fallback"] = harness.one_line(exc if arrays is not None else f"inputs: {exc}")
        return result
    compile_s = time.perf_counter() - start - tasks.get("tune_s", 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.so"
        try:
            tvm_backend.export(executable, path)
        except Exception as exc:  # noqa: BLE001
            return harness.error_result(kind=kind, id=id, error=exc, settings=settings,
                                        backend=tvm_backend.BACKEND)
        import tvm

        extra = {"target": target, "tvm": tvm.__version__, "compile_s": compile_s, **tasks}
        return tvm_backend.measure_kernel(path, arrays, settings, kind=kind, id=id, extra=extra)


def measure_function(target: dict, database_dir: Path | None, tune_trials: int = 0):
    """The `measure` of e2e.measure_all for the TVM backend."""
    return partial(measure_model, target=target, database_dir=database_dir,
                   tune_trials=tune_trials)
