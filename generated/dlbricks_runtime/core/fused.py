"""What a layer run inside an NCHWc convolution costs there, as a share of its own brick.

At level "all" ONNX Runtime runs a HardSwish, a residual Add and a Relu after that Add inside
the NCHWc convolution before them, where the result stays in the NCHWc layout; a one-layer
brick of such a layer runs it apart (its output leaves the layout). The plan marks those
instances `absorbed` (passes/layout.py). Such a layer is not free inside the convolution (on an
AMD EPYC, Zen 5, a fused HardSwish added 0.63-0.68x what its own brick costs, an Add
0.27-0.45x: benchmarks/fused_in_conv.py), nor does it cost its brick's time, so the runtime measures the
share on the target, once per process, with a fixed probe: a 1x1 convolution of 64 channels
at 56x56 between two others, timed by ONNX Runtime's profiler without the layer, with it (fused
where this CPU's runtime fuses it) and the layer alone as its brick would run. The estimator
counts an absorbed instance at its share of the brick's time. Where the runtime does not fuse
(no NCHWc layout on the CPU), the layer runs apart in the probe too and its share is about 1.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile

import numpy as np

from .buildcache import SHARES, BuildCache
from .calibration import ended_profile, kernel_events
from .data import Feeds
from .session import bound_call, make_session
from .settings import Settings

CHANNELS, SIDE = 64, 56
STEM, OUT, PLAIN = "probe_stem", "probe_out", "probe_plain"  # node names: around and beside
# Absorbed instances, by their layers' op types joined with "+" (the plan's brick ops); a Relu
# after a fused Add is measured as what it adds to the Add (`shares`).
PROBED = {"HardSwish": ("HardSwish",), "Add": ("Add",), "Add+Relu": ("Add", "Relu")}
PATTERNS = (*PROBED, "Relu")


def _layers(ops: tuple[str, ...], source: str, skip: str) -> tuple[list, str]:
    """Nodes of `ops` in a chain from `source` (an Add also reads `skip`) and the last output."""
    from onnx import helper  # only where a graph is built (core/spec.py says why)

    nodes, value = [], source
    for k, op in enumerate(ops):
        inputs = [value, skip] if op == "Add" else [value]
        nodes.append(helper.make_node(op, inputs, [f"layer{k}"]))
        value = f"layer{k}"
    return nodes, value


def _graph(nodes: list, weights: dict[str, tuple[int, ...]], inputs: tuple[str, ...], outputs: tuple[str, ...]
           ) -> bytes:
    import onnx
    from onnx import helper, numpy_helper

    shape = [1, CHANNELS, SIDE, SIDE]
    inits = [numpy_helper.from_array((np.random.default_rng(k).random(dims, np.float32) - 0.5) * 0.1, name)
             for k, (name, dims) in enumerate(weights.items())]
    def values(names: tuple[str, ...]) -> list:
        return [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, shape) for n in names]

    graph = helper.make_graph(nodes, "probe", values(inputs), values(outputs), inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def probe_graphs(ops: tuple[str, ...], kernel: int = 1, group: int = 1) -> tuple[bytes, bytes]:
    """(pair, layer): `pair` runs x -> stem, then two convolutions (kernel x kernel, `group`
    groups) of the stem's output, one followed by `ops` (fused where the runtime fuses them; the
    stem's output is the residual), one (PLAIN) not, each then a 1x1 convolution to an output,
    so that every call times both alike; `layer` runs `ops` alone on plain inputs, as their
    one-layer brick does."""
    from onnx import helper

    pad = kernel // 2
    square = (CHANNELS, CHANNELS, 1, 1)
    weights: dict[str, tuple[int, ...]] = {"w_stem": square, "w": (CHANNELS, CHANNELS // group, kernel, kernel),
               "w_plain": (CHANNELS, CHANNELS // group, kernel, kernel), "w_out": square, "w_out2": square}
    stem = helper.make_node("Conv", ["x", "w_stem"], [STEM], name=STEM)
    convs = [helper.make_node("Conv", [STEM, w], [name], name=name, group=group, kernel_shape=[kernel] * 2,
                              pads=[pad] * 4) for w, name in (("w", "conv"), ("w_plain", PLAIN))]
    fused, value = _layers(ops, "conv", STEM)
    outs = [helper.make_node("Conv", [value, "w_out"], [f"{OUT}_fused"], name=f"{OUT}_fused"),
            helper.make_node("Conv", [PLAIN, "w_out2"], [f"{OUT}_plain"], name=f"{OUT}_plain")]
    pair = _graph([stem, *convs, *fused, *outs], weights, ("x",), (f"{OUT}_fused", f"{OUT}_plain"))
    alone, alone_out = _layers(ops, "x", "skip")
    layer = _graph([*alone, helper.make_node("Identity", [alone_out], [OUT])], {},
                   ("x", "skip") if "Add" in ops else ("x",), (OUT,))
    return pair, layer


def _profiled(model_bytes: bytes, settings: Settings, prefix: str) -> tuple:
    session = make_session(model_bytes, settings, profile_prefix=prefix)
    rng = np.random.default_rng(0)
    feeds: Feeds = {i.name: rng.random((1, CHANNELS, SIDE, SIDE), np.float32) for i in session.get_inputs()}
    call, keep = bound_call(session, feeds)
    return session, call, keep


def _kernels(session) -> list[list[tuple[str, str, float]]]:
    """Per profiled call (the first left out): (node, op type, seconds) of each kernel."""
    runs, kernels = kernel_events(ended_profile(session))
    per_run: list[list[tuple[str, str, float]]] = [[] for _ in runs]
    for node, op, run, seconds in kernels:
        per_run[run].append((node, op, seconds))
    return per_run


BLOCK = 6  # calls of the pair, then of the layer, in turn; the layer's first of each is left out
SESSIONS = 3  # of each graph: one session's memory placement can make it an outlier throughout


def extra_and_apart(pair: bytes, layer: bytes, settings: Settings, calls: int) -> tuple[float, float]:
    """(what the layers add to the convolution's kernels, the layers' own kernels) in seconds,
    over about `calls` calls of each, the median of SESSIONS sessions' medians. Each call of
    the pair times the convolution with and without the layers, so the machine's speed changes
    hit both; the layer alone runs in blocks of BLOCK calls between the pair's, as its brick runs
    in a loop (a block's first call, after the pair's, finds other data in the caches and is
    left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        made = [(_profiled(pair, settings, os.path.join(tmp, f"pair{k}")),
                 _profiled(layer, settings, os.path.join(tmp, f"layer{k}"))) for k in range(SESSIONS)]
        for (_, call_both, _), (_, call_alone, _) in made:
            call_both()
            call_alone()  # each session's first call is left out by kernel_events
        for _ in range(max(calls // (BLOCK * SESSIONS), 1)):
            for (_, call_both, _), (_, call_alone, _) in made:
                for call in [call_both] * BLOCK + [call_alone] * BLOCK:
                    call()
        runs = [(_kernels(both), _kernels(alone)) for (both, _, _), (alone, _, _) in made]
        del made
    extra = [statistics.median(_extra(run) for run in pairs) for pairs, _ in runs if pairs]
    apart = [statistics.median(_kernel_sum(run) for k, run in enumerate(alone) if k % BLOCK)
             for _, alone in runs if len(alone) > 1]
    return (max(statistics.median(extra), 0.0) if extra else 0.0, statistics.median(apart) if apart else 0.0)


def _extra(run: list[tuple[str, str, float]]) -> float:
    """One call of the pair: the measured convolution's kernels with the layers less without."""
    inside = sum(s for node, op, s in run if not node.startswith((STEM, OUT, PLAIN)) and not op.startswith("Reorder"))
    return inside - sum(s for node, _, s in run if node.startswith(PLAIN))


def _kernel_sum(run: list[tuple[str, str, float]]) -> float:
    return sum(s for _, op, s in run if op != "Identity")


def shares(settings: Settings, calls: int, kernel: int = 1, group: int = 1) -> tuple[dict[str, float], dict]:
    """({pattern: share}, {pattern: (inside, apart) seconds}) with the probe's convolution of
    `kernel` x `kernel` and `group` groups ("Relu": a Relu after a fused Add, what Add+Relu
    adds to the Add, inside the convolution and apart)."""
    found = {name: extra_and_apart(*probe_graphs(ops, kernel, group), settings, calls) for name, ops in PROBED.items()}
    (inside, apart), (add_inside, add_apart) = found["Add+Relu"], found["Add"]
    found["Relu"] = (max(inside - add_inside, 0.0), max(apart - add_apart, 0.0))
    return {name: _share(*figures) for name, figures in sorted(found.items())}, found


_SHARES: dict[tuple, dict[str, float]] = {}  # this process's, by (intra, inter, level, quick)
MAX_SHARES_BYTES = 4096


def fused_shares(intra: int, inter: int, level: str, quick: bool = False,
                 cache: BuildCache | None = None) -> dict[str, float]:
    """{pattern: the layers' cost inside the convolution / their brick's, within [0, 1]} for
    the PATTERNS ("Relu": a Relu after a fused Add, what it adds to the Add's share), measured
    once per run: once per process, and with the run's build cache (core/buildcache.py) once
    for all its worker processes. A sliced study's first pass runs in one process per slice,
    and each measured its own: 0.5 s each at one thread, 2.1-3.7 s at two (AMD EPYC Zen 3), and
    the probe moves between processes (Add 0.47-0.71 in five runs of one pinned process), so
    the bricks of one pattern got different shares by the slice they fell in. At level below
    "all" nothing is fused: every share is 1."""
    if level != "all":
        return dict.fromkeys(PATTERNS, 1.0)
    key = (intra, inter, level, quick)
    if key not in _SHARES:
        name = f"{SHARES}-{intra}-{inter}-{level}{'-quick' if quick else ''}"
        found = _read_shares(cache.get(name, MAX_SHARES_BYTES)) if cache is not None else None
        if found is None:
            settings = Settings(intra_op_threads=intra, inter_op_threads=inter,
                                graph_optimization_level=level, quick=True)
            found = shares(settings, 12 if quick else 60)[0]
            if cache is not None:
                cache.put(name, json.dumps(found, sort_keys=True).encode())
        _SHARES[key] = found
    return _SHARES[key]


def _read_shares(data: bytes | None) -> dict[str, float] | None:
    """Shares another process of the run wrote: every pattern a number in [0, 1], else None."""
    try:
        found = json.loads(data) if data is not None else None
    except ValueError:
        return None
    if not isinstance(found, dict) or sorted(found) != sorted(PATTERNS):
        return None
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in found.values())
    return {k: float(v) for k, v in found.items()} if ok else None


def fused_record(op_types: tuple[str, ...], settings: Settings, cache: BuildCache | None = None) -> dict:
    """The "fused" part of a brick's calibration: {"pattern", "share"} for a brick whose layers
    are one of the PATTERNS (the estimator applies the share where the plan says the model runs
    that instance inside a convolution), {} for any other brick."""
    pattern = "+".join(op_types)
    if pattern not in PATTERNS:
        return {}
    measured = fused_shares(settings.intra_op_threads, settings.inter_op_threads,
                            settings.graph_optimization_level, settings.quick, cache)
    return {"fused": {"pattern": pattern, "share": measured[pattern]}}


def _share(extra: float, apart: float) -> float:
    return round(min(max(extra / apart, 0.0), 1.0), 4) if apart > 0 else 1.0
