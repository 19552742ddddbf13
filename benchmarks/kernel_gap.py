"""Where a model's estimate misses: the whole model's kernels against its bricks' kernels.

    python benchmarks/kernel_gap.py MODELS SUITE [--model NAME ...] [--calls 20] [--json OUT]

MODELS: the folder the suite was compiled from; SUITE: the suite folder (its plan beside it,
SUITE.plan.json). Each model is prepared as `e2e` prepares it (seeded random weights, bound
inputs) and run in a session made as the runtime makes it (core/session.py: level "all",
1 intra-op thread, sequential), with ONNX Runtime's profiler on; each of its bricks likewise,
from its SPEC. Per ONNX Runtime kernel op type it prints the model's kernel time per call,
the sum over the model's brick instances of their kernel time, and where the rest goes: the
model's and the bricks' profiled run time outside kernels, and the bricks' timed (unprofiled)
latency. Kernel times come from the profiler, so they are less sensitive to a loaded machine
than wall times. With `--json`, per-instance figures are written too (brick kernels mapped
back to the model's nodes through the plan). `benchmarks/kernel_sums.py` compares the raw
kernel sums without a suite, in interleaved rounds; this one reads a compiled suite and its
plan, applies the estimator's reorder and absorbed-layer terms to the kernel times, and shows
the time outside the kernels, timed as well as profiled.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dlbricks_gen.frontend import ShapeOptions, find_models, model_name
from dlbricks_gen.passes.plan import default_plan_path, load_plan
from dlbricks_gen.runtime.core.calibration import ended_profile, kernel_events
from dlbricks_gen.runtime.core.data import input_feeds
from dlbricks_gen.runtime.core.fused import fused_record
from dlbricks_gen.runtime.core.session import bound_call, make_session
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.runtime.core.spec import build_model, load_spec, model_inputs
from dlbricks_gen.workflows.e2e import prepare

# By default the minimum over the profiled (timed) runs: on a loaded machine a long kernel is
# preempted in most runs and a microsecond brick in few, which a median would turn into a bias
# (`--median` on a quiet machine).
Stat = Callable[[list[float]], float]
SETTINGS = Settings(intra_op_threads=1, inter_op_threads=1, graph_optimization_level="all")


def profile(model_bytes: bytes, feeds: dict, calls: int, stat: Stat) -> dict:
    """Kernel seconds per call by op type and by node, the profiled run time per call and the
    median unprofiled call time (a separate session, so profiling does not slow it)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = make_session(model_bytes, SETTINGS, profile_prefix=os.path.join(tmp, "p"))
        call, keep = bound_call(session, feeds)
        for _ in range(calls + 1):
            call()
        events = ended_profile(session)
        del keep, session
    # Over the profiled runs, the first one left out: a brick's first calls after session
    # creation are slow (allocation, page faults), and a mean would keep that.
    runs, kernels = kernel_events(events)
    per_node: dict[str, list[float]] = {}
    op_of: dict[str, str] = {}
    for node, op, run, seconds in kernels:
        op_of[node] = op
        per_node.setdefault(node, [0.0] * len(runs))[run] += seconds
    nodes = {node: stat(v) for node, v in per_node.items()}
    by_op: Counter[str] = Counter()
    for node, s in nodes.items():
        by_op[op_of[node]] += s
    run_s = stat(runs)
    plain = make_session(model_bytes, SETTINGS)
    call, keep = bound_call(plain, feeds)
    call()
    times = []
    for _ in range(max(calls, 5)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    del keep, plain
    return {"kernels": dict(by_op), "nodes": nodes, "ops": op_of, "run_s": run_s,
            "wall_s": stat(times)}


def model_profile(path: Path, root: Path, calls: int, stat: Stat) -> dict:
    model = prepare(path, root, ShapeOptions(batch=1))
    return profile(model.SerializeToString(), input_feeds(model_inputs(model)), calls, stat)


def brick_profile(suite: Path, brick: str, calls: int, stat: Stat) -> dict:
    model = build_model(load_spec(suite / "bricks" / f"{brick}.py"))
    return profile(model.SerializeToString(), input_feeds(model_inputs(model)), calls, stat)


def compare(models: Path, suite: Path, names: list[str] | None, calls: int, stat: Stat = min) -> dict:
    plan_path = default_plan_path(suite)
    plan = load_plan(plan_path)
    paths = {model_name(p, models): p for p in find_models(models)}
    out = {}
    for mp in plan.models:
        if names and mp.name not in names:
            continue
        print(f"{mp.name}: model", file=sys.stderr)
        whole = model_profile(paths[mp.name], models, calls, stat)
        bricks = {}
        for digest in sorted(set(mp.instances)):
            bricks[digest] = brick_profile(suite, digest, calls, stat)
        counts = Counter(mp.instances)
        out[mp.name] = {"model": whole, "bricks": {d: {**bricks[d], "count": counts[d],
                                                        "ops": list(plan.bricks[d].ops),
                                                        "share": fused_share(plan.bricks[d].ops)}
                                                    for d in bricks},
                        "instances": list(mp.instances),
                        "kept_reorders": [list(k) for k in mp.kept_reorders],
                        "absorbed": list(mp.absorbed)}
    return out


def fused_share(ops: tuple[str, ...]) -> float:
    """What the estimator counts of an absorbed instance of a brick of these layers: the share
    runtime/core/fused.py measures on this machine (1 for a brick of no fusable pattern)."""
    return fused_record(tuple(ops), SETTINGS).get("fused", {}).get("share", 1.0)


def kernel_estimates(data: dict) -> tuple[float, float]:
    """The estimator's reorder and absorbed-layer terms applied to profiled kernel times:
    (without, with each absorbed instance at its measured fused share), seconds per call."""
    kept = data["kept_reorders"] or [[0.0, 0.0]] * len(data["instances"])
    absorbed = data.get("absorbed") or [False] * len(data["instances"])
    before = after = 0.0
    for digest, (into, out_of), gone in zip(data["instances"], kept, absorbed, strict=True):
        k = data["bricks"][digest]["kernels"]
        value = (sum(k.values()) - k.get("ReorderInput", 0.0) * (1 - into)
                 - k.get("ReorderOutput", 0.0) * (1 - out_of))
        before += value
        after += value * data["bricks"][digest].get("share", 0.0) if gone else value
    return before, after


def table(name: str, data: dict) -> list[str]:
    model, bricks = data["model"], data["bricks"].values()
    ops = Counter(model["kernels"])
    brick_ops: Counter[str] = Counter()
    for b in bricks:
        for op, s in b["kernels"].items():
            brick_ops[op] += s * b["count"]
    lines = [f"## {name}", f"{'op':24s} {'model ms':>9s} {'bricks ms':>9s} {'ratio':>6s}"]
    for op in sorted(set(ops) | set(brick_ops), key=lambda o: -max(ops[o], brick_ops[o])):
        ratio = brick_ops[op] / ops[op] if ops[op] else float("inf")
        lines.append(f"{op:24s} {ops[op] * 1e3:9.3f} {brick_ops[op] * 1e3:9.3f} {ratio:6.2f}")
    mk, bk = sum(ops.values()), sum(brick_ops.values())
    brun = sum(b["run_s"] * b["count"] for b in bricks)
    bwall = sum(b["wall_s"] * b["count"] for b in bricks)
    n = sum(b["count"] for b in bricks)
    lines += [f"{'kernels':24s} {mk * 1e3:9.3f} {bk * 1e3:9.3f} {bk / mk:6.2f}",
              f"{'profiled run':24s} {model['run_s'] * 1e3:9.3f} {brun * 1e3:9.3f} "
              f"{brun / model['run_s']:6.2f}",
              f"{'timed call':24s} {model['wall_s'] * 1e3:9.3f} {bwall * 1e3:9.3f} "
              f"{bwall / model['wall_s']:6.2f}",
              "kernels as estimated (less the reorders the model does not do): "
              + " -> ".join(f"{v * 1e3:.3f} ms ({v / mk:.2f})" for v in kernel_estimates(data))
              + " (absorbed instances at their fused share)",
              f"instances {n}; outside kernels per instance: profiled "
              f"{(brun - bk) / n * 1e6:.1f} us, timed {(bwall - bk) / n * 1e6:.1f} us; model "
              f"outside kernels {(model['run_s'] - mk) * 1e3:.3f} ms profiled, "
              f"{(model['wall_s'] - mk) * 1e3:.3f} ms timed"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("suite", type=Path)
    parser.add_argument("--model", action="append", dest="names")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--median", action="store_true", help="medians, not minima (quiet machine)")
    args = parser.parse_args(argv)
    found = compare(args.models, args.suite, args.names, args.calls,
                    statistics.median if args.median else min)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for name, data in found.items():
        print("\n".join(table(name, data)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
