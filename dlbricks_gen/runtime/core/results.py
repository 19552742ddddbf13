"""Result files (format 1, docs/FORMATS.md): building them, writing them atomically and
validating them against result.schema.json (beside this file) with jsonschema."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from pathlib import Path

import jsonschema

from .machine import machine_info
from .settings import Settings, settings_record
from .stats import pooled, statistics

RESULT_VERSION = 1
SCHEMA_FILE = Path(__file__).resolve().parent / "result.schema.json"


def one_line(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


def base_record(kind: str, id: str, suite: str | None, backend: str, settings: Settings) -> dict:
    """The fields every result starts with: what was measured, where and how."""
    return {"version": RESULT_VERSION, "kind": kind, "id": id, "suite": suite, "backend": backend,
            "settings": settings_record(settings), "machine": machine_info()}


def error_result(*, kind: str, id: str, error: BaseException | str, settings: Settings,
                 backend: str, suite: str | None = None, wall_s: float = 0.0,
                 warnings: list[str] | None = None) -> dict:
    """A result with status "error": a one-line error, no stats."""
    return {**base_record(kind, id, suite, backend, settings), "status": "error",
            "error": one_line(error), "stats": None, "values": [],
            "warnings": list(warnings or []), "timing": {"wall_s": wall_s, "measure_s": 0.0}}


def write_result(result: dict, path: Path) -> None:
    """Write atomically (temp file + rename): a killed run never leaves half a result. No
    fsync: it cost about 7 ms per result (as much as measuring a small brick), and what it
    guards against, a power cut, leaves at worst an empty file that the next run re-measures."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


@functools.lru_cache(maxsize=1)
def result_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(result_schema())


def validate_result(data: object) -> list[str]:
    """Problems of a result document (empty list: valid), checked against result.schema.json.
    An unknown version is reported alone, in one clear line."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    if "version" not in data:
        return ["no 'version' field: not a dlbricks-gen result file"]
    version = data["version"]
    if version != RESULT_VERSION or isinstance(version, bool):
        return [(f"result format version {version!r} is not supported (this harness reads "
                 f"version {RESULT_VERSION}); use the dlbricks-gen release that wrote it")]
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def run_entries(result: dict) -> list[dict]:
    """The per-process parts of an ok result's stats (one when it was measured once)."""
    stats = result["stats"]
    if stats.get("runs"):
        return list(stats["runs"])
    return [{"median": stats["median"], "n": stats["n"], "loops": stats["loops"],
             "halfwidth_s": stats.get("halfwidth_s", stats["ci95_rel"] * stats["median"]),
             "target_reached": stats["target_reached"]}]


def passes_done(result: dict) -> int:
    """How many processes (or sessions) an ok result pools."""
    return len(run_entries(result)) if result.get("status") == "ok" and result.get("stats") else 1


def merge_runs(old: dict, new: dict, settings: Settings) -> dict:
    """One result pooling two measurements of the same benchmark in different processes: all
    values, per-process medians in stats.runs, timings added up. An error in either wins."""
    if old.get("status") != "ok":
        return old
    if new.get("status") != "ok":
        return new
    values = old["values"] + new["values"]
    stats = pooled(values, run_entries(old) + run_entries(new), settings.ci_target,
                   settings.abs_target_s)
    timing = {k: old["timing"].get(k, 0.0) + new["timing"].get(k, 0.0)
              for k in sorted({*old["timing"], *new["timing"]})}
    return _joined(old, new, stats, timing)


def merge_slice(old: dict, new: dict, settings: Settings) -> dict:
    """One result with `new`, a further slice of the same process (or session round), pooled
    into `old`'s last run entry: one run measured in slices spread over time (`study`
    interleaves a round's whole models with its suite's shards). The entry counts its
    `slices`; only the slice's timed calls join `timing.wall_s` (one session and warm-up per
    round is what an unsliced round costs), its own session and warm-up go to
    `timing.slices_s`. An error in either wins."""
    if old.get("status") != "ok":
        return old
    if new.get("status") != "ok":
        return new
    runs = run_entries(old)
    last = runs[-1]
    values = old["values"] + new["values"]
    own = values[len(values) - last["n"] - len(new["values"]):]
    loops = max(last["loops"], new["stats"]["loops"])
    part = statistics(own, loops, settings.ci_target, settings.abs_target_s)
    entry = {"median": part["median"], "n": part["n"], "loops": loops,
             "halfwidth_s": part["halfwidth_s"], "target_reached": part["target_reached"],
             "slices": int(last.get("slices", 1)) + 1}
    stats = pooled(values, runs[:-1] + [entry], settings.ci_target, settings.abs_target_s)
    measured = new["timing"].get("measure_s", 0.0)
    timing = dict(old["timing"])
    timing["wall_s"] = timing["wall_s"] + measured
    timing["measure_s"] = timing.get("measure_s", 0.0) + measured
    timing["slices_s"] = timing.get("slices_s", 0.0) + new["timing"]["wall_s"] - measured
    return _joined(old, new, stats, timing)


def _joined(old: dict, new: dict, stats: dict, timing: dict) -> dict:
    """`old` with both results' values, warnings and reference timings, and the given stats."""
    warnings = list(dict.fromkeys(old["warnings"] + new["warnings"]))
    references = old.get("reference_s", []) + new.get("reference_s", [])
    return {**old, "stats": stats, "values": old["values"] + new["values"], "timing": timing,
            "warnings": warnings, "reference_s": references}


def slices_done(result: dict) -> int:
    """How many slices the last run entry of an ok result pools (1 when not sliced)."""
    return int(run_entries(result)[-1].get("slices", 1)) if result.get("status") == "ok" else 1
