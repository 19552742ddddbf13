"""The paper's experiment on this machine: e2e measurements, a suite per H, estimates, speedups.

    dlbricks-gen study models/ -H 1..6 -o study/

Layout of the study directory (every step resumes from what is already there):
    e2e.json                 whole-model measurements (one entry per model, kept when re-run;
                             `slices`: the --slices it was started with, which a resumed
                             study must keep: check_slices)
    H<h>/suite/              the suite for granularity h, run with its own runtime
    H<h>/suite.plan.json     its plan
    H<h>/run.json            wall time of each completed pass of the suite, for that suite id
    study.json, study.md     the per-H table and per-model ratios

Whole models and bricks are measured interleaved, in rounds (the policy's `processes`): round k
measures every model once more and runs pass k of every suite, so drift and neighbours hit both
alike. Each round is cut in `slices` (SLICES): slice j measures every model with 1/S of the
round's calls (a fresh session each, pooled into the round's own run entry) and runs shard j of
S of pass k of every suite (a fresh worker process). A model is then timed at S moments spread
over the pass, as its bricks are, instead of for one second in one phase of the machine. The
order alternates (models then suites, suites then models, ...: `round_order`, over the slices),
so a machine that drifts steadily over the study shifts the mean time of both kinds alike. Each model's ratio carries a
95% interval (estimate and measurement), which says whether a miss is a miss or noise, and the
reference benchmark recorded in every result shows how much the machine itself drifted.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..codegen.render import suite_command
from ..estimate.model import HIT, MISS, NOISE, ModelEstimate, estimate, geometric_mean
from ..estimate.report import ratio_cell, uncertainty
from ..frontend import ShapeOptions, find_models
from ..ir import Model
from ..passes.layout import Conversions
from ..passes.plan import load_plan
from ..results.drift import reference_spread
from ..results.load import DEFAULT_STATISTIC, BrickResult, brick_result, load_results
from ..results.machine import identity, machine_label
from ..runtime.core.settings import Settings
from ..runtime.suite import shard
from . import e2e as e2e_mod
from .compile import Recipe, Units, assemble, lower_all, runtime_passes, write_assembled

STATISTIC = DEFAULT_STATISTIC
# A round of whole models measured in this many slices, between as many shards of each suite's
# pass: a model timed for a second at once sits in one phase of a VM's speed, while its bricks
# are spread over the pass and average over the phases (docs/ACCURACY-LOG.md, session 10).
SLICES = 4


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
    slices: int | None = None  # each round in slices: models, a shard of every suite, in turn

    def settings(self) -> Settings:
        return Settings(intra_op_threads=self.threads, quick=self.quick, min_runs=self.runs,
                        processes=self.processes)

    def parts(self) -> int:
        """Slices per round: `slices`, else SLICES (1 with --quick: nothing to average over)."""
        return self.slices or (1 if self.quick else SLICES)


class Tally:
    """The study's units of work for a progress bar: models lowered, whole models measured and
    brick runs. `report(item, done, total)` is called as each starts."""

    def __init__(self, report: Callable[[str, int, int], None] | None, total: int):
        self.report, self.done, self.total = report, 0, total

    def step(self, item: str) -> None:
        if self.report:
            self.report(item, self.done, self.total)
        self.done += 1

    def skip_to(self, done: int) -> None:
        """Past work that was already done (a resumed study), or that said nothing."""
        self.done = max(self.done, done)


RUN_LINE = re.compile(r"\[\d+/\d+\] (.*?)(?:  \(\S+ elapsed, \S+ left\))?")  # the runner's line per brick run


def measure_e2e(models_dir: Path, path: Path, options: StudyOptions, round_index: int,
                tally: Tally, part: tuple[int, int] = (0, 1)) -> dict:
    """Slice `part` (j, S) of round `round_index` of the whole-model results, resuming: models
    whose result already pools it are kept, and the others' earlier rounds and slices are
    pooled with the new one."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    earlier = {k: v for k, v in data.get("models", {}).items() if v.get("status") == "ok"}
    start = tally.done
    fresh = e2e_mod.measure_all(models_dir, options.shapes, options.settings(),
                                progress=lambda n: tally.step(f"e2e {n}"), rounds=[round_index],
                                earlier=earlier, part=part)
    tally.skip_to(start + len(fresh["models"]))
    fresh["slices"] = part[1]  # what a resumed study must go on with (check_slices)
    path.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    return fresh


def run_suite(suite_dir: Path, suite: str, options: StudyOptions, pass_index: int,
              echo: Callable[[str], None], tally: Tally | None = None, runs: int = 0,
              part: tuple[int, int] = (0, 1)) -> float:
    """Run pass `pass_index` of the suite, or shard j+1 of S of it for `part` (j, S), as a
    vendor would (`make run --pass K [--shard J/S]`); returns the wall time (cached per suite id
    in run.json). The runner's line per brick run (`runs` of them) steps `tally`; its other
    lines go to `echo`."""
    tally = tally or Tally(None, 0)
    start_units = tally.done
    record = suite_dir.parent / "run.json"
    saved = json.loads(record.read_text()) if record.is_file() else {}
    passes = saved.get("passes", {}) if saved.get("suite") == suite else {}
    shard_label = f"{part[0] + 1}/{part[1]}" if part[1] > 1 else ""
    key = f"{pass_index}:{shard_label}" if shard_label else str(pass_index)
    if key in passes:
        tally.skip_to(start_units + runs)
        return float(passes[key])
    args = suite_command("--threads", str(options.threads), "--timeout", str(options.timeout),
                         "--pass", str(pass_index))
    if shard_label:
        args += ["--shard", shard_label]
    if options.quick:
        args.append("--quick")
    if options.runs:
        args += ["--runs", str(options.runs)]
    if options.processes:
        args += ["--processes", str(options.processes)]
    echo(f"running {suite_dir} (pass {pass_index + 1}{f', shard {shard_label}' if shard_label else ''})")
    start = time.perf_counter()
    with subprocess.Popen(args, cwd=suite_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, encoding="utf-8", errors="replace") as child:
        for line in child.stdout or ():
            run = RUN_LINE.fullmatch(line.rstrip())
            if run:
                tally.step(f"H{suite_dir.parent.name.removeprefix('H')} {run.group(1)}")
            elif line.strip():
                echo(line.rstrip())
    tally.skip_to(start_units + runs)
    passes[key] = time.perf_counter() - start
    record.write_text(json.dumps({"suite": suite, "passes": passes}, sort_keys=True) + "\n")
    return passes[key]


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


def started_slices(out: Path) -> int | None:
    """The slices a study directory was started with (None: nothing measured yet): e2e.json's
    `slices`, else what the shards recorded in each H's run.json say ("k:J/S", or "k": 1)."""
    e2e = out / "e2e.json"
    if e2e.is_file():
        found = json.loads(e2e.read_text()).get("slices")
        if isinstance(found, int) and not isinstance(found, bool):
            return found
    for record in sorted(out.glob("H*/run.json")):
        for key in json.loads(record.read_text()).get("passes", {}):
            parts = key.partition("/")[2] or "1"
            return int(parts) if parts.isdigit() else None
    return None


class SlicesChanged(ValueError):
    """A study directory resumed with other --slices than it was started with."""


def check_slices(out: Path, parts: int) -> None:
    """A study resumes only with the slices it started with: slice j of S holds 1/S of a
    round's calls and shard j of S of each pass, so resumed with another S its rounds would
    pool slices of different sizes and skip or repeat parts (SlicesChanged)."""
    found = started_slices(out)
    if found is not None and found != parts:
        raise SlicesChanged(f"{out}: this study was started with --slices {found}; resume it with "
                         f"--slices {found}, or give another -o to start a new one with {parts}")


def run_study(models_dir: Path, out: Path, options: StudyOptions,
              echo: Callable[[str], None] = print,
              progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The whole study; `progress(item, done, total)` as each unit of work starts (models
    lowered, whole models measured, brick runs; the total is known once the suites are
    written). Raises SlicesChanged, before any work, for a study resumed with other slices."""
    check_slices(out, options.parts())
    out.mkdir(parents=True, exist_ok=True)
    files = len(find_models(models_dir))
    tally = Tally(progress, files)
    models, failed = lower_all(models_dir, options.shapes, progress=lambda p: tally.step(f"lowering {p}"))
    for _, error in failed:
        echo(f"error: {error}")
    if options.fusion:  # learned once: whole models are optimized by ONNX Runtime
        echo("learning fusion groups from ONNX Runtime")
    models, units, layouts = runtime_passes(models, options.fusion)
    written = {h: write_granularity(models, units, h, out, options, layouts)
               for h in options.granularities}
    walls = dict.fromkeys(options.granularities, 0.0)
    bricks = {h: json.loads((suite_dir / "suite.json").read_text())["bricks"]
              for h, (_, suite_dir, _) in written.items()}
    rounds, parts = options.settings().processes, options.parts()
    tally.total = files + rounds * (parts * files + sum(map(len, bricks.values())))
    e2e_data: dict = {"models": {}}
    for k in range(rounds):  # rounds: every model and every suite, each in slices
        for j in range(parts):
            for step in round_order(k * parts + j):
                if step == "models":
                    e2e_data = measure_e2e(models_dir, out / "e2e.json", options, k, tally, (j, parts))
                    continue
                for h, (suite, suite_dir, _) in written.items():
                    runs = len(shard(bricks[h], j + 1, parts))
                    walls[h] += run_suite(suite_dir, suite, options, k, echo, tally, runs, (j, parts))
    e2e = {name: brick_result(r, STATISTIC) for name, r in e2e_data["models"].items()}
    e2e_wall = sum(r["timing"]["wall_s"] for r in e2e_data["models"].values() if r["status"] == "ok")
    rows = [study_granularity(written[h], h, e2e, e2e_wall, walls[h], options)
            for h in options.granularities]
    data = {"version": 1, "statistic": STATISTIC, "threads": options.threads, "quick": options.quick,
            "models": sorted(m.name for m in models), "failed": [list(f) for f in failed], "by_h": rows,
            "about": study_about(e2e_data, rows, options)}
    (out / "study.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    (out / "study.md").write_text(format_study(data))
    return data


def study_about(e2e_data: dict, rows: list[dict], options: StudyOptions) -> dict:
    """What a study describes, as every output names it (estimate/report.py describe): the
    machine its whole models were measured on, the suite of each H, the statistic, the
    dlbricks-gen version and the date."""
    first = next((r for r in e2e_data["models"].values() if r.get("status") == "ok"), None)
    return {"machine": machine_label(identity(first)) if first else None,
            "suites": {str(r["h"]): r["suite"] for r in rows}, "statistic": STATISTIC,
            "H": list(options.granularities), "batch": options.shapes.batch,
            "dlbricks_gen": __version__, "date": datetime.date.today().isoformat()}


def about_line(data: dict) -> str:
    about = data.get("about")
    if not about:
        return ""
    suites = ", ".join(f"H={h} suite {s}" for h, s in about["suites"].items())
    return (f"machine {about['machine'] or 'unknown (nothing measured)'}; {suites}; statistic "
            f"{about['statistic']}; dlbricks-gen {about['dlbricks_gen']}, {about['date']}")


def _fmt(value, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def format_study(data: dict) -> str:
    lines = [f"{about_line(data)}", ""] if data.get("about") else []
    lines += ["| H | unique bricks | sequences | geomean est/meas | min | max | within 5% | "
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
