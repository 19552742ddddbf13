"""Does a brick timed in its own loop run as it does inside the model? The same bricks timed in
rounds: in their own loop, once each in the model's order, once each in a fixed order that
knows nothing of the model (sorted by digest), against the whole model in the same rounds.

    python benchmarks/interleave.py MODELS SUITE [--model NAME ...] [--rounds 60] [--loops 10]

MODELS: the folder the suite was compiled from; SUITE: the suite folder (plan beside it). Each
model and brick runs in a session made as the runtime makes it (core/session.py, 1 thread).
Per model it prints the whole model's median call and, for each way of timing the bricks,
the sum over the model's instances of each brick's median call and its ratio to the model.
Plain timed calls: no call overhead, reorder or cold correction is applied to any of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from dlbricks_gen.frontend import ShapeOptions, find_models, model_name
from dlbricks_gen.passes.plan import default_plan_path, load_plan
from dlbricks_gen.runtime.core.data import input_feeds
from dlbricks_gen.runtime.core.session import bound_call, make_session
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.runtime.core.spec import build_model, load_spec, model_inputs
from dlbricks_gen.workflows.e2e import prepare

SETTINGS = Settings(intra_op_threads=1, inter_op_threads=1, graph_optimization_level="all")


def session_call(model) -> tuple:
    session = make_session(model.SerializeToString(), SETTINGS)
    call, keep = bound_call(session, input_feeds(model_inputs(model)))
    return call, (session, keep)


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def compare(model_path: Path, root: Path, suite: Path, instances: list[str], rounds: int,
            loops: int) -> dict[str, float]:
    whole, keep = session_call(prepare(model_path, root, ShapeOptions(batch=1)))
    calls, keeps = {}, [keep]
    for digest in sorted(set(instances)):
        calls[digest], k = session_call(build_model(load_spec(suite / "bricks" / f"{digest}.py")))
        keeps.append(k)
    for call in [whole, *calls.values()]:
        for _ in range(3):
            call()
    times: dict[str, list[float]] = {"model": []}
    per: dict[str, dict[str, list[float]]] = {w: {d: [] for d in calls} for w in ("loop", "model order", "sorted")}
    for _ in range(rounds):
        times["model"].append(timed(whole))
        for digest in instances:
            per["model order"][digest].append(timed(calls[digest]))
        for digest in calls:
            per["sorted"][digest].append(timed(calls[digest]))
        for digest, call in calls.items():
            start = time.perf_counter()
            for _ in range(loops):
                call()
            per["loop"][digest].append((time.perf_counter() - start) / loops)
    out = {"model": statistics.median(times["model"])}
    for way, values in per.items():
        medians = {d: statistics.median(v) for d, v in values.items()}
        out[way] = sum(medians[d] for d in instances)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("suite", type=Path)
    parser.add_argument("--model", action="append", dest="names")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--loops", type=int, default=10)
    args = parser.parse_args(argv)
    plan = load_plan(default_plan_path(args.suite))
    paths = {model_name(p, args.models): p for p in find_models(args.models)}
    print(f"{'model':32s} {'model ms':>9s} " + " ".join(f"{w:>18s}" for w in ("loop", "model order", "sorted")))
    for mp in plan.models:
        if args.names and mp.name not in args.names:
            continue
        r = compare(paths[mp.name], args.models, args.suite, list(mp.instances), args.rounds, args.loops)
        cells = " ".join(f"{r[w] * 1e3:9.3f} ({r[w] / r['model']:5.2f})" for w in ("loop", "model order", "sorted"))
        print(f"{mp.name:32s} {r['model'] * 1e3:9.3f} {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
