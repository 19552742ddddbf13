"""What a model's kernels cost in the model against in its bricks, from ONNX Runtime's profiler.

    taskset -c 1 python benchmarks/kernel_sums.py int8/*.onnx [-H 1] [--no-fusion] [--ops] [--json]

Each model is cut as `compile` cuts it (fused kernels, layouts); the whole model (bound to
batch 1) and each of its distinct bricks get their own session (1 intra-op thread, level
"all", profiling on), and ROUNDS rounds run the model and every brick in turn (CALLS calls
each; --cold: one call, so that the other bricks evict a brick's weights and inputs as the
other layers do in the model), so load drifts over all of them alike. Each kernel's time is
its minimum over the calls (the first call of each session is dropped): a neighbour's load only
adds time, and the minimum is as robust for the model's kernels as for a brick's. Prints per
model the bricks' kernel sum (each brick times its instances) over the model's, and with --ops
the per-op-type sums of both: an op that costs more alone than in the model (a kernel run in
another layout, transposes at a brick's edges, a fusion across a cut) shows there. Kernel sums
leave out the per-call overhead and the estimator's corrections: they compare what runs, not
the estimate.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import tempfile
from pathlib import Path

import onnx

from dlbricks_gen.frontend import ShapeOptions, load_model
from dlbricks_gen.frontend.shapes import bind_inputs
from dlbricks_gen.ir.spec import brick_spec
from dlbricks_gen.runtime.core.calibration import ended_profile, kernel_events
from dlbricks_gen.runtime.core.data import input_feeds
from dlbricks_gen.runtime.core.session import make_session
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.runtime.core.spec import build_model, model_inputs
from dlbricks_gen.workflows.compile import Recipe, assemble, fusion_groups, layout_conversions

ROUNDS, CALLS = 8, 3  # --cold: ROUNDS * CALLS rounds of one call each
B1 = ShapeOptions(batch=1)


def kernel_minima(session) -> dict[str, tuple[str, float]]:
    """{node: (op type, its minimum kernel time in us)} over every call but the first."""
    events = ended_profile(session)
    best: dict[str, tuple[str, float]] = {}
    for node, op, _, seconds in kernel_events(events)[1]:
        if node not in best or seconds * 1e6 < best[node][1]:
            best[node] = (op, seconds * 1e6)
    return best


def compare(path: Path, granularity: int, fusion: bool, tmp: Path, cold: bool = False) -> dict:
    lowered = load_model(path, path.parent, B1)
    models, units = fusion_groups([lowered], fusion)
    suite = assemble(models, Recipe(granularity, B1), units, layouts=layout_conversions(models))
    bricks = dict(suite.partition.bricks)
    counts = collections.Counter(suite.partition.models[0].instances)
    settings = Settings(intra_op_threads=1, graph_optimization_level="all")
    names = (str(tmp / f"p{k}_") for k in itertools.count())
    proto = onnx.load(str(path))
    bind_inputs(proto, B1, str(path))  # as compile binds them: the bricks' shapes
    runs = [("model", 1, make_session(proto.SerializeToString(), settings, next(names)),
             input_feeds(model_inputs(proto)))]
    for digest, count in sorted(counts.items()):
        spec = brick_spec(digest, bricks[digest])
        runs.append((digest, count, make_session(build_model(spec).SerializeToString(), settings, next(names)),
                     input_feeds(spec["inputs"])))
    for _, _, session, feeds in runs:
        session.run(None, feeds)  # the cold call, dropped
    rounds, calls = (ROUNDS * CALLS, 1) if cold else (ROUNDS, CALLS)
    for _ in range(rounds):
        for _, _, session, feeds in runs:
            for _ in range(calls):
                session.run(None, feeds)
    model_ops: collections.Counter = collections.Counter()
    brick_ops: collections.Counter = collections.Counter()
    for digest, count, session, _ in runs:
        for op, us in kernel_minima(session).values():
            (model_ops if digest == "model" else brick_ops)[op] += us * count
    model_us, bricks_us = sum(model_ops.values()), sum(brick_ops.values())
    return {"model": path.stem, "model_ms": model_us / 1e3, "bricks_ms": bricks_us / 1e3,
            "ratio": bricks_us / model_us if model_us else None, "instances": sum(counts.values()),
            "model_ops_ms": {k: v / 1e3 for k, v in sorted(model_ops.items())},
            "brick_ops_ms": {k: v / 1e3 for k, v in sorted(brick_ops.items())}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("-H", "--granularity", type=int, default=1)
    parser.add_argument("--no-fusion", action="store_true")
    parser.add_argument("--cold", action="store_true",
                        help="one call per brick per round: each brick's weights evicted by the others, as in a model")
    parser.add_argument("--ops", action="store_true", help="per op type, model against bricks")
    parser.add_argument("--json", action="store_true", help="one JSON line per model")
    args = parser.parse_args(argv)
    for path in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            row = compare(path, args.granularity, not args.no_fusion, Path(tmp), args.cold)
        if args.json:
            print(json.dumps(row, sort_keys=True), flush=True)
            continue
        print(f"{row['model']}: model kernels {row['model_ms']:.2f} ms, bricks {row['bricks_ms']:.2f} ms "
              f"({row['instances']} instances), bricks / model {row['ratio']:.3f}", flush=True)
        if args.ops:
            mo, bo = row["model_ops_ms"], row["brick_ops_ms"]
            for op in sorted(set(mo) | set(bo), key=lambda o: -max(mo.get(o, 0), bo.get(o, 0))):
                print(f"  {op:28s} model {mo.get(op, 0):8.3f}  bricks {bo.get(op, 0):8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
