"""`make clean-results`: delete what this suite's runs wrote into results/ (result files of its
bricks, temp files, the TVM tuning database), never while a run holds the suite's lock, and
never a file they did not write. Standard library only."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .backends import NAMES, result_name
from .suite import LOCK, read_suite, run_lock

TUNING = ("database_workload.json", "database_tuning_record.json", "progress.json", "logs")


def written_by_runs(results: Path, bricks: list[str]) -> list[Path]:
    """The files and folders in results/ that `make run` and `make tune` write for these
    bricks (present ones only)."""
    names = {result_name(b, backend) for b in bricks for backend in NAMES}
    found = [p for p in results.iterdir() if p.name in names and p.is_file() and not p.is_symlink()]
    found += [p for p in results.glob(".*.tmp") if p.is_file()]  # left by a killed run
    tuning = results / "tuning"
    if tuning.is_dir() and not tuning.is_symlink():
        found += [tuning / n for n in TUNING if (tuning / n).exists() or (tuning / n).is_symlink()]
    return sorted(found)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def clean(args: argparse.Namespace) -> int:
    results = args.suite_dir / "results"
    if not results.is_dir():
        print("no results/ to delete")
        return 0
    bricks = read_suite(args.suite_dir)["bricks"]
    locked_before = (results / LOCK).exists()
    with run_lock(results, "stop it (Ctrl-C) or let it finish, then `make clean-results`: "
                  "nothing was deleted") as lock:
        doomed = written_by_runs(results, bricks)
        for path in doomed:
            _remove(path)
        tuning = results / "tuning"
        if tuning.is_dir() and not tuning.is_symlink() and not any(tuning.iterdir()):
            tuning.rmdir()
        others = sorted(p.relative_to(args.suite_dir).as_posix() for p in results.iterdir() if p != lock)
        if not others or not locked_before:
            lock.unlink()  # held: a run starting now fails on this one, or makes a new one
        if not others:
            results.rmdir()
    print(f"deleted {len(doomed)} files the runs wrote in results/"
          + (f"; kept {len(others)} they did not write: {', '.join(others[:10])}"
             + (" ..." if len(others) > 10 else "") if others else ""))
    return 0
