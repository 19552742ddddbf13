"""Does the suite cost less than running the models, and do two runs of it agree? (issue 16)

For each set of models (default: the built-in demo zoo at default scale, and the 16 real exports
of the corpus's `threads2` set when --corpus DIR is given), compiled at H=1:
  1. every model end to end (`dlbricks-gen e2e`, the default policy), then the suite twice from
     scratch (`make run`'s command), each timed as the user waits for it (process start
     included);
  2. wall time and latency sum of both, the latency-sum speedup (the paper's), the wall-time
     speedup and their ratio (goal: >= 0.8);
  3. repeatability: per model, the two suite runs' estimates, their relative difference (goal:
     within 2%) and whether the printed intervals cover it (|e1 - e2| <= hypot(pm1, pm2), the
     95% interval of a difference of two independent estimates); and est/meas per run.

    taskset -c 1 .venv/bin/python benchmarks/effort.py --corpus CORPUS # both sets, ~10-15 min
    taskset -c 1 .venv/bin/python benchmarks/effort.py --sets zoo      # the zoo only, ~5 min
    taskset -c 1 .venv/bin/python benchmarks/effort.py --models DIR    # any folder of models
    .venv/bin/python benchmarks/effort.py --sets zoo --tiny --quick     # a smoke test (~1 min)

Run it pinned on a quiet machine: the figures are only as steady as the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlbricks_gen.codegen.render import suite_command
from dlbricks_gen.estimate.model import estimate, geometric_mean
from dlbricks_gen.estimate.report import rows
from dlbricks_gen.passes.plan import load_plan
from dlbricks_gen.results.drift import reference_spread
from dlbricks_gen.results.load import DEFAULT_STATISTIC, brick_result, load_results
from dlbricks_gen.runtime.core.machine import machine_info

STATISTIC = DEFAULT_STATISTIC
SELECT = Path(__file__).resolve().parent / "realworld" / "eval_set.py"
GOAL_RATIO, GOAL_REPEAT = 0.8, 0.02


def timed(command: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlbricks_gen.cli", *args]


def models_of(name: str, work: Path, folder: Path | None, tiny: bool = False,
              corpus: Path | None = None) -> Path | None:
    """The folder of models of a set: the demo zoo written here, the corpus's threads2 set
    linked here, or a folder given."""
    if folder is not None:
        return folder
    if name == "zoo":
        small = ["--tiny", "--models", "resnet18,squeezenet1_1"] if tiny else []
        subprocess.run(cli("zoo", str(work / "models"), *small), check=True,
                       stdout=subprocess.DEVNULL)
        return work / "models"
    if corpus is None or not corpus.is_dir():
        print(f"== {name}: no corpus folder (--corpus, made by benchmarks/realworld/run.sh), skipped")
        return None
    subprocess.run([sys.executable, str(SELECT), str(corpus), str(work / "models"), "--set",
                    "threads2"], check=True, stdout=subprocess.DEVNULL)
    return work / "models"


def suite_estimates(suite: Path, plan_path: Path, measured: dict) -> dict:
    plan = load_plan(plan_path)
    results = load_results([suite / "results"], plan.suite, STATISTIC).results
    table = {r["model"]: r for r in rows(estimate(plan, results), measured)}
    return {"table": table, "brick_sum": sum(r.latency for r in results.values() if r.ok),
            "bricks": len(results), "drift": reference_spread(list(results.values()))}


def run_set(name: str, models: Path, work: Path, threads: int, quick: bool = False) -> dict:
    suite, plan = work / "suite", work / "suite.plan.json"
    subprocess.run(cli("compile", str(models), "-o", str(suite), "-H", "1", "--no-audit"),
                   check=True, stdout=subprocess.DEVNULL)
    e2e_path = work / "e2e.json"
    flags = ["--threads", str(threads), *(["--quick"] if quick else [])]
    e2e_wall = timed(cli("e2e", str(models), "-o", str(e2e_path), *flags))
    e2e = json.loads(e2e_path.read_text(encoding="utf-8"))
    measured = {n: brick_result(r, STATISTIC) for n, r in e2e["models"].items()}
    runs = []
    for _ in range(2):
        shutil.rmtree(suite / "results", ignore_errors=True)  # this benchmark's own results
        wall = timed(suite_command(*flags), cwd=suite)
        runs.append({"wall": wall, **suite_estimates(suite, plan, measured)})
    return {"name": name, "models": len(measured), "e2e_wall": e2e_wall,
            "model_sum": sum(r.latency for r in measured.values() if r.ok), "runs": runs}


def report_cost(data: dict) -> None:
    print(f"== {data['name']}: {data['models']} models, {data['runs'][0]['bricks']} bricks at H=1")
    print(f"  every model end to end  wall {data['e2e_wall']:8.1f} s  latency sum "
          f"{data['model_sum'] * 1e3:9.2f} ms  ({data['e2e_wall'] / data['model_sum']:.0f}x)")
    for index, run in enumerate(data["runs"], 1):
        latency = data["model_sum"] / run["brick_sum"]
        wall = data["e2e_wall"] / run["wall"]
        print(f"  suite, run {index}            wall {run['wall']:8.1f} s  latency sum "
              f"{run['brick_sum'] * 1e3:9.2f} ms  ({run['wall'] / run['brick_sum']:.0f}x)  "
              f"speedup: latency sum {latency:.2f}x, wall time {wall:.2f}x, ratio "
              f"{wall / latency:.2f} (goal >= {GOAL_RATIO}); reference drift "
              f"{run['drift'] or 0:.1%}")


def report_repeat(data: dict) -> None:
    first, second = (run["table"] for run in data["runs"])
    print(f"  repeatability of the estimates (goal: within {GOAL_REPEAT:.0%}, and the "
          f"intervals cover the difference)")
    print(f"    {'model':<28} {'run 1 ms':>10} {'+-':>7} {'run 2 ms':>10} {'+-':>7} "
          f"{'diff':>7} {'covered':>7}  est/meas 1, 2")
    diffs, covered = [], 0
    for model in sorted(first):
        a, b = first[model], second.get(model)
        if b is None or not a["estimate_ms"] or not b["estimate_ms"]:
            continue
        diff = abs(a["estimate_ms"] - b["estimate_ms"]) / ((a["estimate_ms"] + b["estimate_ms"]) / 2)
        bound = math.hypot(a["estimate_pm_ms"] or 0.0, b["estimate_pm_ms"] or 0.0)
        inside = abs(a["estimate_ms"] - b["estimate_ms"]) <= bound
        diffs.append(diff)
        covered += inside
        ratios = ", ".join("-" if r["ratio"] is None else f"{r['ratio']:.3f}" for r in (a, b))
        print(f"    {model[:28]:<28} {a['estimate_ms']:10.3f} {a['estimate_pm_ms'] or 0:7.3f} "
              f"{b['estimate_ms']:10.3f} {b['estimate_pm_ms'] or 0:7.3f} {diff:7.2%} "
              f"{'yes' if inside else 'NO':>7}  {ratios}")
    if not diffs:
        return
    within = sum(d <= GOAL_REPEAT for d in diffs)
    print(f"    {within}/{len(diffs)} within {GOAL_REPEAT:.0%} (median {sorted(diffs)[len(diffs) // 2]:.2%}, "
          f"max {max(diffs):.2%}); intervals cover the difference for {covered}/{len(diffs)}")
    for index, run in enumerate(data["runs"], 1):
        ratios = [r["ratio"] for r in run["table"].values() if r["ratio"]]
        hits = sum(r["verdict"] == "hit" for r in run["table"].values())
        print(f"    run {index}: geomean est/meas {geometric_mean(ratios) or 0:.3f}, "
              f"{hits}/{len(ratios)} hits (within 10% by their intervals)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="zoo,real", help="zoo, real or both (default zoo,real)")
    p.add_argument("--models", type=Path, help="a folder of models instead of the sets")
    p.add_argument("--corpus", type=Path, help="the real-export corpus (benchmarks/realworld/run.sh)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (1)")
    p.add_argument("--tiny", action="store_true", help="zoo: two --tiny models (smoke test)")
    p.add_argument("--quick", action="store_true", help="quick policy (smoke test, no figures)")
    args = p.parse_args(argv)
    info = machine_info()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    print(f"CPU {info['cpu_model']} ({info['logical_cores']} logical CPUs, this process on "
          f"{affinity or 'all'}), load average {os.getloadavg()[0]:.2f}, {args.threads} thread(s), "
          f"onnxruntime {info['onnxruntime']}")
    sets = ["models"] if args.models else [s for s in args.sets.split(",") if s]
    start = time.perf_counter()
    for name in sets:
        with tempfile.TemporaryDirectory(prefix=f"dlbricks-effort-{name}-") as temp:
            models = models_of(name, Path(temp), args.models, args.tiny, args.corpus)
            if models is None:
                continue
            data = run_set(name, models, Path(temp), args.threads, args.quick)
            report_cost(data)
            report_repeat(data)
    print(f"done in {time.perf_counter() - start:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
