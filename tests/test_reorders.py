"""Layout conversions: read from ONNX Runtime's own optimized graph, kept per brick instance in
the plan, and used by the estimator to remove only the reorders the model does not do."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from conftest import make_model, weight
from onnx import TensorProto, helper

from dlbricks_gen.estimate.model import estimate
from dlbricks_gen.frontend import ShapeOptions, lower_proto
from dlbricks_gen.ir import ModelPlan
from dlbricks_gen.passes.layout import conversions, kept_shares
from dlbricks_gen.passes.partition import plan_model
from dlbricks_gen.passes.plan import BrickInfo, Plan, load_plan
from dlbricks_gen.results.load import brick_result
from dlbricks_gen.workflows.compile import Recipe, assemble, layout_conversions


def conv_chain_then_flatten() -> onnx.ModelProto:
    """Conv -> Relu -> Conv (one NCHWc region), then Flatten -> MatMul, which leave it."""
    c = 32
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="conv2"),
        helper.make_node("Flatten", ["c2"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "w3"], ["y"], name="fc"),
    ]
    inits = [weight("w1", (c, c, 3, 3)), weight("w2", (c, c, 3, 3)), weight("w3", (c * 8 * 8, 10))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    return make_model(nodes, [x], [y], inits)


def lowered():
    return lower_proto(conv_chain_then_flatten(), "m", "m.onnx", ShapeOptions(batch=1))


def test_the_runtime_says_where_the_model_leaves_its_nchwc_region():
    model = lowered()
    found = conversions(model)
    assert found is not None
    names = [n.outputs[0] for n in model.nodes]
    # The model converts once into the region and once out of it, at the Flatten: not between
    # the two convolutions (ONNX Runtime fuses the Relu into the first one).
    assert found.out_of == {names[2]}
    assert found.into <= {"x"}
    plan, _ = plan_model(model, 1)
    kept = kept_shares(model, plan.spans({d: 1 for d in plan.instances}), found)
    assert kept[2][1] == 1.0  # conv2's output edge is a real conversion
    assert kept[0][1] == kept[1][1] == 0.0 and kept[1][0] == 0.0  # inside the region: none


def test_a_model_without_nchwc_ops_has_no_conversions():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight("w", (4, 4))])
    assert conversions(lower_proto(proto, "mm", "mm.onnx", ShapeOptions())) is None


def test_the_plan_keeps_the_shares_and_reads_plans_without_them(tmp_path: Path):
    models = [lowered()]
    suite = assemble(models, Recipe(1, ShapeOptions(batch=1)), layouts=layout_conversions(models))
    path = tmp_path / "p.json"
    path.write_text(suite.plan)
    plan = load_plan(path)
    assert plan.models[0].kept_reorders == suite.partition.models[0].kept_reorders
    assert len(plan.models[0].kept_reorders) == len(plan.models[0].instances)
    data = json.loads(suite.plan)
    for instance in data["models"][0]["instances"]:
        del instance["kept_reorders"]
    path.write_text(json.dumps(data))
    assert load_plan(path).models[0].kept_reorders == ()
    for instance in data["models"][0]["instances"]:
        instance["kept_reorders"] = [0.0, 0.0]
    data["models"][0]["instances"][0]["kept_reorders"] = [2.0, 0.0]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="shares between 0 and 1"):
        load_plan(path)


def conv_hardswish_residual() -> onnx.ModelProto:
    """Conv -> HardSwish -> Conv -> Add(residual) -> Relu: at level "all" ONNX Runtime runs the
    HardSwish as the first convolution's activation, the Add as the second one's sum input and
    the Relu as its activation; the "extended" level (what --fusion groups by) keeps them apart."""
    c = 32
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="conv1"),
        helper.make_node("HardSwish", ["c1"], ["h1"], name="hswish"),
        helper.make_node("Conv", ["h1", "w2"], ["c2"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], name="conv2"),
        helper.make_node("Add", ["c2", "h1"], ["a"], name="residual"),
        helper.make_node("Relu", ["a"], ["y"], name="relu"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 8, 8])
    return make_model(nodes, [x], [y], [weight("w1", (c, c, 3, 3)), weight("w2", (c, c, 3, 3))], opset=14)


def test_the_runtime_says_which_layers_run_inside_an_nchwc_convolution(tmp_path: Path):
    model = lower_proto(conv_hardswish_residual(), "m", "m.onnx", ShapeOptions(batch=1))
    ops = [n.layer.op_type for n in model.nodes]
    found = conversions(model)
    assert found is not None
    assert sorted(ops[i] for i in found.absorbed) == ["Add", "HardSwish", "Relu"]
    assert conversions(lowered()).absorbed == frozenset()  # Flatten, MatMul: kernels of their own
    models = [model]
    suite = assemble(models, Recipe(1, ShapeOptions(batch=1)), layouts=layout_conversions(models))
    flags = suite.partition.models[0].absorbed
    assert [ops[k] for k, f in enumerate(flags) if f] == ["HardSwish", "Add", "Relu"]
    path = tmp_path / "p.json"
    path.write_text(suite.plan)
    assert load_plan(path).models[0].absorbed == flags
    data = json.loads(suite.plan)
    data["models"][0]["instances"][0]["absorbed"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="absorbed must be true or false"):
        load_plan(path)


def test_an_absorbed_instance_adds_the_share_measured_for_it():
    """Inside the convolution a fused layer costs the share the runtime measured on the target
    (runtime/core/fused.py); without a measured share it counts as its brick; an untrusted
    share above 1 counts as 1."""
    hardswish = result("h", 0.5, 0.0, 0.0)
    hardswish["calibration"]["fused"] = {"pattern": "HardSwish", "share": 0.4}
    res = {"a": brick_result(result("a", 1.0, 0.0, 0.0), "median"), "h": brick_result(hardswish, "median")}
    plan = Plan("s", 1, {"a": BrickInfo(1, ("Conv",)), "h": BrickInfo(1, ("HardSwish",))},
                (ModelPlan("m", "m.onnx", 2, ("a", "h"), ((0, 1),), ((0.0, 0.0), (0.0, 0.0)),
                           absorbed=(False, True)),), ())
    got = estimate(plan, res)[0]
    assert got.calibrated == pytest.approx(1.0 + 0.4 * 0.5)
    assert got.sequential == pytest.approx(1.5)  # the plain sum still counts every brick
    apart = replace(plan, models=(replace(plan.models[0], absorbed=()),))
    assert estimate(apart, res)[0].calibrated == pytest.approx(1.5)
    unmeasured = {**res, "h": brick_result(result("h", 0.5, 0.0, 0.0), "median")}
    assert estimate(plan, unmeasured)[0].calibrated == pytest.approx(1.5)
    hardswish["calibration"]["fused"]["share"] = 7.0
    assert estimate(plan, {**res, "h": brick_result(hardswish, "median")})[0].calibrated == pytest.approx(1.5)


def test_the_runtime_measures_what_a_fused_layer_costs_inside_a_convolution():
    """On the CPU at hand, real ONNX Runtime sessions: every pattern's share lies in [0, 1], the
    probe's layers run inside the convolution where the runtime has its NCHWc layout, and a
    fusable brick's result carries its pattern's share (other bricks none)."""
    from dlbricks_gen.runtime.backends.onnxruntime import measure_model
    from dlbricks_gen.runtime.core import fused
    from dlbricks_gen.runtime.core.settings import Settings

    shares = fused.fused_shares(1, 1, "all", True)
    assert set(shares) == set(fused.PATTERNS) and all(0.0 <= s <= 1.0 for s in shares.values())
    assert fused.fused_shares(1, 1, "extended") == dict.fromkeys(fused.PATTERNS, 1.0)  # nothing fuses
    pair, _ = fused.probe_graphs(("HardSwish",))
    optimized = tmp_optimized(pair)
    if any(n.domain == "com.microsoft.nchwc" for n in optimized.node):
        assert not {"HardSwish", "HardSigmoid", "Mul"} & {n.op_type for n in optimized.node}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])
    brick = make_model([helper.make_node("HardSwish", ["x"], ["y"], name="h")], [x], [y], [], opset=14)
    cal = measure_model(brick, Settings(quick=True), kind="brick", id="h")["calibration"]
    assert cal["fused"] == {"pattern": "HardSwish", "share": shares["HardSwish"]}
    cal = measure_model(conv_hardswish_residual(), Settings(quick=True), kind="brick", id="c")["calibration"]
    assert "fused" not in cal


def test_a_run_measures_the_fused_shares_once_for_all_its_processes(tmp_path: Path, monkeypatch):
    """With the run's build cache, the first process that needs the shares measures them (real
    probe sessions) and writes them there; a later process of the run reads them instead of
    probing, unless what it finds is not a set of shares in [0, 1]. The cache's clearing
    removes the file."""
    from dlbricks_gen.runtime.core import buildcache, fused

    cache = buildcache.BuildCache(tmp_path / "cache")
    monkeypatch.setattr(fused, "_SHARES", {})  # a fresh process
    measured = fused.fused_shares(1, 1, "all", True, cache)
    stored = cache.path(f"{buildcache.SHARES}-1-1-all-quick")
    assert json.loads(stored.read_text()) == measured
    probes: list[int] = []
    monkeypatch.setattr(fused, "_SHARES", {})  # the run's next process
    monkeypatch.setattr(fused, "shares", lambda *a: probes.append(1) or (dict.fromkeys(fused.PATTERNS, 0.5), {}))
    assert fused.fused_shares(1, 1, "all", True, cache) == measured and probes == []
    stored.write_text(json.dumps({**measured, "Add": 7.0}))  # not a share: measured anew
    monkeypatch.setattr(fused, "_SHARES", {})
    assert fused.fused_shares(1, 1, "all", True, cache) == dict.fromkeys(fused.PATTERNS, 0.5) and probes == [1]
    buildcache.clear(cache.directory)
    assert not cache.directory.exists()


def test_cold_copies_at_two_threads_are_new_sessions_whose_threads_sleep_when_idle():
    """At one thread the brick's own session is the warm copy; at two every copy is made anew
    with intra-op spinning off (idle spinning pools of 15 copies doubled the timed one's time),
    so warm and cold are timed on like sessions, and the record stays complete."""
    from dlbricks_gen.runtime.core.cold import cold_record, copies
    from dlbricks_gen.runtime.core.data import input_feeds
    from dlbricks_gen.runtime.core.session import make_session
    from dlbricks_gen.runtime.core.settings import Settings
    from dlbricks_gen.runtime.core.spec import model_inputs

    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], [weight("w", (256, 256))])
    data = proto.SerializeToString()
    one, two = Settings(quick=True), Settings(intra_op_threads=2, quick=True)
    own = make_session(data, one)
    assert copies(own, data, one, 3)[0] is own
    made = copies(own, data, two, 3)
    assert len(made) == 3 and own not in made
    assert all(s.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
               for s in made)
    record = cold_record(proto, data, input_feeds(model_inputs(proto)), two, make_session(data, two))
    if record["copies"] > 1:  # 256 KiB of weights: measured near where twice the L2 exceeds them
        assert record["warm_s"] > 0 and record["cold_s"] > 0


def tmp_optimized(model_bytes: bytes) -> onnx.GraphProto:
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(tmp) / "o.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        return onnx.load(options.optimized_model_filepath).graph


def result(brick: str, seconds: float, reorder_in: float, reorder_out: float) -> dict:
    profile = {"calls": 4, "run_s": 1.0, "kernels_s": {"Conv": 0.5, "ReorderInput": reorder_in,
                                                       "ReorderOutput": reorder_out},
               "boundary_s": reorder_in + reorder_out}
    return {"id": brick, "status": "ok", "stats": {"median": seconds},
            "calibration": {"null_call_s": 0.0, "node_s": 0.0, "profile": profile}}


def test_the_estimate_removes_only_the_conversions_the_model_does_not_do():
    # Two one-conv instances; the model converts out of NCHWc after the second only.
    res = {"a": brick_result(result("a", 1.0, 0.2, 0.1), "median")}
    plan = Plan("s", 1, {"a": BrickInfo(1, ("Conv",))},
                (ModelPlan("m", "m.onnx", 2, ("a", "a"), ((0, 1),), ((0.0, 0.0), (0.0, 1.0))),), ())
    layout = estimate(plan, res)[0]
    assert layout.calibrated == pytest.approx((1.0 - 0.3) + (1.0 - 0.2))
    unknown = replace(plan, models=(replace(plan.models[0], kept_reorders=()),))
    assert estimate(unknown, res)[0].calibrated == pytest.approx(2 * 0.7)  # every reorder removed
    assert layout.sequential == pytest.approx(2.0)


def test_the_kernels_variant_counts_a_profiled_brick_at_its_kernels_share():
    data = result("a", 1.0, 0.2, 0.1)  # kernels 0.8 of a profiled run of 1.0
    data["calibration"].update(null_call_s=0.05, node_s=0.01)
    res = {"a": brick_result(data, "median")}
    plan = Plan("s", 1, {"a": BrickInfo(1, ("Conv",))},
                (ModelPlan("m", "m.onnx", 1, ("a",), (), ((0.0, 1.0),)),), ())
    assert estimate(plan, res)[0].calibrated == pytest.approx(1.0 - 0.2 - 0.04 + 0.04)
    # kernels: 0.8 x 1.0, less the ReorderInput the model does not do, plus one node
    assert estimate(plan, res, kernels=True)[0].calibrated == pytest.approx(0.8 - 0.2 + 0.01 + 0.04)


def test_cache_sizes_are_read_from_sysfs(tmp_path: Path):
    from dlbricks_gen.runtime.core.machine import cache_sizes

    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                                 ("2", "Unified", "2048K"), ("3", "Unified", "480M")]):
        d = tmp_path / f"index{index}"
        d.mkdir()
        (d / "level").write_text(level)
        (d / "type").write_text(kind)
        (d / "size").write_text(size + "\n")
    assert cache_sizes(tmp_path) == {"l1d": 48 << 10, "l2": 2 << 20, "l3": 480 << 20}
    assert cache_sizes(tmp_path / "missing") == {}


def test_copies_exceed_twice_the_cache_and_are_bounded():
    from dlbricks_gen.runtime.core.cold import FAR_L2, MAX_COLD_BYTES, MAX_COPIES, copies_needed, far_copies

    assert FAR_L2 * (2 << 20) // MAX_COPIES == 2 << 20  # the far span is in reach of 2 MiB bricks (L2 2 MiB)

    l2 = 2 << 20
    assert copies_needed(1 << 20, l2) == 4
    assert copies_needed(5 << 20, l2) == 1  # one copy already exceeds the near span
    assert copies_needed(1 << 10, l2) == 1  # MAX_COPIES cannot reach it: not measured
    assert copies_needed(4 * l2 // MAX_COPIES, l2) == MAX_COPIES // 2
    assert copies_needed(1 << 20, 0) == 1  # cache size unknown: not measured
    assert far_copies(2 << 20, l2) == MAX_COPIES  # 32 MiB of copies of a 2 MiB brick
    assert far_copies(5 << 20, l2) == 7
    assert far_copies(FAR_L2 * l2, l2) == 2  # beyond the span alone: alternate two copies
    assert far_copies(1 << 20, l2) == 1  # would take 32 copies
    assert far_copies(MAX_COLD_BYTES, l2) == 1  # two copies would exceed the memory bound


def test_a_brick_is_measured_cold_by_rotating_real_sessions():
    from dlbricks_gen.runtime.backends.onnxruntime import measure_model
    from dlbricks_gen.runtime.core.cold import copies_needed, far_copies
    from dlbricks_gen.runtime.core.machine import cache_sizes
    from dlbricks_gen.runtime.core.results import validate_result
    from dlbricks_gen.runtime.core.settings import Settings

    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])], [weight("w", (512, 512))])
    data = measure_model(proto, Settings(quick=True), kind="brick", id="b")
    cold = data["calibration"]["cold"]
    assert cold["footprint_bytes"] == 512 * 512 * 4  # the weights, not the input
    l2 = cache_sizes().get("l2", 0)
    # the near span: copies over twice the L2 (a 1 MiB brick on a 512 KiB L2 already is, and
    # is not measured near); on every L2 of 128 KiB to 8 MiB one span or both are measured
    assert copies_needed(cold["footprint_bytes"], l2) > 1 or far_copies(cold["footprint_bytes"], l2) > 1 or not l2
    if copies_needed(cold["footprint_bytes"], l2) > 1:
        assert cold["copies"] > 1 and cold["warm_s"] > 0 and cold["cold_s"] > 0
    if far_copies(cold["footprint_bytes"], l2) > 1:  # and the far span (at most MAX_COPIES copies)
        assert cold["far"]["copies"] > 1 and cold["far"]["cold_s"] > 0
    assert validate_result(data) == []


def test_the_cold_ratio_applies_only_to_models_whose_weights_exceed_l2():
    data = result("a", 1.0, 0.0, 0.0)
    data["calibration"]["cold"] = {"copies": 4, "footprint_bytes": 1 << 20, "warm_s": 1e-3, "cold_s": 1.5e-3}
    data["machine"] = {"caches": {"l2": 2 << 20}}
    res = {"a": brick_result(data, "median")}
    small = ModelPlan("m", "m.onnx", 1, ("a",), (), (), weight_bytes=1 << 20)
    large = replace(small, weight_bytes=4 << 20)
    plan = Plan("s", 1, {"a": BrickInfo(1, ("Conv",))}, (small, large), ())
    warm, cold = estimate(plan, res)
    assert warm.calibrated == pytest.approx(1.0) and cold.calibrated == pytest.approx(1.5)
    assert warm.sequential == cold.sequential == pytest.approx(1.0)  # the plain sum is as measured



def test_a_model_beyond_the_far_span_takes_the_far_ratio_else_the_near_one():
    from dlbricks_gen.runtime.core.cold import FAR_MODEL_L2

    l2 = 2 << 20
    data = result("a", 1.0, 0.0, 0.0)
    data["calibration"]["cold"] = {"copies": 4, "footprint_bytes": 1 << 20, "warm_s": 1e-3, "cold_s": 1.5e-3,
                                   "far": {"copies": 16, "cold_s": 2e-3}}
    data["machine"] = {"caches": {"l2": l2}}
    near_only = {**data, "calibration": {**data["calibration"], "cold": {
        k: v for k, v in data["calibration"]["cold"].items() if k != "far"}}}
    small = ModelPlan("m", "m.onnx", 1, ("a",), (), (), weight_bytes=4 << 20)
    large = replace(small, name="big", weight_bytes=FAR_MODEL_L2 * l2 + 1)
    plan = Plan("s", 1, {"a": BrickInfo(1, ("Conv",))}, (small, large), ())
    near, far = estimate(plan, {"a": brick_result(data, "median")})
    assert near.calibrated == pytest.approx(1.5) and far.calibrated == pytest.approx(2.0)
    _, fallback = estimate(plan, {"a": brick_result(near_only, "median")})
    assert fallback.calibrated == pytest.approx(1.5)  # far span not measured: the near ratio


def test_kernel_gap_profiles_a_model_against_its_bricks(tmp_path: Path):
    import sys

    from dlbricks_gen.workflows.compile import compile_models

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import kernel_gap

    models = tmp_path / "models"
    models.mkdir()
    onnx.save(conv_hardswish_residual(), models / "m.onnx")
    suite = tmp_path / "suite"
    compile_models(models, suite, tmp_path / "suite.plan.json", 1, ShapeOptions(batch=1))
    found = kernel_gap.compare(models, suite, None, 3)["m"]
    assert "Conv" in found["model"]["kernels"]  # ONNX Runtime's own kernels, profiled
    assert found["absorbed"] == [False, True, False, True, True]
    assert all(b["wall_s"] > 0 and b["kernels"] for b in found["bricks"].values())
    before, after = kernel_gap.kernel_estimates(found)
    assert 0 < after < before
    assert any(line.startswith("kernels as estimated") for line in kernel_gap.table("m", found))


def test_a_cold_rotation_times_every_copy_a_whole_rotation_after_its_last_use():
    from dlbricks_gen.runtime.core import cold

    log: list[int] = []
    calls = [lambda k=k: log.append(k) for k in range(12)]
    cold.measure_cold(calls, 3, 12)
    first, timed = log[:12], log[12:]
    assert first == list(range(12))  # every copy's first call, in order
    per_round = cold.CALLS * 3  # warm, near, far
    far = [k for r in range(cold.ROUNDS) for k in timed[r * per_round + 2 * cold.CALLS:(r + 1) * per_round]]
    assert far == [k % 12 for k in range(cold.ROUNDS * cold.CALLS)]  # one rotation over all copies, not 0-4 each round
    near = [k for r in range(cold.ROUNDS) for k in timed[r * per_round + cold.CALLS:r * per_round + 2 * cold.CALLS]]
    assert near == [k % 3 for k in range(cold.ROUNDS * cold.CALLS)]


def test_a_brick_whose_activations_outweigh_its_weights_is_not_rotated():
    from dlbricks_gen.runtime.backends.onnxruntime import measure_model
    from dlbricks_gen.runtime.core.cold import activation_bytes, footprint
    from dlbricks_gen.runtime.core.settings import Settings

    def conv(channels: int, side: int) -> onnx.ModelProto:
        nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")]
        shape = [1, channels, side, side]
        return make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                          [weight("w", (channels, channels, 3, 3))])

    wide = conv(128, 56)  # 0.6 MB of weights, 3.2 MB of input and output
    assert activation_bytes(wide) == 2 * 128 * 56 * 56 * 4 > footprint(wide) == 128 * 128 * 9 * 4
    cold = measure_model(wide, Settings(quick=True), kind="brick", id="b")["calibration"]["cold"]
    assert cold["copies"] == 1 and "far" not in cold and cold["footprint_bytes"] == footprint(wide)
    deep = conv(128, 4)  # the same weights, 16 KB of activations: rotated wherever the L2 is known
    assert activation_bytes(deep) < footprint(deep)


def test_an_embedding_table_counts_the_rows_its_gather_reads():
    """A Gather reads the rows its indices select, not its table: copies of a 10 MB embedding
    read at 16 positions are not rotated (a rotation would time rows that stay cached)."""
    from dlbricks_gen.runtime.backends.onnxruntime import measure_model
    from dlbricks_gen.runtime.core.cold import footprint
    from dlbricks_gen.runtime.core.settings import Settings

    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 16])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 128])
    lookup = make_model([helper.make_node("Gather", ["table", "ids"], ["y"], name="g")], [ids], [out],
                        [weight("table", (20000, 128))])
    assert footprint(lookup) == 16 * 128 * 4
    both = make_model([helper.make_node("Gather", ["table", "ids"], ["g"], name="g"),
                       helper.make_node("MatMul", ["g", "table2"], ["y"], name="m")], [ids], [out],
                      [weight("table", (20000, 128)), weight("table2", (128, 128))])
    assert footprint(both) == (16 + 128) * 128 * 4  # a MatMul reads all of its weights
    cold = measure_model(lookup, Settings(quick=True), kind="brick", id="b")["calibration"]["cold"]
    assert cold["copies"] == 1 and "far" not in cold and cold["footprint_bytes"] == 16 * 128 * 4
