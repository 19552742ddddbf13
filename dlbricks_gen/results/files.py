"""Reading result files that come back from outside: never trusted, never executed.

A result file is data from another machine. It is read with a size limit, parsed as strict
JSON (no NaN or Infinity, no number that overflows to infinity, no nesting deep enough to
exhaust the parser), checked against result.schema.json, and its timings must be finite and
non-negative. Anything else is refused with one line naming the file; callers report it as a
warning and carry on with the other files.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

from ..runtime.core.results import validate_result
from ..runtime.core.stats import percentile, trimmed_mean

# A real result holds a few hundred numbers; anything this large is not one.
MAX_RESULT_BYTES = 16 << 20
MAX_DEPTH = 32  # real result files nest 4 levels deep


class _NotFinite(ValueError):
    pass


def _reject_constant(token: str):
    raise _NotFinite(f"non-finite number {token}")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NotFinite(f"number {token[:30]} overflows to infinity")
    return value


def parse_strict(text: str):
    """JSON without NaN/Infinity; ValueError for anything else malformed or too deep."""
    if _max_depth(text) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _max_depth(text: str) -> int:
    """Bracket depth, counted without parsing (strings may hold brackets: an upper bound)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # every real result file
        return MAX_DEPTH
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_json_file(path: Path, what: str = "result file"):
    """The parsed JSON of a file from outside; ValueError naming the file on any problem."""
    try:
        return parse_strict(read_bounded(path, MAX_RESULT_BYTES, what).decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: not a readable {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a readable {what}: not UTF-8 text (binary?)") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable {what}: {' '.join(str(exc).split())[:200]}") from None


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Anything else (a device such as
    /dev/zero behind a symlink, a FIFO, a directory, a larger file) raises ValueError without
    being read: the kind is checked on the opened descriptor (no hang on a FIFO: O_NONBLOCK)
    and the read stops one byte past the limit, whatever the size claimed."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"not a regular file (a {_kind(info.st_mode)}), not a {what}")
        if info.st_size > limit:
            raise ValueError(f"{info.st_size} bytes, more than the {limit} a {what} can be")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"more than the {limit} bytes a {what} can be")
    return data


def _kind(mode: int) -> str:
    kinds = {stat.S_ISCHR: "character device", stat.S_ISBLK: "block device", stat.S_ISFIFO: "FIFO",
             stat.S_ISSOCK: "socket", stat.S_ISDIR: "directory"}
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def read_result_file(path: Path) -> dict:
    """One validated result document; ValueError (one line, naming the file) otherwise."""
    data = read_json_file(path)
    problems = validate_result(data) or inconsistency(data)  # non-finite never parse
    if problems:
        raise ValueError(f"{path}: invalid result: {' '.join(problems[0].split())[:300]}")
    return data


# Statistics recomputed from the values must match what the file claims to this relative error
# (the harness computes them from the same floats: only rounding differs).
STATS_TOLERANCE = 1e-9


def inconsistency(data: dict) -> list[str]:
    """Problems of a valid result whose stats do not summarise its own values (an edited
    statistic, a count that does not match). Empty for errors and consistent results."""
    stats, values = data.get("stats"), data.get("values")
    if data.get("status") != "ok" or not isinstance(stats, dict) or not values:
        return []
    ordered = sorted(values)
    if stats.get("n") != len(ordered):
        return [f"stats/n is {stats.get('n')!r} but the result holds {len(ordered)} values"]
    recomputed = {"median": percentile(ordered, 50), "trimmed_mean_20": trimmed_mean(ordered, 0.2),
                  "mean": math.fsum(ordered) / len(ordered), "min": ordered[0],
                  "p90": percentile(ordered, 90)}
    for name, value in recomputed.items():
        claimed = stats.get(name)
        if not isinstance(claimed, (int, float)) or not math.isclose(claimed, value, rel_tol=STATS_TOLERANCE,
                                                                    abs_tol=1e-15):
            return [f"stats/{name} is {claimed!r} but its values give {value!r}: the statistics "
                    "do not summarise the values"]
    return []


def results_folder(directory: Path) -> Path:
    """Where the result files of a folder given as results are: a suite folder or an unpacked
    `make pack` archive (both hold suite.json and results/) keep them in results/."""
    inner = directory / "results"
    return inner if (directory / "suite.json").is_file() and inner.is_dir() else directory


def fingerprint(data: dict) -> str:
    """What must agree between two files that claim the same brick on the same machine."""
    return json.dumps([data.get("status"), data.get("stats"), data.get("values")], sort_keys=True)
