"""Cold caches: what a brick costs when its weights are not already in the cache.

Timed alone in a loop, a brick finds its weights in the core's L2 cache on every call; inside a
model whose weights do not fit there, each layer's weights come from further away, while its
input was just written by the layer before (so it stays warm) and its output goes to memory the
runtime's arena just freed. This module measures the ratio of the two on the target: the brick's
session (its weights) is copied, all copies read the same input buffers and write the same
output buffers, and the same short run of calls is timed on one copy (warm) and rotating
through copies (cold), interleaved. Two spans of weights are rotated, because where a layer's
weights come from depends on how much the rest of its model reads in between (the estimator
picks by the model's weight bytes, `machine.caches` recorded with the result):

- near: copies that together exceed twice the L2 (the weights come from the last-level cache);
- far: copies that together exceed FAR_L2 times the L2, for models whose weights exceed
  FAR_MODEL_L2 times it: on a shared last-level cache (a VM's host) such a model's layers find
  their weights evicted by the time they run again, and a rotation that short finds them still
  there (two alternating copies of a 9 MiB convolution ran as fast as one; inside resnet18,
  45 MiB of weights, the same convolution took 1.3-1.9x its loop time).

Each uses at most MAX_COPIES copies and MAX_COLD_BYTES of them; a span the copies cannot reach is
not measured (copies 1), nor is one a single copy already exceeds.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .data import Feeds
from .machine import machine_info
from .session import bound_call, make_session
from .settings import Settings

if TYPE_CHECKING:
    import onnx

MAX_COPIES = 16
MAX_COLD_BYTES = 1 << 30  # all copies of one brick together
FAR_L2 = 16  # the far span, in L2 sizes
FAR_MODEL_L2 = 8  # models with more weights than this (in L2 sizes) take the far ratio
ROUNDS = 3  # alternations of warm and cold
CALLS = 5  # calls per warm or cold part of a round
NO_COLD = {"copies": 1, "footprint_bytes": 0, "warm_s": 0.0, "cold_s": 0.0}


def footprint(model: onnx.ModelProto) -> int:
    """Bytes of the brick's weights (its initializers) that a call reads besides its inputs: all
    of each, but of a table only Gathers read, the rows their indices select (a 30522-row
    embedding read at 128 positions reads 128 rows: rotating copies of the table measured
    nothing, 0.96x on average, for 1.1 s of a corpus suite's session copies)."""
    graph = model.graph
    total = {t.name: math.prod(t.dims) * _itemsize(t.data_type) for t in graph.initializer}
    rows = {t.name: t.dims for t in graph.initializer}
    counts = {v.name: _elements(v) for v in graph.input} | {t.name: math.prod(t.dims) for t in graph.initializer}
    read: dict[str, int] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name not in total:
                continue
            table = k == 0 and node.op_type == "Gather" and not node.domain and len(node.input) > 1
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if table and rows[name] and counts.get(node.input[1]) is not None:
                row = total[name] // max(rows[name][axis % len(rows[name])], 1)
                read[name] = min(total[name], read.get(name, 0) + counts[node.input[1]] * row)
            else:
                read[name] = total[name]  # any other reader reads it all
    return sum(read.get(name, size) for name, size in total.items())


def _elements(value: onnx.ValueInfoProto) -> int | None:
    """Elements of a graph input of static shape (None when a dimension is unknown)."""
    dims = value.type.tensor_type.shape.dim
    return math.prod(d.dim_value for d in dims) if all(d.dim_value > 0 for d in dims) else None


def activation_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the brick's graph inputs and outputs (static shapes; unknown dimensions count 1).
    Each copy is a session with its own intermediate buffers, so a rotation also rotates those:
    where they outweigh the weights, the cold ratio would measure activations, which inside a
    model were just written by the layer before (vgg11's 112x112 convolution, 0.3 MB of weights
    and 10 MB of activations, read 3.8x), and the brick is not measured."""
    total = 0
    for value in (*model.graph.input, *model.graph.output):
        tensor = value.type.tensor_type
        if tensor.elem_type:
            dims = [d.dim_value if d.dim_value > 0 else 1 for d in tensor.shape.dim]
            total += math.prod(dims) * _itemsize(tensor.elem_type)
    return total


def _itemsize(data_type: int) -> int:
    import onnx  # only a first pass, which has built the graph, gets here

    return onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize if data_type else 4


def copies_needed(nbytes: int, l2: int, span: int = 2) -> int:
    """Copies that together exceed `span` times the L2 cache; 1 (not measured) when a single
    copy already does, when MAX_COPIES or MAX_COLD_BYTES of copies cannot, or the cache size is
    unknown."""
    target = span * l2
    if l2 <= 0 or nbytes <= 0 or nbytes >= target:
        return 1
    copies = math.ceil(target / nbytes)
    return copies if copies <= MAX_COPIES and copies * nbytes <= MAX_COLD_BYTES else 1


def far_copies(nbytes: int, l2: int) -> int:
    """Copies for the far span: as `copies_needed`, and 2 (alternate) for a brick whose one copy
    already exceeds the span (its weights are then not in the cache on the next call either in
    a model, but a loop on one copy keeps the part that fits)."""
    copies = copies_needed(nbytes, l2, FAR_L2)
    if copies == 1 and l2 > 0 and FAR_L2 * l2 <= nbytes and 2 * nbytes <= MAX_COLD_BYTES:
        return 2
    return copies


def measure_cold(calls: list[Callable[[], object]], near: int, far: int) -> tuple[float, float, float]:
    """(warm, near, far) median seconds per call: calls[0] repeated, the first `near` of them in
    turn, the first `far` in turn; alternated ROUNDS times so that drift hits all alike (a span
    of fewer than 2 copies is not measured: 0). A rotation goes on where its last part stopped,
    after a first call of every copy in order, so every timed call's copy was last used a whole
    rotation earlier, whatever the counts."""
    parts: list[tuple[list[float], list]] = [([], calls[:1]), ([], calls[:near] if near > 1 else []),
                                             ([], calls[:far] if far > 1 else [])]
    for call in calls:
        call()  # every copy's first call pays its allocations
    position = [0] * len(parts)
    for _ in range(ROUNDS):
        for k, (target, chosen) in enumerate(parts):
            for _ in range(CALLS if chosen else 0):
                call = chosen[position[k] % len(chosen)]
                position[k] += 1
                start = time.perf_counter()
                call()
                target.append(time.perf_counter() - start)
    warm, near_s, far_s = (statistics.median(t) if t else 0.0 for t, _ in parts)
    return warm, near_s, far_s


def cold_record(model: onnx.ModelProto, model_bytes: bytes, feeds: Feeds,
                settings: Settings, session: object) -> dict:
    """The "cold" part of a result's calibration: copies, footprint, warm and cold (near) seconds
    per call, and "far" ({copies, cold_s}) when that span was measured (NO_COLD when neither)."""
    nbytes = footprint(model)
    l2 = machine_info()["caches"].get("l2", 0)  # read from sysfs once per process
    near, far = copies_needed(nbytes, l2), far_copies(nbytes, l2)
    if max(near, far) == 1 or nbytes < activation_bytes(model):
        return {**NO_COLD, "footprint_bytes": nbytes}
    bound = shared_calls(copies(session, model_bytes, settings, max(near, far)), feeds)
    warm, near_s, far_s = measure_cold([call for call, _ in bound], near, far)
    del bound
    record: dict = {**NO_COLD, "footprint_bytes": nbytes, "warm_s": warm}
    if near > 1:
        record.update(copies=near, cold_s=near_s)
    if far > 1:
        record["far"] = {"copies": far, "cold_s": far_s}
    return record


def copies(session: object, model_bytes: bytes, settings: Settings, count: int) -> list:
    """`count` sessions of the brick to rotate through, the first timed warm. With one thread
    the brick's own session is the first. With more, each session has a pool of threads that
    spin for a while after every call, and 15 idle pools spinning beside the one timed
    doubled its time (a 64-channel 3x3 convolution, 0.44 ms alone, 0.9-1.2 ms amid 15 such
    copies on a 2-vCPU AMD EPYC, each new copy taking up to 34 ms to create instead of 1.4 ms):
    all copies, the warm one too, are then made anew with threads that sleep when idle."""
    if settings.intra_op_threads == 1:
        return [session] + [make_session(model_bytes, settings) for _ in range(count - 1)]
    return [make_session(model_bytes, settings, spinning=False) for _ in range(count)]


def shared_calls(sessions: list, feeds: Feeds) -> list[tuple[Callable[[], object], tuple]]:
    """A bound call per session, all reading the same inputs and, where every output is a plain
    tensor, writing the same output buffers (as consecutive layers of a model reuse the memory
    the runtime's arena frees): a copy's cold call then differs from the warm one only in its
    weights."""
    import numpy as np
    import onnxruntime as ort

    plain = all(isinstance(a, np.ndarray) and a.dtype != object for a in feeds.values())
    if not plain or any(o.type == "tensor(string)" or not o.type.startswith("tensor")
                        for o in sessions[0].get_outputs()):
        return [bound_call(s, feeds) for s in sessions]  # each copy allocates its own outputs
    inputs = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for a in feeds.values()]
    outputs = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for a in sessions[0].run(None, feeds)]
    calls: list[tuple[Callable[[], object], tuple]] = []
    for s in sessions:
        binding = s.io_binding()
        for name, value in zip(feeds, inputs, strict=True):
            binding.bind_ortvalue_input(name, value)
        for meta, value in zip(s.get_outputs(), outputs, strict=True):
            binding.bind_ortvalue_output(meta.name, value)
        calls.append((functools.partial(s.run_with_iobinding, binding), (binding, inputs, outputs)))
    return calls
