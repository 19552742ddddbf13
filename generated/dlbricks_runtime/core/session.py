"""ONNX Runtime sessions and their cheapest call. Here, not in backends/onnxruntime.py,
because calibration (core/calibration.py) measures ONNX Runtime's own fixed costs with them."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from .data import Feeds
from .settings import Settings
from .timing import measure_call

OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def make_session(model_bytes: bytes, settings: Settings, profile_prefix: str | None = None,
                 spinning: bool = True) -> ort.InferenceSession:
    """A session with the settings' threads and optimisation level. `spinning` False: its
    intra-op threads sleep as soon as they are idle instead of spinning for work (ONNX
    Runtime's default), for sessions that stay alive beside the one being timed
    (core/cold.py says why)."""
    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPT_LEVELS[settings.graph_optimization_level]
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: warnings would flood a run's console
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def bound_call(session: ort.InferenceSession, feeds: Feeds
               ) -> tuple[Callable[[], object], tuple]:
    """(call, keepalive): a no-argument call that runs the session on pre-created inputs.

    io_binding with inputs bound once and outputs allocated by ONNX Runtime on the CPU is the
    cheapest public call path (about 3 us per call, against about 6 us for session.run); the
    keepalive holds the input buffers the binding points to.
    """
    # io_binding has no strings and no sequences
    plain = any(isinstance(a, list) or a.dtype == object for a in feeds.values())
    if plain or any(o.type == "tensor(string)" or o.type.startswith("seq") for o in session.get_outputs()):
        return functools.partial(session.run, None, feeds), (feeds,)
    binding = session.io_binding()
    values = []
    for name, array in feeds.items():
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))
        binding.bind_ortvalue_input(name, value)
        values.append(value)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cpu")
    return functools.partial(session.run_with_iobinding, binding), (binding, feeds, values)


def measure_session(session: ort.InferenceSession, feeds: Feeds,
                    settings: Settings) -> dict:
    """Time a session: the "stats", "values", "warnings" and "timing" parts of a result."""
    call, keepalive = bound_call(session, feeds)
    part = measure_call(call, settings)
    del keepalive
    return part
