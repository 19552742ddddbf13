"""compile: models folder -> suite directory + private plan. The one assembly of the stages.

`assemble` is the pure part (lowered models -> partition, decoys, suite files, plan text), and
every workflow that makes a suite calls it: `compile`, `study`, the committed example and
`estimate --model`. `compile_models` adds the I/O around it: reading the models, writing the
suite and the plan, TVM kernels and the audit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..backends import DEFAULT as DEFAULT_BACKEND
from ..codegen.audit import AuditReport, audit_suite
from ..codegen.keys import key_partition, secret_label
from ..codegen.render import SuiteInfo, render_suite, write_suite
from ..frontend import FrontendError, ShapeOptions, find_models, load_model
from ..ir import Model
from ..passes.decoys import Budget, add_decoys
from ..passes.layout import Conversions, conversions, with_kept_reorders
from ..passes.optimized import clear_whole_model
from ..passes.partition import Partition, partition
from ..passes.plan import check_outside, plan_json, plan_with_ids

if TYPE_CHECKING:
    from ..backends.tvm import KernelReport

Units = dict[str, tuple[tuple[int, int], ...]]  # per model: spans the partitioner keeps whole


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything besides the models that decides a suite's bytes."""

    granularity: int
    shapes: ShapeOptions = field(default_factory=ShapeOptions)
    decoys: int = 0  # decoy bricks wanted (count)
    exclude: frozenset[str] = frozenset()  # bricks left out of the suite (already measured)
    backends: tuple[str, ...] = (DEFAULT_BACKEND,)
    decoy_share: float = 0.0  # or: decoys up to this share of the suite's guessed latency
    secret: bytes | None = None  # key brick ids with it (codegen/keys.py); None: plain digests


@dataclass(frozen=True, slots=True)
class Assembled:
    """A suite in memory: its files, its private plan, and the partition behind both."""

    partition: Partition  # every brick of every model, decoys included
    shipped: Partition  # the bricks in the suite: `partition` less the recipe's `exclude`
    decoys: tuple[str, ...]
    info: SuiteInfo
    files: dict[str, str]  # {relative path: text}, what is shipped
    plan: str  # the plan file's text


@dataclass(frozen=True, slots=True)
class CompileResult:
    suite: str
    partition: Partition
    failed: tuple[tuple[str, str], ...]  # (file, one-line error)
    plan_path: Path
    suite_dir: Path
    audit: AuditReport | None = None
    decoys: tuple[str, ...] = ()  # digests of the decoy bricks (in `partition.bricks` too)
    kernels: KernelReport | None = None  # with --backend tvm|all


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


def fusion_groups(models: list[Model], fusion: bool) -> tuple[list[Model], Units | None]:
    """With `fusion`, the models regrouped along ONNX Runtime's fusions and their units."""
    if not fusion:
        return models, None
    from ..passes.fusion import fusion_units  # builds whole models in ONNX Runtime: only when asked

    return fusion_units(models)


def layout_conversions(models: list[Model]) -> dict[str, Conversions]:
    """Where each model converts between plain and NCHWc layouts (ONNX Runtime, level all)."""
    found = {m.name: conversions(m) for m in models}
    return {name: c for name, c in found.items() if c is not None}


def runtime_passes(models: list[Model], fusion: bool) -> tuple[list[Model], Units | None, dict[str, Conversions]]:
    """`fusion_groups` and `layout_conversions`, model by model: both passes optimize the same
    whole model in ONNX Runtime, which is built once (passes/optimized.py keeps the last one).
    The conversions are read on the model before regrouping: they name the model's values,
    which regrouping (a reorder of its layers) keeps."""
    grouped: list[Model] = []
    units: Units = {}
    layouts: dict[str, Conversions] = {}
    for model in models:
        regrouped, found = fusion_groups([model], fusion)
        grouped += regrouped
        units.update(found or {})
        layouts.update(layout_conversions([model]))
    clear_whole_model()
    return grouped, (units if fusion else None), layouts


def assemble(models: list[Model], recipe: Recipe, units: Units | None = None,
             failed: tuple[tuple[str, str], ...] = (),
             layouts: dict[str, Conversions] | None = None) -> Assembled:
    """Cut, add decoys, key the ids, render and write the plan text: pure, deterministic.
    `layouts`: the models' layout conversions, recorded per brick instance in the plan. With a
    secret, every id downstream (files, plan, `exclude`, results) is the keyed id."""
    layouts = layouts or {}
    nhwc = {name: found.nhwc for name, found in layouts.items()}
    cut = with_kept_reorders(partition(models, recipe.granularity, units, nhwc), models, layouts)
    budget = Budget(recipe.decoys, recipe.decoy_share)
    parts, decoy_ids = add_decoys(cut, models, budget, recipe.secret or b"")
    digests = None
    if recipe.secret is not None:
        parts, decoy_ids, digests = key_partition(parts, decoy_ids, recipe.secret)
    shipped = replace(parts, bricks=tuple(b for b in parts.bricks if b[0] not in recipe.exclude))
    info, files = render_suite(shipped, recipe.backends)
    assumed = {m.name: m.assumed for m in models if m.assumed}
    plan = plan_json(parts, info.suite, list(failed), recipe.shapes, decoy_ids, assumed)
    if recipe.secret is not None and digests is not None:
        plan = plan_with_ids(plan, digests, secret_label(recipe.secret))
    return Assembled(parts, shipped, decoy_ids, info, files, plan)


def write_assembled(suite: Assembled, out_dir: Path, plan_path: Path) -> None:
    check_outside(plan_path, out_dir)
    write_suite(suite.files, out_dir)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(suite.plan, encoding="utf-8")


def compile_models(root: Path, out_dir: Path, plan_path: Path, granularity: int,
                   options: ShapeOptions, fusion: bool = True,
                   progress: Callable[[str], None] | None = None,
                   audit: bool = False, decoys: int = 0,
                   exclude: frozenset[str] = frozenset(),
                   backends: tuple[str, ...] = (DEFAULT_BACKEND,),
                   tvm_target: dict | None = None, decoy_share: float = 0.0,
                   secret: bytes | None = None) -> CompileResult:
    """Lower, assemble and write (with TVM kernels for `backends` with tvm); with `audit`,
    audit the written suite against the models. `exclude`: bricks left out of the suite; the
    plan still lists every brick of every model, so estimates combine stored and new results."""
    check_outside(plan_path, out_dir)
    models, failed = lower_all(root, options, progress)
    grouped, units, layouts = runtime_passes(models, fusion)
    recipe = Recipe(granularity, options, decoys, exclude, backends, decoy_share, secret)
    suite = assemble(grouped, recipe, units, tuple(failed), layouts)
    report = kernels = None
    if models:
        write_assembled(suite, out_dir, plan_path)
        if "tvm" in backends:
            if tvm_target is None:
                raise ValueError("--backend tvm needs a TVM target")
            from ..backends.tvm import compile_kernels  # imports tvm: only when asked

            kernels = compile_kernels(suite.shipped, out_dir, tvm_target, progress)
        if audit:
            report = audit_suite(out_dir, root)
    return CompileResult(suite.info.suite, suite.partition, tuple(failed), plan_path, out_dir,
                         report, suite.decoys, kernels)
