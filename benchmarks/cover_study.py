"""Overlapping windows with a minimum-latency cover, measured offline on a finished study.

The paper proposes, as future work, benchmarking overlapping layer sequences and composing a
model from the cover that fits best. A `dlbricks-gen study` directory already holds suites for
several H, each a different set of windows over the same canonical layer order; together they
are a set of overlapping windows. For each model this script finds, by dynamic programming over
the layer order, the cover by measured windows with the smallest summed latency (plain or
calibrated), and compares it with the whole-model measurement. It also reports what the union of
those suites costs to measure, as the paper's speedup (sum of the models' latencies over the sum
of the bricks' latencies), so accuracy and cost are read side by side.

    .venv/bin/python benchmarks/cover_study.py study/ --sets 1 1,2 1,2,3 1,2,3,4,5,6

Windows of one suite are contiguous in the frontend's canonical order (docs/FORMATS.md, plan),
so each instance's layer span follows from the plan alone: no model file is read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from dlbricks_gen.estimate.model import geometric_mean
from dlbricks_gen.passes.plan import Plan, load_plan
from dlbricks_gen.results.load import DEFAULT_STATISTIC, load_results, statistic_of

STATISTIC = DEFAULT_STATISTIC


def spans(plan: Plan, name: str) -> list[tuple[int, int, str]]:
    """(begin, end, digest) of each instance of model `name`, in layer order."""
    model = next(m for m in plan.models if m.name == name)
    out, begin = [], 0
    for digest in model.instances:
        end = begin + plan.bricks[digest].layers
        out.append((begin, end, digest))
        begin = end
    return out


def best_cover(layers: int, windows: dict[int, list[tuple[int, float]]]) -> float:
    """Smallest total weight of windows that cover [0, layers) exactly, back to back."""
    best = [math.inf] * (layers + 1)
    best[layers] = 0.0
    for begin in range(layers - 1, -1, -1):
        for end, weight in windows.get(begin, ()):
            best[begin] = min(best[begin], weight + best[end])
    return best[0]


def study_set(study: Path, hs: list[int], e2e: dict[str, float]) -> dict:
    plans = {h: load_plan(study / f"H{h}" / "suite.plan.json") for h in hs}
    results = {h: load_results([study / f"H{h}" / "suite" / "results"], plans[h].suite, STATISTIC).results
               for h in hs}
    ratios: dict[str, tuple[float, float]] = {}
    for model in plans[hs[0]].models:
        plain: dict[int, list] = {}
        calibrated: dict[int, list] = {}
        overhead = []
        for h in hs:
            for begin, end, digest in spans(plans[h], model.name):
                r = results[h].get(digest)
                if r is None or not r.ok:
                    continue
                plain.setdefault(begin, []).append((end, r.latency))
                if r.calibrated is not None:
                    calibrated.setdefault(begin, []).append((end, r.calibrated))
                    overhead.append(r.null_call)
        if model.name not in e2e:
            continue
        one_call = sorted(overhead)[len(overhead) // 2] if overhead else 0.0
        ratios[model.name] = (best_cover(model.layers, plain) / e2e[model.name],
                              (best_cover(model.layers, calibrated) + one_call) / e2e[model.name])
    bricks = {d: r.latency for h in hs for d, r in results[h].items() if r.ok}
    return {"ratios": ratios, "bricks": len(bricks), "brick_latency_s": sum(bricks.values())}


def summary(label: str, values: list[float]) -> str:
    within = lambda t: sum(1 for v in values if abs(v - 1) <= t)  # noqa: E731
    return (f"{label:10s} geomean {geometric_mean(values):.3f}  min {min(values):.3f}  "
            f"max {max(values):.3f}  within 5% {within(0.05)}/{len(values)}  "
            f"within 10% {within(0.10)}/{len(values)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", type=Path, help="a `dlbricks-gen study` output directory")
    p.add_argument("--sets", nargs="+", default=["1", "1,2", "1,2,3"],
                   help="sets of H whose windows may be combined, e.g. 1,2,3")
    args = p.parse_args(argv)
    e2e_data = json.loads((args.study / "e2e.json").read_text())["models"]
    e2e = {n: statistic_of(r, STATISTIC) for n, r in e2e_data.items() if r.get("status") == "ok"}
    total = sum(e2e.values())
    for text in args.sets:
        hs = [int(h) for h in text.split(",")]
        data = study_set(args.study, hs, e2e)
        plain = [a for a, _ in data["ratios"].values()]
        cal = [b for _, b in data["ratios"].values()]
        print(f"windows of H in {{{text}}}: {data['bricks']} unique bricks, speedup (latency sums) "
              f"{total / data['brick_latency_s']:.2f}x")
        print("  " + summary("plain", plain))
        print("  " + summary("calibrated", cal))
        misses = [f"{n} {a:.3f}" for n, (a, _) in sorted(data["ratios"].items()) if abs(a - 1) > 0.1]
        print(f"  plain misses: {', '.join(misses) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
