"""Run the bricks of this benchmark suite and write results/<brick>.json (`make run`).

    python run.py                          # every brick, resumable: run again to continue
    python run.py --threads 1 --shard 2/4 --timeout 300 --only 3f2a,9bc0
    python run.py check                    # Python, numpy, onnx, onnxruntime; writes nothing
    python run.py pack                     # results/ + suite.json + machine.json -> .tar.gz
    python run.py tune --trials 64         # TVM suites: tune the kernels (tvm_backend.py)

One long-lived worker process (`run.py worker`) measures brick after brick, so process start,
imports and library initialisation are paid once, not per brick. A brick that crashes the
worker (even a segfault) or runs past --timeout gets an error result, the worker is restarted
and the run goes on. The worker reads each SPEC with ast.literal_eval and never executes the
brick files; each bricks/<digest>.py still runs on its own (`python bricks/<digest>.py`).

Copied verbatim into every suite as run.py: standard library only, plus harness.py beside it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # `check` writes nothing, and no __pycache__ appears in the suite

SUITE_VERSION = 1
DEFAULT_TIMEOUT_S = 600.0
WORKER_START_TIMEOUT_S = 300.0
EXIT_OK, EXIT_BROKEN, EXIT_INTERRUPTED = 0, 2, 130
LIBRARIES = ("numpy", "onnx", "onnxruntime")
BACKENDS = ("onnxruntime", "tvm")
BRICK_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\Z")  # a plain file name, never a path


class RunBroken(Exception):
    """The run itself cannot go on (bad suite, the worker cannot start): exit code 2."""


def load_harness():
    """harness.py beside this file in a suite; the package's copy when imported from it."""
    try:
        import harness
    except ModuleNotFoundError as exc:
        if exc.name != "harness":
            raise
        from dlbricks_gen.runtime import harness
    return harness


# --- the suite ------------------------------------------------------------------------------

def read_suite(suite_dir: Path) -> dict:
    path = suite_dir / "suite.json"
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunBroken(f"{path}: cannot read the suite description: {exc}") from None
    if not isinstance(suite, dict) or suite.get("version") != SUITE_VERSION:
        version = suite.get("version") if isinstance(suite, dict) else None
        raise RunBroken(f"{path}: suite format version {version!r} is not supported "
                        f"(this run.py reads version {SUITE_VERSION})")
    bricks = suite.get("bricks")
    if not isinstance(suite.get("suite"), str) or not isinstance(bricks, list):
        raise RunBroken(f"{path}: no suite id or brick list")
    if not set(suite.setdefault("backends", [BACKENDS[0]])) <= set(BACKENDS):
        raise RunBroken(f"{path}: unknown backends {suite['backends']} (this run.py knows "
                        f"{', '.join(BACKENDS)})")
    for brick in bricks:
        if not isinstance(brick, str) or not BRICK_ID.match(brick):
            raise RunBroken(f"{path}: brick id {brick!r} is not a plain file name")
    return suite


def load_spec(path: Path) -> dict:
    """The SPEC literal of a brick program, read without executing the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SPEC"
                                                for t in node.targets):
            spec = ast.literal_eval(node.value)
            if not isinstance(spec, dict):
                raise ValueError("SPEC is not a dict")
            return spec
    raise ValueError("no `SPEC = {...}` assignment")


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


def is_done(path: Path, harness, brick: str, suite: str, settings: dict,
            retry_errors: bool) -> bool:
    """A valid result of this brick, suite and settings exists (corrupt or partial: no)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if harness.validate_result(data):
        return False
    if data["id"] != brick or data["suite"] != suite or data["settings"] != settings:
        return False
    return not (retry_errors and data["status"] == "error")


# --- the worker -----------------------------------------------------------------------------

class WorkerDied(Exception):
    pass


class BrickTimeout(Exception):
    pass


class Worker:
    """The parent's handle on one `run.py worker` process, restarted after a crash/timeout."""

    def __init__(self, suite_dir: Path, args: argparse.Namespace, suite: str):
        self.command = [sys.executable, str(Path(__file__).resolve()), "worker",
                        "--suite-dir", str(suite_dir), "--suite", suite,
                        "--threads", str(args.threads)]
        self.command += ["--quick"] if args.quick else []
        self.command += ["--runs", str(args.runs)] if args.runs else []
        self.command += ["--taskset", args.taskset] if args.taskset else []
        self.suite_dir = suite_dir
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.log = None
        self.log_mark = 0  # where the current brick's stderr starts in the log

    def start(self) -> None:
        if self.log is not None:
            self.log.close()
        # Lives as long as this worker process: the tail explains a crash.
        self.log, self.log_mark = tempfile.TemporaryFile(), 0  # noqa: SIM115
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=self.suite_dir)
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        try:
            reply = self._reply(WORKER_START_TIMEOUT_S)
        except (WorkerDied, BrickTimeout) as exc:
            self.stop()
            raise RunBroken(f"the worker process did not start: {exc}") from None
        if not reply.get("ready"):
            raise RunBroken(f"the worker process did not start: {reply}")

    def measure(self, brick: str, backend: str, timeout: float) -> dict:
        """The worker's reply for one brick; raises WorkerDied or BrickTimeout."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.log_mark = self.log.seek(0, io.SEEK_END)
        try:
            self.proc.stdin.write((json.dumps({"brick": brick, "backend": backend}) + "\n").encode())
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
            code = self.proc.wait()
            raise WorkerDied(self._death(code))
        return json.loads(line)

    def _death(self, code: int) -> str:
        if code < 0 and -code in signal.valid_signals():
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        self.log.seek(self.log_mark)
        tail = [ln for ln in self.log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
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
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def worker_main(args: argparse.Namespace) -> int:
    """`run.py worker`: read {"brick": id} lines, measure, write the result, reply a line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the replies
    harness = load_harness()
    settings = make_settings(harness, args)
    harness.pin_cpus(settings)
    results = args.suite_dir / "results"
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        message = json.loads(line)
        brick, backend = message["brick"], message.get("backend", harness.BACKEND)
        try:
            spec = load_spec(args.suite_dir / "bricks" / f"{brick}.py")
            if spec.get("brick") != brick:
                raise ValueError(f"the SPEC is of brick {spec.get('brick')!r}")
        except Exception as exc:  # noqa: BLE001 - an unreadable brick is this brick's result
            result = harness.error_result(kind="brick", id=brick, settings=settings,
                                          suite=args.suite,
                                          error=f"cannot read the SPEC: {harness.one_line(exc)}")
        else:
            other = {} if backend == harness.BACKEND else {
                "backend": backend, "kernel_dir": args.suite_dir / "kernels"}
            result = harness.measure_spec(spec, settings, suite=args.suite, **other)
        harness.write_result(result, results / harness.result_name(brick, backend))
        replies.write(json.dumps({"brick": brick, "status": result["status"],
                                  "summary": harness.summary_line(result)}) + "\n")
    return EXIT_OK


def make_settings(harness, args: argparse.Namespace):
    return harness.Settings(intra_op_threads=args.threads, quick=args.quick, taskset=args.taskset,
                            min_runs=args.runs)


# --- the run --------------------------------------------------------------------------------

def clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run(args: argparse.Namespace) -> int:
    suite_dir = args.suite_dir
    suite = read_suite(suite_dir)
    bricks = sorted(suite["bricks"])
    if args.shard:
        bricks = shard(bricks, *args.shard)
    bricks = select(bricks, args.only)
    harness = _harness_or_broken()
    try:
        settings = make_settings(harness, args)
        harness.parse_cpus(args.taskset or "0")
    except ValueError as exc:
        raise RunBroken(str(exc)) from None
    wanted = harness.settings_record(settings)
    results = suite_dir / "results"
    results.mkdir(exist_ok=True)
    for stale in results.glob(".*.tmp"):  # left by a run killed while writing
        stale.unlink()
    runs = [(b, backend) for backend in _backends(suite, args) for b in bricks]
    todo = [(b, backend) for b, backend in runs
            if not is_done(results / harness.result_name(b, backend), harness, b, suite["suite"],
                           wanted, args.retry_errors)]
    skipped = len(runs) - len(todo)
    print(f"suite {suite['suite']}: {len(bricks)} bricks"
          f"{f' (shard {args.shard[0]}/{args.shard[1]})' if args.shard else ''}, "
          f"{skipped} already done, {len(todo)} to run; threads={args.threads}"
          f"{'' if runs_ort_only(suite, args) else ', backends ' + '+'.join(_backends(suite, args))}"
          f"{', quick' if args.quick else ''}, timeout {args.timeout:g} s", flush=True)
    for warning in harness.quiet_warnings(args.threads):
        print(f"warning: {warning}", flush=True)
    counts = {"ok": 0, "error": 0}
    failures: list[str] = []
    worker = Worker(suite_dir, args, suite["suite"])
    start = time.perf_counter()
    try:
        for index, (brick, backend) in enumerate(todo, 1):
            status, summary = _run_one(worker, harness, brick, backend, args, settings,
                                       suite["suite"], results)
            counts[status] += 1
            if status != "ok":
                failures.append(summary)
            elapsed = time.perf_counter() - start
            left = elapsed / index * (len(todo) - index)
            print(f"[{skipped + index}/{len(runs)}] {summary}  ({clock(elapsed)} elapsed, "
                  f"~{clock(left)} left)", flush=True)
    except KeyboardInterrupt:
        worker.kill()
        print(f"\ninterrupted after {clock(time.perf_counter() - start)}: run the same command "
              f"again to continue", flush=True)
        return EXIT_INTERRUPTED
    finally:
        worker.stop()
    print(f"done in {clock(time.perf_counter() - start)}: {counts['ok']} measured, "
          f"{counts['error']} failed, {skipped} skipped (already done), {len(runs)} in total; "
          f"results in {results}")
    for failure in failures[:20]:
        print(f"  failed: {failure}")
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more (status \"error\" in results/)")
    return EXIT_OK


def _backends(suite: dict, args: argparse.Namespace) -> list[str]:
    """--backend, else every backend the suite was compiled for."""
    if not args.backend:
        return list(suite["backends"])
    if args.backend not in suite["backends"]:
        raise RunBroken(f"--backend {args.backend}: this suite was compiled for "
                        f"{', '.join(suite['backends'])}")
    return [args.backend]


def runs_ort_only(suite: dict, args: argparse.Namespace) -> bool:
    return _backends(suite, args) == [BACKENDS[0]]


def _run_one(worker: Worker, harness, brick: str, backend: str, args, settings, suite: str,
             results: Path):
    """(status, summary line) of one brick; a crash or timeout is written as its error result."""
    start = time.perf_counter()
    try:
        reply = worker.measure(brick, backend, args.timeout)
        return reply["status"], reply["summary"]
    except (WorkerDied, BrickTimeout) as exc:
        result = harness.error_result(kind="brick", id=brick, error=str(exc), settings=settings,
                                      suite=suite, backend=backend,
                                      wall_s=time.perf_counter() - start)
        harness.write_result(result, results / harness.result_name(brick, backend))
        return "error", harness.summary_line(result)


def _harness_or_broken():
    try:
        return load_harness()
    except ImportError as exc:
        raise RunBroken(f"{exc}: install the requirements first "
                        f"({sys.executable} -m pip install -r requirements.txt)") from None


# --- check and pack -------------------------------------------------------------------------

def check(args: argparse.Namespace) -> int:
    """Is this machine ready to run the suite? Prints versions and problems, writes nothing."""
    problems = []
    print(f"python       {sys.version.split()[0]} ({sys.executable})")
    if sys.version_info < (3, 10):  # noqa: UP036 - the vendor's Python, not ours
        problems.append("Python 3.10 or newer is needed")
    pins = _pins(args.suite_dir / "requirements.txt")
    for name in LIBRARIES:
        try:
            version = importlib.import_module(name).__version__
        except Exception as exc:  # noqa: BLE001 - a broken install is a finding, not a crash
            print(f"{name:<12} MISSING ({type(exc).__name__}: {exc})")
            problems.append(f"{name} is not importable")
            continue
        pinned = pins.get(name)
        note = ""
        if pinned and pinned != version:
            note = f" (requirements.txt pins {pinned}: results will not compare)"
        print(f"{name:<12} {version}{note}")
    try:
        suite = read_suite(args.suite_dir)
        bricks = args.suite_dir / "bricks"
        missing = [b for b in suite["bricks"] if not (bricks / f"{b}.py").is_file()]
        print(f"suite        {suite['suite']}: {len(suite['bricks'])} bricks")
        if missing:
            problems.append(f"{len(missing)} brick programs are missing, "
                            f"e.g. bricks/{missing[0]}.py")
        if "tvm" in suite["backends"]:
            problems += _check_tvm(args.suite_dir)
    except RunBroken as exc:
        problems.append(str(exc))
    if not problems:
        harness = load_harness()
        info = harness.machine_info()
        print(f"cpu          {info['cpu_model']}, {info['cores']} cores / {info['logical_cores']} "
              f"threads, flags {' '.join(info['cpu_flags']) or '-'}")
        print(f"governor     {info['governor'] or 'unknown'}, turbo {info['turbo'] or 'unknown'}")
        for warning in harness.quiet_warnings(args.threads):
            print(f"warning: {warning}")
    for problem in problems:
        print(f"problem: {problem}")
    print("ready: run `make run`" if not problems else
          f"not ready: fix the problems above "
          f"({sys.executable} -m pip install -r requirements.txt)")
    return EXIT_OK if not problems else 1


def _check_tvm(suite_dir: Path) -> list[str]:
    """The TVM runtime is importable and one kernel loads and runs on this CPU (in a child:
    a kernel built for a newer CPU dies with SIGILL)."""
    kernels = suite_dir / "kernels" / "tvm.json"
    try:
        target = json.loads(kernels.read_text(encoding="utf-8")).get("target")
    except (OSError, ValueError) as exc:
        return [f"{kernels}: cannot read the TVM kernel list: {exc}"]
    done = subprocess.run([sys.executable, str(suite_dir / "tvm_backend.py"), "probe",
                           "--suite-dir", str(suite_dir)], capture_output=True, text=True,
                          check=False, env={**os.environ, "TVM_USE_RUNTIME_LIB": "1"})
    print(f"{'tvm':<12} target {json.dumps(target)}: "
          f"{'kernels load and run' if done.returncode == 0 else 'NOT USABLE'}")
    if done.returncode == 0:
        return []
    lines = [ln.removeprefix("problem: ") for ln in done.stdout.splitlines() if ln.strip()]
    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
    return lines or [f"the TVM runtime does not work here ({tail[:200]}): "
                     f"{sys.executable} -m pip install -r requirements-tvm.txt"]


def tune(args: argparse.Namespace) -> int:
    """`make tune`: tvm_backend.py tune (meta-schedule; needs the full TVM and a C compiler)."""
    script = args.suite_dir / "tvm_backend.py"
    if not script.is_file():
        raise RunBroken("this suite has no TVM kernels: compile it with --backend tvm or all")
    command = [sys.executable, str(script), "tune", "--trials", str(args.trials),
               "--suite-dir", str(args.suite_dir)]
    command += ["--total", str(args.total)] if args.total else []
    command += ["--only", args.only] if args.only else []
    command += ["--population", str(args.population)] if args.population else []
    return subprocess.run(command, check=False).returncode


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                pins[name.strip().lower()] = version.strip()
    except OSError:
        pass
    return pins


def pack(args: argparse.Namespace) -> int:
    """One tar.gz with results/*.json, suite.json and machine.json, to send back."""
    suite = read_suite(args.suite_dir)
    harness = _harness_or_broken()
    results = sorted((args.suite_dir / "results").glob("*.json"))
    counts = {"ok": 0, "error": 0, "invalid": 0}
    for path in results:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            counts["invalid" if harness.validate_result(data) else data["status"]] += 1
        except (OSError, ValueError):
            counts["invalid"] += 1
    missing = len(set(suite["bricks"]) - {p.stem for p in results})
    output = args.output or args.suite_dir / f"results-{suite['suite']}.tar.gz"
    machine = {"version": 1, "suite": suite["suite"], "machine": harness.machine_info(),
               "warnings": harness.quiet_warnings(args.threads)}
    root = f"results-{suite['suite']}"
    with tarfile.open(output, "w:gz") as tar:
        tar.add(args.suite_dir / "suite.json", f"{root}/suite.json")
        for path in results:
            tar.add(path, f"{root}/results/{path.name}")
        tuning = args.suite_dir / "results" / "tuning"  # TVM suites: the tuning database
        for path in sorted(tuning.glob("*.json")) if tuning.is_dir() else []:
            tar.add(path, f"{root}/results/tuning/{path.name}")
        kernels = args.suite_dir / "kernels" / "tvm.json"
        if kernels.is_file():
            tar.add(kernels, f"{root}/kernels/tvm.json")
        data = (json.dumps(machine, indent=2, sort_keys=True) + "\n").encode()
        info = tarfile.TarInfo(f"{root}/machine.json")
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
    print(f"wrote {output}: {counts['ok']} ok, {counts['error']} failed, {counts['invalid']} "
          f"invalid result files; {missing} of {len(suite['bricks'])} bricks have no result")
    return EXIT_OK


# --- command line ---------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py", description="Measure the bricks of this suite into results/ (resumable).",
        epilog="examples: python run.py --threads 1 | python run.py --shard 1/2 | "
               "python run.py check | python run.py pack")
    p.add_argument("command", nargs="?", default="run",
                   choices=["run", "check", "pack", "tune", "worker"],
                   help="run (default), check the machine, pack the results, tune the TVM "
                        "kernels; worker is internal")
    p.add_argument("--backend", choices=BACKENDS,
                   help="measure only this backend (default: every backend of the suite)")
    p.add_argument("--trials", type=int, default=64, help="tune: trials per brick (64)")
    p.add_argument("--total", type=int, help="tune: trials in this run at most")
    p.add_argument("--population", type=int, help=argparse.SUPPRESS)  # tune: for smoke tests
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="ONNX Runtime intra-op threads (1)")
    p.add_argument("--quick", action="store_true", help="tiny time budget per brick (smoke test)")
    p.add_argument("--runs", type=positive_int, metavar="N",
                   help="timed calls per brick at least (default 100; 1 with --quick)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"per-brick time limit, then the brick is an error ({DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--shard", type=parse_shard, metavar="K/N", help="run only shard K of N")
    p.add_argument("--only", metavar="ID,...", help="run only these bricks (ids or prefixes)")
    p.add_argument("--retry-errors", action="store_true",
                   help="redo bricks whose result is an error")
    p.add_argument("--taskset", metavar="CPUS",
                   help="pin the measuring process to CPUs, e.g. 2 or 0-3")
    p.add_argument("-o", "--output", type=Path, help="pack: the archive to write")
    p.add_argument("--suite-dir", type=Path, default=Path(__file__).resolve().parent,
                   help=argparse.SUPPRESS)
    p.add_argument("--suite", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads < 1 or args.timeout <= 0:
        print("error: --threads must be >= 1 and --timeout > 0", file=sys.stderr)
        return EXIT_BROKEN
    commands = {"run": run, "check": check, "pack": pack, "tune": tune, "worker": worker_main}
    try:
        return commands[args.command](args)
    except (RunBroken, OSError) as exc:  # e.g. a full disk: the run cannot go on
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BROKEN


if __name__ == "__main__":
    sys.exit(main())
