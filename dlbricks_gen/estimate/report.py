"""Presenting estimates: terminal table, JSON and CSV. Pure functions returning text."""

from __future__ import annotations

import csv
import io
import json

from ..passes.plan import Plan
from ..results.load import BrickResult
from .model import (
    HIT,
    MISS,
    NOISE,
    ModelEstimate,
    breakdown,
    geometric_mean,
    headline_critical_path,
    model_results,
    pass_results,
    ratio_halfwidth,
    verdict,
)

COLUMNS = ("model", "layers", "bricks", "coverage", "estimate_ms", "estimate_pm_ms", "sequential_ms",
           "calibrated_ms", "critical_path_ms", "measured_ms", "measured_pm_ms", "ratio", "ratio_pm",
           "verdict", "status")


# The estimate JSON's format: 2 since its breakdowns are in ms (`by_op_ms`), as the rest.
JSON_VERSION = 2


def _scaled(value: float | None, scale: float = 1e3) -> float | None:
    return None if value is None else value * scale


def uncertainty(est: ModelEstimate, chosen: float, measured: BrickResult | None) -> dict:
    """The interval columns of a row: half-widths (95%) of estimate, measurement and ratio,
    and the verdict (hit, miss or undecided) they allow."""
    meas = measured.latency if measured is not None and measured.ok else None
    meas_hw = measured.halfwidth if measured is not None and measured.ok else None
    ratio = chosen / meas if meas and est.complete else None
    ratio_hw = ratio_halfwidth(chosen, est.halfwidth, meas, meas_hw) if ratio and meas else None
    return {"estimate_pm_ms": _scaled(est.halfwidth), "measured_pm_ms": _scaled(meas_hw),
            "ratio_pm": ratio_hw, "verdict": verdict(ratio, ratio_hw)}


def rows(estimates: list[ModelEstimate], e2e: dict[str, BrickResult], calibrate: bool = True) -> list[dict]:
    """One row per model. The estimate is the calibrated sequential sum when every brick
    carries a calibration (and `calibrate`), else the plain sequential sum."""
    out = []
    for est in estimates:
        measured = e2e.get(est.name)
        measured_ms = measured.latency * 1e3 if measured and measured.ok else None
        use_calibration = calibrate and est.calibrated is not None
        chosen = est.calibrated if calibrate and est.calibrated is not None else est.sequential
        ratio = (chosen * 1e3 / measured_ms) if measured_ms and est.complete else None
        out.append({
            "model": est.name,
            "layers": est.layers,
            "bricks": est.instances,
            "coverage": round(est.covered_layers / est.layers, 4) if est.layers else 1.0,
            "estimate_ms": chosen * 1e3 if est.covered_layers else None,  # nothing measured
            "estimate_kind": "calibrated" if use_calibration else "sequential",
            "sequential_ms": est.sequential * 1e3,
            "calibrated_ms": None if est.calibrated is None else est.calibrated * 1e3,
            "critical_path_ms": est.critical_path * 1e3,
            "measured_ms": measured_ms,
            "ratio": ratio,
            "status": "complete" if est.complete else "incomplete (lower bound)",
            **uncertainty(est, chosen, measured),
            "failed": [{"brick": b, "error": e} for b, e in est.failed],
            "missing": list(est.missing),
        })
    return out


def headline_views(table: list[dict], plan: Plan, results: dict[str, BrickResult]) -> dict[str, dict]:
    """Put every view of a table in the terms of its headline estimate: the critical path of
    each row, and the per-model breakdowns it returns (by model name)."""
    by_name = {m.name: m for m in plan.models}
    breakdowns = {}
    passes = pass_results(results)
    for row in table:
        model, calibrated = by_name[row["model"]], row["estimate_kind"] == "calibrated"
        chosen = model_results(model, plan, results, passes)
        row["critical_path_ms"] = headline_critical_path(model, chosen, calibrated) * 1e3
        breakdowns[row["model"]] = breakdown(model, plan, chosen, calibrated=calibrated)
    return breakdowns


def nothing_estimated(tables: list[list[dict]]) -> bool:
    """No model of any table has a single measured layer: the job failed (wrong plan, empty or
    foreign results), whatever was printed."""
    return not any(r["coverage"] > 0 for table in tables for r in table)


def summary(table: list[dict]) -> dict:
    ratios = [r["ratio"] for r in table if r["ratio"] is not None]
    return {
        "models": len(table),
        "complete": sum(r["status"] == "complete" for r in table),
        "compared": len(ratios),
        "ratio_geomean": geometric_mean(ratios),
        "ratio_min": min(ratios, default=None),
        "ratio_max": max(ratios, default=None),
        "within_5pct": sum(abs(r - 1) <= 0.05 for r in ratios),
        "within_10pct": sum(abs(r - 1) <= 0.10 for r in ratios),
        "hits": sum(r.get("verdict") == HIT for r in table),
        "misses": sum(r.get("verdict") == MISS for r in table),
        "undecided": sum(r.get("verdict") == NOISE for r in table),
    }


def to_json(table: list[dict], statistic: str, about: dict | None = None) -> str:
    extra = {"about": about} if about is not None else {}
    return json.dumps({"version": JSON_VERSION, "statistic": statistic, "models": table,
                       "summary": summary(table), **extra}, indent=2, sort_keys=True) + "\n"


def describe(plan: Plan, results: dict[str, BrickResult], statistic: str, today: str) -> dict:
    """What an estimate describes, for every output to name: the machine the results were
    measured on, the suite, the statistic, H, the dlbricks-gen version and the date."""
    from .. import __version__
    from ..results.machine import identity, machine_label

    first = next((r for r in results.values() if r.ok), None)
    return {"machine": machine_label(identity(first.data)) if first else None, "suite": plan.suite,
            "statistic": statistic, "H": plan.granularity, "batch": plan.batch,
            "dlbricks_gen": __version__, "date": today}


ABOUT = ("machine", "suite", "statistic", "H", "batch", "dlbricks_gen", "date")  # CSV: last columns


def breakdown_ms(data: dict) -> dict:
    """A breakdown (estimate/model.py, seconds) in the estimate JSON's one unit, milliseconds."""
    return {"by_op_ms": {op: s * 1e3 for op, s in data["by_op"].items()},
            "top_bricks": [{"brick": b["brick"], "ops": b["ops"], "count": b["count"],
                            "estimate_ms": b["seconds"] * 1e3, "share": b["share"]}
                           for b in data["top_bricks"]]}


def about_line(about: dict) -> str:
    return (f"# machine {about['machine'] or 'unknown (no results)'}; suite {about['suite']}, "
            f"H={about['H']}, statistic {about['statistic']}; dlbricks-gen {about['dlbricks_gen']}, "
            f"{about['date']}")


def to_csv(table: list[dict], about: dict) -> str:
    """One row per model; what the estimate describes (`about`) repeated in the last columns of
    every row, so that any CSV reader keeps it (a comment line would break most)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS + ABOUT, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: ("" if v is None else v) for k, v in {**row, **about}.items()})
    return buffer.getvalue()


def text_table(head: list[str], lines: list[list[str]]) -> str:
    """An aligned table through rich, as a Markdown (GFM) table: the first column left, the
    others right; cells are plain text (no rich markup from model names), never wrapped."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=box.MARKDOWN, show_edge=False, pad_edge=False)
    for index, name in enumerate(head):
        grid.add_column(Text(name), justify="left" if index == 0 else "right", no_wrap=True)
    for line in lines:
        grid.add_row(*(Text(cell) for cell in line))
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, force_terminal=False, emoji=False,
            highlight=False).print(grid)
    return "\n".join(row.rstrip() for row in buffer.getvalue().splitlines()) + "\n"


def _ms(value: float | None, lower_bound: bool = False) -> str:
    if value is None:
        return "-"
    return (">=" if lower_bound else "") + f"{value:.3f}"


def ratio_cell(row: dict) -> str:
    """A model's ratio with its 95% half-width and verdict, e.g. "1.032 +-0.041 hit"."""
    if row.get("ratio") is None:
        return "-"
    width = "" if row.get("ratio_pm") is None else f" +-{row['ratio_pm']:.3f}"
    return f"{row['ratio']:.3f}{width} {row.get('verdict') or ''}".rstrip()


def _pm(value: float | None, width: float | None) -> str:
    """"+-0.012" beside a value; empty when either is unknown."""
    return "" if value is None or width is None else f"+-{width:.3f}"


def to_table(table: list[dict]) -> str:
    head = ["model", "layers", "bricks", "coverage", "estimate ms", "+-95%", "sequential ms",
            "crit.path ms", "measured ms", "+-95%", "est/meas", "+-95%", "verdict"]
    lines = []
    for r in table:
        low = r["status"] != "complete"
        lines.append([r["model"], str(r["layers"]), str(r["bricks"]), f"{r['coverage'] * 100:.0f}%",
                      _ms(r["estimate_ms"], low), _pm(r["estimate_ms"], r.get("estimate_pm_ms")),
                      _ms(r["sequential_ms"], low), _ms(r["critical_path_ms"], low),
                      _ms(r["measured_ms"]), _pm(r["measured_ms"], r.get("measured_pm_ms")),
                      "-" if r["ratio"] is None else f"{r['ratio']:.3f}",
                      _pm(r["ratio"], r.get("ratio_pm")), r.get("verdict") or "-"])
    out = [text_table(head, lines).rstrip("\n")]
    s = summary(table)
    if s["compared"]:
        out.append("")
        out.append(f"est/meas over {s['compared']} models: geometric mean {s['ratio_geomean']:.3f}, "
                   f"min {s['ratio_min']:.3f}, max {s['ratio_max']:.3f}, "
                   f"within 5%: {s['within_5pct']}, within 10%: {s['within_10pct']}; by their 95% "
                   f"intervals: {s['hits']} hit(s), {s['misses']} miss(es), {s['undecided']} "
                   f"undecided (noise)")
    for r in table:
        for f in r["failed"]:
            out.append(f"{r['model']}: brick {f['brick'][:16]} failed: {f['error']}")
        if r["missing"]:
            out.append(f"{r['model']}: {len(r['missing'])} brick(s) without results: "
                       "estimate is a lower bound")
    return "\n".join(out) + "\n"


def side_by_side(tables: dict[str, list[dict]]) -> str:
    """One line per model, the estimate, measurement and ratio of each backend's table
    (keyed by its section label, e.g. "backend tvm")."""
    labels = list(tables)
    by_model = {label: {r["model"]: r for r in table} for label, table in tables.items()}
    models = list(dict.fromkeys(r["model"] for table in tables.values() for r in table))
    head = ["model"] + [f"{label.removeprefix('backend ')} {col}" for label in labels
                        for col in ("est ms", "meas ms", "est/meas")]
    lines = []
    for model in models:
        cells = [model]
        for label in labels:
            r = by_model[label].get(model)
            if r is None:
                cells += ["-", "-", "-"]
                continue
            cells += [_ms(r["estimate_ms"], r["status"] != "complete"), _ms(r["measured_ms"]),
                      "-" if r["ratio"] is None else f"{r['ratio']:.3f}"]
        lines.append(cells)
    return text_table(head, lines)
