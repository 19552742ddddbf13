"""End-to-end measurement of whole models, with the suite's own harness and data policy.

The weights of each model are replaced by the harness's seeded random weights (the same policy
as the bricks, docs/FORMATS.md), inputs are bound exactly as `compile` binds them, and the model
is timed by the same `measure_model` with the same settings, so estimates and measurements
compare like for like: `settings.processes` rounds, each a fresh session per model in the
suite's interleaved pass order, pooled as the suite pools its worker passes, with the reference
benchmark recorded in every result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path

import onnx
from onnx import numpy_helper

from .. import __version__
from ..frontend import FrontendError, ShapeOptions, find_models, model_name
from ..frontend.roles import weight_names
from ..frontend.shapes import bind_inputs
from ..runtime.backends import DEFAULT
from ..runtime.backends.onnxruntime import measure_model
from ..runtime.core.data import random_array
from ..runtime.core.reference import ReferenceClock
from ..runtime.core.results import error_result, merge_runs, merge_slice, passes_done, slices_done
from ..runtime.core.settings import Settings
from ..runtime.runloop import pass_order

E2E_VERSION = 1


def randomize_weights(model: onnx.ModelProto) -> None:
    """Replace every weight (`weight_names`) in place."""
    weights = set(weight_names(model))
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name not in weights:
            continue
        dtype = onnx.TensorProto.DataType.Name(tensor.data_type)
        array = random_array(tensor.name, dtype, list(tensor.dims), "weight")
        model.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, tensor.name))


def prepare(path: Path, root: Path, options: ShapeOptions) -> onnx.ModelProto:
    display = path.as_posix()
    try:
        model = onnx.load_model(str(path), load_external_data=True)
    except Exception as exc:
        raise FrontendError(display, f"cannot load model with its data: {' '.join(str(exc).split())}") from None
    bind_inputs(model, options, display)
    randomize_weights(model)
    return model


def measure_all(root: Path, options: ShapeOptions, settings: Settings,
                progress: Callable[[str], None] | None = None, skip: AbstractSet[str] = frozenset(),
                measure: Callable | None = None, rounds: Iterable[int] | None = None,
                earlier: dict[str, dict] | None = None, part: tuple[int, int] = (0, 1)) -> dict:
    """{"version", "kind": "e2e", "models": {name: result}}; failures become error results.
    `measure(model, settings, kind=, id=)`: another backend (default: ONNX Runtime). `rounds`
    (default: every one of settings.processes) are measured in turn, each pooled into the
    model's result so far (`earlier` holds those of rounds done before: study). `part` (j, S):
    only slice j of S of each round (`slice_settings`), pooled into that round's run entry, so
    that study can spread a round of a model over the time its suite's pass takes."""
    measure = measure or _timed_only
    paths = {model_name(path, root): path for path in find_models(root)}
    models = dict(earlier or {})
    clock = ReferenceClock(settings.intra_op_threads)
    j, parts = part
    sliced = slice_settings(settings, parts)
    for k in range(settings.processes) if rounds is None else rounds:
        order = pass_order(sorted(set(paths) - set(skip)), k * parts + j, settings.processes * parts)
        for name in order:
            due = _due(models.get(name), k, j)
            if due is None:
                continue
            if progress:
                progress(name if settings.processes * parts == 1 else f"{name} (round {k + 1}"
                         f"{f', slice {j + 1}/{parts}' if parts > 1 else ''})")
            result = _measure_round(paths[name], root, name, options, sliced, measure, clock)
            models[name] = due(models[name], result, settings) if name in models else result
    shapes = {"batch": options.batch, "dims": dict(options.dims),
              "input_shapes": {n: list(d) for n, d in options.input_shapes}}
    return {"version": E2E_VERSION, "kind": "e2e", "generator": __version__, "shapes": shapes,
            "models": dict(sorted(models.items()))}


def slice_settings(settings: Settings, parts: int) -> Settings:
    """The policy of one slice of S: the round's minimum calls split over its slices, without
    the stopping rule's extra calls (max_runs_factor 1): spread over time, the slices are what
    makes a model's median hold. A round then makes about its minimum calls (more only where
    a slice's `min_values` values need more: models of microseconds), where an unsliced one
    may make up to `max_runs_factor` times as many."""
    if parts == 1:
        return settings
    policy = {**settings.policy(), "min_runs": -(-settings.min_runs // parts), "max_runs_factor": 1}
    return Settings(settings.intra_op_threads, settings.inter_op_threads,
                    settings.graph_optimization_level, settings.quick, settings.taskset, **policy)


def _due(result: dict | None, k: int, j: int) -> Callable[[dict, dict, Settings], dict] | None:
    """How slice j of round k joins a model's result so far: as a new run entry (merge_runs),
    into the last one (merge_slice), or not at all (None: done, or failed)."""
    if result is None:
        return merge_runs
    if result["status"] != "ok":
        return None
    done = passes_done(result)
    if done == k:
        return merge_runs
    return merge_slice if done == k + 1 and slices_done(result) <= j else None


def _timed_only(model: onnx.ModelProto, settings: Settings, *, kind: str, id: str) -> dict:
    """A whole model is only timed: the profile, call costs and cold-cache copies calibrate
    bricks, and running them for a whole model would only lengthen the run being compared."""
    return measure_model(model, settings, kind=kind, id=id, profile=False)


def _measure_round(path: Path, root: Path, name: str, options: ShapeOptions, settings: Settings,
                   measure: Callable, clock: ReferenceClock) -> dict:
    """One round of one model: a fresh session, the reference time taken just before. The
    model is prepared again each round rather than kept: a corpus of real models would not fit
    in memory at once."""
    try:
        model = prepare(path, root, options)
    except FrontendError as exc:
        return error_result(kind="model", id=name, error=str(exc), settings=settings,
                            backend=DEFAULT)
    reference = clock.latest()
    result = measure(model, settings, kind="model", id=name)
    if result["status"] == "ok":
        result["reference_s"] = [reference]
    return result
