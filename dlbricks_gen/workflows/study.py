"""The paper's experiment on this machine: e2e measurements, a suite per H, estimates, speedups.

    dlbricks-gen study models/ -H 1..6 -o study/

Layout of the study directory (every step resumes from what is already there):
    e2e.json                 whole-model measurements (one entry per model, kept when re-run)
    H<h>/suite/              the suite for granularity h, run with its own runtime
    H<h>/suite.plan.json     its plan
    H<h>/run.json            wall time of the completed suite run, for that suite id
    study.json, study.md     the per-H table and per-model ratios
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..codegen.render import suite_command
from ..estimate.model import estimate, geometric_mean
from ..frontend import ShapeOptions
from ..ir import Model
from ..passes.layout import Conversions
from ..passes.plan import load_plan
from ..results.load import BrickResult, load_results
from ..runtime.core.settings import Settings
from . import e2e as e2e_mod
from .compile import Recipe, Units, assemble, fusion_groups, layout_conversions, lower_all, write_assembled

STATISTIC = "trimmed_mean_20"


@dataclass(frozen=True, slots=True)
class StudyOptions:
    granularities: tuple[int, ...]
    shapes: ShapeOptions
    threads: int = 1
    quick: bool = False
    timeout: float = 600.0
    fusion: bool = False
    calibrate: bool = True
    runs: int | None = None  # timed calls per brick and per model (None: the policy's default)


def measure_e2e(models_dir: Path, path: Path, options: StudyOptions,
                echo: Callable[[str], None]) -> dict:
    """Whole-model results, resuming: models already measured with status ok are kept."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    done = {k: v for k, v in data.get("models", {}).items() if v.get("status") == "ok"}
    settings = Settings(intra_op_threads=options.threads, quick=options.quick, min_runs=options.runs)
    fresh = e2e_mod.measure_all(models_dir, options.shapes, settings, progress=lambda n: echo(f"e2e {n}"),
                                skip=set(done))
    fresh["models"] = {**fresh["models"], **done}
    fresh["models"] = dict(sorted(fresh["models"].items()))
    path.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    return fresh


def run_suite(suite_dir: Path, suite: str, options: StudyOptions, echo: Callable[[str], None]) -> float:
    """Run the suite as a vendor would; returns the wall time of a complete run (cached)."""
    record = suite_dir.parent / "run.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("suite") == suite:
            return float(saved["wall_s"])
    args = suite_command("--threads", str(options.threads), "--timeout", str(options.timeout))
    if options.quick:
        args.append("--quick")
    if options.runs:
        args += ["--runs", str(options.runs)]
    echo(f"running {suite_dir}")
    start = time.perf_counter()
    subprocess.run(args, cwd=suite_dir, check=False)
    wall = time.perf_counter() - start
    record.write_text(json.dumps({"suite": suite, "wall_s": wall}) + "\n")
    return wall


def study_granularity(models: list[Model], units: Units | None, h: int, out: Path, e2e: dict[str, BrickResult],
                      e2e_wall: float, options: StudyOptions, echo: Callable[[str], None],
                      layouts: dict[str, Conversions] | None = None) -> dict:
    suite = assemble(models, Recipe(h, options.shapes), units, layouts=layouts)
    parts, info = suite.partition, suite.info
    suite_dir, plan_path = out / f"H{h}" / "suite", out / f"H{h}" / "suite.plan.json"
    write_assembled(suite, suite_dir, plan_path)
    wall = run_suite(suite_dir, info.suite, options, echo)
    plan = load_plan(plan_path)
    results = load_results([suite_dir / "results"], info.suite, STATISTIC).results
    per_model = {}
    for est in estimate(plan, results):
        measured = e2e.get(est.name)
        seconds = measured.latency if measured is not None and measured.ok else None
        ok = seconds is not None and est.complete
        chosen = est.calibrated if options.calibrate and est.calibrated is not None else est.sequential
        per_model[est.name] = {"estimate_s": chosen, "sequential_s": est.sequential,
                               "calibrated_s": est.calibrated, "critical_path_s": est.critical_path,
                               "measured_s": seconds,
                               "ratio": chosen / seconds if ok and seconds else None,
                               "ratio_uncalibrated": est.sequential / seconds if ok and seconds else None,
                               "complete": est.complete}
    ratios = [m["ratio"] for m in per_model.values() if m["ratio"] is not None]
    raw = [m["ratio_uncalibrated"] for m in per_model.values() if m["ratio_uncalibrated"] is not None]
    brick_sum = sum(r.latency for r in results.values() if r.ok)
    # Wall time on both sides as the sum of the per-result wall times (session, calibration,
    # warm-up, measuring), with the same policy; the suite's process time is reported beside.
    brick_wall = sum(r.data["timing"]["wall_s"] for r in results.values())
    e2e_sum = sum(r.latency for r in e2e.values() if r.ok)
    return {
        "h": h, "suite": info.suite, "unique_bricks": len(parts.bricks),
        "sequences": sum(len(m.instances) for m in parts.models),
        "failed_bricks": sum(not r.ok for r in results.values()),
        "ratio_geomean": geometric_mean(ratios), "ratio_min": min(ratios, default=None),
        "ratio_max": max(ratios, default=None), "compared": len(ratios),
        "within_5pct": _share(ratios, 0.05), "within_10pct": _share(ratios, 0.10),
        "uncalibrated_geomean": geometric_mean(raw), "uncalibrated_within_10pct": _share(raw, 0.10),
        "speedup_latency": e2e_sum / brick_sum if brick_sum else None,
        "speedup_wall": e2e_wall / brick_wall if brick_wall else None,
        "suite_wall_s": brick_wall, "suite_process_s": wall, "e2e_wall_s": e2e_wall,
        "models": per_model,
    }


def _share(ratios: list[float], tolerance: float) -> float | None:
    return sum(abs(r - 1) <= tolerance for r in ratios) / len(ratios) if ratios else None


def run_study(models_dir: Path, out: Path, options: StudyOptions,
              echo: Callable[[str], None] = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    models, failed = lower_all(models_dir, options.shapes)
    for _, error in failed:
        echo(f"error: {error}")
    e2e_data = measure_e2e(models_dir, out / "e2e.json", options, echo)
    e2e = {name: BrickResult(name, r["status"] == "ok",
                             r["stats"][STATISTIC] if r["status"] == "ok" else None, r.get("error"), r)
           for name, r in e2e_data["models"].items()}
    e2e_wall = sum(r["timing"]["wall_s"] for r in e2e_data["models"].values() if r["status"] == "ok")
    if options.fusion:  # learned once: whole models are optimized by ONNX Runtime
        echo("learning fusion groups from ONNX Runtime")
    models, units = fusion_groups(models, options.fusion)
    layouts = layout_conversions(models)
    rows = [study_granularity(models, units, h, out, e2e, e2e_wall, options, echo, layouts)
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
             "within 10% | speedup (latency sums) | speedup (wall time) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["by_h"]:
        lines.append(f"| {r['h']} | {r['unique_bricks']} | {r['sequences']} | {_fmt(r['ratio_geomean'])} | "
                     f"{_fmt(r['ratio_min'])} | {_fmt(r['ratio_max'])} | {_fmt(r['within_5pct'], '{:.0%}')} | "
                     f"{_fmt(r['within_10pct'], '{:.0%}')} | {_fmt(r['speedup_latency'], '{:.2f}x')} | "
                     f"{_fmt(r['speedup_wall'], '{:.2f}x')} |")
    lines += ["", "| model | " + " | ".join(f"H={r['h']}" for r in data["by_h"]) + " |",
              "|---|" + "---|" * len(data["by_h"])]
    for name in data["models"]:
        cells = [_fmt(r["models"].get(name, {}).get("ratio")) for r in data["by_h"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
