"""compile: models folder -> suite directory + private plan. Glue between the stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .audit import AuditReport, audit_suite
from .decoys import add_decoys
from .frontend import FrontendError, ShapeOptions, find_models, load_model
from .generate import render_suite, write_suite
from .ir import Model
from .partition import Partition, partition
from .plan import check_outside, plan_json


@dataclass(frozen=True, slots=True)
class CompileResult:
    suite: str
    partition: Partition
    failed: tuple[tuple[str, str], ...]  # (file, one-line error)
    plan_path: Path
    suite_dir: Path
    audit: AuditReport | None = None
    decoys: tuple[str, ...] = ()  # digests of the decoy bricks (in `partition.bricks` too)
    kernels: object = None  # tvm_compile.KernelReport with --backend tvm|all


def lower_all(root: Path, options: ShapeOptions,
              progress: Callable[[str], None] | None = None) -> tuple[list[Model], list[tuple[str, str]]]:
    """Lower every model below root, one at a time; a broken model never stops the others."""
    models, failed = [], []
    for path in find_models(root):
        if progress:
            progress(path.as_posix())
        try:
            models.append(load_model(path, root, options))
        except FrontendError as exc:
            failed.append((path.as_posix(), str(exc)))
        except Exception as exc:  # a bug of ours must not lose the other models either
            failed.append((path.as_posix(), f"{path.as_posix()}: internal error: "
                           f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
    return models, failed


def cut(models: list[Model], granularity: int, fusion: bool) -> Partition:
    """Partition, with units learned from the runtime's fusions when `fusion` is on."""
    if not fusion:
        return partition(models, granularity)
    from .fusion import fusion_units  # builds whole models in ONNX Runtime: only when asked

    grouped, units = fusion_units(models)
    return partition(grouped, granularity, units)


def shipped(parts: Partition, exclude: frozenset[str]) -> Partition:
    """The partition without the bricks that need no measuring."""
    return replace(parts, bricks=tuple(b for b in parts.bricks if b[0] not in exclude))


def compile_models(root: Path, out_dir: Path, plan_path: Path, granularity: int,
                   options: ShapeOptions, fusion: bool = False,
                   progress: Callable[[str], None] | None = None,
                   audit: bool = False, decoys: int = 0,
                   exclude: frozenset[str] = frozenset(),
                   backends: tuple[str, ...] = ("onnxruntime",),
                   tvm_target: dict | None = None) -> CompileResult:
    """Lower, cut, add `decoys`, render and write (with TVM kernels for `backends` with tvm);
    with `audit`, audit the written suite against the models and check that the models' order
    does not change it. `exclude`: bricks left out of the suite (already measured); the plan
    still lists every brick of every model, so estimates combine stored and new results."""
    check_outside(plan_path, out_dir)
    models, failed = lower_all(root, options, progress)
    parts, decoy_ids = add_decoys(cut(models, granularity, fusion), decoys)
    info, files = render_suite(shipped(parts, exclude), backends)
    report = kernels = None
    if models:
        write_suite(files, out_dir)
        if "tvm" in backends:
            from .tvm_compile import compile_kernels  # imports tvm: only when asked

            kernels = compile_kernels(shipped(parts, exclude), out_dir, tvm_target, progress)
        plan_path.parent.mkdir(parents=True, exist_ok=True)
        plan_path.write_text(plan_json(parts, info.suite, failed, options, decoy_ids), encoding="utf-8")
        if audit:
            report = audit_suite(out_dir, root)
            reordered = add_decoys(cut(models[::-1], granularity, fusion), decoys)[0]
            if not fusion and render_suite(shipped(reordered, exclude), backends)[1] != files:
                report = replace(report, problems=report.problems + (
                    "the suite changes when the models are read in another order",))
    return CompileResult(info.suite, parts, tuple(failed), plan_path, out_dir, report, decoy_ids,
                         kernels)
