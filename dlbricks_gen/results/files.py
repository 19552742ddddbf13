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
from pathlib import Path

from ..runtime.core.results import validate_result

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
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise ValueError(f"{size} bytes, more than the {MAX_RESULT_BYTES} a {what} can be")
        return parse_strict(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: not a readable {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a readable {what}: not UTF-8 text (binary?)") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable {what}: {' '.join(str(exc).split())[:200]}") from None


def read_result_file(path: Path) -> dict:
    """One validated result document; ValueError (one line, naming the file) otherwise."""
    data = read_json_file(path)
    problems = validate_result(data)  # negative timings included; non-finite never parse
    if problems:
        raise ValueError(f"{path}: invalid result: {' '.join(problems[0].split())[:300]}")
    return data


def fingerprint(data: dict) -> str:
    """What must agree between two files that claim the same brick on the same machine."""
    return json.dumps([data.get("status"), data.get("stats"), data.get("values")], sort_keys=True)
