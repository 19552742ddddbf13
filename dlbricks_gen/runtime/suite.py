"""The suite folder as the runner sees it: suite.json (format 2), which bricks to run (shards,
--only, backends) and the libraries measuring needs. Standard library only, so that `make
check` can report a missing numpy or onnxruntime instead of failing to start."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from .backends import DEFAULT, NAMES

SUITE_VERSION = 2
LIBRARIES = ("numpy", "onnx", "onnxruntime", "jsonschema")
BRICK_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\Z")  # a plain file name, never a path


class RunBroken(Exception):
    """The run itself cannot go on (bad suite, the worker cannot start): exit code 2."""


# Present while compile writes a suite (suite.json is written last): a folder holds a
# complete suite or says it does not.
INCOMPLETE = "INCOMPLETE"


def read_suite(suite_dir: Path) -> dict:
    path = suite_dir / "suite.json"
    if (suite_dir / INCOMPLETE).exists():
        raise RunBroken(f"{suite_dir}: this suite is incomplete (compile was interrupted while "
                        "writing it): compile it again")
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunBroken(f"{path}: cannot read the suite description: {exc}") from None
    if not isinstance(suite, dict) or suite.get("version") != SUITE_VERSION:
        version = suite.get("version") if isinstance(suite, dict) else None
        raise RunBroken(f"{path}: suite format version {version!r} is not supported "
                        f"(this runtime reads version {SUITE_VERSION}; compile the suite again "
                        f"with a matching dlbricks-gen)")
    bricks = suite.get("bricks")
    if not isinstance(suite.get("suite"), str) or not isinstance(bricks, list):
        raise RunBroken(f"{path}: no suite id or brick list")
    if not set(suite.setdefault("backends", [DEFAULT])) <= set(NAMES):
        raise RunBroken(f"{path}: unknown backends {suite['backends']} (this runtime knows "
                        f"{', '.join(NAMES)})")
    for brick in bricks:
        if not isinstance(brick, str) or not BRICK_ID.match(brick):
            raise RunBroken(f"{path}: brick id {brick!r} is not a plain file name")
    return suite


LOCK = ".run.lock"  # in results/: held by the run measuring the suite


@contextlib.contextmanager
def run_lock(results: Path, advice: str) -> Iterator[Path]:
    """One run per suite at a time, and no `make clean-results` during a run: two runs would
    time their bricks against each other and delete each other's files in flight. The kernel
    drops the lock when its holder dies, so a crashed run never leaves the suite locked.
    `advice`: what to do when another process holds it. Yields the lock file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield results / LOCK
        return
    with open(results / LOCK, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunBroken(f"a run is measuring this suite ({handle.read(40).strip() or 'pid unknown'}): "
                            f"{advice}") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield results / LOCK


def parse_shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit()) or not 1 <= int(k) <= int(n):
        raise argparse.ArgumentTypeError(
            f"bad shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(k), int(n)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(text)


def parse_policy(text: str) -> dict[str, float]:
    """"ci_target=0.02,processes=1" -> {"ci_target": 0.02, "processes": 1} (numbers only; the
    names are checked by Settings)."""
    policy: dict[str, float] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad policy item {part!r} (expected KEY=NUMBER)") from None
        policy[key.strip()] = int(number) if number.is_integer() and "." not in value else number
    return policy


def shard(bricks: list[str], k: int, n: int) -> list[str]:
    """Shard K of N (1-based): every N-th brick of the sorted list, so shards are disjoint,
    together complete, and similar in size and mix."""
    return [b for index, b in enumerate(sorted(bricks)) if index % n == k - 1]


def select(bricks: list[str], only: str | None) -> list[str]:
    """--only: full ids or unambiguous prefixes, comma-separated."""
    if not only:
        return bricks
    chosen = []
    for wanted in filter(None, (w.strip() for w in only.split(","))):
        matches = [b for b in bricks if b.startswith(wanted)]
        if len(matches) != 1:
            raise RunBroken(f"--only {wanted}: {'no' if not matches else 'more than one'} brick "
                            f"of this suite matches")
        chosen.append(matches[0])
    return sorted(set(chosen))


def backends_to_run(suite: dict, args: argparse.Namespace) -> list[str]:
    """--backend, else every backend the suite was compiled for."""
    if not args.backend:
        return list(suite["backends"])
    if args.backend not in suite["backends"]:
        raise RunBroken(f"--backend {args.backend}: this suite was compiled for "
                        f"{', '.join(suite['backends'])}")
    return [args.backend]


def require_libraries() -> None:
    """Import what measuring needs; a missing one stops the run with one line."""
    for name in LIBRARIES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise RunBroken(f"{exc}: install the requirements first "
                            f"({sys.executable} -m pip install -r requirements.txt)") from None
