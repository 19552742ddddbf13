"""Estimate/measured per model for each estimator variant, from finished `study` folders.

    python benchmarks/accuracy.py STUDY [STUDY ...] [-H 1] [--tolerance 0.10] [--json]
                                  [--absorbed-from PLAN] [--stat best_run|trimmed_mean_20|...]

For each study folder (one `dlbricks-gen study` run: e2e.json and H<h>/suite with its plan and
results) and each estimator variant computed from the same measurements, it prints how many
models are within the tolerance, the geometric mean and range of estimate/measured, and the
models that miss. Variants:
  plain       the sequential sum of the bricks' latencies
  calibrated  less each brick's call overhead and every NCHWc reorder it paid (the old default)
  layout      less each brick's call overhead and the reorders the model itself does not do
              (per-instance shares in the plan, passes/layout.py)
  cold        layout, and each brick at its cold-cache time where the model's weights exceed
              the L2 cache of the measuring machine (runtime/core/cold.py)
  near        cold, with the bricks that the model runs inside a neighbouring NCHWc
              convolution (an activation or residual Add ONNX Runtime fuses at level "all",
              `absorbed` in the plan, passes/layout.py) at the share measured for them
              (results' calibration.fused; 1, as in cold, for results without it), every
              model at most at the near cold level (the estimator before the far span)
  default     near, with the far cold ratio for models over FAR_MODEL_L2 x the L2: what
              `estimate` prints
  absorbed-0  default with the absorbed bricks at 0 (the default of sessions 4-6)
  kernels     default, each profiled brick at its kernels' share of its run plus one node's
              cost (estimate/model.py kernel_time), not at its latency less the null call
  kernels-apart  the same without leaving out the absorbed bricks
A study made with `--fusion` gives the same variants on fusion-aware bricks.

With `--repeat` and two studies of the same models (two runs of the same command), it prints
instead how far apart the two runs are, model by model: the measured whole-model latencies,
the plain sums and the default estimates (median and largest relative difference, how many are
within 2%, and for the measured and the default estimate how many differences their printed
95% intervals cover: the effort issue's two goals).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from dlbricks_gen.estimate.model import estimate, geometric_mean
from dlbricks_gen.passes.plan import Plan, load_plan
from dlbricks_gen.results.load import DEFAULT_STATISTIC, STATISTICS, BrickResult, load_e2e, load_results
from dlbricks_gen.runtime.core.cold import FAR_MODEL_L2

STATISTIC = DEFAULT_STATISTIC
VARIANTS = ("plain", "calibrated", "layout", "cold", "near", "default", "absorbed-0", "kernels", "kernels-apart")


def with_absorbed_from(plan: Plan, newer: Plan) -> Plan:
    """`plan` with the `absorbed` flags of `newer`, a plan compiled later from the same models
    (a study measured before the flags existed); a model whose instances differ keeps none."""
    ops = {d: b.ops for d, b in newer.bricks.items()}
    by_name = {m.name: m for m in newer.models}
    models = []
    for m in plan.models:
        n = by_name.get(m.name)
        same = n is not None and [ops[d] for d in n.instances] == [plan.bricks[d].ops for d in m.instances]
        models.append(replace(m, absorbed=n.absorbed if same and n is not None else ()))
    return replace(plan, models=tuple(models))


def load_study(study: Path, h: int, statistic: str) -> tuple[Plan, dict, dict]:
    """(plan, brick results, measured models) of one `study` folder at H=h, at `statistic`."""
    plan = load_plan(study / f"H{h}" / "suite.plan.json")
    results = load_results([study / f"H{h}" / "suite" / "results"], plan.suite, statistic).results
    return plan, results, load_e2e(study / "e2e.json", statistic)


def ratios(study: Path, h: int, absorbed_from: Plan | None = None, statistic: str = STATISTIC
           ) -> dict[str, dict[str, float]]:
    """{variant: {model: estimate/measured}} for the complete, measured models of a study, with
    `statistic` on both sides."""
    plan, results, measured = load_study(study, h, statistic)
    plan = plan if absorbed_from is None else with_absorbed_from(plan, absorbed_from)
    apart = replace(plan, models=tuple(replace(m, absorbed=()) for m in plan.models))
    warm = replace(apart, models=tuple(replace(m, weight_bytes=0) for m in apart.models))
    old = replace(warm, models=tuple(replace(m, kept_reorders=()) for m in warm.models))
    l2 = next((r.l2_bytes for r in results.values() if r.ok), 0)
    near = replace(plan, models=tuple(replace(m, weight_bytes=min(m.weight_bytes, FAR_MODEL_L2 * l2))
                                      for m in plan.models))
    out: dict[str, dict[str, float]] = {v: {} for v in VARIANTS}
    runs = [estimate(p, results) for p in (old, warm, apart, near, plan)]
    runs.append(estimate(plan, {k: _unfused(r) for k, r in results.items()}))
    runs += [estimate(plan, results, kernels=True), estimate(apart, results, kernels=True)]
    for variants in zip(*runs, strict=True):
        name, complete = variants[-1].name, variants[-1].complete
        truth = measured.get(name)
        if truth is None or not truth.ok or not complete:
            continue
        out["plain"][name] = variants[2].sequential / truth.latency
        for variant, est in zip(VARIANTS[1:], variants, strict=True):
            if est.calibrated is not None:
                out[variant][name] = est.calibrated / truth.latency
    return out


def _unfused(result: BrickResult) -> BrickResult:
    """The result with a fused share of 0 (absorbed bricks free), in its data too: the estimate
    re-reads each worker pass from the data (best_run)."""
    calibration = (result.data.get("calibration") or {}) if result.ok else {}
    if not calibration:
        return result
    data = {**result.data, "calibration": {**calibration, "fused": {"pattern": "any", "share": 0.0}}}
    return replace(result, data=data, fused_share=0.0)


def summary(values: dict[str, float], tolerance: float) -> dict:
    within = sorted(m for m, r in values.items() if abs(r - 1) <= tolerance)
    misses = {m: round(r, 3) for m, r in sorted(values.items()) if abs(r - 1) > tolerance}
    return {"models": len(values), "within": len(within),
            "geomean": geometric_mean(list(values.values())),
            "min": min(values.values(), default=math.nan), "max": max(values.values(), default=math.nan),
            "misses": misses}


def run_values(study: Path, h: int, statistic: str) -> dict[str, tuple[float, ...]]:
    """{model: (measured, plain sum, default estimate, the measured's and the estimate's 95%
    half-widths)} of a study's complete, measured models (a half-width unknown: nan)."""
    plan, results, measured = load_study(study, h, statistic)
    return {e.name: (measured[e.name].latency, e.sequential, e.calibrated,
                     _or_nan(measured[e.name].halfwidth), _or_nan(e.halfwidth))
            for e in estimate(plan, results) if e.complete and e.calibrated is not None
            and e.name in measured and measured[e.name].ok}


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def repeatability(first: Path, second: Path, h: int, statistic: str) -> list[str]:
    """How far the two runs are apart per model and, for the measured latency and the default
    estimate, how many differences the printed intervals cover (|x1 - x2| <= hypot(pm1, pm2),
    the 95% interval of a difference of two independent values)."""
    a, b = run_values(first, h, statistic), run_values(second, h, statistic)
    names = sorted(set(a) & set(b))
    lines = [f"{first.name} vs {second.name}: {len(names)} models"]
    # (label, column of the value, column of its half-width or None): run_values' order
    for label, column, pm in (("measured (e2e)", 0, 3), ("plain sum", 1, None), ("default estimate", 2, 4)):
        diffs = sorted(abs(b[n][column] / a[n][column] - 1) for n in names)
        if not diffs:
            continue
        line = (f"  {label:18s} median difference {diffs[len(diffs) // 2]:.1%}, within 2%: "
                f"{sum(d <= 0.02 for d in diffs)}/{len(diffs)}, largest {diffs[-1]:.1%}")
        if pm is not None:
            covered = sum(abs(b[n][column] - a[n][column]) <= math.hypot(a[n][pm], b[n][pm]) for n in names)
            line += f", intervals cover the difference: {covered}/{len(names)}"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("studies", nargs="+", type=Path)
    parser.add_argument("-H", type=int, default=1)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--absorbed-from", type=Path, metavar="PLAN",
                        help="take the absorbed flags from this plan of the same models, "
                             "compiled later (studies measured before the flags existed)")
    parser.add_argument("--stat", choices=STATISTICS, default=STATISTIC,
                        help=f"statistic of bricks and models alike (default {STATISTIC})")
    parser.add_argument("--repeat", action="store_true",
                        help="two studies of the same models: how far apart the runs are")
    args = parser.parse_args(argv)
    if args.repeat:
        if len(args.studies) != 2:
            parser.error("--repeat compares exactly two studies")
        print("\n".join(repeatability(*args.studies, args.H, args.stat)))
        return 0
    newer = load_plan(args.absorbed_from) if args.absorbed_from else None
    table = {}
    for study in args.studies:
        for variant, values in ratios(study, args.H, newer, args.stat).items():
            table[f"{study.name} {variant}"] = summary(values, args.tolerance)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    print(f"{'study / estimator':34s} {'within':>9s} {'geomean':>8s} {'range':>13s}")
    for label, s in table.items():
        g = "-" if s["geomean"] is None else f"{s['geomean']:.3f}"
        print(f"{label:34s} {s['within']:3d}/{s['models']:<5d} {g:>8s} {s['min']:6.2f}-{s['max']:.2f}")
    for label, s in table.items():
        if s["misses"]:
            print(f"misses, {label}: " + ", ".join(f"{m} {r}" for m, r in s["misses"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
