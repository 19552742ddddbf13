"""The ONNX Runtime backend: a brick SPEC or a whole model -> a session -> profiled once for
calibration -> timed by core/timing.py -> one result (format 1)."""

from __future__ import annotations

import os
import tempfile
import time

import onnx

from ..core.calibration import NCHWC_SEEDS, NO_PROFILE, call_costs, profile_calls
from ..core.cold import NO_COLD, cold_record
from ..core.data import input_feeds
from ..core.machine import quiet_warnings
from ..core.results import base_record, error_result, one_line
from ..core.session import make_session, measure_session
from ..core.settings import Settings
from ..core.spec import build_model, model_inputs
from . import DEFAULT as NAME


def _measure(model: onnx.ModelProto, settings: Settings, profile_it: bool = True) -> dict:
    """Session, profile (graphs with NCHWc ops only; not when `profile_it` is false, as in a
    brick's later worker passes, which keep the first pass's), timed values: a result's parts."""
    start = time.perf_counter()
    profiled = profile_it and any(node.op_type in NCHWC_SEEDS for node in model.graph.node)
    model_bytes = model.SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(model_bytes, settings,
                               profile_prefix=os.path.join(tmp, "profile") if profiled else None)
        feeds = input_feeds(model_inputs(model))
        setup_s = time.perf_counter() - start
        profile = profile_calls(session, feeds) if profiled else dict(NO_PROFILE)
        calibration_s = time.perf_counter() - start - setup_s
        # Profiled calls are slower than plain ones: the warm-up after them calibrates loops.
        part = measure_session(session, feeds, settings)
    cold_start = time.perf_counter()
    cold = cold_record(model, model_bytes, feeds, settings, session) if profile_it else dict(NO_COLD)
    calibration_s += time.perf_counter() - cold_start
    del session
    part["calibration"] = {**call_costs(settings.intra_op_threads, settings.inter_op_threads,
                                        settings.graph_optimization_level), "profile": profile,
                           "cold": cold}
    part["timing"] = {"setup_s": setup_s, **part["timing"], "calibration_s": calibration_s}
    return part


def measure_model(model: onnx.ModelProto, settings: Settings, *, kind: str, id: str,
                  suite: str | None = None, profile: bool = True) -> dict:
    """A complete result (format v1) for any model; failures become an error result."""
    start = time.perf_counter()
    warnings = quiet_warnings(settings.intra_op_threads)
    try:
        part = _measure(model, settings, profile)
    except Exception as exc:  # noqa: BLE001 - any failure is this brick's result, not a crash
        return error_result(kind=kind, id=id, error=exc, settings=settings, suite=suite,
                            backend=NAME, wall_s=time.perf_counter() - start, warnings=warnings)
    timing = {"wall_s": time.perf_counter() - start, **part["timing"]}
    return {**base_record(kind, id, suite, NAME, settings), "status": "ok", "error": None,
            "stats": part["stats"], "values": part["values"], "calibration": part["calibration"],
            "warnings": warnings + part["warnings"], "timing": timing}


def measure_spec(spec: dict, settings: Settings, *, suite: str | None = None,
                 profile: bool = True) -> dict:
    """Build a brick SPEC and measure it; a SPEC that does not build gives an error result."""
    start = time.perf_counter()
    brick = str(spec.get("brick", "unknown")) if isinstance(spec, dict) else "unknown"
    try:
        model = build_model(spec)
    except Exception as exc:  # noqa: BLE001
        return error_result(kind="brick", id=brick, settings=settings, suite=suite, backend=NAME,
                            error=f"cannot build the graph: {one_line(exc)}",
                            wall_s=time.perf_counter() - start)
    result = measure_model(model, settings, kind="brick", id=brick, suite=suite, profile=profile)
    result["timing"]["wall_s"] = time.perf_counter() - start
    return result
