"""The command line: thin commands that parse, call the library and print."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__, backends
from .frontend import ShapeOptions, find_models
from .frontend.shapes import DEFAULT_MAX_BYTES
from .passes.decoys import DEFAULT as DEFAULT_DECOYS
from .results.statistic import DEFAULT_STATISTIC, STATISTICS

app = typer.Typer(
    help="DLBricks for ONNX: compile models into a standalone benchmark suite, "
    "and its results back into per-model latency estimates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- shared options, declared once ------------------------------------------------------------
Batch = Annotated[int | None, typer.Option("--batch", min=1, help="Value for symbolic batch (first) dimensions.")]
InputShape = Annotated[list[str] | None, typer.Option(
    "--input-shape", help="Shape of one input, NAME=1x3x224x224 (repeatable).")]
Dim = Annotated[list[str] | None, typer.Option(
    "--dim", help="Value of a named symbolic dimension, NAME=VALUE, e.g. sequence_length=128 (repeatable).")]
SampleInputs = Annotated[Path | None, typer.Option("--inputs", exists=True,
    help="Sample inputs for the one recorded run that decides data-dependent shapes and control flow: "
    "an .npz file or a folder of .npy / .pb files named after the inputs (default: seeded random data).")]
Threads = Annotated[int, typer.Option("--threads", min=1, help="ONNX Runtime intra-op threads.")]
Quick = Annotated[bool, typer.Option("--quick", help="Short measurements (for tests and demos).")]
Runs = Annotated[int | None, typer.Option(
    "--runs", min=1, help="Timed calls per model at least (default 100, as the suite's bricks).")]
Processes = Annotated[int | None, typer.Option(
    "--processes", min=1, help="Rounds (fresh sessions, interleaved order) pooled per model, as the "
    "suite's worker passes (default 2; 1 with --quick).")]
StoreMachine = Annotated[str | None, typer.Option("--machine",
    help="Machine fingerprint (or a unique prefix) in the results store; needed when the store "
    "holds several.")]
Granularity = Annotated[str, typer.Option("-H", "--granularity",
    help="H, the most layers per benchmark: one value (compile, estimate) or several, 1..6 or "
    "1,2,4 (study, inspect).")]
Backend = Annotated[str, typer.Option("--backend", help=f"Backend: {backends.HELP}.")]
SecretFile = Annotated[Path | None, typer.Option("--secret", dir_okay=False,
    help="File of the secret that keys brick ids (made on first use, mode 0600; default "
    "$XDG_CONFIG_HOME/dlbricks-gen/secret). Share one file within a team to share a results store.")]
Fusion = Annotated[bool, typer.Option("--fusion/--no-fusion",
    help="Never cut inside a group of layers that ONNX Runtime fuses (learned from the runtime); H"
    " then counts fused kernels (default: the most accurate estimates; --no-fusion: H counts layers).")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def check_output_file(path: Path | None, option: str) -> None:
    """Refuse, before any long work, an output file that could not be written at the end."""
    if path is None:
        return
    folder = path.parent
    if path.is_dir():
        fail(f"{option} {path}: is a folder, give a file name", 2)
    if not folder.is_dir():
        fail(f"{option} {path}: no folder {folder} (create it first)", 2)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"{option} {path}: not writable", 2)


def user_secret(path: Path | None) -> bytes:
    """The secret that keys brick ids: `path`, or the user's own (made on first use)."""
    import os

    from .codegen.keys import default_secret_path, load_secret

    try:
        return load_secret(path or default_secret_path(os.environ))
    except ValueError as exc:
        fail(str(exc))


def shape_options(batch: int | None, input_shape: list[str] | None, dim: list[str] | None,
                  models: Path, inputs: Path | None = None) -> ShapeOptions:
    """The shape options, checked against the inputs of the models before any work: a name no
    model uses, a wrong rank or a changed fixed dimension is a usage error (exit 2)."""
    from .frontend.shapes import option_problems

    try:
        shapes = tuple((n, tuple(int(d) for d in v.replace(",", "x").split("x")))
                       for n, v in (_pair(s, "--input-shape") for s in input_shape or ()))
        dims = tuple((n, int(v)) for n, v in (_pair(s, "--dim") for s in dim or ()))
    except ValueError as exc:
        fail(str(exc), 2)
    options = ShapeOptions(batch=batch, input_shapes=shapes, dims=dims, inputs=inputs)
    problems = option_problems(find_models(models), options) if shapes or dims else []
    for problem in problems[:-1]:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        fail(problems[-1], 2)
    return options


def granularities(text: str) -> list[int]:
    """-H values (several allowed); a usage error otherwise."""
    from .passes.partition import parse_granularities

    try:
        return parse_granularities(text)
    except ValueError as exc:
        fail(str(exc), 2)


def one_granularity(text: str) -> int:
    """-H where one value is needed (compile, estimate); a usage error otherwise."""
    hs = granularities(text)
    if len(hs) != 1:
        fail(f"-H {text!r}: this command takes one granularity", 2)
    return hs[0]


def backend_names(name: str, option: str = "--backend") -> tuple[str, ...]:
    """A --backend choice -> the backends it names; anything else is a usage error."""
    try:
        return backends.parse(name, option)
    except ValueError as exc:
        fail(str(exc), 2)


def _pair(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.rpartition("=")
    if not sep or not name or not value:
        raise ValueError(f"{option} expects NAME=VALUE, got {text!r}")
    try:
        [int(v) for v in value.replace(",", "x").split("x")]
    except ValueError:
        raise ValueError(f"{option} {text!r}: {value!r} is not a number or NUMxNUM...") from None
    return name, value


@app.command("compile")
def compile_cmd(
    models: Annotated[Path, typer.Argument(exists=True,
        help="Folder of *.onnx files (searched recursively) or one file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Suite directory to write.")],
    granularity: Granularity = "1",
    plan: Annotated[Path | None, typer.Option("--plan",
        help="Private plan file (default: OUTPUT.plan.json beside the suite).")] = None,
    fusion: Fusion = True,
    batch: Batch = None,
    input_shape: InputShape = None,
    dim: Dim = None,
    inputs: SampleInputs = None,
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1,
        help="Refuse a model with a layer whose tensors (inputs, weights, outputs) need more "
        "bytes.")] = DEFAULT_MAX_BYTES,
    decoys: Annotated[str, typer.Option("--decoys",
        help="Decoys (paths of real layers rebuilt at other sizes of the suite; only the plan marks "
        f"them): a share of the suite's latency, guessed from FLOPs and bytes ({DEFAULT_DECOYS}, 0.4; 0: none) or a "
        f"number of bricks (40).")] = DEFAULT_DECOYS,
    secret: SecretFile = None,
    audit: Annotated[bool, typer.Option("--audit/--no-audit",
        help="Audit the suite against the models before it is shipped (default); fail if anything of "
        "theirs is in it.")] = True,
    have: Annotated[Path | None, typer.Option("--have", dir_okay=False,
        help="Results store: leave out bricks it already has a valid result for (on --machine).")] = None,
    machine: StoreMachine = None,
    backend: Backend = backends.DEFAULT,
    tvm_target: Annotated[str | None, typer.Option(
        "--tvm-target", help='TVM target as JSON, e.g. \'{"kind": "llvm", "mcpu": "znver4", "num-cores": 1}\' '
        "(default: this machine).")] = None,
) -> None:
    """Compile a folder of ONNX models into a benchmark suite and a private plan.

    Example: dlbricks-gen compile models/ -o generated/ -H 1 --batch 1
    """
    from dataclasses import replace

    from .passes.decoys import Budget
    from .passes.plan import default_plan_path
    from .workflows.compile import compile_models

    options = replace(shape_options(batch, input_shape, dim, models, inputs), max_bytes=max_bytes)
    try:
        budget = Budget.parse(decoys)
    except ValueError as exc:
        fail(str(exc), 2)
    key = user_secret(secret)
    plan_path = plan or default_plan_path(output)
    if machine is not None and have is None:
        fail("--machine chooses a machine of the --have store: give --have STORE", 2)
    backend_names(backend)
    try:
        chosen_backends, target = _backends(backend, tvm_target)
        # --have: stored ONNX Runtime results (a TVM suite re-measures its TVM bricks).
        chosen, latest = stored_results(have, machine, "onnxruntime") if have else (None, {})
        known = frozenset(d for d, r in latest.items() if r.get("status") == "ok")
        h = one_granularity(granularity)
        with progress_bar("compile", len(find_models(models)), echo_progress) as progress:
            result = compile_models(models, output, plan_path, h, options, fusion,
                                    progress=progress,
                                    audit=audit, decoys=budget.count, exclude=known,
                                    backends=chosen_backends, tvm_target=target,
                                    decoy_share=budget.share, secret=key)
    except ValueError as exc:
        fail(str(exc))
    for _, error in result.failed:
        typer.echo(f"error: {error}", err=True)
    parts = result.partition
    if not parts.models:
        fail("no model could be compiled" if result.failed else f"no *.onnx files found in {models}")
    layers = sum(m.layers for m in parts.models)
    instances = sum(len(m.instances) for m in parts.models)
    typer.echo(f"{len(parts.models)} models ({len(result.failed)} failed), {layers} layers, "
               f"{instances} sequences at H={h}, {len(parts.bricks) - len(result.decoys)} unique bricks"
               + (f" + {len(result.decoys)} decoys" if not budget.empty else ""))
    if not budget.empty:
        echo_decoys(result, budget)
    if have:
        echo_skipped(parts, latest, chosen)
    if result.kernels is not None:
        k = result.kernels
        typer.echo(f"TVM kernels for {json.dumps(target)}: {k.built} built in {k.compile_s:.1f} s, "
                   f"{k.reused} kept, {len(k.fallback)} on ONNX Runtime (TVM failed)")
        for digest, error in k.fallback:
            typer.echo(f"warning: brick {digest[:16]} falls back to ONNX Runtime: {error}", err=True)
    typer.echo(f"plan: {plan_path}  (private: keep it, do not ship it)")
    if result.audit is not None:
        report_audit(result.audit, brief=True)
    typer.echo(f"suite {result.suite}: {output}/  (ship this)")


def echo_decoys(result, budget) -> None:
    """What the decoys cost, guessed from FLOPs and bytes (nothing is measured at compile time)."""
    from .passes.cost import brick_cost, measuring_s

    decoys = set(result.decoys)
    costs = {d: brick_cost(b) for d, b in result.partition.bricks}
    real = sum(c for d, c in costs.items() if d not in decoys)
    extra = sum(measuring_s(costs[d]) for d in decoys)
    typer.echo(f"decoys: {len(decoys)} bricks, +{sum(costs[d] for d in decoys) / max(real, 1e-12):.0%} of the "
               f"suite's latency and about {extra:.0f} s more measuring for the vendor (guessed from FLOPs "
               "and bytes: nothing is measured at compile time)")
    if budget.count and len(decoys) < budget.count:
        typer.echo(f"warning: only {len(decoys)} of {budget.count} decoys could be made "
                   "(too few distinct sizes among the real bricks)", err=True)


def echo_progress(item: str) -> None:
    typer.echo(item if item.startswith("TVM kernel ") else f"reading {item!r}"[:300], err=True)


Step = Callable[..., None]  # step(item) advances by one; step(item, done, total) sets the position


@contextlib.contextmanager
def progress_bar(what: str, total: int, line: Callable[[str], None],
                 console: Console | None = None) -> Iterator[Step]:
    """A callback for long work over `total` units: on a terminal a rich progress bar with
    counts, elapsed time and ETA; otherwise (logs, pipes, tests) `line` per item. It is called
    as an item starts: step(item) counts the items before it, step(item, done, total) says how
    many units are done and how many there are (work whose size is learnt on the way)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield lambda item, done=None, new_total=None: line(item)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[item]}"))
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(what, total=total, item="")
        started = False

        def advance(item: str, done: int | None = None, new_total: int | None = None) -> None:
            nonlocal started
            if item.startswith("TVM kernel "):  # a second phase, not counted
                bar.console.print(item)
                return
            if done is not None:
                bar.update(task, completed=done, total=new_total, item=escape(item[-60:]))
                return
            bar.update(task, advance=1 if started else 0, item=escape(item[-60:]))
            started = True

        yield advance
        bar.update(task, completed=bar.tasks[0].total)


def report_audit(report, brief: bool) -> None:
    """Print an audit; exit 1 (loudly) when it found a leak or a problem."""
    from .codegen.audit import format_report

    text = format_report(report, top=0 if brief else 40)
    lines = text.splitlines()
    if brief:  # the headline, the search and the verdict; `audit` prints the signatures
        lines = [line for line in lines if not line.startswith(("  ", "what the suite", "layers by op"))]
    typer.echo("\n".join(lines), err=not report.ok)
    if report.leaks:
        fail("the audit found model data in the suite (see above): do not ship it")
    if not report.ok:
        fail("the suite is not as dlbricks-gen wrote it (see above): do not ship it")


@app.command("audit")
def audit_cmd(
    suite: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Suite directory written by compile.")],
    models: Annotated[Path | None, typer.Option("--models", exists=True,
        help="The models it was compiled from: search the suite for their names, texts and weight "
        "bytes.")] = None,
    attacks: Annotated[bool, typer.Option("--attacks",
        help="Also attack the suite as a vendor would (shape chaining, model inputs and heads, shape "
        "histograms) and print what each recovers.")] = False,
    plan: Annotated[Path | None, typer.Option("--plan", exists=True, dir_okay=False,
        help="With --attacks: the suite's private plan, to score how well each attack finds the decoys.")] = None,
    public: Annotated[Path | None, typer.Option("--public", exists=True,
        help="With --attacks: public ONNX models (file or folder) to test for membership, by id and content.")] = None,
    against: Annotated[Path | None, typer.Option("--against", exists=True, file_okay=False,
        help="With --attacks: another suite (another user's) to match ids and contents against.")] = None,
) -> None:
    """Check a suite before shipping it, and print what it reveals (layer signatures).

    Example: dlbricks-gen audit generated/ --models models/
    Example: dlbricks-gen audit generated/ --attacks --plan generated.plan.json --public resnet18.onnx
    """
    from .codegen.audit import audit_suite

    if not attacks and (plan or public or against):
        fail("--plan, --public and --against go with --attacks", 2)
    report = audit_suite(suite, models)
    if attacks:
        from .codegen.attacks import format_findings, run_attacks

        try:
            typer.echo(format_findings(run_attacks(suite, plan, public, against)), nl=False)
        except ValueError as exc:
            fail(str(exc))
    report_audit(report, brief=False)


def stored_results(store: Path, machine: str | None, backend: str):
    """(the chosen machine or None for an empty store, its latest result per brick)."""
    from .results.store import Store, select_machine

    db = Store.open(store)
    try:
        chosen = select_machine(db.machines(backend), machine)
        latest = db.latest(chosen.fingerprint, backend) if chosen else {}
        for problem in db.problems:
            typer.echo(f"warning: skipped {problem}", err=True)
        return chosen, latest
    finally:
        db.close()


def echo_skipped(parts, latest: dict, chosen) -> None:
    from .workflows.incremental import coverage, format_seconds

    if chosen is None:
        typer.echo("the results store is empty: nothing skipped")
        return
    cov = coverage(parts, latest)
    typer.echo(f"machine {chosen.fingerprint}: {chosen.label}")
    typer.echo(f"skipped {len(cov.known)} of {cov.total} bricks already measured there, saving "
               f"{format_seconds(cov.wall_s)} of measuring (their recorded wall time; summed "
               f"latency {cov.latency_s * 1e3:.3f} ms); {len(cov.unknown)} bricks to measure")


def _backends(name: str, target: str | None) -> tuple[tuple[str, ...], dict | None]:
    """--backend and --tvm-target -> (backends, target); tvm is imported only when used."""
    chosen = backends.parse(name)
    if backends.TVM not in chosen:
        return chosen, None
    try:
        from .runtime.backends.tvm import compiler, parse_target

        compiler()
        return chosen, parse_target(target)
    except ImportError as exc:
        raise ValueError(f"--backend {name} needs TVM: pip install 'dlbricks-gen[tvm]' ({exc})") from None
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None


@app.command()
def estimate(
    ctx: typer.Context,
    plan: Annotated[list[Path] | None, typer.Option("--plan", exists=True, dir_okay=False,
        help="The plan written by compile (repeatable: one per batch size).")] = None,
    results: Annotated[list[Path] | None, typer.Option("--results", exists=True,
        help="Results directory, or the results-<suite>.tar.gz `make pack` writes (repeatable).")] = None,
    e2e: Annotated[list[Path] | None, typer.Option("--e2e", exists=True, dir_okay=False,
        help="Whole-model measurements from `dlbricks-gen e2e` (repeatable: one per backend).")] = None,
    statistic: Annotated[str, typer.Option("--stat",
        help=f"Statistic of each result: {', '.join(STATISTICS)} (default {DEFAULT_STATISTIC}: "
             "every value of every worker pass pooled, 20% trimmed at each end, as in the paper; "
             "best_run: the smallest of its worker processes' medians).")] = DEFAULT_STATISTIC,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate/--no-calibrate",
        help="Remove per-brick call overhead and edge layout reorders, measured in the same run "
        "(default).")] = True,
    per_machine: Annotated[bool, typer.Option("--per-machine",
        help="Group results by machine and settings instead of refusing to mix them.")] = False,
    store: Annotated[Path | None, typer.Option("--store", exists=True, dir_okay=False,
        help="Results store to read instead of --results (see `dlbricks-gen store`).")] = None,
    machine: StoreMachine = None,
    model: Annotated[Path | None, typer.Option("--model", exists=True,
        help="With --store: estimate this ONNX file (or folder), never compiled, instead of a --plan.")] = None,
    granularity: Granularity = "1",
    fusion: Fusion = True,
    batch: Batch = None,
    input_shape: InputShape = None,
    dim: Dim = None,
    inputs: SampleInputs = None,
    emit_missing: Annotated[Path | None, typer.Option("--emit-missing",
        help="With --model: write the bricks the store lacks as a new suite in this directory.")] = None,
    secret: SecretFile = None,
    backend: Annotated[str, typer.Option("--backend",
        help=f"Backend: {backends.HELP}; all (default): one estimate per backend found in the results, "
        f"then a side-by-side table (with --store: onnxruntime unless tvm).")] = backends.ALL,
) -> None:
    """Estimate per-model latency from brick results and the private plan.

    Example: dlbricks-gen estimate --plan generated.plan.json --results generated/results --e2e e2e.json
    Example: dlbricks-gen estimate --store results.db --model new.onnx -H 1 --machine 1a2b3c
    """
    from .estimate import model as est
    from .estimate import report
    from .passes.plan import load_plan
    from .results import load as rl
    from .results.drift import drift_warning

    if statistic not in STATISTICS:
        fail(f"--stat must be one of {', '.join(STATISTICS)}", 2)
    check_estimate_sources(plan, results, store, model, emit_missing)
    if as_json and as_csv:
        fail("--json and --csv cannot be combined: choose one output format", 2)
    check_output_file(html_path, "--html")
    backend_names(backend)
    plan, results = plan or [], opened_results(ctx, results or [])
    try:
        sections = []
        if store is not None:
            named = backend_names(backend)
            chosen = [named[0] if len(named) == 1 else backends.DEFAULT]  # all: ONNX Runtime's
            latest, loaded = from_store(store, machine, chosen[0], statistic)
            options = shape_options(batch, input_shape, dim, model, inputs) if model else ShapeOptions()
            plans = [model_plan(model, one_granularity(granularity), options, fusion, latest, emit_missing,
                                user_secret(secret))] if model \
                else [load_plan(p) for p in plan]
            sections = [(the_plan, "", loaded, chosen[0]) for the_plan in plans]
        else:
            plans = [load_plan(p) for p in plan]
            chosen = _estimate_backends(backend, rl.backends_in(results))
            for the_plan in plans:
                shared = len(plans) > 1  # results dirs may hold several suites: take this plan's
                known = set(the_plan.bricks)
                for b in chosen:
                    if per_machine:
                        groups = rl.load_grouped(results, the_plan.suite, statistic, shared, known, b)
                    else:
                        groups = {"": rl.load_results(results, the_plan.suite, statistic, shared, known, b)}
                    label = f"backend {b}" if len(chosen) > 1 or b != rl.DEFAULT_BACKEND else ""
                    sections += [(the_plan, ", ".join(filter(None, [label, key])), loaded, b)
                                 for key, loaded in groups.items()]
        measured = {b: {k: v for path in e2e or [] for k, v in rl.load_e2e(path, statistic, b).items()}
                    for b in chosen}
        e2e_batch = rl.e2e_batch(e2e[0]) if e2e else None
    except ValueError as exc:
        fail(str(exc))
    side_by_side: dict[str, dict[str, list[dict]]] = {}
    today = datetime.date.today().isoformat()
    for the_plan, key, loaded, run in sections:
        for problem in loaded.problems:
            typer.echo(f"warning: skipped {problem}", err=True)
        quick = rl.quick_results(loaded.results)
        if quick:
            typer.echo(f"warning: {quick} of {len(loaded.results)} results are QUICK (make run QUICK=1): "
                       "smoke-test timings, not an estimate of real latency", err=True)
        comparable = measured[run] if e2e_batch is None or e2e_batch == the_plan.batch else {}
        mismatch = rl.e2e_mismatch(loaded.results, comparable)
        if mismatch:
            typer.echo(f"warning: {mismatch}", err=True)
        busy = rl.contended_results(loaded.results)
        if busy:
            typer.echo(f"warning: {busy} of {len(loaded.results)} results were measured while other programs "
                       "kept the CPUs busy (load average; e.g. two runs at once on one machine): their "
                       "timings may be too high, measure them again on a quiet machine", err=True)
        drift = drift_warning([*loaded.results.values(), *measured[run].values()], "results")
        if drift:
            typer.echo(f"warning: {drift}", err=True)
        table = report.rows(est.estimate(the_plan, loaded.results), comparable, calibrate)
        side_by_side.setdefault(the_plan.label, {})[key] = table
        breakdowns = report.headline_views(table, the_plan, loaded.results)
        for row in table:
            row["breakdown"] = report.breakdown_ms(breakdowns[row["model"]])
            row["batch"] = the_plan.batch
        header = ", ".join(filter(None, [the_plan.label if len(plans) > 1 else "", key]))
        if header:
            typer.echo(f"== {header}")
        about = report.describe(the_plan, loaded.results, statistic, today)
        if not (as_json or as_csv):
            typer.echo(report.about_line(about))
        typer.echo(report.to_json(table, statistic, about) if as_json else
                   report.to_csv(table, about) if as_csv else report.to_table(table), nl=False)
        if html_path is not None:
            from .estimate.html import estimate_report

            index = sections.index((the_plan, key, loaded, run))
            target = html_path if len(sections) == 1 else html_path.with_name(
                f"{html_path.stem}-{index + 1}{html_path.suffix}")
            target.write_text(estimate_report(table, breakdowns, report.about_line(about)[2:]), encoding="utf-8")
            typer.echo(f"wrote {target}", err=True)
    for label, tables in side_by_side.items():
        if len(tables) > 1 and not (as_json or as_csv):
            typer.echo(f"== side by side{f', {label}' if len(plans) > 1 else ''}")
            typer.echo(report.side_by_side(tables), nl=False)
    if report.nothing_estimated([t for tables in side_by_side.values() for t in tables.values()]):
        fail("nothing could be estimated: no result of the plan's bricks was found (an empty results "
             "folder, results of another suite, or a plan from another suite)")


def _estimate_backends(name: str, found: list[str]) -> list[str]:
    """--backend of estimate -> the run backends to estimate (all: those in the results)."""
    if backends.ALIASES.get(name, name) == backends.ALL:
        return found or [backends.DEFAULT]
    try:
        return list(backends.parse(name))
    except ValueError as exc:
        fail(str(exc), 2)


def from_store(store: Path, machine: str | None, backend: str, statistic: str):
    """(latest result per brick, the estimator's view of them) of the chosen machine, named."""
    from .results.load import ResultSet
    from .results.store import brick_results

    chosen, latest = stored_results(store, machine, backend)
    if chosen is None:
        fail(f"{store}: the results store is empty")
    typer.echo(f"estimating for machine {chosen.fingerprint}: {chosen.label}", err=True)
    return latest, ResultSet(brick_results(latest, statistic))


def opened_results(ctx: typer.Context, paths: list[Path]) -> list[Path]:
    """Results folders, archives unpacked (checked) into temporary folders removed when the
    command ends."""
    from .results.archive import results_folders

    try:
        return ctx.with_resource(results_folders(paths))
    except ValueError as exc:
        fail(str(exc))


def check_estimate_sources(plan, results, store, model, emit_missing) -> None:
    if (results is None) == (store is None):
        fail("give --results DIR or --store STORE (import results into a store with `dlbricks-gen store import`)", 2)
    if (not plan) == (model is None):
        fail("give --plan PLAN or --model MODEL.onnx", 2)
    if model is not None and store is None:
        fail("--model needs --store: it is estimated from stored results", 2)
    if emit_missing is not None and model is None:
        fail("--emit-missing works with --model", 2)


def model_plan(model: Path, granularity: int, options: ShapeOptions, fusion: bool, latest: dict,
               emit_missing: Path | None, secret: bytes):
    """The plan of models never compiled, when the store knows all their bricks; otherwise list
    the missing bricks and exit (after writing them as a suite with --emit-missing). Ids are
    keyed with `secret`, as compile keys them: the store holds results under keyed ids."""
    from .passes.plan import default_plan_path
    from .workflows.compile import Recipe, assemble, compile_models, lower_all, runtime_passes
    from .workflows.incremental import coverage, missing_lines, plan_of

    lowered, failed = lower_all(model, options)
    for _, error in failed:
        typer.echo(f"error: {error}", err=True)
    if not lowered:
        fail("no model could be read" if failed else f"no *.onnx files found in {model}")
    grouped, units, layouts = runtime_passes(lowered, fusion)
    parts = assemble(grouped, Recipe(granularity, options, secret=secret), units, layouts=layouts).partition
    cov = coverage(parts, latest)
    if not cov.unknown:
        return plan_of(parts, batch=options.batch, failed=tuple(failed))
    typer.echo(f"{len(cov.unknown)} of {cov.total} bricks have no valid result on this machine:", err=True)
    for line in missing_lines(parts, cov.unknown):
        typer.echo(f"  {line}", err=True)
    if emit_missing is None:
        fail("cannot estimate: measure the missing bricks first (--emit-missing DIR writes them as a suite)")
    plan_path = default_plan_path(emit_missing)
    result = compile_models(model, emit_missing, plan_path, granularity, options, fusion, exclude=cov.known,
                            secret=secret)
    typer.echo(f"suite {result.suite}: {emit_missing}/ with the {len(cov.unknown)} missing bricks (ship this); "
               f"plan: {plan_path}; import its results with `dlbricks-gen store import`, then estimate again")
    raise typer.Exit(0)


@app.command()
def e2e(
    models: Annotated[Path, typer.Argument(exists=True, help="Folder of *.onnx files or one file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSON file to write.")],
    batch: Batch = None,
    input_shape: InputShape = None,
    dim: Dim = None,
    threads: Threads = 1,
    quick: Quick = False,
    runs: Runs = None,
    processes: Processes = None,
    backend: Annotated[str, typer.Option("--backend",
        help="onnxruntime (default; alias ort) or tvm: compiled like the suite's TVM bricks.")] = backends.DEFAULT,
    tvm_target: Annotated[str | None, typer.Option("--tvm-target",
        help="TVM target as JSON (default: this machine); use the suite's (kernels/tvm.json).")] = None,
    tuning_db: Annotated[Path | None, typer.Option("--tuning-db", file_okay=False,
        help="Meta-schedule database to build with, e.g. a copy of a suite's results/tuning.")] = None,
    tune_trials: Annotated[int, typer.Option("--tune-trials", min=0,
        help="With --tuning-db: first tune each model's tasks that have no records there, N trials per"
        " task (written to that database).")] = 0,
) -> None:
    """Measure each whole model with the suite's harness, settings and random weights.

    Example: dlbricks-gen e2e models/ -o e2e.json --batch 1
    """
    from .results.load import stat_halfwidth
    from .runtime.core.settings import Settings
    from .workflows.e2e import measure_all

    check_output_file(output, "-o")
    options = shape_options(batch, input_shape, dim, models)
    settings = Settings(intra_op_threads=threads, quick=quick, min_runs=runs, processes=processes)
    measure = None
    if backends.ALIASES.get(backend, backend) != backends.DEFAULT:
        if tune_trials:
            if tuning_db is None:
                fail("--tune-trials needs --tuning-db (the database to add the records to)", 2)
            from .runtime.backends.tvm import _skip_gpu_intrinsics

            _skip_gpu_intrinsics()  # before tvm is imported: tuning starts 15 s sooner
            tuning_db.mkdir(parents=True, exist_ok=True)
        try:
            chosen, target = _backends(backend, tvm_target)
            if chosen != (backends.TVM,) or target is None:
                raise ValueError(f"e2e --backend must be {backends.DEFAULT} or {backends.TVM}")
        except ValueError as exc:
            fail(str(exc), 2)
        from .backends.tvm import measure_function

        measure = measure_function(target, tuning_db, tune_trials)
    with progress_bar("e2e", len(find_models(models)),
                      lambda n: typer.echo(f"measuring {n}", err=True)) as progress:
        data = measure_all(models, options, settings, measure=measure, progress=progress)
    if not data["models"]:
        fail(f"no *.onnx files found in {models}")
    from .results.load import statistic_of
    from .results.machine import identity, machine_label

    first = next((r for r in data["models"].values() if r["status"] == "ok"), None)
    data["about"] = {"machine": machine_label(identity(first)) if first else None,
                     "statistic": DEFAULT_STATISTIC, "dlbricks_gen": __version__,
                     "date": datetime.date.today().isoformat()}
    output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    typer.echo(f"# machine {data['about']['machine'] or 'unknown (nothing measured)'}; statistic "
               f"{DEFAULT_STATISTIC} (what estimate compares with); dlbricks-gen {__version__}, "
               f"{data['about']['date']}")
    failed = 0
    for name, result in data["models"].items():
        if result["status"] == "ok":
            stats, value = result["stats"], statistic_of(result, DEFAULT_STATISTIC)
            width = stat_halfwidth(result, value) or 0.0
            typer.echo(f"{name}: {value * 1e3:.3f} ms +-{width * 1e3:.3f} ({DEFAULT_STATISTIC} of "
                       f"{stats['n']} values, {stats.get('processes', 1)} session(s))")
        else:
            failed += 1
            typer.echo(f"error: {name}: {result['error']}", err=True)
    if failed == len(data["models"]):
        fail("no model could be measured")


@app.command()
def zoo(
    directory: Annotated[Path | None, typer.Argument(help="Folder to write the models to.")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the models and exit.")] = False,
    models: Annotated[str | None, typer.Option("--models",
        help="Comma-separated ids (default: the demo set; 'all' for every model).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1)] = 1,
    image_size: Annotated[int | None, typer.Option("--image-size", min=8)] = None,
    seq_len: Annotated[int, typer.Option("--seq-len", min=1)] = 128,
    tiny: Annotated[bool, typer.Option("--tiny",
        help="Divide channels and hidden sizes down (same structure).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run",
        help="Print each model's size and the total, write nothing.")] = False,
) -> None:
    """Write built-in example models (real architectures, random weights) as ONNX files.

    Example: dlbricks-gen zoo models/ --models resnet18,bert_base
    """
    from . import zoo as zoo_pkg
    from .workflows import zoo_files as zoo_lib

    if list_only:
        typer.echo(zoo_lib.listing())
        return
    if directory is None:
        fail("give a directory to write to, or --list", 2)
    try:
        ids = zoo_lib.select(models)
    except ValueError as exc:
        fail(str(exc), 2)
    options = zoo_pkg.ZooOptions(batch=batch, image_size=image_size, seq_len=seq_len, tiny=tiny)
    try:
        zoo_lib.write_models(directory, ids, options, echo=typer.echo, dry_run=dry_run)
    except ValueError as exc:
        fail(str(exc), 2)


@app.command()
def study(
    models: Annotated[Path, typer.Argument(exists=True, help="Folder of *.onnx files.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Study directory (resumable).")],
    granularity: Granularity = "1..6",
    batch: Batch = None,
    input_shape: InputShape = None,
    dim: Dim = None,
    threads: Threads = 1,
    quick: Quick = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Per-brick timeout in seconds.")] = 600.0,
    fusion: Fusion = True,
    runs: Runs = None,
    processes: Processes = None,
    slices: Annotated[int | None, typer.Option(
        "--slices", min=1, help="Each round of whole models in this many slices, each followed by "
        "a shard of every suite's pass, so that models and bricks see the same phases of the "
        "machine (default 4; 1 with --quick).")] = None,
) -> None:
    """Reproduce the paper's evaluation here: e2e, a suite per H, estimates, speedups, report.

    Example: dlbricks-gen study models/ -H 1..6 -o study/
    """
    from .estimate.html import study_report
    from .workflows.study import SlicesChanged, StudyOptions, about_line, format_study, run_study

    hs = tuple(granularities(granularity))
    options = StudyOptions(hs, shape_options(batch, input_shape, dim, models), threads, quick, timeout, fusion,
                           runs=runs, processes=processes, slices=slices)
    try:
        with progress_bar("study", len(find_models(models)), lambda m: typer.echo(m, err=True)) as progress:
            data = run_study(models, output, options, echo=lambda m: typer.echo(m, err=True), progress=progress)
    except SlicesChanged as exc:
        fail(str(exc), 2)
    (output / "study.html").write_text(study_report(data, about_line(data)), encoding="utf-8")
    typer.echo(format_study(data), nl=False)
    typer.echo(f"report: {output / 'study.html'}", err=True)


@app.command("inspect")
def inspect_cmd(
    models: Annotated[Path, typer.Argument(exists=True, help="Folder of *.onnx files or one file.")],
    granularity: Granularity = "1..4",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    batch: Batch = None,
    input_shape: InputShape = None,
    dim: Dim = None,
    inputs: SampleInputs = None,
) -> None:
    """Show layers, unique layers, repetition by op type and unique sequences per H.

    Example: dlbricks-gen inspect models/ -H 1..6
    """
    from .workflows.compile import lower_all
    from .workflows.inspection import format_inspection, inspect_models

    hs = granularities(granularity)
    lowered, failed = lower_all(models, shape_options(batch, input_shape, dim, models, inputs))
    for _, error in failed:
        typer.echo(f"error: {error}", err=True)
    if not lowered:
        fail("no model could be read")
    data = inspect_models(lowered, hs)
    data["failed"] = [{"file": f, "error": e} for f, e in failed]
    typer.echo(json.dumps(data, indent=1, sort_keys=True) if as_json else format_inspection(data))


store_app = typer.Typer(help="The results store: brick results of every suite run, by machine, with history.",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("import")
def store_import(
    ctx: typer.Context,
    store: Annotated[Path, typer.Argument(dir_okay=False, help="SQLite results store (created when missing).")],
    results: Annotated[list[Path], typer.Argument(exists=True,
        help="Results directories, suite directories or results-<suite>.tar.gz archives `make pack` "
        "writes (shards from any machine).")],
) -> None:
    """Merge brick results into the store; results of identical machines merge, others stay apart.

    Example: dlbricks-gen store import results.db generated/results shard2/results
    """
    from .results.store import Store, read_records, result_paths

    folders = opened_results(ctx, results)
    with progress_bar("store import", len(result_paths(folders)[0]), lambda _: None) as progress:
        records, problems = read_records(folders, progress)
    for problem in problems:
        typer.echo(f"warning: skipped {problem}", err=True)
    try:
        db = Store.open(store, create=True)
    except ValueError as exc:
        fail(str(exc))
    try:
        added = db.add(records)
        machines = db.machines()
    except ValueError as exc:
        fail(str(exc))
    finally:
        db.close()
    typer.echo(f"{added} new results ({len(records) - added} already in the store) into {store}")
    for row in machines:
        typer.echo(f"machine {row.fingerprint}: {row.bricks} bricks with a valid result, {row.rows} rows; {row.label}")
    if not records:
        fail("no result files found")


@store_app.command("list")
def store_list(
    store: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="SQLite results store.")],
    backend: Backend = "onnxruntime",
) -> None:
    """List the machines of the store: fingerprint, bricks with a valid result, description."""
    from .results.store import Store

    named = backend_names(backend)
    try:
        db = Store.open(store)
    except ValueError as exc:
        fail(str(exc))
    try:
        for name in named:
            for row in db.machines(name):
                typer.echo(f"{row.fingerprint}  {row.bricks} bricks  {row.rows} rows  {row.label}"
                           + (f"  ({name})" if len(named) > 1 else ""))
    finally:
        db.close()


@app.callback(invoke_without_command=True)
def main(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        typer.echo(f"dlbricks-gen {__version__}")
        raise typer.Exit()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
