"""What does adding one model to an already-measured set cost?

For each model M of a set, taken in turn as the newcomer added to all the others: the share of
M's unique bricks that the others have not already measured, and the measuring cost of the
incremental suite (only those bricks) as a share of measuring M end to end. Cost follows the
paper's definition (sum of latencies: every brick and the whole model run the same number of
times): the new bricks' latencies over M's measured latency, and (less sensitive to a machine
whose load changes between the two runs) over M's sequential brick sum, measured in the same
run as the bricks. It is also given as recorded wall time (session creation, calibration,
warm-up and timed repetitions of those bricks vs of the whole model), which the harness's
adaptive policy makes roughly proportional to the number of measurements rather than to
latency. "cost alone": all of M's unique bricks, as if nothing had been measured before.

Work directory layout (everything is reused when present, so reruns only compute):
    WORK/models/        the models (zoo models are written here unless --models is given)
    WORK/suite/         the suite of all models (run with `make run`'s command, resumable)
    WORK/suite.plan.json, WORK/e2e.json, WORK/store.db

    .venv/bin/python benchmarks/incremental.py demo                        # the demo models
    .venv/bin/python benchmarks/incremental.py /tmp/inc --zoo resnet18,resnet34,vgg11 --tiny --quick
    .venv/bin/python benchmarks/incremental.py /tmp/inc --models my_models/ -H 2
    .venv/bin/python benchmarks/incremental.py /tmp/inc --zoo all --shares-only     # no measuring
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from dlbricks_gen.codegen.render import suite_command
from dlbricks_gen.frontend import ShapeOptions
from dlbricks_gen.passes.partition import partition
from dlbricks_gen.passes.plan import load_plan
from dlbricks_gen.results.machine import identity, identity_key
from dlbricks_gen.results.store import Store, read_records, select_machine
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.workflows.compile import compile_models, lower_all
from dlbricks_gen.workflows.e2e import measure_all
from dlbricks_gen.workflows.zoo_files import select, write_models
from dlbricks_gen.zoo import ZooOptions

STAT = "trimmed_mean_20"


def prepare(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """Models, suite, its results and e2e measurements, each made only when missing."""
    models = args.models or work / "models"
    if args.models is None and not models.is_dir():
        ids = select(args.zoo)
        write_models(models, ids, ZooOptions(tiny=args.tiny), echo=lambda m: print(m, file=sys.stderr))
    suite, plan = work / "suite", work / "suite.plan.json"
    compile_models(models, suite, plan, args.granularity, ShapeOptions())
    flags = ["--threads", str(args.threads)] + (["--quick"] if args.quick else [])
    subprocess.run(suite_command(*flags), cwd=suite, check=True, stdout=sys.stderr)
    e2e = work / "e2e.json"
    if not e2e.is_file():
        data = measure_all(models, ShapeOptions(), Settings(intra_op_threads=args.threads, quick=args.quick),
                           progress=lambda n: print(f"measuring {n}", file=sys.stderr))
        e2e.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return plan, e2e


def stored(work: Path, e2e: Path) -> dict[str, dict]:
    """The suite's results, through the results store: the latest valid result per brick of the
    machine the whole models were measured on."""
    models = json.loads(e2e.read_text(encoding="utf-8"))["models"].values()
    machines = {identity_key(identity(r)) for r in models}
    db = Store.open(work / "store.db", create=True)
    try:
        db.add(read_records([work / "suite" / "results"])[0])
        if len(machines) != 1:
            raise SystemExit(f"{e2e}: whole models measured on {len(machines)} machines or settings")
        machine = select_machine(db.machines(), machines.pop())
        return db.latest(machine.fingerprint)
    finally:
        db.close()


def shares(plan_path: Path, e2e_path: Path, latest: dict[str, dict]) -> list[dict]:
    plan = load_plan(plan_path)
    e2e = json.loads(e2e_path.read_text(encoding="utf-8"))["models"]
    sets = {m.name: set(m.instances) for m in plan.models}
    instances = {m.name: m.instances for m in plan.models}
    rows = []
    for name, own in sets.items():
        whole = e2e.get(name, {})
        if whole.get("status") != "ok" or any(latest.get(d, {}).get("status") != "ok" for d in own):
            print(f"{name}: skipped (no e2e or failed bricks)", file=sys.stderr)
            continue
        rest = set().union(*(s for n, s in sets.items() if n != name))
        new = own - rest
        lat = sum(latest[d]["stats"][STAT] for d in new)
        wall = sum(latest[d]["timing"]["wall_s"] for d in new)
        alone = sum(latest[d]["stats"][STAT] for d in own)
        estimated = sum(latest[d]["stats"][STAT] for d in instances[name])  # same run as the bricks
        rows.append({"model": name, "bricks": len(own), "new": len(new), "new_share": len(new) / len(own),
                     "cost_latency": lat / whole["stats"][STAT], "alone_latency": alone / whole["stats"][STAT],
                     "cost_wall": wall / whole["timing"]["wall_s"], "cost_estimated": lat / estimated})
    return rows


def table(rows: list[dict]) -> str:
    header = ("| model | unique bricks | new | new share | incremental cost (latency) "
              "| same, vs brick sum | incremental cost (wall) | cost alone (latency) |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    keys = ("new_share", "cost_latency", "cost_estimated", "cost_wall", "alone_latency")
    for r in rows:
        lines.append(f"| {r['model']} | {r['bricks']} | {r['new']} | "
                     + " | ".join(f"{r[k]:.1%}" for k in keys) + " |")
    if rows:
        lines.append(f"| mean of {len(rows)} | | | "
                     + " | ".join(f"{sum(r[k] for r in rows) / len(rows):.1%}" for k in keys) + " |")
    return "\n".join(lines)


def shares_only(args: argparse.Namespace) -> str:
    """Brick shares without measuring: zoo models are written, lowered and deleted one at a
    time (the IR keeps weights by shape only), so the full zoo never sits on disk at once."""
    ids = select(args.zoo)
    lowered = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_id in ids:
            write_models(Path(tmp), [model_id], ZooOptions(tiny=args.tiny), echo=lambda _: None)
            found, failed = lower_all(Path(tmp), ShapeOptions())
            lowered += found
            for _, error in failed:
                print(f"error: {error}", file=sys.stderr)
            for f in Path(tmp).iterdir():
                f.unlink()
    sets = {m.name: set(m.instances) for m in partition(lowered, args.granularity).models}
    lines = [f"H={args.granularity}; bricks only (no measurement)", "| model | unique bricks | new | new share |",
             "|---|---:|---:|---:|"]
    news = []
    for name, own in sets.items():
        new = own - set().union(*(s for n, s in sets.items() if n != name))
        news.append(len(new) / len(own))
        lines.append(f"| {name} | {len(own)} | {len(new)} | {news[-1]:.1%} |")
    lines.append(f"| mean of {len(news)} | | | {sum(news) / len(news):.1%} |")
    lines.append(f"models with no new brick: {sum(n == 0 for n in news)} of {len(news)}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("work", type=Path, help="work directory (reused)")
    p.add_argument("--models", type=Path, help="folder of *.onnx (default: zoo models in WORK/models)")
    p.add_argument("--zoo", help="comma-separated zoo ids, or all (default: the demo set); a subset runs faster")
    p.add_argument("--tiny", action="store_true", help="zoo models at --tiny scale")
    p.add_argument("-H", "--granularity", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="short measurements")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--shares-only", action="store_true",
                   help="zoo models: only the share of new bricks, no suite run (cheap at full scale)")
    args = p.parse_args()
    if args.shares_only:
        print(shares_only(args))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    plan, e2e = prepare(args.work, args)
    latest = stored(args.work, e2e)
    rows = shares(plan, e2e, latest)
    measured = list(latest.values()) + list(json.loads(e2e.read_text(encoding="utf-8"))["models"].values())
    busy = sum(any("load average" in w for w in r.get("warnings", [])) for r in measured)
    if busy:
        print(f"warning: {busy} of {len(measured)} measurements saw a busy machine (load average): "
              "figures are noisy, rerun on a quiet machine (delete WORK/e2e.json and WORK/suite/results)",
              file=sys.stderr)
    print(json.dumps(rows, indent=1) if args.json else
          f"H={args.granularity}; each model added to the others (cost = share of measuring it end to end)\n"
          + table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
