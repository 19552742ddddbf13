"""The long-lived measuring process of a run, and the parent's handle on it.

One worker (`python -m dlbricks_runtime worker`) measures brick after brick, so process start,
imports and library initialisation are paid once, not per brick. A brick that crashes the
worker (even a segfault) or runs past --timeout gets an error result, the worker is restarted
and the run goes on. The worker reads each SPEC with ast.literal_eval and never executes the
brick files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

from .backends import DEFAULT, result_name, summary_line
from .brick import measure
from .core.buildcache import REFERENCE, BuildCache, brick_key
from .core.child import package_root, python_module
from .core.reference import ReferenceClock, graph_bytes
from .core.results import error_result, merge_runs, one_line, validate_result, write_result
from .core.settings import Settings, pin_cpus
from .core.spec import load_spec
from .suite import RunBroken

WORKER_START_TIMEOUT_S = 300.0
MODULE = __spec__.name if __spec__ is not None else __name__
PACKAGE = MODULE.rpartition(".")[0]  # `python -m PACKAGE worker`: __main__.py -> runner.main


class WorkerDied(Exception):
    pass


class BrickTimeout(Exception):
    pass


def make_settings(args: argparse.Namespace) -> Settings:
    knobs = {"min_runs": args.runs, "processes": args.processes, **args.policy}
    try:
        return Settings(intra_op_threads=args.threads, quick=args.quick, taskset=args.taskset,
                        **knobs)
    except TypeError as exc:
        raise ValueError(f"--policy: {exc}") from None


class Worker:
    """The parent's handle on one worker process, restarted after a crash/timeout."""

    def __init__(self, suite_dir: Path, args: argparse.Namespace, suite: str):
        self.command = python_module(PACKAGE, "worker", "--suite-dir", str(suite_dir.resolve()),
                                     "--suite", suite, "--threads", str(args.threads))
        self.command += ["--quick"] if args.quick else []
        self.command += ["--runs", str(args.runs)] if args.runs else []
        self.command += ["--processes", str(args.processes)] if args.processes else []
        if args.policy:
            policy = ",".join(f"{k}={v!r}" for k, v in sorted(args.policy.items()))
            self.command += ["--policy", policy]
        self.command += ["--taskset", args.taskset] if args.taskset else []
        self.command += ["--cache", str(args.cache.resolve())] if args.cache else []
        self.cwd = package_root(MODULE, __file__)  # the suite folder, in a suite
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.log: IO[bytes] | None = None
        self.log_mark = 0  # where the current brick's stderr starts in the log

    def start(self) -> None:
        if self.log is not None:
            self.log.close()
        # Lives as long as this worker process: the tail explains a crash.
        self.log, self.log_mark = tempfile.TemporaryFile(), 0  # noqa: SIM115
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=self.cwd)
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        try:
            reply = self._reply(WORKER_START_TIMEOUT_S)
        except (WorkerDied, BrickTimeout) as exc:
            self.stop()
            raise RunBroken(f"the worker process did not start: {exc}") from None
        if not reply.get("ready"):
            raise RunBroken(f"the worker process did not start: {reply}")

    def measure(self, brick: str, backend: str, timeout: float, pass_index: int = 0,
                written: list[int] | None = None) -> dict:
        """The worker's reply for one brick; raises WorkerDied or BrickTimeout. `written`: the
        (mtime_ns, size) of the earlier pass's result as this run's worker wrote it."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.log is not None
        self.log_mark = self.log.seek(0, io.SEEK_END)
        try:
            message = json.dumps({"brick": brick, "backend": backend, "pass": pass_index,
                                  "written": written}) + "\n"
            self.proc.stdin.write(message.encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # the worker is gone: _reply reports how it ended
        return self._reply(timeout)

    def _reply(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise BrickTimeout(f"timed out after {timeout:g} s (--timeout)") from None
        if line is None:
            assert self.proc is not None
            raise WorkerDied(self._death(self.proc.wait()))
        return json.loads(line)

    def _death(self, code: int) -> str:
        if code < 0 and -code in signal.valid_signals():
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        detail = ""
        if self.log is not None:
            self.log.seek(self.log_mark)
            text = self.log.read().decode("utf-8", "replace")
            tail = [ln for ln in text.splitlines() if ln.strip()]
            detail = f": {' '.join(tail[-1].split())[:200]}" if tail else ""
        self.proc = None
        return f"the worker process {how} while measuring this brick{detail}"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _measure_one(args: argparse.Namespace, settings: Settings, brick: str, backend: str,
                 profile: bool = True, cache: BuildCache | None = None) -> dict:
    try:
        spec = load_spec(args.suite_dir / "bricks" / f"{brick}.py")
        if spec.get("brick") != brick:
            raise ValueError(f"the SPEC is of brick {spec.get('brick')!r}")
    except Exception as exc:  # noqa: BLE001 - an unreadable brick is this brick's result
        return error_result(kind="brick", id=brick, settings=settings, suite=args.suite,
                            backend=DEFAULT, error=f"cannot read the SPEC: {one_line(exc)}")
    return measure(spec, settings, backend=backend, suite=args.suite,
                   kernel_dir=args.suite_dir / "kernels", profile=profile, cache=cache)


def _earlier(path: Path, brick: str, pass_index: int, written: list[int] | None = None
             ) -> dict | None:
    """The result holding exactly passes 0..pass_index-1 of this brick, to pool this pass
    with (None for pass 0, or when there is none: this pass then stands alone). Checked
    against the schema unless it is, by its modification time and size, the file this run's
    worker wrote (`written`): the check costs 2-3 ms, as much as a small brick's measuring."""
    if pass_index == 0:
        return None
    try:
        status = path.stat()
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ours = written is not None and written == [status.st_mtime_ns, status.st_size]
    if not isinstance(old, dict) or (not ours and validate_result(old)):
        return None
    if old.get("status") != "ok" or old.get("id") != brick:
        return None
    return old if len(old["stats"].get("runs") or [None]) == pass_index else None


def _reference_graph(cache: BuildCache | None) -> bytes:
    """The reference graph's bytes, from the build cache when an earlier pass put it there."""
    graph = cache.get(REFERENCE) if cache is not None else None
    if graph is None:
        graph = graph_bytes()
        if cache is not None:
            cache.put(REFERENCE, graph)
    return graph


def worker_main(args: argparse.Namespace) -> int:
    """`worker`: read {"brick": id, "pass": k, "written": ...} lines, time the reference
    benchmark when it is due, measure, pool with the earlier passes, write the result, reply a
    line (with the written file's modification time and size)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the replies
    settings = make_settings(args)
    pin_cpus(settings)
    results = args.suite_dir / "results"
    cache = BuildCache(args.cache) if args.cache else None
    clock = ReferenceClock(settings.intra_op_threads, graph=_reference_graph(cache))
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        message = json.loads(line)
        brick, backend = message["brick"], message.get("backend", DEFAULT)
        path = results / result_name(brick, backend)
        pass_index = int(message.get("pass", 0))
        earlier = _earlier(path, brick, pass_index, message.get("written"))
        reference = clock.latest()
        result = _measure_one(args, settings, brick, backend, profile=earlier is None, cache=cache)
        if cache is not None and pass_index == settings.processes - 1:
            cache.drop(brick_key(brick))  # its last pass: nothing reads it again
        if result["status"] == "ok":
            result["reference_s"] = [reference]
        write_result(result if earlier is None else merge_runs(earlier, result, settings), path)
        status = path.stat()
        replies.write(json.dumps({"brick": brick, "status": result["status"],
                                  "summary": summary_line(result),
                                  "written": [status.st_mtime_ns, status.st_size]}) + "\n")
    return 0
