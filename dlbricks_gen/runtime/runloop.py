"""`make run`: measure every brick (of a shard, of --only) with every backend asked for into
results/, skipping results already done with the same settings, so a run resumes.

Every brick is measured in `processes` passes (policy, --processes), each in a fresh worker
process and in its own order (`pass_order`), and each pass's values are pooled into the result
(core/results.py merge_runs): process-to-process variation and drift over the run then show in
the interval instead of passing as a tight one. --pass K runs only pass K (study's rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

from .backends import DEFAULT, result_name, summary_line
from .core import buildcache
from .core.machine import quiet_warnings
from .core.results import error_result, passes_done, validate_result, write_result
from .core.settings import Settings, parse_cpus, settings_record
from .suite import RunBroken, backends_to_run, read_suite, run_lock, select, shard
from .worker import BrickTimeout, Worker, WorkerDied, make_settings


def is_done(path: Path, brick: str, suite: str, settings: dict, retry_errors: bool,
            pass_index: int = 0) -> bool:
    """A valid result of this brick, suite and settings exists that pools pass `pass_index`
    (corrupt or partial: no); an error result is done unless errors are retried."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if validate_result(data):
        return False
    if data["id"] != brick or data["suite"] != suite or data["settings"] != settings:
        return False
    if data["status"] == "error":
        return not retry_errors
    return passes_done(data) > pass_index


def pass_order(bricks: list[str], pass_index: int, passes: int) -> list[str]:
    """Pass k's order: the sorted list rotated by k/passes of its length, reversed on odd
    passes, so that a brick's passes fall at different times of the run."""
    start = pass_index * len(bricks) // passes
    order = bricks[start:] + bricks[:start]
    return order[::-1] if pass_index % 2 else order


Todo = list[tuple[str, str, int]]  # (brick, backend, pass)


def is_real(path: Path, brick: str, suite: str) -> bool:
    """A valid result of this brick and suite measured by a full run (not --quick): a quick
    run must never replace it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (not validate_result(data) and data["id"] == brick and data["suite"] == suite
            and data["settings"].get("quick") is False)


SETUP_S = 0.3  # a session of one brick: build, load, warm up (a fast brick on a laptop)


def expected_time(runs: int, settings: Settings) -> str:
    """Before the run: how long it should take at most, from the time cap of each brick (a
    brick slower than the cap per call takes longer; most take far less)."""
    per_run = settings.max_time_s + settings.warmup_s + SETUP_S
    return (f"expected run time: up to about {clock(runs * per_run)} ({runs} runs x "
            f"{per_run:.2f} s at most each, bricks slower than {settings.max_time_s:g} s per "
            f"call excepted)")


def clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _passes(args: argparse.Namespace, settings: Settings) -> list[int]:
    if args.pass_index is None:
        return list(range(settings.processes))
    if not 0 <= args.pass_index < settings.processes:
        raise RunBroken(f"--pass must be in 0..{settings.processes - 1}")
    return [args.pass_index]


def _todo(args: argparse.Namespace, suite: dict, settings: Settings
          ) -> tuple[list[str], Todo, Todo]:
    """(bricks, every (brick, backend, pass) of this run, those not done yet)."""
    bricks = sorted(suite["bricks"])
    if args.shard:
        bricks = shard(bricks, *args.shard)
    bricks = select(bricks, args.only)
    wanted = settings_record(settings)
    results = args.suite_dir / "results"
    runs = [(b, backend, k) for k in _passes(args, settings) for backend in backends_to_run(suite, args)
            for b in pass_order(bricks, k, settings.processes)]
    todo = [(b, backend, k) for b, backend, k in runs
            if not is_done(results / result_name(b, backend), b, suite["suite"], wanted,
                           args.retry_errors, k)]
    if args.quick:
        real = [run for run in todo if is_real(results / result_name(run[0], run[1]), run[0], suite["suite"])]
        if real:
            print(f"{len(real)} runs keep their real result (a quick run never replaces one)", flush=True)
        todo = [run for run in todo if run not in real]
    return bricks, runs, todo


def _settings(args: argparse.Namespace) -> Settings:
    try:
        settings = make_settings(args)
        parse_cpus(args.taskset or "0")
    except ValueError as exc:
        raise RunBroken(str(exc)) from None
    return settings


def run(args: argparse.Namespace) -> int:
    results = args.suite_dir / "results"
    read_suite(args.suite_dir)
    results.mkdir(exist_ok=True)
    with run_lock(results, "wait for it to finish (two runs at once time their bricks against "
                  "each other)"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    suite = read_suite(args.suite_dir)
    settings = _settings(args)
    results = args.suite_dir / "results"
    for stale in results.glob(".*.tmp"):  # left by a run killed while writing
        stale.unlink()
    bricks, runs, todo = _todo(args, suite, settings)
    skipped = len(runs) - len(todo)
    backends = backends_to_run(suite, args)
    print(f"suite {suite['suite']}: {len(bricks)} bricks"
          f"{f' (shard {args.shard[0]}/{args.shard[1]})' if args.shard else ''}, "
          f"{skipped} already done, {len(todo)} to run; threads={args.threads}"
          f"{'' if backends == [DEFAULT] else ', backends ' + '+'.join(backends)}"
          f"{', quick' if args.quick else ''}, {settings.processes} process(es), "
          f"timeout {args.timeout:g} s", flush=True)
    print(expected_time(len(todo), settings), flush=True)
    for warning in quiet_warnings(args.threads):
        print(f"warning: {warning}", flush=True)
    start = time.perf_counter()
    try:
        with _build_cache(args, settings):
            failures, measured = _loop(args, settings, suite["suite"], todo, skipped, len(runs))
    except KeyboardInterrupt:
        print(f"\ninterrupted after {clock(time.perf_counter() - start)}: run the same command "
              f"again to continue", flush=True)
        return 130
    print(f"done in {clock(time.perf_counter() - start)}: {measured} measured, "
          f"{len(failures)} failed, {skipped} skipped (already done), {len(runs)} in total; "
          f"results in {results}")
    for failure in failures[:20]:
        print(f"  failed: {failure}")
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more (status \"error\" in results/)")
    return 0


@contextlib.contextmanager
def _build_cache(args: argparse.Namespace, settings: Settings) -> Iterator[None]:
    """The run's build cache (core/buildcache.py) in results/, for the workers' later passes:
    cleared when this run measures first passes (nothing from another run is ever reused),
    and when it ends, unless a later pass is still to come (study's --pass rounds). Study's
    --pass rounds in shards (--pass K --shard J/N) are one run: only the first shard of the
    first pass clears it, only the last shard of the last pass."""
    directory = args.suite_dir / "results" / buildcache.DIRECTORY
    passes = _passes(args, settings)
    if settings.processes < 2:
        args.cache = None
        yield
        return
    index, count = args.shard if args.pass_index is not None and args.shard else (1, 1)
    if 0 in passes and index == 1:
        buildcache.clear(directory)
    args.cache = directory
    ended = False
    try:
        yield
        ended = True
    finally:
        if not ended or (settings.processes - 1 in passes and index == count):
            buildcache.clear(directory)


def _loop(args: argparse.Namespace, settings: Settings, suite: str,
          todo: Todo, skipped: int, total: int) -> tuple[list[str], int]:
    """Measure `todo`, a fresh worker per pass: (failure summaries, how many were measured)."""
    failures: list[str] = []
    written: dict[tuple[str, str], list[int]] = {}  # each result file as the worker wrote it
    worker, current = Worker(args.suite_dir, args, suite), None
    start = time.perf_counter()
    try:
        for index, (brick, backend, k) in enumerate(todo, 1):
            if k != current:  # a new pass: a new process
                worker.stop()
                worker, current = Worker(args.suite_dir, args, suite), k
            status, summary = _run_one(worker, (brick, backend, k), args, settings, suite, written)
            if status != "ok":
                failures.append(summary)
            elapsed = time.perf_counter() - start
            left = elapsed / index * (len(todo) - index)
            print(f"[{skipped + index}/{total}] {summary}  ({clock(elapsed)} elapsed, "
                  f"~{clock(left)} left)", flush=True)
    except KeyboardInterrupt:
        worker.kill()
        raise
    finally:
        worker.stop()
    return failures, len(todo) - len(failures)


def _run_one(worker: Worker, item: tuple[str, str, int], args: argparse.Namespace,
             settings: Settings, suite: str, written: dict[tuple[str, str], list[int]]
             ) -> tuple[str, str]:
    """(status, summary line) of one brick's pass; a crash or timeout is written as its error
    result. `written`: each result as this run's worker wrote it (worker._earlier), updated."""
    brick, backend, pass_index = item
    start = time.perf_counter()
    try:
        reply = worker.measure(brick, backend, args.timeout, pass_index,
                               written.pop((brick, backend), None))
        if isinstance(reply.get("written"), list):
            written[brick, backend] = reply["written"]
        return reply["status"], reply["summary"]
    except (WorkerDied, BrickTimeout) as exc:
        result = error_result(kind="brick", id=brick, error=str(exc), settings=settings,
                              suite=suite, backend=backend, wall_s=time.perf_counter() - start)
        write_result(result, args.suite_dir / "results" / result_name(brick, backend))
        return "error", summary_line(result)
