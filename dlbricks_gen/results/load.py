"""Result files -> brick results: what the estimator combines, one backend's run at a time.

Every file is untrusted (files.py reads it); results are grouped by machine identity
(machine.py) and never combined across machines or settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..runtime.backends import DEFAULT as DEFAULT_BACKEND
from ..runtime.core.results import validate_result
from ..runtime.core.stats import percentile
from .files import fingerprint, read_json_file, read_result_file, results_folder
from .machine import identity, identity_key, section_of
from .statistic import DEFAULT_STATISTIC, STATISTICS  # noqa: F401 - re-exported


def run_backend(data: dict) -> str:
    """The backend of the run that produced a result: what measured it, or what was asked
    for when that backend fell back (a TVM run's brick measured by ONNX Runtime)."""
    return data.get("backend_requested") or data.get("backend") or DEFAULT_BACKEND


def backends_in(dirs: list[Path]) -> list[str]:
    """The run backends found among the result files (ONNX Runtime first)."""
    found = set()
    for directory in dirs:
        for path in results_folder(directory).glob("*.json"):
            try:
                found.add(run_backend(read_json_file(path)))
            except (ValueError, AttributeError):
                continue  # reported, naming the file, when the results are loaded
    return sorted(found, key=lambda b: (b != DEFAULT_BACKEND, b))


@dataclass(frozen=True, slots=True)
class BrickResult:
    id: str
    ok: bool
    value: float | None  # seconds, the chosen statistic; None when not ok
    error: str | None
    data: dict
    null_call: float | None = None  # the runtime's fixed cost of one call, less one node's
    boundary: float | None = None  # layout reorders at the brick's edges, seconds per call
    reorder_in: float = 0.0  # of `boundary`: the conversions into NCHWc (ReorderInput)
    reorder_out: float = 0.0  # and out of it (ReorderOutput)
    cold_ratio: float = 1.0  # latency with cold caches / warm (runtime/core/cold.py); 1: not measured
    far_ratio: float = 0.0  # the same over the far span; 0: not measured
    fused_share: float = 1.0  # its cost inside an NCHWc convolution / alone (core/fused.py); 1: not measured
    statistic: str = ""  # the statistic `value` is (brick_result)

    def cold_scale(self, level: int) -> float:
        """What the brick's latency is multiplied by inside a model of cold `level` (estimate.
        model.cold_level: 0 its weights fit the L2, 1 near, 2 far): the ratio measured over
        that span, the near one where the far span was not measured."""
        if level >= 2 and self.far_ratio > 0:
            return self.far_ratio
        return self.cold_ratio if level >= 1 else 1.0

    @property
    def l2_bytes(self) -> int:
        """The L2 cache per core of the machine that measured it (0: not recorded)."""
        return int(((self.data.get("machine") or {}).get("caches") or {}).get("l2") or 0)

    @property
    def latency(self) -> float:
        """The chosen statistic in seconds; only results that are ok have one."""
        if self.value is None:
            raise ValueError(f"result {self.id} has no latency: {self.error}")
        return self.value

    @property
    def halfwidth(self) -> float | None:
        """95% half-width of the latency in seconds (repetition and, when pooled over processes,
        between-run parts), scaled from the median's to the chosen statistic; None if unknown."""
        return stat_halfwidth(self.data, self.value)

    @property
    def reference(self) -> float | None:
        """The median reference-benchmark time recorded with this result (None: none)."""
        return reference_time(self.data)

    @property
    def calibrated(self) -> float | None:
        """The latency without what only a separate brick pays: its own call and the NCHWc
        reorders at its edges (measured as a share of a profiled run, applied to the latency)."""
        return self.calibrated_for(None)

    def calibrated_for(self, kept: tuple[float, float] | None, cold: int = 0) -> float | None:
        """`calibrated`, keeping the shares `kept` = (into, out of) of the brick's reorders that
        the model itself converts at that instance (passes/layout.py; None: remove them all),
        and with `cold` > 0 the brick's time with cold caches (`cold_scale`)."""
        if not self.ok or self.null_call is None or self.boundary is None:
            return None
        removed = self.boundary
        if kept is not None:
            removed = self.reorder_in * (1.0 - kept[0]) + self.reorder_out * (1.0 - kept[1])
        scale = self.cold_scale(cold)
        return max((self.latency - removed) * scale - self.null_call, 0.0)


def stat_halfwidth(data: dict, value: float | None) -> float | None:
    """A result's 95% half-width at `value`'s scale: stats.halfwidth_s, or for results written
    before it existed ci95_rel x median (within one process only)."""
    stats = data.get("stats")
    if value is None or not stats or stats.get("median", 0) <= 0:
        return None
    if "halfwidth_s" in stats:
        return stats["halfwidth_s"] * value / stats["median"]
    return stats["ci95_rel"] * value if "ci95_rel" in stats else None


def reference_time(data: dict) -> float | None:
    times = sorted(data.get("reference_s") or [])
    return times[len(times) // 2] if times else None


def recorded_call_costs(result: BrickResult) -> tuple[float, float] | None:
    """(null_call_s, node_s) as an ok result's calibration records them; None for results
    without them (older harnesses did not record `node_s`)."""
    calibration = result.data.get("calibration") if result.ok else None
    if not calibration or "null_call_s" not in calibration or "node_s" not in calibration:
        return None
    return float(calibration["null_call_s"]), float(calibration["node_s"])


def with_call_costs(result: BrickResult, null: float, node: float) -> BrickResult:
    """The result with these call costs in its data, which each worker pass re-reads (best_run)."""
    calibration = result.data["calibration"]
    data = {**result.data, "calibration": {**calibration, "null_call_s": null, "node_s": node}}
    return brick_result(data, result.statistic)


def fastest_call_costs(results: dict[str, BrickResult]) -> dict[str, BrickResult]:
    """The results of one machine with the fastest call costs any of them recorded: the runtime
    measures them at intervals (runtime/core/calibration.py `call_costs`), and as with
    `best_run`, a neighbour only ever adds time, so the fastest measurement is the closest to
    the machine's own cost; one taken in a slow phase would take too much off every brick.
    Results of older harnesses (no `node_s`, measured once per run) are left as they are."""
    recorded = {key: recorded_call_costs(r) for key, r in results.items()}
    measured = [c for c in recorded.values() if c is not None]
    if not measured:
        return results
    fastest = min(measured)
    return {key: r if recorded[key] in (None, fastest) else with_call_costs(r, *fastest)
            for key, r in results.items()}


def run_overhead(calibration: dict) -> float:
    """The part of a null call a whole model pays once, not per node (results without
    `node_s`, from older harnesses, count the whole null call)."""
    return calibration["null_call_s"] - calibration.get("node_s", 0.0)


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
        a, b = list(groups.values())[:2]
        if a.first and b.first:
            check_compatible(a.first, b.first)  # raises, naming the field that differs
    return next(iter(groups.values()), ResultSet())


def machine_key(data: dict) -> str:
    """What must agree between results that are combined: the machine identity."""
    return identity_key(identity(data))


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
        for path in sorted(results_folder(directory).glob("*.json")):
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
            group.results[data["id"]] = brick_result(data, statistic)
    for machine, digest in conflicting:
        groups.get(machine, ResultSet()).results.pop(digest, None)
    conflicted = {digest for _, digest in conflicting}
    for group in groups.values() or [groups.setdefault("", ResultSet())]:
        group.problems = list(problems)
        for data in pending_errors:
            if data["id"] not in conflicted:
                group.results.setdefault(data["id"], brick_result(data, statistic))
        group.results = fastest_call_costs(group.results)
    return groups


_OTHER_SUITE = "(another suite)"


def _foreign(path: Path, data: dict, suite: str | None, known: set[str] | None) -> str | None:
    """Why a valid result does not belong to this plan, or None."""
    if suite is not None and data.get("suite") != suite:
        return f"{path}: result of suite {data.get('suite')}, the plan is for suite {suite} {_OTHER_SUITE}"
    if known is not None and data["id"] not in known:
        return f"{path}: id {data['id'][:80]!r} is not a brick of this plan"
    return None


def identity_difference(a: dict, b: dict) -> tuple[str, object, object] | None:
    """The first identity field two results disagree on, (section.field, a's, b's), or None."""
    fields_a, fields_b = identity(a), identity(b)
    for key in fields_a:
        if fields_a[key] != fields_b[key]:
            return f"{section_of(key)}.{key}", fields_a[key], fields_b[key]
    return None


def check_compatible(a: tuple[Path, dict], b: tuple[Path, dict]) -> None:
    """Refuse to combine results measured on different machines or with different settings."""
    differ = identity_difference(a[1], b[1])
    if differ:
        field, value_a, value_b = differ
        raise ValueError(f"{b[0]}: {field} is {value_b!r} but {a[0]} has {value_a!r}: results from "
                         "different machines or settings cannot be combined")


def e2e_mismatch(results: dict[str, BrickResult], measured: dict[str, BrickResult]) -> str | None:
    """Why the whole-model measurements are not comparable with the brick results (another
    machine, other settings, quick timings on one side), or None: est/meas then compares two
    different things."""
    brick = next((r.data for r in results.values() if r.ok), None)
    model = next((r.data for r in measured.values() if r.ok), None)
    differ = identity_difference(brick, model) if brick and model else None
    if differ is None:
        return None
    field, value_b, value_m = differ
    return (f"the whole-model measurements (--e2e) have {field} {value_m!r} and the brick results "
            f"{value_b!r}: est/meas compares different machines or settings")


def brick_result(data: dict, statistic: str) -> BrickResult:
    return replace(_brick_result(data, statistic), statistic=statistic)


def _brick_result(data: dict, statistic: str) -> BrickResult:
    if data.get("status") != "ok":
        return BrickResult(data["id"], False, None, data.get("error") or "unknown error", data)
    latency = statistic_of(data, statistic)
    cal = data.get("calibration")
    if not cal:
        return BrickResult(data["id"], True, latency, None, data)
    profile = cal["profile"]  # calls == 0: not profiled, nothing the NCHWc pass could touch
    if not (profile["calls"] and profile["run_s"] > 0):
        near, far = _cold_ratios(cal)
        return BrickResult(data["id"], True, latency, None, data, run_overhead(cal), 0.0,
                           cold_ratio=near, far_ratio=far, fused_share=_fused_share(cal))
    # Profiled kernel times, as shares of the profiled run, applied to the timed latency.
    scale = latency / max(profile["run_s"], profile["boundary_s"])
    kernels = profile.get("kernels_s", {})
    near, far = _cold_ratios(cal)
    return BrickResult(data["id"], True, latency, None, data, run_overhead(cal),
                       profile["boundary_s"] * scale, kernels.get("ReorderInput", 0.0) * scale,
                       kernels.get("ReorderOutput", 0.0) * scale, cold_ratio=near, far_ratio=far,
                       fused_share=_fused_share(cal))


def statistic_of(data: dict, statistic: str) -> float:
    """A result's `statistic` in seconds. "best_run": the smallest of its runs' medians (each
    worker process's values, in the order `stats.runs` lists them), computed from the values:
    on a shared machine a neighbour only ever adds time, so the least disturbed run is the
    closest to the machine's own speed (the median keeps a run's own outliers out); the
    estimator takes it per model, not per brick (estimate.model.estimate). "run<k>": run k's
    median. A result with one run, or runs that do not add up to its values, gives its median."""
    stats = data["stats"]
    if statistic != "best_run" and not statistic.startswith("run"):
        return float(stats[statistic])
    medians = run_medians(data)
    if not medians:
        return float(stats["median"])
    if statistic == "best_run":
        return min(medians)
    k = int(statistic[3:])
    return medians[k] if k < len(medians) else float(stats["median"])


def run_medians(data: dict) -> list[float]:
    """Each run's median, from the values split by `stats.runs` counts; [] for a result of one
    run or runs that do not add up to its values."""
    values, runs = data.get("values") or [], data["stats"].get("runs") or []
    counts = [n for r in runs if isinstance(r, dict) and isinstance(n := r.get("n"), int) and n > 0]
    if len(counts) < 2 or len(counts) != len(runs) or sum(counts) != len(values):
        return []
    medians, start = [], 0
    for n in counts:
        medians.append(float(percentile(sorted(values[start:start + n]), 50)))
        start += n
    return medians


def _cold_ratios(calibration: dict) -> tuple[float, float]:
    """(near, far) cold/warm ratios of a result (1 and 0 where not measured)."""
    cold = calibration.get("cold") or {}
    warm = float(cold.get("warm_s", 0))
    if warm <= 0:
        return 1.0, 0.0
    near = float(cold["cold_s"]) / warm if cold.get("copies", 1) > 1 else 1.0
    far = cold.get("far") or {}
    return near, (float(far["cold_s"]) / warm if far.get("copies", 1) > 1 else 0.0)


def _fused_share(calibration: dict) -> float:
    """The measured share of a fusable brick (1 where not recorded: counted as measured apart);
    at most 1, whatever a result file says: a layer fused into a convolution costs no more than
    its own brick, so an untrusted file can only keep the brick at its measured time."""
    fused = calibration.get("fused") or {}
    return min(float(fused["share"]), 1.0) if "share" in fused else 1.0


def quick_results(results: dict[str, BrickResult]) -> int:
    """How many results come from a quick run (smoke-test budgets: never real latencies)."""
    return sum((r.data.get("settings") or {}).get("quick") is True for r in results.values())


def contended_results(results: dict[str, BrickResult]) -> int:
    """How many results were measured while other programs kept the CPUs busy: the runtime
    records it in `warnings` ("load average X on N CPUs: ...", core/machine.py quiet_warnings),
    as when two copies of a suite run at once on one machine."""
    return sum(any(isinstance(w, str) and w.startswith("load average ") for w in r.data.get("warnings") or ())
               for r in results.values())


def e2e_batch(path: Path) -> int | None:
    """The --batch an e2e file was measured with (None when not recorded)."""
    try:
        return read_json_file(path, "e2e file").get("shapes", {}).get("batch")
    except (ValueError, AttributeError):
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
        out[name] = brick_result(result, statistic)
    return out
