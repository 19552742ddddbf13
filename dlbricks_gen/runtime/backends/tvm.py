"""The TVM backend of a dlbricks-gen suite: brick SPEC -> Relax -> kernels/<digest>.so -> timed.

Part of every suite's runtime; used when the suite was compiled with `--backend tvm` (or
`all`). It imports tvm only inside its functions, so the rest of the runtime works without it.
Facts it relies on (apache-tvm 0.27, docs/tvm-notes.md):

- Only the SPEC's random float weights become runtime parameters: they are moved from the
  initializers to the graph inputs before `relax.frontend.onnx.from_onnx`; literal constants
  (integer shapes, Clip bounds ...) stay constants, exactly as ONNX Runtime sees them. The
  Relax function's parameters are then the data inputs in SPEC order, then the weights in SPEC
  order; they are fed by position (the frontend renames some).
- A kernel is `tvm.compile(mod, target)` (or `compile_relax` with a tuning database), exported
  with `export_library` (needs a C compiler). Running it needs only the TVM runtime
  (`TVM_USE_RUNTIME_LIB=1`, `tvm.runtime.load_module`, `relax.VirtualMachine`).
- The timed call is the VM's saved closure (`save_function` binds the arguments once), timed by
  core/timing.py's loop, like ONNX Runtime's io_binding call.
- Tuning (`make tune`) is meta-schedule on the legalized and fused module, with a one-worker
  builder that skips meta-schedule's 15 s tensor-intrinsic import.

    python -m dlbricks_runtime.backends.tvm tune --trials 64 [--total N] [--only id,...]
    python -m dlbricks_runtime.backends.tvm probe     # `make check` runs this
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

from ..core.child import package_root, python_module
from ..core.data import FLOAT_DTYPES, input_feeds, random_array
from ..core.machine import quiet_warnings
from ..core.results import base_record, error_result, one_line
from ..core.spec import build_model, load_spec
from ..core.timing import measure_call
from . import TVM as BACKEND
from . import onnxruntime

INFO_FILE = "tvm.json"  # kernels/tvm.json: target, versions, per-brick kernel status
INFO_VERSION = 1
TUNING_DIR = Path("results") / "tuning"  # the meta-schedule database, travels with `make pack`
PROGRESS_FILE = "progress.json"
POPULATION = 512  # meta-schedule's default evolutionary population
RESULT_SUFFIX = ".tvm.json"  # results/<digest>.tvm.json: the TVM run of a brick
# This module's import name, also when it runs as __main__ (`python -m ...backends.tvm`).
MODULE = __spec__.name if __spec__ is not None else __name__


def import_tvm(threads: int = 1, runtime_only: bool = False):
    """tvm, with its thread pool size set; `runtime_only` loads libtvm_runtime (no compiler)
    when tvm is not imported yet in this process."""
    os.environ["TVM_NUM_THREADS"] = str(threads)
    if runtime_only and "tvm" not in sys.modules:
        os.environ.setdefault("TVM_USE_RUNTIME_LIB", "1")
    import tvm

    return tvm


# --- target and info ------------------------------------------------------------------------

def host_target() -> dict:
    """The target of this machine: llvm with its CPU, so LLVM uses its vector units. One core:
    the suite measures one thread per brick by default."""
    tvm = import_tvm()
    return {"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(), "num-cores": 1}


def parse_target(text: str | None) -> dict:
    """--tvm-target: TVM's JSON target, e.g. {"kind": "llvm", "mcpu": "skylake-avx512"}."""
    if not text:
        return host_target()
    try:
        target = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--tvm-target is not JSON: {exc}") from None
    if not isinstance(target, dict) or "kind" not in target:
        raise ValueError('--tvm-target must be a JSON object with a "kind", e.g. '
                         '{"kind": "llvm", "mcpu": "znver4", "num-cores": 1}')
    import_tvm().target.Target(target)  # raises on an unknown kind or option
    return target


def read_info(kernel_dir: Path) -> dict:
    path = Path(kernel_dir) / INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) and info.get("version") == INFO_VERSION else {}


def write_info(kernel_dir: Path, info: dict) -> None:
    path = Path(kernel_dir) / INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temp, path)


# --- import and compile ---------------------------------------------------------------------

def spec_weights(spec: dict) -> list[str]:
    """The names of a SPEC's runtime parameters: random float weights, in SPEC order."""
    return [t["name"] for t in spec["initializers"]
            if t["data"] == "random" and t["dtype"] in FLOAT_DTYPES]


def weights_as_inputs(model, names: list[str]) -> None:
    """Move these initializers to the end of the graph inputs, in place, in this order."""
    moved = {t.name: t for t in model.graph.initializer if t.name in set(names)}
    keep = [t for t in model.graph.initializer if t.name not in moved]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    for name in names:
        tensor = moved[name]
        model.graph.input.append(onnx.helper.make_tensor_value_info(
            name, tensor.data_type, list(tensor.dims)))


def to_relax(model, weight_names: list[str]):
    """The Relax IRModule of an ONNX model whose `weight_names` become parameters."""
    from tvm.relax.frontend.onnx import from_onnx

    weights_as_inputs(model, weight_names)
    with warnings.catch_warnings():  # "Renaming name a.b to a_b": parameters go by position
        warnings.filterwarnings("ignore", message="Renaming name", category=UserWarning)
        return from_onnx(model, keep_params_in_input=False)


def compiler() -> str:
    found = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if not found:
        raise RuntimeError("no C compiler (gcc, cc or clang) on PATH: TVM's export_library "
                           "needs one to write kernels")
    return found


def build(mod, target: dict, database_dir: Path | None = None):
    """An executable: the default pipeline, or the tuned schedules of a meta-schedule database
    (functions without a record keep the default, untuned schedule)."""
    tvm = import_tvm()
    tvm_target = tvm.target.Target(target)
    if database_dir is None or not (Path(database_dir) / "database_workload.json").is_file():
        return tvm.compile(mod, target=tvm_target)
    from tvm.s_tir import meta_schedule as ms

    database = ms.database.JSONDatabase(work_dir=str(database_dir))
    return ms.relax_integration.compile_relax(database, mod, tvm_target, params=None)


def export(executable, path: Path) -> None:
    """export_library to a temp file, then rename: a killed build never leaves half a kernel."""
    compiler()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp.so")
    executable.export_library(str(temp))
    os.replace(temp, path)


def build_brick(spec: dict, target: dict, path: Path, database_dir: Path | None = None) -> dict:
    """Compile one brick to `path`; {"import_s", "compile_s"}. Raises on any failure."""
    start = time.perf_counter()
    mod = to_relax(build_model(spec), spec_weights(spec))
    imported = time.perf_counter()
    export(build(mod, target, database_dir), path)
    return {"import_s": imported - start, "compile_s": time.perf_counter() - imported}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- run and time ---------------------------------------------------------------------------

def load_vm(path: Path, threads: int = 1):
    """A VM of a kernel library. One process loads a path once: dlopen returns the library
    already loaded from the same path even when the file was replaced since."""
    tvm = import_tvm(threads, runtime_only=True)
    from tvm.runtime.vm import VirtualMachine  # tvm.relax needs the compiler library

    return tvm, VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu(0))


def brick_arrays(spec: dict) -> list:
    """The kernel's arguments in parameter order: inputs, then the weights (random, seeded)."""
    feeds = input_feeds(spec["inputs"])
    arrays = [feeds[t["name"]] for t in spec["inputs"]]
    by_name = {t["name"]: t for t in spec["initializers"]}
    for name in spec_weights(spec):
        t = by_name[name]
        arrays.append(random_array(name, t["dtype"], t["shape"], "weight"))
    return arrays


def bound_vm_call(tvm, vm, arrays: list):
    """(call, keepalive): the VM's main with its arguments bound once (save_function)."""
    device = tvm.cpu(0)
    args = [tvm.runtime.tensor(np.ascontiguousarray(a), device) for a in arrays]
    vm.save_function("main", "main_bound", *args)
    return vm["main_bound"], args


def measure_kernel(path: Path, arrays: list, settings, *, kind: str, id: str,
                   suite: str | None = None, extra: dict | None = None) -> dict:
    """A complete result (format v1, backend "tvm") of a kernel library; failures become an
    error result."""
    start = time.perf_counter()
    warnings = quiet_warnings(settings.intra_op_threads)
    try:
        tvm, vm = load_vm(path, settings.intra_op_threads)
        call, keepalive = bound_vm_call(tvm, vm, arrays)
        setup_s = time.perf_counter() - start
        part = measure_call(call, settings)
        del keepalive
    except Exception as exc:  # noqa: BLE001 - any failure is this brick's result
        result = error_result(kind=kind, id=id, error=exc, settings=settings, suite=suite,
                                      backend=BACKEND, wall_s=time.perf_counter() - start,
                                      warnings=warnings)
        return {**result, "tvm": extra or {}}
    timing = {"wall_s": time.perf_counter() - start, "setup_s": setup_s, **part["timing"]}
    return {**base_record(kind, id, suite, BACKEND, settings), "status": "ok", "error": None,
            "stats": part["stats"], "values": part["values"], "tvm": extra or {},
            "warnings": warnings + part["warnings"], "timing": timing}


def measure_brick(spec: dict, settings, kernel_dir: Path, *, suite: str | None = None) -> dict:
    """The TVM run of a brick: its kernel when it has one, else ONNX Runtime as the fallback
    (recorded: backend "onnxruntime", backend_requested "tvm", fallback = why)."""
    brick = str(spec.get("brick", "unknown"))
    info = read_info(kernel_dir)
    entry = info.get("kernels", {}).get(brick, {})
    path = Path(kernel_dir) / f"{brick}.so"
    if entry.get("status") == "ok" and path.is_file():
        extra = {"target": info.get("target"), "tvm": info.get("tvm"),
                 "tuned_trials": int(entry.get("tuned_trials", 0)),
                 "kernel_sha256": sha256_file(path)}
        start = time.perf_counter()
        try:
            arrays = brick_arrays(spec)
        except Exception as exc:  # noqa: BLE001
            return error_result(kind="brick", id=brick, settings=settings, suite=suite,
                                        backend=BACKEND, wall_s=time.perf_counter() - start,
                                        error=f"cannot make the inputs: {one_line(exc)}")
        return measure_kernel(path, arrays, settings, kind="brick", id=brick, suite=suite,
                              extra=extra)
    reason = entry.get("error") or f"no TVM kernel kernels/{brick}.so"
    result = onnxruntime.measure_spec(spec, settings, suite=suite)
    result["backend_requested"] = BACKEND
    result["fallback"] = one_line(reason)
    return result


# --- tuning ---------------------------------------------------------------------------------

def _skip_gpu_intrinsics() -> None:
    """meta-schedule imports tvm.s_tir.tensor_intrin (15+ s, mostly CUDA) in every process that
    tunes; the CPU targets need only its x86 part. Must run before tvm is imported."""
    import types

    if "tvm" in sys.modules:
        return
    for sub in ("cuda", "rocm", "hexagon", "arm_cpu", "riscv_cpu"):
        sys.modules.setdefault(f"tvm.s_tir.tensor_intrin.{sub}", types.ModuleType(sub))


def light_build(mod, target, _params):
    """meta-schedule's default_build without its tensor-intrinsic import (one builder worker
    would otherwise pay 15 s per batch and hit the 30 s build timeout)."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


def fuse(mod, target: dict):
    """Legalize and fuse with the passes of the default pipeline, so task keys match build()."""
    tvm = import_tvm()
    from tvm import relax
    from tvm.relax import pipeline as rp

    tvm_target = tvm.target.Target(target)
    with tvm_target:
        return tvm.transform.Sequential([
            *rp.library_dispatch_passes(tvm_target), relax.transform.LegalizeOps(),
            relax.transform.AnnotateTIROpPattern(), relax.transform.FoldConstant(),
            relax.transform.FuseOps(), relax.transform.FuseTIR()])(mod)


def task_keys(mod, target: dict) -> list[str]:
    """Structural hashes of the tunable tasks of a module (dedup across bricks and models)."""
    tvm = import_tvm()
    from tvm.s_tir import meta_schedule as ms
    from tvm_ffi import structural_hash

    tasks = ms.relax_integration.extract_tasks(fuse(mod, target), tvm.target.Target(target))
    return [str(structural_hash(t.dispatched[0])) for t in tasks]


def tune_module(mod, target: dict, work_dir: Path, trials: int, per_iter: int = 16,
                population: int = POPULATION, only_missing: bool = False) -> dict:
    """Spend up to `trials` meta-schedule trials on a module's tasks (spread evenly), appending
    to the database in work_dir (resumable). `only_missing`: only the tasks the database has no
    workload for. {"tasks", "tuned_tasks", "records", "tune_s"}. `population`: the evolutionary
    search's population (its cost, ~10 s per 512 on one core, is per batch)."""
    import logging

    import cloudpickle

    tvm = import_tvm()
    from tvm.s_tir import meta_schedule as ms

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # light_build -> the builder
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)  # logs/ has it all
    tvm_target = tvm.target.Target(target)
    tasks = ms.relax_integration.extract_tasks(fuse(mod, target), tvm_target)
    chosen = tasks
    if only_missing and (Path(work_dir) / "database_workload.json").is_file():
        database = ms.database.JSONDatabase(work_dir=str(work_dir))
        chosen = [t for t in tasks if not database.has_workload(t.dispatched[0])]
    records = Path(work_dir) / "database_tuning_record.json"
    before = _lines(records)
    start = time.perf_counter()
    if chosen and trials > 0:
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            chosen, str(work_dir), seed=0,
            strategy=ms.search_strategy.EvolutionarySearch(population_size=population))
        ms.tune_tasks(
            tasks=contexts, task_weights=weights, work_dir=str(work_dir),
            max_trials_global=trials,
            max_trials_per_task=max(1, math.ceil(trials / len(chosen))),
            num_trials_per_iter=min(per_iter, trials),
            builder=ms.builder.LocalBuilder(max_workers=1, timeout_sec=60, f_build=light_build),
            runner=ms.runner.LocalRunner(evaluator_config=ms.runner.EvaluatorConfig(
                number=3, repeat=1, min_repeat_ms=20, enable_cpu_cache_flush=False)))
    return {"tasks": len(tasks), "tuned_tasks": len(chosen) if trials > 0 else 0,
            "records": _lines(records) - before, "tune_s": time.perf_counter() - start}


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def _print(message: str) -> None:
    print(message, flush=True)


def tune_suite(suite_dir: Path, trials: int, total: int | None = None,
               only: list[str] | None = None, echo=_print, population: int = POPULATION) -> int:
    """`make tune`: per brick with a kernel, up to `trials` trials (less what earlier runs
    spent: resumable), at most `total` in this run; rebuild its kernel from the database and
    drop its stale TVM result. Exit code 0, or 2 when the suite has no TVM kernels."""
    kernel_dir = suite_dir / "kernels"
    info = read_info(kernel_dir)
    if not info:
        echo("error: this suite has no TVM kernels (compile it with --backend tvm)")
        return 2
    work_dir = suite_dir / TUNING_DIR
    work_dir.mkdir(parents=True, exist_ok=True)
    progress_path = work_dir / PROGRESS_FILE
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {}
    bricks = sorted(d for d, e in info["kernels"].items() if e.get("status") == "ok"
                    and (not only or any(d.startswith(o) for o in only)))
    left = total if total is not None else trials * len(bricks)
    start = time.perf_counter()
    echo(f"tuning {len(bricks)} bricks for {info['target']}: {trials} trials each, "
         f"{left} in total at most; database {TUNING_DIR}")
    for index, brick in enumerate(bricks, 1):
        done = progress.get(brick, {}).get("trials", 0)
        budget = min(trials - done, left)
        if budget <= 0:
            echo(f"[{index}/{len(bricks)}] {brick[:16]}: "
                 f"{'done' if done >= trials else 'total budget spent'} ({done} trials)")
            continue
        left -= budget
        try:
            spec = _spec(suite_dir, brick)
            mod = to_relax(build_model(spec), spec_weights(spec))
            stats = tune_module(mod, info["target"], work_dir, budget, population=population)
            export(build(mod, info["target"], work_dir), kernel_dir / f"{brick}.so")
        except Exception as exc:  # noqa: BLE001 - one brick's failure never stops the others
            echo(f"[{index}/{len(bricks)}] {brick[:16]}: tuning failed, kernel kept: "
                 f"{one_line(exc)}")
            continue
        info["kernels"][brick]["tuned_trials"] = done + budget
        write_info(kernel_dir, info)
        (suite_dir / "results" / f"{brick}{RESULT_SUFFIX}").unlink(missing_ok=True)
        entry = progress.setdefault(brick, {"trials": 0, "records": 0, "tune_s": 0.0})
        entry["trials"] += budget
        entry["records"] += stats["records"]
        entry["tune_s"] += stats["tune_s"]
        entry["tasks"] = stats["tasks"]
        progress_path.write_text(json.dumps(progress, indent=1, sort_keys=True) + "\n")
        elapsed = time.perf_counter() - start
        echo(f"[{index}/{len(bricks)}] {brick[:16]}: {stats['tasks']} tasks, {budget} trials "
             f"({stats['records']} measured) in {stats['tune_s']:.1f} s; kernel rebuilt "
             f"({elapsed:.0f} s elapsed)")
    echo(f"tuned in {time.perf_counter() - start:.0f} s; run `make run` to measure the tuned "
         f"kernels, `make pack` takes {TUNING_DIR} along")
    return 0


def _spec(suite_dir: Path, brick: str) -> dict:
    return load_spec(suite_dir / "bricks" / f"{brick}.py")


# --- check ----------------------------------------------------------------------------------

def probe(kernel_dir: Path) -> list[str]:
    """Problems running this suite's kernels here: TVM missing, or a kernel that does not load
    or run (a CPU without the target's instructions dies with SIGILL: run in a child)."""
    info = read_info(kernel_dir)
    if not info:
        return []
    ok = sorted(d for d, e in info.get("kernels", {}).items() if e.get("status") == "ok")
    if not ok:
        return []
    command = python_module(MODULE, "probe-one", ok[0],
                            "--suite-dir", str(Path(kernel_dir).resolve().parent))
    try:
        done = subprocess.run(command, cwd=package_root(MODULE, __file__), capture_output=True,
                              text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return ["loading a TVM kernel timed out"]
    if done.returncode == 0:
        return []
    if done.returncode < 0 and -done.returncode == signal.SIGILL:
        return [(f"the TVM kernels were compiled for {json.dumps(info.get('target'))} and use "
                f"instructions this CPU lacks (SIGILL): recompile with a matching --tvm-target")]
    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
    return [f"a TVM kernel does not load or run here: {tail[:200]}"]


def _probe_one(suite_dir: Path, brick: str) -> int:
    """Load one brick's kernel and call it once."""
    spec = _spec(suite_dir, brick)
    tvm, vm = load_vm(suite_dir / "kernels" / f"{brick}.so")
    call, _ = bound_vm_call(tvm, vm, brick_arrays(spec))
    call()
    print(f"ok: kernel {brick[:16]} loads and runs (tvm {tvm.__version__})")
    return 0


# --- command line ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["tune", "probe", "probe-one"])
    parser.add_argument("brick", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=64, help="trials per brick (64)")
    parser.add_argument("--total", type=int, help="trials in this run at most (default: all)")
    parser.add_argument("--only", help="only these bricks (id prefixes, comma-separated)")
    parser.add_argument("--population", type=int, default=POPULATION,
                        help=f"evolutionary search population ({POPULATION}; less is faster, "
                             f"for smoke tests)")
    parser.add_argument("--suite-dir", type=Path, default=Path(__file__).resolve().parents[2],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == "tune":
        _skip_gpu_intrinsics()
        only = [o for o in (args.only or "").split(",") if o]
        return tune_suite(args.suite_dir, args.trials, args.total, only,
                          population=args.population)
    if args.command == "probe-one":
        return _probe_one(args.suite_dir, args.brick)
    problems = probe(args.suite_dir / "kernels")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
