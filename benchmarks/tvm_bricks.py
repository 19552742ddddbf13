"""TVM backend figures: common bricks (ORT vs untuned vs tuned TVM), tuning cost of unique
bricks vs per-model tasks, and the estimate/measured ratio of the TVM path on demo models.

Runs in the project's environment (pip install -e '.[tvm]'); prints tables, writes nothing
outside a temporary directory (or --workdir). 1 thread for both runtimes.

    python benchmarks/tvm_bricks.py bricks --trials 32          # ORT / untuned / tuned per op
    python benchmarks/tvm_bricks.py tasks --models all          # tuning tasks: bricks vs models
    python benchmarks/tvm_bricks.py models --models squeezenet1_1,mobilenet_v2 --trials 0
    python benchmarks/tvm_bricks.py models --models squeezenet1_1 --trials 16   # tuned path

`bricks` uses the one-layer SPECs of benchmarks/tvm_probe.py (conv 3x3 64ch 56x56, depthwise
conv, MatMul and Gemm 1x2048x1000, LayerNorm 128x768, Softmax 12x128x128, MaxPool), each
through the suite's own code: tvm_backend.build_brick, tune_module, measure_kernel, and
onnxruntime.measure_spec for ONNX Runtime. `models` runs the real pipeline (zoo -> compile
--backend all -> [make tune ->] make run -> e2e --backend tvm [--tuning-db a copy of the
suite's records --tune-trials N] -> estimate) and prints the estimate/measured ratio per
backend.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from dlbricks_gen.runtime.backends import tvm as tvm_backend  # noqa: E402

tvm_backend._skip_gpu_intrinsics()  # before tvm is imported: tuning starts 15 s faster

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from dlbricks_gen.codegen.render import suite_command  # noqa: E402
from dlbricks_gen.runtime.backends.onnxruntime import measure_spec  # noqa: E402
from dlbricks_gen.runtime.core.results import one_line  # noqa: E402
from dlbricks_gen.runtime.core.settings import Settings  # noqa: E402
from dlbricks_gen.runtime.core.spec import build_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
OPS = ("conv", "dwconv", "matmul", "gemm", "layernorm", "softmax", "maxpool")


def host_target() -> dict:
    return tvm_backend.host_target()


def median_ms(result: dict) -> float:
    if result["status"] != "ok":
        raise RuntimeError(result["error"])
    return result["stats"]["median"] * 1e3


def bench_brick(op: str, spec: dict, target: dict, trials: int, work: Path, settings) -> dict:
    spec = {**spec, "brick": op}
    ort_ms = median_ms(measure_spec(spec, settings))
    kernel = work / f"{op}.so"
    timing = tvm_backend.build_brick(spec, target, kernel)
    arrays = tvm_backend.brick_arrays(spec)
    untuned = median_ms(tvm_backend.measure_kernel(kernel, arrays, settings, kind="brick", id=op))
    row = {"op": op, "ort_ms": ort_ms, "untuned_ms": untuned,
           "compile_s": timing["import_s"] + timing["compile_s"]}
    if trials:
        database = work / f"tuning-{op}"
        mod = tvm_backend.to_relax(build_model(spec), tvm_backend.spec_weights(spec))
        stats = tvm_backend.tune_module(mod, target, database, trials)
        # Another file name: dlopen would hand back the untuned library loaded from `kernel`.
        kernel = work / f"{op}-tuned.so"
        tvm_backend.build_brick(spec, target, kernel, database)
        tuned = median_ms(tvm_backend.measure_kernel(kernel, arrays, settings, kind="brick", id=op))
        row.update(tuned_ms=tuned, tune_s=stats["tune_s"], tasks=stats["tasks"],
                   records=stats["records"])
    return row


def bricks(args) -> None:
    from tvm_probe import SPECS

    target = json.loads(args.tvm_target) if args.tvm_target else host_target()
    settings = Settings(intra_op_threads=1)
    print(f"target {json.dumps(target)}, {args.trials} trials per brick, 1 thread")
    head = (f"{'brick':10s} {'ORT ms':>9s} {'untuned ms':>11s} {'x ORT':>7s} {'tuned ms':>9s} "
            f"{'x ORT':>6s} {'compile s':>9s} {'tune s':>7s} {'tasks':>5s} {'trials':>6s}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for op in args.ops.split(","):
            r = bench_brick(op, SPECS[op], target, args.trials, Path(tmp), settings)
            tuned = (f"{r['tuned_ms']:9.4f} {r['tuned_ms'] / r['ort_ms']:6.2f} "
                     if "tuned_ms" in r else f"{'-':>9s} {'-':>6s} ")
            print(f"{op:10s} {r['ort_ms']:9.4f} {r['untuned_ms']:11.4f} "
                  f"{r['untuned_ms'] / r['ort_ms']:7.1f} {tuned}{r['compile_s']:9.2f} "
                  f"{r.get('tune_s', 0):7.1f} {r.get('tasks', '-'):>5} {r.get('records', '-'):>6}",
                  flush=True)


def tasks(args) -> None:
    """Tunable tasks (structural hashes of fused TIR functions) of the unique bricks against
    those of each whole model: what tuning the bricks once costs against tuning every model."""
    import onnx

    from dlbricks_gen.frontend import ShapeOptions, find_models, model_name
    from dlbricks_gen.frontend.roles import weight_names
    from dlbricks_gen.ir.spec import brick_spec
    from dlbricks_gen.passes.partition import partition
    from dlbricks_gen.workflows.compile import lower_all
    from dlbricks_gen.workflows.e2e import prepare

    target = json.loads(args.tvm_target) if args.tvm_target else host_target()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        _zoo(root, args.models, args.tiny)
        options = ShapeOptions(batch=1)
        lowered, _ = lower_all(root, options)
        parts = partition(lowered, args.H)
        brick_tasks, failed = {}, 0
        start = time.perf_counter()
        for digest, brick in parts.bricks:
            spec = brick_spec(digest, brick)
            try:
                mod = tvm_backend.to_relax(build_model(spec),
                                           tvm_backend.spec_weights(spec))
                brick_tasks[digest] = tvm_backend.task_keys(mod, target)
            except Exception:  # noqa: BLE001 - falls back to ONNX Runtime: no tuning
                failed += 1
        brick_s = time.perf_counter() - start
        model_tasks = {}
        for path in find_models(root):
            model = prepare(path, root, options)
            names = weight_names(model)
            try:
                mod = tvm_backend.to_relax(onnx.ModelProto.FromString(model.SerializeToString()), names)
                model_tasks[model_name(path, root)] = tvm_backend.task_keys(mod, target)
            except Exception as exc:  # noqa: BLE001
                print(f"{model_name(path, root)}: TVM cannot import it: {one_line(exc)[:120]}")
    unique_bricks = {k for keys in brick_tasks.values() for k in keys}
    per_model = sum(len(set(keys)) for keys in model_tasks.values())
    unique_models = {k for keys in model_tasks.values() for k in keys}
    shared = unique_bricks & unique_models
    print(f"{len(lowered)} models, H={args.H}: {len(parts.bricks)} unique bricks "
          f"({failed} not importable by TVM), task extraction {brick_s:.1f} s")
    print(f"tasks of the unique bricks (deduplicated):        {len(unique_bricks)}")
    print(f"tasks of the models, each model tuned on its own: {per_model} "
          f"(sum over {len(model_tasks)} models of their distinct tasks)")
    print(f"tasks of the models, deduplicated across models:  {len(unique_models)}")
    print(f"model tasks that are also brick tasks (records reusable by e2e): {len(shared)}")
    if args.seconds_per_trial:
        for label, count in (("bricks", len(unique_bricks)), ("per model", per_model)):
            hours = count * args.trials * args.seconds_per_trial / 3600
            print(f"tuning {label}: {count} tasks x {args.trials} trials x "
                  f"{args.seconds_per_trial:g} s = {hours:.1f} h")


def _zoo(root: Path, models: str, tiny: bool = False) -> None:
    cli = [sys.executable, "-m", "dlbricks_gen.cli"]
    subprocess.run([*cli, "zoo", str(root), "--models", models, *(["--tiny"] if tiny else [])],
                   check=True, capture_output=True)


def _run(*command, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], text=True, capture_output=True, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))}: {done.stderr[-2000:]}")
    return done


def models(args) -> None:
    """The real pipeline on demo models: ratio estimate/measured per backend."""
    cli = [sys.executable, "-m", "dlbricks_gen.cli"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tvm-models-"))
    root, suite = work / "models", work / "suite"
    if not root.is_dir():
        _zoo(root, args.models)
    target = args.tvm_target or json.dumps(host_target())
    start = time.perf_counter()
    _run(*cli, "compile", root, "-o", suite, "-H", args.H, "--backend", "all", "--tvm-target", target)
    print(f"compile --backend all: {time.perf_counter() - start:.1f} s", flush=True)
    if args.trials:
        start = time.perf_counter()
        _run(*suite_command("tune", "--trials", args.trials), cwd=suite)
        print(f"make tune TRIALS={args.trials}: {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    _run(*suite_command(), cwd=suite)
    print(f"make run (both backends): {time.perf_counter() - start:.0f} s", flush=True)
    database = suite / "results" / "tuning"
    extra = []
    if database.is_dir():  # a copy: e2e adds the records of the tasks no brick covered
        import shutil

        shutil.copytree(database, work / "db_e2e", dirs_exist_ok=True)
        extra = ["--tuning-db", work / "db_e2e", "--tune-trials", args.trials]
    start = time.perf_counter()
    _run(*cli, "e2e", root, "-o", work / "e2e_tvm.json", "--backend", "tvm", "--tvm-target",
         target, *extra)
    print(f"e2e --backend tvm {' '.join(map(str, extra[2:]))}: "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    _run(*cli, "e2e", root, "-o", work / "e2e_ort.json")
    done = _run(*cli, "estimate", "--plan", work / "suite.plan.json", "--results",
                suite / "results", "--e2e", work / "e2e_ort.json", "--e2e", work / "e2e_tvm.json")
    print(done.stdout)
    e2e = json.loads((work / "e2e_tvm.json").read_text())["models"]
    for name, result in e2e.items():
        info = result.get("tvm", {})
        print(f"{name}: TVM e2e tasks with records {info.get('tuned_tasks')}/{info.get('tasks')}"
              f", of which tuned for the model itself: {info.get('tuned_here', 0)} in "
              f"{info.get('tune_s', 0):.0f} s")
    print(f"files in {work}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["bricks", "tasks", "models"])
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--trials", type=int, default=32, help="tuning trials per brick (32)")
    parser.add_argument("--models", default="squeezenet1_1,mobilenet_v2")
    parser.add_argument("-H", type=int, default=1)
    parser.add_argument("--tvm-target", help="TVM target JSON (default: this machine)")
    parser.add_argument("--seconds-per-trial", type=float, default=0.0,
                        help="tasks: turn task counts into tuning hours")
    parser.add_argument("--workdir", help="models: keep the files here")
    parser.add_argument("--tiny", action="store_true",
                        help="tasks: the zoo's --tiny models (same structure, fewer channels)")
    args = parser.parse_args(argv)
    {"bricks": bricks, "tasks": tasks, "models": models}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
