"""The estimator: result files + the private plan -> per-model latency estimates.

Sequential estimate: the sum of the latencies of the model's brick instances (what a runtime
that executes one node after another costs). Critical-path estimate: the longest path through
the brick DAG weighted by latency (what a runtime that runs independent branches in parallel
could reach). A model with unmeasured bricks is incomplete: its sums are lower bounds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .plan import Plan, PlanModel
from .resultfiles import fingerprint, read_json_file, read_result_file
from .runtime.harness import validate_result

STATISTICS = ("trimmed_mean_20", "median", "mean", "min")
# Fields that must agree between result files that are combined into one estimate.
CHECKED_SETTINGS = ("intra_op_threads", "inter_op_threads", "graph_optimization_level")
CHECKED_MACHINE = ("cpu_model", "onnxruntime")
DEFAULT_BACKEND = "onnxruntime"


def run_backend(data: dict) -> str:
    """The backend of the run that produced a result: what measured it, or what was asked
    for when that backend fell back (a TVM run's brick measured by ONNX Runtime)."""
    return data.get("backend_requested") or data.get("backend") or DEFAULT_BACKEND


def backends_in(dirs: list[Path]) -> list[str]:
    """The run backends found among the result files (ONNX Runtime first)."""
    found = set()
    for directory in dirs:
        for path in directory.glob("*.json"):
            try:
                found.add(run_backend(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, AttributeError):
                continue
    return sorted(found, key=lambda b: (b != DEFAULT_BACKEND, b))


@dataclass(frozen=True, slots=True)
class BrickResult:
    id: str
    ok: bool
    latency: float | None  # seconds, the chosen statistic
    error: str | None
    data: dict
    null_call: float | None = None  # the runtime's fixed cost of one call, less one node's
    boundary: float | None = None  # layout reorders at the brick's edges, seconds per call

    @property
    def calibrated(self) -> float | None:
        """The latency without what only a separate brick pays: its own call and the NCHWc
        reorders at its edges (measured as a share of a profiled run, applied to the latency)."""
        if not self.ok or self.null_call is None or self.boundary is None:
            return None
        return max(self.latency - self.boundary - self.null_call, 0.0)


def run_overhead(calibration: dict) -> float:
    """The part of a null call a whole model pays once, not per node (results without
    `node_s`, from older harnesses, count the whole null call)."""
    return calibration["null_call_s"] - calibration.get("node_s", 0.0)


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    name: str
    layers: int
    instances: int
    measured_instances: int
    covered_layers: int
    sequential: float  # seconds; a lower bound when incomplete
    critical_path: float
    calibrated: float | None = None  # sequential, less per-brick call and boundary costs
    failed: tuple[tuple[str, str], ...] = ()  # (brick, error)
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.measured_instances == self.instances


@dataclass(slots=True)
class ResultSet:
    results: dict[str, BrickResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files skipped, with the reason
    first: tuple[Path, dict] | None = None  # one result of the group, to name in messages


def load_results(dirs: list[Path], suite: str | None, statistic: str,
                 other_suites: bool = False, known: set[str] | None = None,
                 backend: str = DEFAULT_BACKEND) -> ResultSet:
    """Read every results/*.json of one backend's run; skip, as problems, invalid files, files
    from another suite (silently with `other_suites`) and ids not in `known`; refuse to mix
    machines or settings."""
    groups = load_grouped(dirs, suite, statistic, other_suites, known, backend)
    if len(groups) > 1:
        (ka, a), (kb, b) = list(groups.items())[:2]
        check_compatible(a.first, b.first)  # raises, naming the field that differs
    return next(iter(groups.values()), ResultSet())


def machine_key(data: dict) -> str:
    """What must agree between results that are combined: machine and settings."""
    parts = [str(data.get("machine", {}).get(k)) for k in CHECKED_MACHINE]
    parts += [f"{k}={data.get('settings', {}).get(k)}" for k in CHECKED_SETTINGS]
    return " | ".join(parts)


def load_grouped(dirs: list[Path], suite: str | None, statistic: str,
                 other_suites: bool = False, known: set[str] | None = None,
                 backend: str = DEFAULT_BACKEND) -> dict[str, ResultSet]:
    """Results of one backend's run grouped by machine and settings (`machine_key`); problems
    go to every group.

    Every file is untrusted (resultfiles.py): a bad one is a problem naming it, never a crash.
    Two files with the same id and machine but different timings are both refused.
    """
    groups: dict[str, ResultSet] = {}
    problems: list[str] = []
    pending_errors: list[dict] = []
    seen: dict[tuple[str, str], tuple[Path, str]] = {}
    conflicting: set[tuple[str, str]] = set()
    for directory in dirs:
        for path in sorted(directory.glob("*.json")):
            try:
                data = read_result_file(path)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if run_backend(data) != backend:
                continue
            problem = _foreign(path, data, suite, known)
            if problem:
                if not (other_suites and problem.endswith(_OTHER_SUITE)):
                    problems.append(problem)
                continue
            key = (machine_key(data), data["id"])
            if key in seen and seen[key][1] != fingerprint(data):
                problems.append(f"{path}: id {data['id']} already has different results in "
                                f"{seen[key][0]}: both refused")
                conflicting.add(key)
                continue
            seen.setdefault(key, (path, fingerprint(data)))
            if data.get("status") != "ok":
                pending_errors.append(data)  # an error result carries no comparable timing
                continue
            group = groups.setdefault(machine_key(data), ResultSet())
            group.first = group.first or (path, data)
            group.results[data["id"]] = _brick_result(data, statistic)
    for machine, digest in conflicting:
        groups.get(machine, ResultSet()).results.pop(digest, None)
    conflicted = {digest for _, digest in conflicting}
    for group in groups.values() or [groups.setdefault("", ResultSet())]:
        group.problems = list(problems)
        for data in pending_errors:
            if data["id"] not in conflicted:
                group.results.setdefault(data["id"], _brick_result(data, statistic))
    return groups


_OTHER_SUITE = "(another suite)"


def _foreign(path: Path, data: dict, suite: str | None, known: set[str] | None) -> str | None:
    """Why a valid result does not belong to this plan, or None."""
    if suite is not None and data.get("suite") not in (None, suite):
        return f"{path}: result of suite {data.get('suite')}, the plan is for suite {suite} {_OTHER_SUITE}"
    if known is not None and data["id"] not in known:
        return f"{path}: id {data['id'][:80]!r} is not a brick of this plan"
    return None


def check_compatible(a: tuple[Path, dict], b: tuple[Path, dict]) -> None:
    """Refuse to combine results measured on different machines or with different settings."""
    for section, keys in (("settings", CHECKED_SETTINGS), ("machine", CHECKED_MACHINE)):
        for key in keys:
            va, vb = a[1].get(section, {}).get(key), b[1].get(section, {}).get(key)
            if va != vb:
                raise ValueError(f"{b[0]}: {section}.{key} is {vb!r} but {a[0]} has {va!r}: "
                                 "results from different machines or settings cannot be combined")


def _brick_result(data: dict, statistic: str) -> BrickResult:
    if data.get("status") != "ok":
        return BrickResult(data["id"], False, None, data.get("error") or "unknown error", data)
    latency = float(data["stats"][statistic])
    cal = data.get("calibration")
    if not cal:
        return BrickResult(data["id"], True, latency, None, data)
    profile = cal["profile"]  # calls == 0: not profiled, nothing the NCHWc pass could touch
    share = min(profile["boundary_s"] / profile["run_s"], 1.0) if profile["calls"] and profile["run_s"] > 0 else 0.0
    return BrickResult(data["id"], True, latency, None, data, run_overhead(cal), latency * share)


def critical_path(count: int, edges: tuple[tuple[int, int], ...], weights: list[float]) -> float:
    """Longest path through the instance DAG; instances are in topological order."""
    preds: list[list[int]] = [[] for _ in range(count)]
    for a, b in edges:
        if not a < b:
            raise ValueError(f"plan edge {a}->{b} goes backwards: not a topological order")
        preds[b].append(a)
    finish = [0.0] * count
    for i in range(count):
        finish[i] = weights[i] + max((finish[p] for p in preds[i]), default=0.0)
    return max(finish, default=0.0)


def estimate_model(model: PlanModel, plan: Plan, results: dict[str, BrickResult]) -> ModelEstimate:
    weights, calibrated, covered, measured = [], [], 0, 0
    failed, missing = {}, {}
    for digest in model.instances:
        result = results.get(digest)
        if result is not None and result.ok:
            weights.append(result.latency)
            calibrated.append(result.calibrated)
            covered += plan.bricks[digest].layers
            measured += 1
        else:
            weights.append(0.0)
            if result is None:
                missing[digest] = True
            else:
                failed[digest] = result.error
    null_calls = [results[d].null_call for d in model.instances if d in results and results[d].ok]
    whole = None
    if calibrated and None not in calibrated:
        whole = sum(calibrated) + sorted(null_calls)[len(null_calls) // 2]  # one call for the model
    return ModelEstimate(
        model.name, model.layers, len(model.instances), measured, covered,
        sum(weights), critical_path(len(weights), model.edges, weights), whole,
        tuple(sorted(failed.items())), tuple(sorted(missing)),
    )


def estimate(plan: Plan, results: dict[str, BrickResult]) -> list[ModelEstimate]:
    return [estimate_model(m, plan, results) for m in plan.models]


def geometric_mean(values: list[float]) -> float | None:
    values = [v for v in values if v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def e2e_batch(path: Path) -> int | None:
    """The --batch an e2e file was measured with (None when not recorded)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("shapes", {}).get("batch")
    except (OSError, ValueError, AttributeError):
        return None


def load_e2e(path: Path, statistic: str, backend: str | None = None) -> dict[str, BrickResult]:
    """Whole-model measurements written by `dlbricks-gen e2e`, by model name (only those of
    one backend's run when `backend` is given)."""
    data = read_json_file(path, "e2e file")
    if not isinstance(data, dict) or data.get("version") != 1 or data.get("kind") != "e2e":
        raise ValueError(f"{path}: not an e2e file of version 1")
    out = {}
    if not isinstance(data.get("models"), dict):
        raise ValueError(f"{path}: e2e file without a 'models' object")
    for name, result in data["models"].items():
        problems = validate_result(result)
        if problems:
            raise ValueError(f"{path}: model {name}: invalid result: {problems[0]}")
        if backend is not None and run_backend(result) != backend:
            continue
        out[name] = _brick_result(result, statistic)
    return out


def breakdown(model: PlanModel, plan: Plan, results: dict[str, BrickResult], top: int = 5) -> dict:
    """Where a model's estimated time goes: by op type (a multi-layer brick counts under its
    op sequence, e.g. "Conv>Relu") and the bricks with the largest share."""
    by_op: dict[str, float] = {}
    by_brick: dict[str, list] = {}
    for digest in model.instances:
        result = results.get(digest)
        if result is None or not result.ok:
            continue
        label = ">".join(plan.bricks[digest].ops)
        by_op[label] = by_op.get(label, 0.0) + result.latency
        entry = by_brick.setdefault(digest, [label, 0, 0.0])
        entry[1] += 1
        entry[2] += result.latency
    total = sum(by_op.values()) or 1.0
    ranked = sorted(by_brick.items(), key=lambda kv: (-kv[1][2], kv[0]))[:top]
    return {
        "by_op": {k: v for k, v in sorted(by_op.items(), key=lambda kv: (-kv[1], kv[0]))},
        "top_bricks": [{"brick": d, "ops": label, "count": n, "seconds": s, "share": s / total}
                       for d, (label, n, s) in ranked],
    }
