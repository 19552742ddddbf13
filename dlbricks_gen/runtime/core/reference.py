"""A fixed reference benchmark, timed at intervals through every run (suite, e2e, study).

The same small graph (a 256x256 MatMul, Add and Relu on one row: about 5-20 us a call) is
timed with the same short fixed procedure whenever REFERENCE_EVERY_S have passed, and each
result records the latest time in `reference_s` (one entry per process that measured it). The
machine's own speed changes (turbo, thermal limits, neighbours) then show in the results as
changes of the reference, so a reader can flag them and correct for them (results/drift.py).
"""

from __future__ import annotations

import functools
import time

import numpy as np

from .session import bound_call, make_session
from .settings import Settings
from .stats import percentile

REFERENCE_EVERY_S = 1.0
SIZE = 256
VALUES, VALUE_S = 7, 0.0002  # 7 values of >= 0.2 ms: about 2 ms each time it is taken


def graph_bytes() -> bytes:
    """The reference graph, serialized (the same bytes in every process)."""
    import onnx  # only where a graph is built (core/spec.py says why)
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((SIZE, SIZE)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(SIZE).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["y", "b"], ["z"]),
         helper.make_node("Relu", ["z"], ["out"])], "reference",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, SIZE])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, SIZE])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model.SerializeToString()


@functools.cache
def _call(threads: int, graph: bytes | None = None):  # noqa: ANN202 - (call, keepalive)
    """One cached session per process (and thread count); `graph`: graph_bytes() built
    elsewhere (a worker's build cache), so that this process need not import onnx."""
    session = make_session(graph or graph_bytes(), Settings(intra_op_threads=threads, quick=True))
    return bound_call(session, {"x": np.ones((1, SIZE), np.float32)})


def reference_seconds(threads: int = 1, graph: bytes | None = None) -> float:
    """Median seconds per call of the reference graph (a fixed procedure, not the policy)."""
    call, _ = _call(threads, graph)
    for _ in range(3):
        call()
    timer = time.perf_counter
    t0 = timer()
    call()
    loops = max(1, int(VALUE_S / max(timer() - t0, 1e-7)))
    values = []
    for _ in range(VALUES):
        t0 = timer()
        for _ in range(loops):
            call()
        values.append((timer() - t0) / loops)
    return percentile(sorted(values), 50)


class ReferenceClock:
    """The latest reference time of this process, re-timed once REFERENCE_EVERY_S have passed."""

    def __init__(self, threads: int = 1, every_s: float = REFERENCE_EVERY_S,
                 graph: bytes | None = None):
        self.threads, self.every_s, self.graph = threads, every_s, graph
        self.taken_at: float | None = None
        self.seconds = 0.0
        self.cost_s = 0.0  # time spent on the reference so far

    def latest(self) -> float:
        now = time.perf_counter()
        if self.taken_at is None or now - self.taken_at >= self.every_s:
            self.seconds = reference_seconds(self.threads, self.graph)
            self.taken_at = time.perf_counter()
            self.cost_s += self.taken_at - now
        return self.seconds
