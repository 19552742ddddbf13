"""Decoy bricks: real bricks at other sizes of the suite, deterministic, measured, ignored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from dlbricks_gen.codegen.audit import audit_suite, brick_spec_of
from dlbricks_gen.estimate import model as est
from dlbricks_gen.frontend import ShapeOptions
from dlbricks_gen.passes.plan import load_plan
from dlbricks_gen.results import load as rl
from dlbricks_gen.runtime.core.spec import build_model
from dlbricks_gen.workflows.compile import compile_models


def compile_with_decoys(models: Path, out: Path, decoys: int):
    return compile_models(models, out, out.parent / f"{out.name}.plan.json", 1, ShapeOptions(batch=1),
                          audit=True, decoys=decoys)


def test_decoys_are_valid_bricks_with_real_sizes_known_only_to_the_plan(tiny_zoo: Path, tmp_path: Path):
    result = compile_with_decoys(tiny_zoo, tmp_path / "suite", 4)
    assert len(result.decoys) == 4 and result.audit.ok, result.audit
    plan = load_plan(result.plan_path)
    assert set(plan.decoys) == set(result.decoys) and set(plan.decoys) <= set(plan.bricks)
    assert not set(plan.decoys) & {d for m in plan.models for d in m.instances}
    suite = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert set(result.decoys) <= set(suite["bricks"]) and "decoy" not in json.dumps(suite)
    real_sizes = set()
    specs = {d: brick_spec_of((tmp_path / "suite" / "bricks" / f"{d}.py").read_text()) for d in suite["bricks"]}
    for digest, spec in specs.items():
        if digest not in result.decoys:
            real_sizes |= {tuple(t["shape"][2:]) for t in spec["inputs"] if len(t["shape"]) == 4}
    for digest in result.decoys:
        spec = specs[digest]
        assert "decoy" not in (tmp_path / "suite" / "bricks" / f"{digest}.py").read_text()
        sizes = {tuple(t["shape"][2:]) for t in spec["inputs"] if len(t["shape"]) == 4}
        assert sizes <= real_sizes, (spec["nodes"][0]["op_type"], sizes)
        ort.InferenceSession(build_model(spec).SerializeToString(), providers=["CPUExecutionProvider"])


def test_decoys_are_deterministic_and_measured_but_not_estimated(tiny_zoo: Path, tmp_path: Path):
    one = compile_with_decoys(tiny_zoo, tmp_path / "one", 3)
    two = compile_with_decoys(tiny_zoo, tmp_path / "two", 3)
    assert one.decoys == two.decoys and one.suite == two.suite
    assert compile_with_decoys(tiny_zoo, tmp_path / "none", 0).suite != one.suite
    decoy = one.decoys[0]
    results = tmp_path / "one" / "results"
    results.mkdir()
    done = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime.brick", f"bricks/{decoy}.py",
                           "--quick", "--suite", one.suite, "-o", str(results / f"{decoy}.json")],
                          cwd=tmp_path / "one", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    plan = load_plan(one.plan_path)
    loaded = rl.load_results([results], plan.suite, "median", known=set(plan.bricks))
    assert not loaded.problems and loaded.results[decoy].ok
    assert est.estimate(plan, loaded.results) == est.estimate(plan, {})
    assert audit_suite(tmp_path / "one", tiny_zoo).ok


def test_every_decoy_runs_as_the_real_bricks_do(tiny_zoo: Path, tmp_path: Path):
    """A decoy that fails on every run (a Reshape rebuilt at another size keeping its literal
    shape) tells the vendor it is a decoy: each one runs on the suite's seeded inputs."""
    from dlbricks_gen.passes.decoys import DEFAULT, Budget
    from dlbricks_gen.runtime.core.data import input_feeds
    from dlbricks_gen.runtime.core.spec import model_inputs

    budget = Budget.parse(DEFAULT)  # what compile adds by default
    result = compile_models(tiny_zoo, tmp_path / "suite", tmp_path / "suite.plan.json", 1,
                            ShapeOptions(batch=1), decoys=budget.count, decoy_share=budget.share)
    assert result.decoys
    for digest in result.decoys:
        spec = brick_spec_of((tmp_path / "suite" / "bricks" / f"{digest}.py").read_text())
        model = build_model(spec)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ops = [n["op_type"] for n in spec["nodes"]]
        try:
            session.run(None, input_feeds(model_inputs(model)))
        except Exception as exc:  # noqa: BLE001 - the assertion names the brick
            raise AssertionError(f"decoy {digest[:12]} ({ops}) fails: {exc}") from None


def test_a_convolution_whose_input_channels_do_not_fit_its_weights_is_no_decoy(tmp_path: Path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from dlbricks_gen.frontend import load_model
    from dlbricks_gen.passes.decoys import _runs
    from dlbricks_gen.passes.partition import consumers, make_brick

    def conv(channels: int, weight_channels: int, group: int = 1) -> Path:
        w = numpy_helper.from_array(np.zeros((8, weight_channels, 3, 3), np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=group)], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 6, 6])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = tmp_path / f"c{channels}_{weight_channels}_{group}.onnx"
        onnx.save(model, str(path))
        return path

    def brick(path: Path):
        model = load_model(path, tmp_path, ShapeOptions(batch=1))
        return make_brick(model, 0, 1, consumers(model))

    assert _runs(brick(conv(4, 4))) and _runs(brick(conv(8, 2, group=4)))
    assert not _runs(brick(conv(16, 4)))  # 16 input channels, weights for 4
    x = np.zeros((1, 16, 6, 6), np.float32)  # and it is so: ONNX Runtime fails such a brick on every run
    with pytest.raises(Exception):  # noqa: B017 - whichever error: a failure the vendor would see
        ort.InferenceSession(str(conv(16, 4)), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def test_a_convolution_keeps_its_kernel_when_its_span_is_rescaled(tmp_path: Path):
    """An 8-bit QDQ model's convolution reads its weights from a DequantizeLinear, so a span
    starting at it has the weights as an input: rescaling the span's sizes must leave them
    alone (a decoy of the INT8 corpus had kernel_shape 3x3 and 1x1 weights and failed on every
    run), and a convolution whose kernel does not fit its weights is no decoy."""
    from fractions import Fraction

    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from dlbricks_gen.frontend import load_model
    from dlbricks_gen.ir.spec import brick_spec
    from dlbricks_gen.passes.decoys import _runs, _scaled
    from dlbricks_gen.passes.partition import consumers, make_brick

    def conv(weight: list[int]) -> Path:
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8]),
             helper.make_tensor_value_info("w", TensorProto.FLOAT, weight)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = tmp_path / f"w{'x'.join(map(str, weight))}.onnx"
        onnx.save(model, str(path))
        return path

    def brick(path: Path):
        model = load_model(path, tmp_path, ShapeOptions(batch=1))
        return make_brick(model, 0, 1, consumers(model))

    spec = brick_spec("0" * 64, brick(conv([8, 4, 3, 3])))
    shapes = [t["shape"] for t in _scaled(spec, Fraction(1, 4))["inputs"]]
    assert shapes == [[1, 4, 2, 2], [8, 4, 3, 3]]  # the image shrinks, the kernel stays
    assert _runs(brick(conv([8, 4, 3, 3])))
    assert not _runs(brick(conv([8, 4, 1, 1])))
    feeds = {"x": np.zeros((1, 4, 8, 8), np.float32), "w": np.zeros((8, 4, 1, 1), np.float32)}
    with pytest.raises(Exception):  # noqa: B017 - and ONNX Runtime fails such a brick on every run
        ort.InferenceSession(str(conv([8, 4, 1, 1])), providers=["CPUExecutionProvider"]).run(None, feeds)
