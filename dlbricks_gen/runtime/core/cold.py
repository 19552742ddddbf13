"""Cold caches: what a brick costs when its weights are not already in the cache.

Timed alone in a loop, a brick finds its weights in the core's L2 cache on every call; inside a
model whose weights do not fit there, each layer's weights come from further away, while its
input was just written by the layer before (so it stays warm). This module measures the ratio
of the two on the target: the brick's session (its weights) is copied until the copies
together take more than twice the L2 cache (at most MAX_COPIES; bricks whose weights are too
small for that, or already larger than twice the L2, are not measured), all copies read the
same input buffers, and the same short run of calls is timed on one copy (warm) and rotating
through them (cold), interleaved. A cold part of CALLS calls starts again at the first copy in
every round, so it times at most CALLS copies: only those are made (`timed_copies`; the others
would only have been created and called once, at the cost of a session each). The estimator
applies the ratio to the brick's latency where the model's weights exceed the L2 cache that
the result records (machine.caches).
"""

from __future__ import annotations

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

MAX_COPIES = 8
ROUNDS = 3  # alternations of warm and cold
CALLS = 5  # calls per warm or cold part of a round
NO_COLD = {"copies": 1, "footprint_bytes": 0, "warm_s": 0.0, "cold_s": 0.0}


def footprint(model: onnx.ModelProto) -> int:
    """Bytes of the brick's weights (its initializers): what a call reads besides its inputs."""
    return sum(math.prod(t.dims) * _itemsize(t.data_type) for t in model.graph.initializer)


def _itemsize(data_type: int) -> int:
    import onnx  # only a first pass, which has built the graph, gets here

    return onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize if data_type else 4


def copies_needed(nbytes: int, l2: int) -> int:
    """Copies that together exceed twice the L2 cache, at most MAX_COPIES; 1 when a single
    copy already does (it is streamed on every call anyway) or the cache size is unknown."""
    if l2 <= 0 or nbytes <= 0 or nbytes >= 2 * l2:
        return 1
    return min(MAX_COPIES, math.ceil(2 * l2 / nbytes))


def timed_copies(copies: int) -> int:
    """How many of `copies` a cold part visits: calls i = 0..CALLS-1 go to copy i % copies."""
    return min(copies, CALLS)


def measure_cold(calls: list[Callable[[], object]]) -> tuple[float, float]:
    """(warm, cold) median seconds per call: calls[0] repeated vs all of them in turn,
    alternated ROUNDS times so that drift hits both alike."""
    warm: list[float] = []
    cold: list[float] = []
    for call in calls:
        call()  # every copy's first call pays its allocations
    for _ in range(ROUNDS):
        for target, chosen in ((warm, calls[:1]), (cold, calls)):
            for i in range(CALLS):
                start = time.perf_counter()
                chosen[i % len(chosen)]()
                target.append(time.perf_counter() - start)
    return statistics.median(warm), statistics.median(cold)


def cold_record(model: onnx.ModelProto, model_bytes: bytes, feeds: Feeds,
                settings: Settings, session: object) -> dict:
    """The "cold" part of a result's calibration: copies timed, footprint, warm and cold seconds
    per call (NO_COLD when one copy already exceeds the cache, or the copies would be too many)."""
    nbytes = footprint(model)
    l2 = machine_info()["caches"].get("l2", 0)  # read from sysfs once per process
    copies = copies_needed(nbytes, l2)
    if copies == 1 or nbytes * MAX_COPIES < 2 * l2:
        return {**NO_COLD, "footprint_bytes": nbytes}
    copies = timed_copies(copies)
    sessions = [session] + [make_session(model_bytes, settings) for _ in range(copies - 1)]
    bound = [bound_call(s, feeds) for s in sessions]  # one input: warm, as in the model
    warm, cold = measure_cold([call for call, _ in bound])
    del bound, sessions
    return {"copies": copies, "footprint_bytes": nbytes, "warm_s": warm, "cold_s": cold}
