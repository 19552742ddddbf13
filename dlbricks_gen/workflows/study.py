"""The paper's experiment on this machine: e2e measurements, a suite per H, estimates, speedups.

    dlbricks-gen study models/ -H 1..6 -o study/

Layout of the study directory (every step resumes from what is already there):
    e2e.json                 whole-model measurements (one entry per model, kept when re-run)
    H<h>/suite/              the suite for granularity h, run with its own runtime
    H<h>/suite.plan.json     its plan
    H<h>/run.json            wall time of each completed pass of the suite, for that suite id
    study.json, study.md     the per-H table and per-model ratios

Whole models and bricks are measured interleaved, in rounds (the policy's `processes`): round k
measures every model once more (a fresh session each) and runs pass k of every suite (a fresh
worker process), so drift and neighbours hit both alike. The order alternates (models then
suites, suites then models, ...: `round_order`), so a machine that drifts steadily over the
study shifts the mean time of both kinds of measurement equally. Each model's ratio carries a
95% interval (estimate and measurement), which says whether a miss is a miss or noise, and the
reference benchmark recorded in every result shows how much the machine itself drifted.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..codegen.render import suite_command
from ..estimate.model import HIT, MISS, NOISE, ModelEstimate, estimate, geometric_mean
from ..estimate.report import ratio_cell, uncertainty
from ..frontend import ShapeOptions
from ..ir import Model
from ..passes.layout import Conversions
from ..passes.plan import load_plan
from ..results.drift import reference_spread
from ..results.load import BrickResult, brick_result, load_results
from ..runtime.core.settings import Settings
from . import e2e as e2e_mod
from .compile import Recipe, Units, assemble, lower_all, runtime_passes, write_assembled

STATISTIC = "trimmed_mean_20"


@dataclass(frozen=True, slots=True)
class StudyOptions:
    granularities: tuple[int, ...]
    shapes: ShapeOptions
    threads: int = 1
    quick: bool = False
    timeout: float = 600.0
    fusion: bool = True  # never cut inside a fused kernel (passes/fusion.py)
    calibrate: bool = True
    runs: int | None = None  # timed calls per brick and per model (None: the policy's default)
    processes: int | None = None  # rounds of e2e and suite passes (None: the policy's default)

    def settings(self) -> Settings:
        return Settings(intra_op_threads=self.threads, quick=self.quick, min_runs=self.runs,
                        processes=self.processes)


def measure_e2e(models_dir: Path, path: Path, options: StudyOptions, round_index: int,
                echo: Callable[[str], None]) -> dict:
    """Round `round_index` of the whole-model results, resuming: models whose result already
    pools this round are kept, and the others' earlier rounds are pooled with the new one."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    earlier = {k: v for k, v in data.get("models", {}).items() if v.get("status") == "ok"}
    fresh = e2e_mod.measure_all(models_dir, options.shapes, options.settings(),
                                progress=lambda n: echo(f"e2e {n}"), rounds=[round_index],
                                earlier=earlier)
    path.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    return fresh


def run_suite(suite_dir: Path, suite: str, options: StudyOptions, pass_index: int,
              echo: Callable[[str], None]) -> float:
    """Run pass `pass_index` of the suite as a vendor would (`make run --pass K`); returns the
    wall time of that pass (cached per suite id in run.json)."""
    record = suite_dir.parent / "run.json"
    saved = json.loads(record.read_text()) if record.is_file() else {}
    passes = saved.get("passes", {}) if saved.get("suite") == suite else {}
    if str(pass_index) in passes:
        return float(passes[str(pass_index)])
    args = suite_command("--threads", str(options.threads), "--timeout", str(options.timeout),
                         "--pass", str(pass_index))
    if options.quick:
        args.append("--quick")
    if options.runs:
        args += ["--runs", str(options.runs)]
    if options.processes:
        args += ["--processes", str(options.processes)]
    echo(f"running {suite_dir} (pass {pass_index + 1})")
    start = time.perf_counter()
    subprocess.run(args, cwd=suite_dir, check=False)
    passes[str(pass_index)] = time.perf_counter() - start
    record.write_text(json.dumps({"suite": suite, "passes": passes}, sort_keys=True) + "\n")
    return passes[str(pass_index)]


def write_granularity(models: list[Model], units: Units | None, h: int, out: Path,
                      options: StudyOptions, layouts: dict[str, Conversions] | None = None
                      ) -> tuple[str, Path, Path]:
    """Write the suite and plan for granularity h: (suite id, suite folder, plan file)."""
    suite = assemble(models, Recipe(h, options.shapes), units, layouts=layouts)
    suite_dir, plan_path = out / f"H{h}" / "suite", out / f"H{h}" / "suite.plan.json"
    write_assembled(suite, suite_dir, plan_path)
    return suite.info.suite, suite_dir, plan_path


def _model_row(est: ModelEstimate, measured: BrickResult | None, calibrate: bool) -> dict:
    """One model's row of a study: estimate, measurement, ratio, their intervals, verdict."""
    seconds = measured.latency if measured is not None and measured.ok else None
    ok = seconds is not None and est.complete
    chosen = est.calibrated if calibrate and est.calibrated is not None else est.sequential
    interval = uncertainty(est, chosen, measured)
    return {"estimate_s": chosen, "sequential_s": est.sequential, "calibrated_s": est.calibrated,
            "critical_path_s": est.critical_path, "measured_s": seconds,
            "estimate_pm_s": est.halfwidth, "measured_pm_s": measured.halfwidth if ok and measured else None,
            "ratio_pm": interval["ratio_pm"], "verdict": interval["verdict"],
            "ratio": chosen / seconds if ok and seconds else None,
            "ratio_uncalibrated": est.sequential / seconds if ok and seconds else None,
            "complete": est.complete}


def study_granularity(written: tuple[str, Path, Path], h: int, e2e: dict[str, BrickResult],
                      e2e_wall: float, wall: float, options: StudyOptions) -> dict:
    suite, suite_dir, plan_path = written
    plan = load_plan(plan_path)
    results = load_results([suite_dir / "results"], suite, STATISTIC).results
    per_model = {est.name: _model_row(est, e2e.get(est.name), options.calibrate)
                 for est in estimate(plan, results)}
    verdicts = [m["verdict"] for m in per_model.values()]
    ratios = [m["ratio"] for m in per_model.values() if m["ratio"] is not None]
    raw = [m["ratio_uncalibrated"] for m in per_model.values() if m["ratio_uncalibrated"] is not None]
    brick_sum = sum(r.latency for r in results.values() if r.ok)
    # Wall time on both sides as the sum of the per-result wall times (session, calibration,
    # warm-up, measuring), with the same policy; the suite's process time is reported beside.
    brick_wall = sum(r.data["timing"]["wall_s"] for r in results.values())
    e2e_sum = sum(r.latency for r in e2e.values() if r.ok)
    return {
        "h": h, "suite": suite, "unique_bricks": len(plan.bricks),
        "sequences": sum(len(m.instances) for m in plan.models),
        "failed_bricks": sum(not r.ok for r in results.values()),
        "ratio_geomean": geometric_mean(ratios), "ratio_min": min(ratios, default=None),
        "ratio_max": max(ratios, default=None), "compared": len(ratios),
        "within_5pct": _share(ratios, 0.05), "within_10pct": _share(ratios, 0.10),
        "uncalibrated_geomean": geometric_mean(raw), "uncalibrated_within_10pct": _share(raw, 0.10),
        "speedup_latency": e2e_sum / brick_sum if brick_sum else None,
        "speedup_wall": e2e_wall / brick_wall if brick_wall else None,
        "suite_wall_s": brick_wall, "suite_process_s": wall, "e2e_wall_s": e2e_wall,
        "hits": verdicts.count(HIT), "misses": verdicts.count(MISS),
        "undecided": verdicts.count(NOISE),
        "reference_spread": reference_spread([*results.values(), *e2e.values()]),
        "models": per_model,
    }


def _share(ratios: list[float], tolerance: float) -> float | None:
    return sum(abs(r - 1) <= tolerance for r in ratios) / len(ratios) if ratios else None


def round_order(k: int) -> tuple[str, str]:
    """What round k measures first: ABBA order, so linear drift hits models and bricks alike."""
    return ("models", "suites") if k % 2 == 0 else ("suites", "models")


def run_study(models_dir: Path, out: Path, options: StudyOptions,
              echo: Callable[[str], None] = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    models, failed = lower_all(models_dir, options.shapes)
    for _, error in failed:
        echo(f"error: {error}")
    if options.fusion:  # learned once: whole models are optimized by ONNX Runtime
        echo("learning fusion groups from ONNX Runtime")
    models, units, layouts = runtime_passes(models, options.fusion)
    written = {h: write_granularity(models, units, h, out, options, layouts)
               for h in options.granularities}
    walls = dict.fromkeys(options.granularities, 0.0)
    e2e_data: dict = {"models": {}}
    for k in range(options.settings().processes):  # rounds: every model and every suite
        for step in round_order(k):
            if step == "models":
                e2e_data = measure_e2e(models_dir, out / "e2e.json", options, k, echo)
            else:
                for h, (suite, suite_dir, _) in written.items():
                    walls[h] += run_suite(suite_dir, suite, options, k, echo)
    e2e = {name: brick_result(r, STATISTIC) for name, r in e2e_data["models"].items()}
    e2e_wall = sum(r["timing"]["wall_s"] for r in e2e_data["models"].values() if r["status"] == "ok")
    rows = [study_granularity(written[h], h, e2e, e2e_wall, walls[h], options)
            for h in options.granularities]
    data = {"version": 1, "statistic": STATISTIC, "threads": options.threads, "quick": options.quick,
            "models": sorted(m.name for m in models), "failed": [list(f) for f in failed], "by_h": rows}
    (out / "study.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    (out / "study.md").write_text(format_study(data))
    return data


def _fmt(value, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def format_study(data: dict) -> str:
    lines = ["| H | unique bricks | sequences | geomean est/meas | min | max | within 5% | "
             "within 10% | hits / misses / undecided | reference drift | speedup (latency sums) | "
             "speedup (wall time) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["by_h"]:
        lines.append(f"| {r['h']} | {r['unique_bricks']} | {r['sequences']} | {_fmt(r['ratio_geomean'])} | "
                     f"{_fmt(r['ratio_min'])} | {_fmt(r['ratio_max'])} | {_fmt(r['within_5pct'], '{:.0%}')} | "
                     f"{_fmt(r['within_10pct'], '{:.0%}')} | {r.get('hits', 0)} / {r.get('misses', 0)} / "
                     f"{r.get('undecided', 0)} | {_fmt(r.get('reference_spread'), '{:.1%}')} | "
                     f"{_fmt(r['speedup_latency'], '{:.2f}x')} | {_fmt(r['speedup_wall'], '{:.2f}x')} |")
    lines += ["", "| model | " + " | ".join(f"H={r['h']}" for r in data["by_h"]) + " |",
              "|---|" + "---|" * len(data["by_h"])]
    for name in data["models"]:
        cells = [ratio_cell(r["models"].get(name, {})) for r in data["by_h"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
