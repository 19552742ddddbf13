"""Does the measurement policy make the suite cheaper without making the estimates worse?

Writes zoo models (default: three --tiny ones), compiles them into one suite at H=1, and for
each policy (the previous one, "legacy", and the current default) measures every whole model
(`e2e`, in this process) and runs the suite (`make run`'s command with --policy) from scratch,
then prints wall times, latency sums, both speedups (the paper's latency-sum speedup and the
wall-time one; the goal is wall >= 0.8 x latency-sum), and per model the estimate / measured
ratio with its 95% interval and verdict, and the same ratios after the reference-benchmark
drift correction (results/drift.py), to see whether it helps.

    taskset -c 1 .venv/bin/python benchmarks/measurement_policy.py                # ~1-2 min
    taskset -c 1 .venv/bin/python benchmarks/measurement_policy.py --models demo  # the demo zoo
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlbricks_gen.codegen.render import suite_command
from dlbricks_gen.estimate.model import estimate, geometric_mean
from dlbricks_gen.estimate.report import rows
from dlbricks_gen.frontend import ShapeOptions
from dlbricks_gen.passes.plan import load_plan
from dlbricks_gen.results.drift import corrected_all, median_reference, reference_spread
from dlbricks_gen.results.load import DEFAULT_STATISTIC, brick_result, load_results
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.workflows.e2e import measure_all

STATISTIC = DEFAULT_STATISTIC
TINY = "resnet18,squeezenet1_1,mobilenet_v2"
# The policy before issue 16: 1 ms values, a 2% relative target up to 1 s, one process.
LEGACY = {"warmup_s": 0.005, "min_value_s": 0.001, "ci_target": 0.02, "abs_target_s": 0.0,
          "max_time_s": 1.0, "processes": 1}
POLICIES = {"legacy": LEGACY, "current": {}}


def cli(*args: str, cwd: Path | None = None) -> None:
    command = [sys.executable, "-m", "dlbricks_gen.cli", *args]
    subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL)


def prepare(work: Path, models: str, tiny: bool) -> tuple[Path, Path, Path]:
    zoo = work / "models"
    cli("zoo", str(zoo), *(["--models", models] if models != "demo" else []),
        *(["--tiny"] if tiny else []))
    cli("compile", str(zoo), "-o", str(work / "suite"), "-H", "1", "--no-audit")
    return zoo, work / "suite", work / "suite.plan.json"


def run_policy(name: str, knobs: dict, zoo: Path, suite: Path, plan_path: Path) -> dict:
    for old in (suite / "results").glob("*.json"):
        old.unlink()
    start = time.perf_counter()
    e2e = measure_all(zoo, ShapeOptions(), Settings(**knobs))
    e2e_wall = time.perf_counter() - start
    policy = ",".join(f"{k}={v!r}" for k, v in knobs.items())
    start = time.perf_counter()
    subprocess.run(suite_command(*(["--policy", policy] if policy else [])), cwd=suite,
                   check=True, stdout=subprocess.DEVNULL)
    suite_wall = time.perf_counter() - start
    plan = load_plan(plan_path)
    results = load_results([suite / "results"], plan.suite, STATISTIC).results
    measured = {n: brick_result(r, STATISTIC) for n, r in e2e["models"].items()}
    table = rows(estimate(plan, results), measured)
    baseline = median_reference([*results.values(), *measured.values()]) or 1.0
    fixed = rows(estimate(plan, corrected_all(results, baseline)), corrected_all(measured, baseline))
    return {"name": name, "e2e_wall": e2e_wall, "suite_wall": suite_wall, "table": table,
            "corrected": fixed,
            "brick_sum": sum(r.latency for r in results.values() if r.ok),
            "model_sum": sum(r.latency for r in measured.values() if r.ok),
            "drift": reference_spread([*results.values(), *measured.values()])}


def report(run: dict) -> None:
    latency = run["model_sum"] / run["brick_sum"]
    wall = run["e2e_wall"] / run["suite_wall"]
    print(f"== policy {run['name']}")
    print(f"  e2e   wall {run['e2e_wall']:7.2f} s  latency sum {run['model_sum'] * 1e3:8.3f} ms  "
          f"({run['e2e_wall'] / run['model_sum']:.0f}x its latency sum)")
    print(f"  suite wall {run['suite_wall']:7.2f} s  latency sum {run['brick_sum'] * 1e3:8.3f} ms  "
          f"({run['suite_wall'] / run['brick_sum']:.0f}x its latency sum)")
    print(f"  speedup: latency sums {latency:.2f}x, wall time {wall:.2f}x = {wall / latency:.2f} "
          f"of the latency-sum speedup (goal >= 0.80)")
    for label, table in (("est/meas", run["table"]), ("drift-corrected", run["corrected"])):
        errors = [abs(r["ratio"] - 1) for r in table if r["ratio"] is not None]
        print(f"  {label}: mean |ratio - 1| {sum(errors) / max(1, len(errors)):.3f}, geomean "
              f"ratio {geometric_mean([r['ratio'] for r in table if r['ratio']]) or 0:.3f}")
    print(f"  reference drift over the run {run['drift'] or 0:.1%}")
    for r in run["table"]:
        pm = "" if r["ratio_pm"] is None else f" +-{r['ratio_pm']:.3f}"
        print(f"    {r['model']:<20} est {r['estimate_ms']:8.3f} ms  meas "
              f"{r['measured_ms'] or 0:8.3f} ms  ratio {r['ratio'] or 0:.3f}{pm}  {r['verdict']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=TINY, help=f"zoo ids, or demo (default {TINY})")
    p.add_argument("--full-size", action="store_true", help="default-scale models, not --tiny")
    args = p.parse_args(argv)
    print(f"models {args.models} ({'default scale' if args.full_size else 'tiny'}), H=1, "
          f"1 thread; run it pinned (taskset -c 1) on a quiet machine for the quiet figures")
    with tempfile.TemporaryDirectory(prefix="dlbricks-policy-") as temp:
        zoo, suite, plan_path = prepare(Path(temp), args.models, not args.full_size)
        for name, knobs in POLICIES.items():
            report(run_policy(name, knobs, zoo, suite, plan_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
