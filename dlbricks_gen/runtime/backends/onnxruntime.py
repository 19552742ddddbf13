"""The ONNX Runtime backend: a brick SPEC or a whole model -> a session -> profiled once for
calibration -> timed by core/timing.py -> one result (format 1).

A brick's later worker passes take the first pass's built bytes from the run's build cache
(core/buildcache.py) and its inputs from the SPEC, so they neither build nor import onnx.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.buildcache import BuildCache, brick_key
from ..core.calibration import NCHWC_SEEDS, NO_PROFILE, call_costs, profile_calls
from ..core.cold import cold_record
from ..core.data import input_feeds
from ..core.fused import fused_record
from ..core.machine import quiet_warnings
from ..core.results import base_record, error_result, one_line
from ..core.session import make_session, measure_session
from ..core.settings import Settings
from ..core.spec import build_model, model_inputs
from . import DEFAULT as NAME

if TYPE_CHECKING:
    import onnx


def _profiled_session(model_bytes: bytes, settings: Settings, feeds: dict) -> tuple:
    """(session, profile, seconds profiling took) of a graph with NCHWc ops: profiled calls,
    then profiling ended (its file, in a temporary folder, is read and removed)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(model_bytes, settings, profile_prefix=os.path.join(tmp, "profile"))
        start = time.perf_counter()
        return session, profile_calls(session, feeds), time.perf_counter() - start


def _measure(model_bytes: bytes, inputs: list[dict], settings: Settings,
             model: onnx.ModelProto | None, cache: BuildCache | None = None) -> dict:
    """Session, profile, timed values, cold-cache calibration: a result's parts. `model` None
    (a brick's later worker passes, which keep the first pass's calibration): no profile, no
    cold-cache copies, no call costs. `cache`: the run's, where its fused shares are kept."""
    start = time.perf_counter()
    feeds = input_feeds(inputs)
    profiled = model is not None and any(node.op_type in NCHWC_SEEDS for node in model.graph.node)
    if profiled:
        session, profile, profile_s = _profiled_session(model_bytes, settings, feeds)
    else:
        session, profile, profile_s = make_session(model_bytes, settings), dict(NO_PROFILE), 0.0
    setup_s = time.perf_counter() - start - profile_s
    # Profiled calls are slower than plain ones: the warm-up after them calibrates loops.
    part = measure_session(session, feeds, settings)
    part["timing"] = {"setup_s": setup_s, **part["timing"]}
    if model is None:
        return part
    cold_start = time.perf_counter()
    cold = cold_record(model, model_bytes, feeds, settings, session)
    del session
    cold_s = time.perf_counter() - cold_start
    ops = tuple(node.op_type if not node.domain else f"{node.domain}.{node.op_type}" for node in model.graph.node)
    part["calibration"] = {**call_costs(settings.intra_op_threads, settings.inter_op_threads,
                                        settings.graph_optimization_level), "profile": profile,
                           "cold": cold, **fused_record(ops, settings, cache)}
    part["timing"].update(calibration_s=profile_s + time.perf_counter() - cold_start,
                          profile_s=profile_s, cold_copies_s=cold_s)
    return part


def measure_model(model: onnx.ModelProto, settings: Settings, *, kind: str, id: str,
                  suite: str | None = None, profile: bool = True) -> dict:
    """A complete result (format v1) for any model; failures become an error result."""
    return _result(settings, kind, id, suite, lambda: _measure(
        model.SerializeToString(), model_inputs(model), settings, model if profile else None))


def _result(settings: Settings, kind: str, id: str, suite: str | None,
            measure: Callable[[], dict]) -> dict:
    """The result of `measure()` (a result's parts: _measure); a failure is an error result."""
    start = time.perf_counter()
    warnings = quiet_warnings(settings.intra_op_threads)
    try:
        part = measure()
    except Exception as exc:  # noqa: BLE001 - any failure is this brick's result, not a crash
        return error_result(kind=kind, id=id, error=exc, settings=settings, suite=suite,
                            backend=NAME, wall_s=time.perf_counter() - start, warnings=warnings)
    timing = {"wall_s": time.perf_counter() - start, **part["timing"]}
    record = {**base_record(kind, id, suite, NAME, settings), "status": "ok", "error": None,
              "stats": part["stats"], "values": part["values"],
              "warnings": warnings + part["warnings"], "timing": timing}
    if "calibration" in part:
        record["calibration"] = part["calibration"]
    return record


def measure_spec(spec: dict, settings: Settings, *, suite: str | None = None,
                 profile: bool = True, cache: BuildCache | None = None) -> dict:
    """Build a brick SPEC and measure it; a SPEC that does not build gives an error result.
    `cache`: the first pass (`profile`) stores the built bytes there, later passes reuse them."""
    start = time.perf_counter()
    brick = str(spec.get("brick", "unknown")) if isinstance(spec, dict) else "unknown"
    cached = cache.get(brick_key(brick)) if cache is not None and not profile else None
    if cached is not None:
        result = _result(settings, "brick", brick, suite,
                         lambda: _measure(cached, spec["inputs"], settings, None))
    else:
        try:
            model = build_model(spec)
            built = model.SerializeToString()
        except Exception as exc:  # noqa: BLE001
            return error_result(kind="brick", id=brick, settings=settings, suite=suite,
                                backend=NAME, error=f"cannot build the graph: {one_line(exc)}",
                                wall_s=time.perf_counter() - start)
        build_s = time.perf_counter() - start
        if cache is not None and profile:
            cache.put(brick_key(brick), built)
        result = _result(settings, "brick", brick, suite, lambda: _measure(
            built, model_inputs(model), settings, model if profile else None, cache))
        result["timing"]["build_s"] = build_s
    result["timing"]["wall_s"] = time.perf_counter() - start
    return result
