"""The runtime's core and its ONNX Runtime backend: statistics, the random data policy, SPEC -> ONNX, measuring, result validation.

Real ONNX Runtime, quick settings. Tiny SPECs come from benchmarks/suite_overhead.py, which
also writes test suites the way the generator lays them out.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from dlbricks_gen.codegen.render import environment, render_brick
from dlbricks_gen.runtime import brick
from dlbricks_gen.runtime.backends.onnxruntime import measure_model, measure_spec
from dlbricks_gen.runtime.core.calibration import BOUNDARY_OPS, NO_PROFILE, PROFILE_CALLS
from dlbricks_gen.runtime.core.data import input_feeds, random_array
from dlbricks_gen.runtime.core.machine import machine_info, quiet_warnings
from dlbricks_gen.runtime.core.results import error_result, validate_result
from dlbricks_gen.runtime.core.settings import (
    FULL_POLICY,
    QUICK_POLICY,
    Settings,
    format_cpus,
    parse_cpus,
    settings_record,
)
from dlbricks_gen.runtime.core.spec import build_model, make_attribute
from dlbricks_gen.runtime.core.stats import _ci_rank, median_ci95, percentile, statistics, trimmed_mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite_overhead import conv_spec, matmul_add_spec, relu_spec

QUICK = Settings(quick=True)


def run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# --- statistics -----------------------------------------------------------------------------

def test_statistics_on_known_samples():
    values = [float(v) for v in [7, 1, 9, 3, 100, 5, 2, 8, 4, 6]]  # 1..9 and an outlier
    s = statistics(values, loops=4, ci_target=0.02)
    assert s["median"] == 5.5
    # scipy.stats.trim_mean(values, 0.2): int(0.2 * 10) = 2 dropped at each end -> mean(3..8)
    assert s["trimmed_mean_20"] == pytest.approx(5.5)
    assert s["mean"] == pytest.approx(14.5) and s["min"] == 1.0
    assert s["stdev"] == pytest.approx(float(np.std(values, ddof=1)))
    assert s["p90"] == pytest.approx(float(np.percentile(values, 90)))  # 9.1
    # n = 10: the 95% interval of the median is [x_(2), x_(9)] = [2, 9]
    assert median_ci95(sorted(values)) == (2.0, 9.0)
    assert s["ci95_rel"] == pytest.approx((9 - 2) / 2 / 5.5)
    assert s["n"] == 10 and s["loops"] == 4 and s["unit"] == "s" and not s["target_reached"]


def test_trimmed_mean_drops_int_of_20_percent_at_each_end():
    # n = 5: int(0.2 * 5) = 1 dropped at each end -> mean(2, 3, 4)
    assert trimmed_mean([1.0, 2, 3, 4, 1000]) == pytest.approx(3.0)
    # n = 4: int(0.8) = 0, nothing dropped
    assert trimmed_mean([1.0, 2, 3, 4]) == pytest.approx(2.5)


def test_percentiles_match_numpy_on_random_samples():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50):
        values = sorted(rng.random(n).tolist())
        for q in (50, 90):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_median_interval_is_the_binomial_one_and_needs_six_values():
    def coverage(n: int, j: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2 ** n

    for n in range(6, 80):
        j = _ci_rank(n)
        assert coverage(n, j) >= 0.95 > coverage(n, j + 1)
    assert _ci_rank(5) == 0  # no 95% interval below 6 values: the whole range is reported
    tight = [1.0, 1.001, 1.0, 1.001, 1.0]
    assert not statistics(tight, 1, 0.02)["target_reached"]
    assert statistics(tight + [1.0], 1, 0.02)["target_reached"]


# --- the random data policy -----------------------------------------------------------------

def test_random_data_policy_v4():
    seed = int.from_bytes(hashlib.sha256(b"w0").digest()[:8], "big")
    rng = np.random.default_rng(seed)
    expected = (np.float32(-1 / 6) + np.float32(2 / 6) * rng.random(size=(4, 4, 3, 3), dtype=np.float32))
    assert expected.dtype == np.float32
    weight = random_array("w0", "FLOAT", [4, 4, 3, 3], "weight")  # fan-in 4*3*3 = 36
    np.testing.assert_array_equal(weight, expected)
    again = random_array("w0", "FLOAT", (4, 4, 3, 3), "weight")
    np.testing.assert_array_equal(weight, again)
    scale = random_array("s", "FLOAT16", [64], "weight")
    assert scale.dtype == np.float16 and scale.min() >= 0.5 and scale.max() <= 1.5
    x = random_array("x", "DOUBLE", [1000], "input")
    assert x.dtype == np.float64 and -1 <= x.min() < -0.9 and 0.9 < x.max() < 1
    assert not random_array("i", "INT64", [3], "input").any()
    # a mask input attends every token (zeros would mask them all: -inf rows into a Softmax)
    assert random_array("attention_mask", "INT64", [1, 8], "input").all()
    assert random_array("Input_Mask", "BOOL", [2], "input").all()
    assert not random_array("attention_mask", "INT64", [4, 4], "weight").any()
    q = random_array("qw", "INT8", [64, 32], "weight")  # quantized weights: seeded, over the range
    assert q.dtype == np.int8 and q.min() < -100 and q.max() > 100
    np.testing.assert_array_equal(q, random_array("qw", "INT8", [64, 32], "weight"))
    u = random_array("qx", "UINT8", [4096], "input")
    assert u.dtype == np.uint8 and u.min() < 10 and u.max() > 245
    assert random_array("zp", "UINT8", [], "weight") == 128  # zero points: the type's middle
    assert not random_array("wzp", "INT8", [16], "weight").any()
    assert random_array("b", "BOOL", [2], "weight").dtype == np.bool_
    assert not np.array_equal(random_array("a", "FLOAT", [8], "input"),
                              random_array("b", "FLOAT", [8], "input"))
    with pytest.raises(ValueError, match="unknown dtype"):
        random_array("x", "FLOAT33", [1], "input")


# --- SPEC -> ONNX ---------------------------------------------------------------------------

def test_relu_spec_round_trip_and_run():
    spec = relu_spec([1, 8, 4, 4])
    model = build_model(spec)
    onnx.checker.check_model(model, full_check=True)
    feeds = input_feeds(spec["inputs"])
    (y,) = run_ort(model, feeds)
    np.testing.assert_array_equal(y, np.maximum(feeds["in0"], 0))


def test_matmul_add_spec_uses_the_seeded_weights():
    spec = matmul_add_spec(2, 16, 8)
    model = build_model(spec)
    onnx.checker.check_model(model, full_check=True)
    feeds = input_feeds(spec["inputs"])
    w = random_array("w0_1", "FLOAT", [16, 8], "weight")
    b = random_array("w1_1", "FLOAT", [8], "weight")
    (y,) = run_ort(model, feeds)
    np.testing.assert_allclose(y, feeds["in0"] @ w + b, rtol=1e-5, atol=1e-6)


def test_conv_spec_builds_and_runs_with_the_minimal_ir_version():
    model = build_model(conv_spec(4, 8))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 7  # the oldest IR for opset 13: loads on any recent runtime
    (y,) = run_ort(model, input_feeds(conv_spec(4, 8)["inputs"]))
    assert y.shape == (1, 4, 8, 8) and (y >= 0).all()


def test_literal_constants_with_non_finite_strings():
    spec = relu_spec([2, 3])
    spec["initializers"] = [
        {"name": "c0_1", "dtype": "FLOAT", "shape": [], "data": ["-inf"]},
        {"name": "c0_2", "dtype": "FLOAT", "shape": [], "data": [0.25]},
        {"name": "c1_1", "dtype": "INT64", "shape": [1], "data": [-1]},
    ]
    spec["outputs"] = [{"name": "t1_0", "dtype": "FLOAT", "shape": [6]}]
    spec["nodes"] = [
        {"op_type": "Clip", "domain": "", "inputs": ["in0", "c0_1", "c0_2"], "outputs": ["t0_0"],
         "attributes": []},
        {"op_type": "Reshape", "domain": "", "inputs": ["t0_0", "c1_1"], "outputs": ["t1_0"],
         "attributes": []},
    ]
    model = build_model(spec)
    onnx.checker.check_model(model, full_check=True)
    feeds = input_feeds(spec["inputs"])
    (y,) = run_ort(model, feeds)
    np.testing.assert_array_equal(y, np.minimum(feeds["in0"], 0.25).reshape(6))


def test_attribute_types_including_tensor_and_non_finite_floats():
    spec = relu_spec([2, 2])
    spec["nodes"] = [{"op_type": "Constant", "domain": "", "inputs": [], "outputs": ["k"],
                      "attributes": [{"name": "value", "type": "TENSOR", "value": {
                          "dtype": "FLOAT", "shape": [2], "data": ["inf", 1.5]}}]},
                     {"op_type": "Add", "domain": "", "inputs": ["in0", "k"], "outputs": ["t0_0"],
                      "attributes": []}]
    spec["outputs"] = [{"name": "t0_0", "dtype": "FLOAT", "shape": [2, 2]}]
    (y,) = run_ort(build_model(spec), input_feeds(spec["inputs"]))
    assert np.isinf(y[:, 0]).all() and np.isfinite(y[:, 1]).all()
    attribute = make_attribute({"name": "alpha", "type": "FLOATS", "value": ["nan", 1]})
    assert math.isnan(attribute.floats[0]) and attribute.floats[1] == 1.0


def test_unknown_spec_format_is_refused():
    with pytest.raises(ValueError, match="format 2 is not supported"):
        build_model({**relu_spec([1]), "format": 2})


# --- measuring and results ------------------------------------------------------------------

def test_measure_spec_gives_a_valid_result_in_quick_mode():
    result = measure_spec(conv_spec(4, 8), QUICK, suite="s1")
    assert result["status"] == "ok" and result["error"] is None, result["error"]
    assert result["suite"] == "s1" and result["kind"] == "brick" and result["settings"]["quick"]
    stats = result["stats"]
    assert stats["n"] == len(result["values"]) >= QUICK.min_values
    assert stats["min"] <= stats["median"] <= stats["p90"] and stats["loops"] >= 1
    assert stats["median"] * stats["loops"] >= QUICK.min_value_s * 0.5
    assert result["timing"]["measure_s"] <= result["timing"]["wall_s"]
    assert validate_result(result) == []
    json.dumps(result, allow_nan=False)


def test_measure_model_measures_whole_models_the_same_way():
    model = build_model(matmul_add_spec(1, 8, 8))
    result = measure_model(model, QUICK, kind="model", id="mlp")
    assert result["status"] == "ok" and result["kind"] == "model"
    assert validate_result(result) == []
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    failed = measure_model(model, QUICK, kind="model", id="mlp")
    assert failed["status"] == "error" and "symbolic dimension batch" in failed["error"]


def test_every_benchmark_gets_at_least_min_runs_timed_calls():
    # A slow-ish brick (loops = 1) must still get min_runs values, past the time cap.
    settings = Settings(quick=True, min_value_s=0.0, min_runs=40, max_time_s=0.0)
    result = measure_spec(conv_spec(8, 16), settings)
    assert result["stats"]["loops"] == 1 and result["stats"]["n"] >= 40
    assert result["settings"]["policy"]["min_runs"] == 40
    # A microsecond brick reaches min_runs through its inner loops: values stay few.
    fast = measure_spec(relu_spec([1, 4]), Settings(quick=True, min_runs=40))
    assert fast["stats"]["n"] * fast["stats"]["loops"] >= 40
    with pytest.raises(ValueError, match="runs"):
        Settings(min_runs=0)


def test_calibration_records_call_costs_and_profiles_only_layout_sensitive_graphs():
    conv = measure_spec(conv_spec(16, 14), QUICK)["calibration"]
    assert 0.0 <= conv["node_s"] <= conv["null_call_s"] < 0.01
    profile = conv["profile"]
    assert 1 <= profile["calls"] <= PROFILE_CALLS and profile["run_s"] > 0
    assert profile["kernels_s"] and profile["boundary_s"] == pytest.approx(sum(
        profile["kernels_s"].get(op, 0.0) for op in BOUNDARY_OPS))
    relu = measure_spec(relu_spec([1, 64]), QUICK)["calibration"]
    assert relu["profile"] == NO_PROFILE  # no NCHWc seed op: nothing to profile


def test_call_costs_are_measured_again_after_their_period(monkeypatch: pytest.MonkeyPatch):
    from dlbricks_gen.runtime.core import calibration

    first = calibration.call_costs(1, 1, "basic")
    assert calibration.call_costs(1, 1, "basic") is first  # within the period: the same measurement
    monkeypatch.setattr(calibration, "CALL_COSTS_PERIOD_S", 0.0)
    again = calibration.call_costs(1, 1, "basic")
    assert again is not first and 0.0 <= again["node_s"] <= again["null_call_s"] < 0.01


def test_the_first_pass_records_what_each_calibration_part_took():
    """timing.profile_s and timing.cold_copies_s split timing.calibration_s (suite_overhead.py reads
    them); a brick without NCHWc ops spends nothing on the profile."""
    for spec, profiled in ((conv_spec(16, 14), True), (relu_spec([1, 64]), False)):
        result = measure_spec(spec, QUICK)
        timing = result["timing"]
        assert (timing["profile_s"] > 0) is profiled and timing["cold_copies_s"] >= 0
        assert timing["profile_s"] + timing["cold_copies_s"] <= timing["calibration_s"]
        assert validate_result(result) == []


def test_a_spec_ort_cannot_load_gives_a_one_line_error_result():
    spec = relu_spec([1, 4])
    spec["nodes"][0]["op_type"] = "NoSuchOp"
    result = measure_spec(spec, QUICK)
    assert result["status"] == "error" and result["stats"] is None and result["values"] == []
    assert "NoSuchOp" in result["error"] and "\n" not in result["error"]
    assert validate_result(result) == []


def test_broken_results_do_not_validate():
    good = measure_spec(relu_spec([1, 4]), QUICK)
    broken = []
    for change in (lambda r: r["stats"].update(median=-1.0), lambda r: r.pop("machine"),
                   lambda r: r.update(status="ok", stats=None), lambda r: r.update(kind="layer"),
                   lambda r: r["settings"].update(intra_op_threads="1"),
                   lambda r: r.update(status="error", error="")):
        data = copy.deepcopy(good)
        change(data)
        broken.append(data)
    for data in broken:
        assert validate_result(data), data


def test_unknown_result_version_gets_one_clear_message():
    result = error_result(kind="brick", id="x", error="boom", settings=QUICK,
                                  backend="onnxruntime")
    assert validate_result({**result, "version": 2}) == [
        ("result format version 2 is not supported (this harness reads version 1); "
         "use the dlbricks-gen release that wrote it")]
    assert "not a dlbricks-gen result" in validate_result({"kind": "brick"})[0]
    assert validate_result([]) == ["not a JSON object"]


def brick_file(directory: Path, spec: dict) -> str:
    """A brick file as the generator writes it (the command reads its SPEC, never runs it)."""
    path = directory / "bricks" / f"{spec['brick']}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_brick(environment(), spec))
    return str(path)


def test_brick_command_writes_the_result_and_sets_the_exit_code(tmp_path: Path, capsys):
    out = tmp_path / "r" / "ok.json"
    ok = brick_file(tmp_path, relu_spec([1, 4]))
    assert brick.main([ok, "--quick", "-o", str(out), "--suite", "s"]) == 0
    data = json.loads(out.read_text())
    assert data["status"] == "ok" and data["suite"] == "s" and validate_result(data) == []
    assert "median" in capsys.readouterr().out
    spec = relu_spec([1, 4])
    spec["nodes"][0]["op_type"] = "NoSuchOp"
    bad = tmp_path / "bad.json"
    assert brick.main([brick_file(tmp_path, spec), "--quick", "-o", str(bad)]) == 1
    assert json.loads(bad.read_text())["status"] == "error"
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_settings_quick_policy_and_record():
    quick, full = Settings(quick=True), Settings()
    assert quick.policy() == QUICK_POLICY and full.policy() == FULL_POLICY
    assert Settings(quick=True, max_values=7).max_values == 7
    record = settings_record(Settings(intra_op_threads=2, taskset="0"))
    assert record["intra_op_threads"] == 2 and record["taskset"] == "0"
    assert parse_cpus("0-2,5") == {0, 1, 2, 5}
    assert format_cpus([0, 1, 2, 5]) == "0-2,5"
    with pytest.raises(ValueError):
        Settings(graph_optimization_level="max")


def test_machine_info_and_quiet_warnings():
    info = machine_info()
    for key in ("cpu_model", "cpu_id", "cpu_flags", "cores", "logical_cores", "governor", "turbo",
                "memory_bytes", "os", "kernel", "python", "onnxruntime", "onnx", "numpy"):
        assert key in info
    assert info["onnxruntime"] == ort.__version__ and info["cores"] >= 1
    warnings = quiet_warnings()
    assert isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)


def test_the_cpu_id_tells_apart_cpus_a_vm_names_alike():
    from dlbricks_gen.runtime.core.machine import _cpuinfo

    zen = "processor\t: {p}\nvendor_id\t: AuthenticAMD\ncpu family\t: {f}\nmodel\t\t: {m}\n" \
          "model name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu avx2\n\n"
    zen3, zen5 = (_cpuinfo(zen.format(p=0, f=f, m=m) + zen.format(p=1, f=f, m=m)) for f, m in ((25, 1), (26, 2)))
    assert zen3["model"] == zen5["model"] == "AMD EPYC" and zen3["flags"] == ["avx2"]
    assert zen3["id"] == "AuthenticAMD family 25 model 1 stepping 1" != zen5["id"]
    arm = _cpuinfo("processor : 0\nFeatures : fp asimd\nCPU implementer : 0x41\nCPU variant : 0x3\n"
                   "CPU part : 0xd0c\nCPU revision : 1\n")
    assert arm["id"] == "implementer 0x41 part 0xd0c variant 0x3 revision 1" and arm["flags"] == ["asimd"]
    assert _cpuinfo("")["id"] is None
