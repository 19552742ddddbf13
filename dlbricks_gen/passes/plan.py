"""The private plan: which bricks each model is made of and how they connect.

It maps the anonymous suite back to the user's models, so it is written next to the suite
directory, never inside it. Format: docs/FORMATS.md, section 3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..frontend.shapes import ShapeOptions
from ..ir import ModelPlan
from .partition import Partition

PLAN_VERSION = 1


@dataclass(frozen=True, slots=True)
class BrickInfo:
    layers: int
    ops: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    suite: str
    granularity: int
    bricks: dict[str, BrickInfo]
    models: tuple[ModelPlan, ...]
    failed: tuple[tuple[str, str], ...]  # (file, error)
    batch: int | None = None  # the --batch the suite was compiled with
    decoys: tuple[str, ...] = ()  # bricks of the suite that belong to no model
    # per model: what its lowering assumed (a recorded run, the If branch taken, trip counts)
    assumed: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"batch {self.batch}" if self.batch is not None else f"suite {self.suite}"


def default_plan_path(suite_dir: Path) -> Path:
    suite_dir = suite_dir.resolve()
    return suite_dir.parent / f"{suite_dir.name}.plan.json"


def check_outside(plan_path: Path, suite_dir: Path) -> None:
    plan, suite = plan_path.resolve(), suite_dir.resolve()
    if plan == suite or suite in plan.parents:
        raise ValueError(f"the plan {plan_path} must not be inside the suite directory {suite_dir}: "
                         "it would ship the model names with the suite")


def plan_json(partition: Partition, suite: str, failed: list[tuple[str, str]],
              shapes: ShapeOptions | None = None, decoys: tuple[str, ...] = (),
              assumed: dict[str, tuple[tuple[str, str], ...]] | None = None) -> str:
    shapes = shapes or ShapeOptions()
    assumed = assumed or {}
    data = {
        "version": PLAN_VERSION,
        "suite": suite,
        "shapes": {"batch": shapes.batch, "dims": dict(shapes.dims),
                   "input_shapes": {n: list(d) for n, d in shapes.input_shapes},
                   **({"inputs": shapes.inputs.name} if shapes.inputs is not None else {})},
        "generator": __version__,
        "granularity": partition.granularity,
        "bricks": {d: {"layers": len(b.layers), "ops": list(b.ops)} for d, b in partition.bricks},
        "decoys": sorted(decoys),
        "models": [
            {"name": m.name, "file": m.file, "layers": m.layers, "weight_bytes": m.weight_bytes,
             "instances": _instances(m),
             "edges": [list(e) for e in m.edges],
             # optional: only models whose lowering assumed something (docs/FORMATS.md)
             **({"assumed": [{"node": n, "assumption": a} for n, a in assumed[m.name]]}
                if assumed.get(m.name) else {})}
            for m in partition.models
        ],
        "failed": [{"file": f, "error": e} for f, e in failed],
    }
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _instances(model: ModelPlan) -> list[dict]:
    out: list[dict] = [{"brick": d} for d in model.instances]
    for entry, kept in zip(out, model.kept_reorders, strict=False):
        entry["kept_reorders"] = list(kept)
    for entry, absorbed in zip(out, model.absorbed, strict=False):
        if absorbed:  # optional, only where true (docs/FORMATS.md)
            entry["absorbed"] = True
    return out


def _absorbed(instances: list[dict]) -> tuple[bool, ...]:
    """The optional per-instance flags: () for a plan written before they existed (no instance
    carries one and none has kept_reorders)."""
    if not instances or "kept_reorders" not in instances[0]:
        return ()
    flags = tuple(i.get("absorbed", False) for i in instances)
    if any(not isinstance(f, bool) for f in flags):
        raise ValueError("absorbed must be true or false")
    return flags


def _kept_reorders(instances: list[dict]) -> tuple[tuple[float, float], ...]:
    """The optional per-instance shares; all or none (a plan written before they existed)."""
    if not instances or "kept_reorders" not in instances[0]:
        return ()
    kept = tuple((float(i["kept_reorders"][0]), float(i["kept_reorders"][1])) for i in instances)
    if any(not (0.0 <= a <= 1.0 and 0.0 <= b <= 1.0) for a, b in kept):
        raise ValueError("kept_reorders must be shares between 0 and 1")
    return kept


def load_plan(path: Path) -> Plan:
    """Read a plan; ValueError with the file name for anything malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read plan: {exc}") from None
    if isinstance(data, dict) and "models" not in data and {"suite", "generator", "bricks"} <= data.keys():
        raise ValueError(f"{path}: this is a suite's description (suite.json), not the plan: give the "
                         "private OUTPUT.plan.json that compile wrote beside the suite")
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        raise ValueError(f"{path}: unknown plan version {data.get('version') if isinstance(data, dict) else None!r} "
                         f"(this dlbricks-gen reads version {PLAN_VERSION})")
    try:
        bricks = {d: BrickInfo(b["layers"], tuple(b["ops"])) for d, b in data["bricks"].items()}
        models = tuple(
            ModelPlan(m["name"], m["file"], m["layers"], tuple(i["brick"] for i in m["instances"]),
                      tuple((a, b) for a, b in m["edges"]), _kept_reorders(m["instances"]),
                      int(m.get("weight_bytes", 0)), _absorbed(m["instances"]))
            for m in data["models"]
        )
        failed = tuple((f["file"], f["error"]) for f in data.get("failed", []))
        batch = data.get("shapes", {}).get("batch")
        decoys = tuple(data.get("decoys", ()))
        assumed = {m["name"]: tuple((str(a["node"]), str(a["assumption"])) for a in m["assumed"])
                   for m in data["models"] if m.get("assumed")}
        return Plan(data["suite"], data["granularity"], bricks, models, failed, batch, decoys, assumed)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: malformed plan: {exc!r}") from None


def plan_with_ids(text: str, digests: dict[str, str], secret_label: str) -> str:
    """The plan text with its optional "ids" section: the suite names bricks by keyed ids
    (codegen/keys.py), and {keyed id: digest} maps them back (format: docs/FORMATS.md)."""
    data = json.loads(text)
    data["ids"] = {"key": "hmac-sha256", "secret": secret_label, "digests": digests}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"
