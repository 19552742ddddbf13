"""Calibration: what a brick pays that the whole model does not, measured in the same run.

A brick pays one session call (the runtime's fixed per-run overhead) and, around NCHWc kernels,
layout reorders at its inputs and outputs. Both are measured here and recorded in each result's
"calibration", so that the estimator can remove them.
"""

from __future__ import annotations

import itertools
import json
import os
import time

import numpy as np
import onnxruntime as ort

from .session import bound_call, make_session, measure_session
from .settings import Settings

BOUNDARY_OPS = ("ReorderInput", "ReorderOutput")
PROFILE_CALLS = 4
PROFILE_BUDGET_S = 0.01


def _chain_seconds(nodes: int, settings: Settings) -> float:
    """Median time of one call of a session running `nodes` chained Neg ops on one float."""
    import onnx  # only where a graph is built (core/spec.py says why)
    from onnx import helper

    names = [f"v{i}" for i in range(nodes + 1)]
    graph = helper.make_graph(
        [helper.make_node("Neg", [a], [b]) for a, b in itertools.pairwise(names)], "null",
        [helper.make_tensor_value_info(names[0], onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(names[-1], onnx.TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    session = make_session(model.SerializeToString(), settings)
    part = measure_session(session, {names[0]: np.zeros(1, np.float32)}, settings)
    return part["stats"]["median"]


CHAIN_NODES = 9


CALL_COSTS_PERIOD_S = 20.0  # a process re-measures its call costs this often
_COSTS: dict[tuple[int, int, str], tuple[float, dict]] = {}  # (intra, inter, level): (when, costs)


def call_costs(intra: int, inter: int, level: str) -> dict:
    """The runtime's fixed costs: `null_call_s`, one call of a one-node session that does
    nothing, and `node_s`, what each further node adds (from a chain of CHAIN_NODES). A whole
    model pays the per-node part for every layer, as its bricks do, but the rest of the null
    call only once. Measured when a process first asks and again every CALL_COSTS_PERIOD_S
    (about 0.1 s each): on a VM whose speed moves in phases one measurement can land in a slow
    one (3.50 us in one FP32 study, 6.77 us in the next, AMD EPYC Zen 3), so a run's results
    carry several, and the estimator takes the fastest (results/load.py `fastest_call_costs`)."""
    key = (intra, inter, level)
    found, now = _COSTS.get(key), time.monotonic()
    if found is None or now - found[0] > CALL_COSTS_PERIOD_S:
        found = _COSTS[key] = (now, _measure_call_costs(*key))
    return found[1]


def _measure_call_costs(intra: int, inter: int, level: str) -> dict:
    settings = Settings(intra_op_threads=intra, inter_op_threads=inter,
                        graph_optimization_level=level, quick=True, max_time_s=0.05)
    one = _chain_seconds(1, settings)
    chain = _chain_seconds(CHAIN_NODES, settings)
    node = min(max((chain - one) / (CHAIN_NODES - 1), 0.0), one)
    return {"null_call_s": one, "node_s": node}


# Ops from which ONNX Runtime's NCHWc layout pass starts (it then spreads to neighbours such
# as Add, Concat, Relu): a graph without any of them pays no reorders and is not profiled.
NCHWC_SEEDS = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                         "GlobalMaxPool", "Resize", "Upsample"})
NO_PROFILE = {"calls": 0, "run_s": 0.0, "kernels_s": {}, "boundary_s": 0.0}


def profile_calls(session: ort.InferenceSession, feeds: dict) -> dict:
    """On a session made with profiling on: one cold call, then PROFILE_CALLS profiled calls
    (fewer for slow graphs), and the kernel time per call by op type from ONNX Runtime's
    profiler. Profiling is ended before any timed call, so its cost never enters the measured
    values; the first (cold) run is not used. A fixed, small count keeps the profile (and the
    JSON that ONNX Runtime writes and this parses) small for microsecond bricks."""
    call, keepalive = bound_call(session, feeds)
    start = time.perf_counter()
    for count in range(1 + PROFILE_CALLS):
        call()
        if count >= 2 and time.perf_counter() - start > PROFILE_BUDGET_S:  # slow graphs
            break
    del keepalive
    return read_profile(ended_profile(session))


def kernel_events(events: list[dict]) -> tuple[list[float], list[tuple[str, str, int, float]]]:
    """ONNX Runtime's profile events, parsed once for every reader: the seconds of each run but
    the first (a session's first run pays its allocations), and every kernel of those runs as
    (node, op type, run index, seconds)."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[1:]
    kernels = []
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            run = next((k for k, (a, b) in enumerate(runs) if a <= e["ts"] <= b), None)
            if run is not None:
                kernels.append((e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", "?"), run,
                                e["dur"] * 1e-6))
    return [(b - a) * 1e-6 for a, b in runs], kernels


def ended_profile(session: ort.InferenceSession) -> list[dict]:
    """The events of a session's profile, ended now; its file is read and removed."""
    path = session.end_profiling()
    with open(path, encoding="utf-8") as handle:
        events = json.load(handle)
    os.remove(path)
    return events


def read_profile(events: list[dict]) -> dict:
    """Kernel seconds per call by op type, from a profile whose first run was the cold one."""
    runs, found = kernel_events(events)
    if not runs:
        return dict(NO_PROFILE)
    kernels: dict[str, float] = {}
    for _, op, _, seconds in found:
        kernels[op] = kernels.get(op, 0.0) + seconds / len(runs)
    run_s = sum(runs) / len(runs)
    return {"calls": len(runs), "run_s": run_s, "kernels_s": dict(sorted(kernels.items())),
            "boundary_s": sum(kernels.get(op, 0.0) for op in BOUNDARY_OPS)}

