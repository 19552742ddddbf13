"""The estimator on hand-built plans and result files: sums, critical paths, honesty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbricks_gen.estimate import model as est
from dlbricks_gen.estimate import report
from dlbricks_gen.ir import ModelPlan
from dlbricks_gen.passes.plan import BrickInfo, Plan
from dlbricks_gen.results import load as rl

SUITE = "0123456789abcdef"


def result(brick: str, seconds: float | None, *, suite: str = SUITE, cpu: str = "cpu-x",
           error: str = "boom") -> dict:
    base = {
        "version": 1, "kind": "brick", "id": brick, "suite": suite, "backend": "onnxruntime",
        "settings": {"intra_op_threads": 1, "inter_op_threads": 1, "graph_optimization_level": "all",
                     "taskset": None, "quick": True},
        "machine": {"cpu_model": cpu, "cores": 2, "os": "linux", "python": "3.11",
                    "onnxruntime": "1.0", "numpy": "2.0"},
        "warnings": [], "timing": {"wall_s": 0.1, "measure_s": 0.05},
    }
    if seconds is None:
        return {**base, "status": "error", "error": error, "stats": None, "values": []}
    stats = {"unit": "s", "median": seconds, "trimmed_mean_20": seconds, "mean": seconds,
             "stdev": 0.0, "p90": seconds, "min": seconds, "n": 5, "loops": 1,
             "ci95_rel": 0.0, "target_reached": True}
    return {**base, "status": "ok", "error": None, "stats": stats, "values": [seconds] * 5}


def write_results(directory: Path, results: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        (directory / f"{r['id']}.json").write_text(json.dumps(r))
    return directory


# A diamond: a -> (b, c) -> d, with brick b used twice in a chain model.
PLAN = Plan(
    suite=SUITE, granularity=1,
    bricks={"a": BrickInfo(1, ("Conv",)), "b": BrickInfo(2, ("Conv", "Relu")),
            "c": BrickInfo(1, ("MaxPool",)), "d": BrickInfo(1, ("Add",))},
    models=(
        ModelPlan("diamond", "diamond.onnx", 5, ("a", "b", "c", "d"), ((0, 1), (0, 2), (1, 3), (2, 3))),
        ModelPlan("chain", "chain.onnx", 5, ("b", "b", "a"), ((0, 1), (1, 2))),
    ),
    failed=(),
)


def loaded(tmp_path: Path, results: list[dict]) -> dict:
    return rl.load_results([write_results(tmp_path / "r", results)], SUITE, "trimmed_mean_20").results


def test_sequential_sum_and_critical_path_on_a_diamond(tmp_path: Path):
    res = loaded(tmp_path, [result("a", 1.0), result("b", 2.0), result("c", 5.0), result("d", 0.5)])
    diamond, chain = est.estimate(PLAN, res)
    assert diamond.complete and diamond.sequential == pytest.approx(8.5)
    assert diamond.critical_path == pytest.approx(1.0 + 5.0 + 0.5)
    assert chain.sequential == pytest.approx(5.0) and chain.critical_path == pytest.approx(5.0)


def test_missing_and_failed_bricks_make_an_incomplete_lower_bound(tmp_path: Path):
    res = loaded(tmp_path, [result("a", 1.0), result("b", None, error="ORT crashed"), result("d", 0.5)])
    diamond = est.estimate(PLAN, res)[0]
    assert not diamond.complete
    assert diamond.covered_layers == 2 and diamond.measured_instances == 2
    assert diamond.failed == (("b", "ORT crashed"),) and diamond.missing == ("c",)
    table = report.rows([diamond], {})
    assert table[0]["status"].startswith("incomplete") and table[0]["ratio"] is None
    text = report.to_table(table)
    assert ">=1500.000" in text and "ORT crashed" in text


def test_tables_align_mark_lower_bounds_and_print_names_literally(tmp_path: Path):
    res = loaded(tmp_path, [result("a", 1.0), result("b", 2.0), result("d", 0.5)])  # c missing
    table = report.rows(est.estimate(PLAN, res), {})
    table[1]["model"] = "[bold]chain:smile:"  # a model name is not rich markup
    grid = [line for line in report.to_table(table).splitlines() if "|" in line]
    assert len({len(line) for line in grid}) == 1, grid  # aligned
    assert len({tuple(i for i, c in enumerate(line) if c == "|") for line in grid}) == 1, grid
    assert grid[2].startswith("diamond ") and ">=" in grid[2] and grid[3].startswith("[bold]chain:smile: ")
    assert ">=" not in grid[3]  # chain is complete: a plain number


def test_ratio_against_end_to_end_and_geometric_mean(tmp_path: Path):
    res = loaded(tmp_path, [result("a", 1.0), result("b", 2.0), result("c", 5.0), result("d", 0.5)])
    e2e = {"diamond": rl.BrickResult("diamond", True, 8.5 / 1.25, None, {}),
           "chain": rl.BrickResult("chain", True, 5.0 / 0.8, None, {})}
    table = report.rows(est.estimate(PLAN, res), e2e)
    assert [round(r["ratio"], 6) for r in table] == [1.25, 0.8]
    assert report.summary(table)["ratio_geomean"] == pytest.approx(1.0)
    assert "model,layers" in report.to_csv(table, report.describe(PLAN, res, "median", "2026-01-01"))
    assert json.loads(report.to_json(table, "median"))["summary"]["compared"] == 2


def test_results_from_another_suite_are_skipped_and_other_machines_refused(tmp_path: Path):
    d = write_results(tmp_path / "1", [result("a", 1.0, suite="ffffffffffffffff"), result("b", 1.0)])
    out = rl.load_results([d], SUITE, "median")
    assert set(out.results) == {"b"} and len(out.problems) == 1
    assert "a.json: result of suite ffffffffffffffff" in out.problems[0]
    with pytest.raises(ValueError, match="machine.cpu_model"):
        loaded(tmp_path / "2", [result("a", 1.0), result("b", 1.0, cpu="other-cpu")])


def test_corrupt_result_files_are_skipped_with_a_reason(tmp_path: Path):
    d = write_results(tmp_path / "r", [result("a", 1.0)])
    (d / "b.json").write_text("{not json")
    (d / "c.json").write_text(json.dumps({**result("c", 1.0), "version": 99}))
    out = rl.load_results([d], SUITE, "median")
    assert set(out.results) == {"a"}
    assert len(out.problems) == 2 and any("version" in p for p in out.problems)


def test_critical_path_rejects_backward_edges():
    with pytest.raises(ValueError):
        est.critical_path(2, ((1, 0),), [1.0, 1.0])


def test_results_from_two_machines_can_be_grouped_on_request(tmp_path: Path):
    d = write_results(tmp_path / "r", [result("a", 1.0), result("b", 2.0, cpu="other-cpu"),
                                       result("c", None)])
    groups = rl.load_grouped([d], SUITE, "median")
    assert len(groups) == 2
    for group in groups.values():
        assert "c" in group.results and not group.results["c"].ok


def test_breakdown_by_op_type_and_top_bricks(tmp_path: Path):
    res = loaded(tmp_path, [result("a", 1.0), result("b", 2.0), result("c", 5.0), result("d", 0.5)])
    data = est.breakdown(PLAN.models[1], PLAN, res)  # chain: b, b, a
    assert data["by_op"] == {"Conv>Relu": 4.0, "Conv": 1.0}
    assert data["top_bricks"][0] == {"brick": "b", "ops": "Conv>Relu", "count": 2, "seconds": 4.0,
                                     "share": 0.8}


def calibrated_result(brick: str, seconds: float, *, boundary_share: float = 0.0,
                      null: float = 0.0, node: float | None = None) -> dict:
    data = result(brick, seconds)
    profile = {"calls": 4, "run_s": 1.0, "kernels_s": {"ReorderInput": boundary_share},
               "boundary_s": boundary_share} if boundary_share else \
        {"calls": 0, "run_s": 0.0, "kernels_s": {}, "boundary_s": 0.0}
    data["calibration"] = {"null_call_s": null, "profile": profile}
    if node is not None:
        data["calibration"]["node_s"] = node
    return data


def test_calibration_removes_reorders_and_all_but_the_per_node_part_of_each_call(tmp_path: Path):
    res = loaded(tmp_path, [
        calibrated_result("a", 1.0, boundary_share=0.25, null=0.1, node=0.02),  # 1 - .25 - .08
        calibrated_result("b", 2.0, null=0.1, node=0.02),                        # 2 - .08
        calibrated_result("c", 5.0, null=0.1, node=0.02),
        calibrated_result("d", 0.5, null=0.1),  # an older result without node_s: whole call
    ])
    assert res["a"].calibrated == pytest.approx(0.67) and res["d"].calibrated == pytest.approx(0.4)
    diamond, chain = est.estimate(PLAN, res)
    # The model pays one call's fixed part: the median over its bricks.
    assert diamond.calibrated == pytest.approx(0.67 + 1.92 + 4.92 + 0.4 + 0.08)
    assert chain.calibrated == pytest.approx(1.92 * 2 + 0.67 + 0.08)
    assert diamond.sequential == pytest.approx(8.5)  # the plain sum is still reported


def test_every_brick_takes_the_fastest_call_costs_its_run_measured(tmp_path: Path):
    # The runtime re-measures its call costs at intervals; one taken in a slow phase of the
    # machine (b's, c's) would take too much off each brick: all take a's, the fastest.
    res = loaded(tmp_path, [
        calibrated_result("a", 1.0, null=0.1, node=0.02),
        calibrated_result("b", 2.0, null=0.2, node=0.04),
        calibrated_result("c", 5.0, null=0.3, node=0.01),
        calibrated_result("d", 0.5, null=0.05),  # an older result without node_s: left alone
    ])
    assert [res[k].null_call for k in "abc"] == pytest.approx([0.08] * 3) and res["d"].null_call == 0.05
    assert res["b"].calibrated == pytest.approx(2.0 - 0.08) and res["d"].calibrated == pytest.approx(0.45)
    assert res["b"].data["calibration"]["node_s"] == 0.02  # what each worker pass re-reads
    diamond, _ = est.estimate(PLAN, res)
    assert diamond.calibrated == pytest.approx(0.92 + 1.92 + 4.92 + 0.45 + 0.08)


def calibrated_results() -> dict[str, rl.BrickResult]:
    """Every brick of PLAN with a calibration: 1 ms measured, 0.4 ms of it the brick's own call
    and edges, 0.1 ms the call a whole model pays once."""
    return {d: rl.BrickResult(d, True, 1e-3, None, result(d, 1e-3), null_call=1e-4, boundary=3e-4)
            for d in PLAN.bricks}


def test_every_view_of_the_report_shows_the_headline_estimate():
    import re

    from dlbricks_gen.estimate import model as est
    from dlbricks_gen.estimate import report
    from dlbricks_gen.estimate.html import estimate_report

    results = calibrated_results()
    table = report.rows(est.estimate(PLAN, results), {})
    breakdowns = report.headline_views(table, PLAN, results)
    for row in table:
        assert row["estimate_kind"] == "calibrated" and row["estimate_ms"] < row["sequential_ms"]
        assert row["critical_path_ms"] <= row["estimate_ms"] + 1e-12, row
        by_op = breakdowns[row["model"]]["by_op"]
        assert sum(by_op.values()) * 1e3 == pytest.approx(row["estimate_ms"]), (by_op, row)
        in_json = report.breakdown_ms(breakdowns[row["model"]])  # the JSON's one unit: ms
        assert sum(in_json["by_op_ms"].values()) == pytest.approx(row["estimate_ms"]), (in_json, row)
        assert in_json["top_bricks"][0]["estimate_ms"] == pytest.approx(
            breakdowns[row["model"]]["top_bricks"][0]["seconds"] * 1e3)
    diamond = next(r for r in table if r["model"] == "diamond")
    assert diamond["estimate_ms"] == pytest.approx(4 * 0.6 + 0.1)
    assert diamond["critical_path_ms"] == pytest.approx(3 * 0.6 + 0.1)  # a -> b -> d
    page = estimate_report(table, breakdowns)
    cells = re.findall(r"<td>([^<]*)</td>", page)
    row = cells[cells.index("diamond"):]
    assert row[4] == f"{diamond['estimate_ms']:.3f}" and row[7] == f"{diamond['critical_path_ms']:.3f}", row


def test_the_estimate_json_is_in_one_unit_named_in_every_key(tmp_path: Path):
    """Every number of `estimate --json` that is a time is in ms and says so in its key; the
    rest are counts, ratios and shares."""
    res = loaded(tmp_path, [result("a", 1e-3), result("b", 2e-3), result("c", 5e-3), result("d", 5e-4)])
    table = report.rows(est.estimate(PLAN, res), {})
    breakdowns = report.headline_views(table, PLAN, res)
    for row in table:
        row["breakdown"] = report.breakdown_ms(breakdowns[row["model"]])
    data = json.loads(report.to_json(table, "median", report.describe(PLAN, res, "median", "2026-01-01")))
    assert data["version"] == 2
    unitless = {"layers", "bricks", "coverage", "ratio", "ratio_pm", "count", "share", "H", "version", "models",
                "complete", "compared", "ratio_geomean", "ratio_min", "ratio_max", "within_5pct",
                "within_10pct", "hits", "misses", "undecided"}

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k if key != "by_op_ms" else key)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, float | int) and not isinstance(value, bool):
            assert key.endswith("_ms") or key in unitless, (key, value)

    walk(data)
    diamond = data["models"][0]
    assert sum(diamond["breakdown"]["by_op_ms"].values()) == pytest.approx(diamond["estimate_ms"])
