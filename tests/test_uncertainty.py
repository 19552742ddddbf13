"""Issue 16: the stopping rule for sums, worker passes pooled with a between-process interval,
the reference benchmark, intervals on estimates and the hit/miss/undecided verdict.

Real ONNX Runtime sessions and real runner processes in quick mode; no timing thresholds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import helper

from dlbricks_gen.estimate.html import estimate_report
from dlbricks_gen.estimate.model import HIT, MISS, NOISE, estimate, sum_halfwidth, verdict
from dlbricks_gen.estimate.report import rows, to_csv, to_json, to_table
from dlbricks_gen.frontend import ShapeOptions
from dlbricks_gen.ir import ModelPlan
from dlbricks_gen.passes.plan import BrickInfo, Plan
from dlbricks_gen.results.drift import corrected, drift_warning, median_reference, reference_spread
from dlbricks_gen.results.load import brick_result, run_medians, statistic_of
from dlbricks_gen.runtime.backends.onnxruntime import measure_spec
from dlbricks_gen.runtime.core.reference import ReferenceClock, reference_seconds
from dlbricks_gen.runtime.core.results import merge_runs, merge_slice, passes_done, slices_done, validate_result
from dlbricks_gen.runtime.core.settings import FULL_POLICY, Settings
from dlbricks_gen.runtime.core.stats import between_halfwidth, pooled, statistics
from dlbricks_gen.runtime.runloop import pass_order
from dlbricks_gen.runtime.suite import parse_policy
from dlbricks_gen.workflows.e2e import measure_all

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite_overhead import conv_spec, matmul_add_spec, relu_spec, write_suite

QUICK2 = Settings(quick=True, processes=2)


# --- the stopping rule and pooled statistics -----------------------------------------------

def test_absolute_target_lets_microsecond_bricks_stop_where_the_relative_one_does_not():
    values = [10e-6 + i * 0.2e-6 for i in range(20)]  # median ~11.9 us, half-width ~0.9 us
    assert not statistics(values, 1, 0.05)["target_reached"]  # 5% of 11.9 us is 0.6 us
    assert statistics(values, 1, 0.05, abs_target_s=1e-6)["target_reached"]
    big = [v * 1000 for v in values]  # the same spread on a 12 ms brick: relative decides
    assert not statistics(big, 1, 0.05, abs_target_s=1e-6)["target_reached"]
    assert FULL_POLICY["abs_target_s"] > 0 and FULL_POLICY["processes"] >= 2


def test_pooled_interval_includes_the_spread_between_processes():
    a = [1.00e-3 + i * 1e-7 for i in range(20)]
    b = [1.10e-3 + i * 1e-7 for i in range(20)]
    runs = [{"median": statistics(v, 1, 0.05)["median"], "n": 20, "loops": 1,
             "halfwidth_s": statistics(v, 1, 0.05)["halfwidth_s"]} for v in (a, b)]
    stats = pooled(a + b, runs, 0.05)
    assert stats["processes"] == 2 and stats["between_s"] > 0
    assert stats["halfwidth_s"] == pytest.approx(math.hypot(stats["within_s"], stats["between_s"]))
    assert stats["between_s"] == pytest.approx(1.96 * 0.1e-3 / math.sqrt(2) / math.sqrt(2))
    assert between_halfwidth([1.0]) == 0.0


def test_merge_runs_pools_two_real_measurements_into_a_valid_result():
    spec = relu_spec([1, 4, 8, 8])
    first, second = measure_spec(spec, QUICK2), measure_spec(spec, QUICK2)
    first["reference_s"], second["reference_s"] = [1e-5], [1.1e-5]
    merged = merge_runs(first, second, QUICK2)
    assert validate_result(merged) == []
    assert merged["values"] == first["values"] + second["values"]
    assert [r["median"] for r in merged["stats"]["runs"]] == [first["stats"]["median"],
                                                               second["stats"]["median"]]
    assert passes_done(merged) == 2 and merged["reference_s"] == [1e-5, 1.1e-5]
    assert merged["timing"]["wall_s"] == pytest.approx(first["timing"]["wall_s"] + second["timing"]["wall_s"])
    failed = {**second, "status": "error", "stats": None, "values": [], "error": "boom"}
    assert merge_runs(first, failed, QUICK2)["status"] == "error"


def test_merge_slice_pools_a_further_slice_into_the_last_run_entry():
    spec = relu_spec([1, 4, 8, 8])
    a, b, c = (measure_spec(spec, QUICK2) for _ in range(3))
    one_run = merge_slice(a, b, QUICK2)  # a run of two slices
    assert validate_result(one_run) == [] and passes_done(one_run) == 1 and slices_done(one_run) == 2
    (entry,) = one_run["stats"]["runs"]
    assert entry["n"] == len(a["values"]) + len(b["values"])
    assert entry["median"] == statistics(a["values"] + b["values"], 1, 0.02)["median"]
    # only the slice's timed calls join wall_s; its session and warm-up are kept apart
    assert one_run["timing"]["wall_s"] == pytest.approx(a["timing"]["wall_s"] + b["timing"]["measure_s"])
    assert one_run["timing"]["slices_s"] == pytest.approx(b["timing"]["wall_s"] - b["timing"]["measure_s"])
    two_runs = merge_slice(merge_runs(one_run, c, QUICK2), a, QUICK2)  # round 2: c, then a slice
    assert validate_result(two_runs) == [] and passes_done(two_runs) == 2
    assert [r["slices"] for r in two_runs["stats"]["runs"]] == [2, 2]
    assert [r["n"] for r in two_runs["stats"]["runs"]] == [entry["n"], len(c["values"]) + len(a["values"])]
    assert run_medians(two_runs)[1] == pytest.approx(two_runs["stats"]["runs"][1]["median"])
    failed = {**b, "status": "error", "stats": None, "values": [], "error": "boom"}
    assert merge_slice(a, failed, QUICK2)["status"] == "error"


def test_pass_orders_are_permutations_that_differ():
    bricks = [f"{i:02d}" for i in range(9)]
    orders = [pass_order(bricks, k, 3) for k in range(3)]
    assert all(sorted(o) == bricks for o in orders)
    assert orders[0] == bricks and len({tuple(o) for o in orders}) == 3
    assert pass_order(bricks, 1, 3) == pass_order(bricks, 1, 3)


def test_policy_overrides_are_numbers_and_unknown_knobs_are_refused(tmp_path: Path):
    assert parse_policy("ci_target=0.02,processes=1") == {"ci_target": 0.02, "processes": 1}
    with pytest.raises(Exception, match="KEY=NUMBER"):
        parse_policy("ci_target=fast")
    suite = write_suite(tmp_path / "suite", [relu_spec([1, 3])])
    proc = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime", "--quick", "--policy",
                           "no_such_knob=1"], cwd=suite, text=True, capture_output=True, check=False)
    assert proc.returncode == 2 and "no_such_knob" in proc.stderr


# --- the runner's passes and the reference benchmark ---------------------------------------

def test_runner_measures_every_brick_in_two_processes_and_resumes(tmp_path: Path):
    specs = [relu_spec([1, 4, 4, 4]), conv_spec(4, 8), matmul_add_spec(2, 16, 16)]
    suite = write_suite(tmp_path / "suite", specs)
    command = [sys.executable, "-B", "-m", "dlbricks_runtime", "--quick", "--processes", "2"]
    first = subprocess.run([*command, "--pass", "0"], cwd=suite, text=True, capture_output=True,
                           check=False)
    assert first.returncode == 0, first.stderr
    done = [json.loads(p.read_text()) for p in (suite / "results").glob("*.json")]
    assert {passes_done(r) for r in done} == {1}
    second = subprocess.run(command, cwd=suite, text=True, capture_output=True, check=False)
    assert second.returncode == 0 and "3 already done, 3 to run" in second.stdout
    for spec in specs:
        data = json.loads((suite / "results" / f"{spec['brick']}.json").read_text())
        assert validate_result(data) == [] and data["stats"]["processes"] == 2
        assert len(data["values"]) == sum(r["n"] for r in data["stats"]["runs"])
        assert len(data["reference_s"]) == 2 and min(data["reference_s"]) > 0
        if spec["nodes"][0]["op_type"] == "Conv":  # profiled once, in pass 0, and kept
            assert data["calibration"]["profile"]["calls"] > 0
    again = subprocess.run(command, cwd=suite, text=True, capture_output=True, check=False)
    assert "6 already done, 0 to run" in again.stdout


def test_reference_clock_retimes_only_when_due():
    assert reference_seconds() > 0
    clock = ReferenceClock(every_s=3600.0)
    first = clock.latest()
    assert clock.latest() == first and clock.cost_s > 0
    eager = ReferenceClock(every_s=0.0)
    eager.latest()
    cost = eager.cost_s
    eager.latest()
    assert eager.cost_s > cost


def test_e2e_rounds_pool_sessions_and_record_the_reference(tmp_path: Path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "m",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, tmp_path / "relu.onnx")
    data = measure_all(tmp_path, ShapeOptions(), QUICK2)
    result = data["models"]["relu"]
    assert validate_result(result) == [] and result["stats"]["processes"] == 2
    assert len(result["reference_s"]) == 2
    one_round = measure_all(tmp_path, ShapeOptions(), QUICK2, rounds=[0])["models"]["relu"]
    assert passes_done(one_round) == 1
    resumed = measure_all(tmp_path, ShapeOptions(), QUICK2, rounds=[1], earlier={"relu": one_round})
    assert passes_done(resumed["models"]["relu"]) == 2


# --- intervals on estimates -----------------------------------------------------------------

def _result(name: str, median: float, halfwidth: float, reference: float | None = None) -> dict:
    data = measure_spec(relu_spec([1, 3]), Settings(quick=True))
    data["id"] = name
    data["stats"].update({"median": median, "trimmed_mean_20": median, "halfwidth_s": halfwidth,
                          "ci95_rel": halfwidth / median})
    if reference is not None:
        data["reference_s"] = [reference]
    return data


def test_estimate_interval_is_propagated_from_the_bricks_and_printed_everywhere():
    a, b = "a" * 64, "b" * 64
    model = ModelPlan("m", "m.onnx", 3, (a, a, b), ((0, 1), (1, 2)))
    plan = Plan("s", 1, {a: BrickInfo(1, ("Relu",)), b: BrickInfo(1, ("Relu",))}, (model,), ())
    results = {a: brick_result(_result(a, 1e-3, 1e-5), "trimmed_mean_20"),
               b: brick_result(_result(b, 2e-3, 4e-5), "trimmed_mean_20")}
    assert sum_halfwidth(model, results) == pytest.approx(math.hypot(2e-5, 4e-5))
    measured = {"m": brick_result(_result("m", 4e-3, 4e-5), "trimmed_mean_20")}
    table = rows(estimate(plan, results), measured, calibrate=False)
    row = table[0]
    assert row["estimate_pm_ms"] == pytest.approx(math.hypot(2e-5, 4e-5) * 1e3)
    assert row["measured_pm_ms"] == pytest.approx(4e-2) and row["ratio_pm"] > 0
    assert row["verdict"] == HIT
    assert "+-95%" in to_table(table) and "hit" in to_table(table)
    assert "estimate_pm_ms" in to_csv(table, {}).splitlines()[0]
    assert json.loads(to_json(table, "median"))["summary"]["hits"] == 1
    assert "+-95%" in estimate_report(table, {"m": {"by_op": {}, "top_bricks": []}})


def test_verdict_counts_only_what_the_interval_says():
    assert verdict(1.05, 0.02) == HIT
    assert verdict(1.25, 0.05) == MISS
    assert verdict(1.12, 0.05) == NOISE and verdict(0.95, 0.08) == NOISE
    assert verdict(None, None) is None and verdict(1.0, None) == HIT


def test_reference_drift_is_flagged_and_can_be_corrected():
    steady = [brick_result(_result(f"{i}" * 64, 1e-3, 1e-5, 1e-5), "median") for i in range(3)]
    assert reference_spread(steady) == 0.0 and drift_warning(steady, "results") is None
    slow = brick_result(_result("9" * 64, 1.2e-3, 1e-5, 1.2e-5), "median")
    assert reference_spread([*steady, slow]) == pytest.approx(0.2)
    assert "moved by 20%" in drift_warning([*steady, slow], "results")
    assert corrected(slow, 1e-5).latency == pytest.approx(1e-3)
    assert median_reference([*steady, slow]) == pytest.approx(1e-5)


def test_best_run_is_the_least_disturbed_process_median_computed_from_the_values():
    settings = Settings(quick=True)
    first = measure_spec(relu_spec([1, 3]), settings)
    second = measure_spec(relu_spec([1, 3]), settings)
    first["values"] = [1e-3] * 5 + [9e-3]  # a quiet process (one outlier)
    second["values"] = [2e-3] * 6  # a process a neighbour slowed down throughout
    for data in (first, second):
        data["stats"] = {**data["stats"], "n": 6, "runs": []}
        data["stats"]["median"] = sorted(data["values"])[3]
    pooled = merge_runs(first, second, settings)
    assert [r["n"] for r in pooled["stats"]["runs"]] == [6, 6]
    assert validate_result(pooled) == []
    assert statistic_of(pooled, "best_run") == pytest.approx(1e-3)  # not the pooled median (2 ms)
    assert brick_result(pooled, "best_run").latency == pytest.approx(1e-3)
    assert statistic_of(pooled, "median") == pooled["stats"]["median"]
    # runs that do not add up to the values (a hand-edited file) fall back to the median
    broken = {**pooled, "stats": {**pooled["stats"], "runs": [{**r, "n": 5} for r in pooled["stats"]["runs"]]}}
    assert statistic_of(broken, "best_run") == pooled["stats"]["median"]
    assert statistic_of(first, "best_run") == first["stats"]["median"]  # one process: its median


def _two_runs(name: str, first: float, second: float) -> dict:
    """A real brick result of two worker processes, each of six identical values."""
    settings = Settings(quick=True)
    parts = []
    for value in (first, second):
        data = measure_spec(relu_spec([1, 3]), settings)
        data["values"] = [value] * 6
        data["stats"] = {**data["stats"], "n": 6, "median": value, "halfwidth_s": 0.0}
        parts.append(data)
    return {**merge_runs(parts[0], parts[1], settings), "id": name}


def test_a_process_slower_for_every_brick_widens_the_sum_as_one_error_not_independent_ones():
    names = [c * 64 for c in "abcd"]
    model = ModelPlan("m", "m.onnx", 4, tuple(names), ())
    results = {n: brick_result(_two_runs(n, 1e-3, 1.1e-3), "median") for n in names}
    width = sum_halfwidth(model, results)
    sums = [4e-3, 4.4e-3]  # the model's sum in each process: every brick 10% slower in the second
    within = math.sqrt(sum(r.data["stats"]["within_s"] ** 2 for r in results.values()))
    assert width == pytest.approx(math.hypot(within, between_halfwidth(sums)))
    assert width >= between_halfwidth(sums) == pytest.approx(0.98 * 0.4e-3)  # about the whole difference
    independent = math.sqrt(sum(r.halfwidth ** 2 for r in results.values()))
    assert width > 1.5 * independent  # as independent bricks the between part would be halved (4 bricks)


def test_best_run_estimates_a_model_from_its_least_disturbed_pass_not_each_bricks_best():
    def two_runs(name: str, first: float, second: float) -> dict:
        merged = _two_runs(name, first, second)
        merged.pop("calibration", None)  # plain latencies: the sums are the point
        return merged

    a, b = "a" * 64, "b" * 64
    model = ModelPlan("m", "m.onnx", 2, (a, b), ((0, 1),))
    plan = Plan("s", 1, {a: BrickInfo(1, ("Relu",)), b: BrickInfo(1, ("Relu",))}, (model,), ())
    data = {a: two_runs(a, 1e-3, 2e-3), b: two_runs(b, 2e-3, 1e-3)}  # each brick's best run is 1 ms
    (est,) = estimate(plan, {d: brick_result(x, "best_run") for d, x in data.items()})
    assert est.sequential == pytest.approx(3e-3)  # either pass sums to 3 ms; per-brick minima gave 2
    (pooled,) = estimate(plan, {d: brick_result(x, "median") for d, x in data.items()})
    assert pooled.sequential == pytest.approx(3e-3)
