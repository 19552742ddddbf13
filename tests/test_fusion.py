"""compile (--fusion, the default): the partitioner never cuts inside a group ONNX Runtime fuses, and H counts
fused kernels (the groups are learned from ONNX Runtime, so this runs it on a small model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import const, make_model, weight
from onnx import TensorProto, helper
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.frontend import ShapeOptions, load_model
from dlbricks_gen.passes.fusion import _leaves_and_returns, fused_groups, fusion_units
from dlbricks_gen.passes.partition import consumers

runner = CliRunner()
CONV_BN_RELU = ["Conv", "BatchNormalization", "Relu"]


def conv_net(blocks: int = 2, c: int = 4) -> onnx.ModelProto:
    """`blocks` x (Conv, BatchNormalization, Relu), then Flatten and MatMul + Add."""
    nodes, inits, x = [], [], "x"
    for k in range(blocks):
        nodes += [
            helper.make_node("Conv", [x, f"w{k}"], [f"c{k}"], pads=[1, 1, 1, 1], name=f"conv{k}"),
            helper.make_node("BatchNormalization", [f"c{k}", f"s{k}", f"b{k}", f"m{k}", f"v{k}"],
                             [f"n{k}"], name=f"bn{k}"),
            helper.make_node("Relu", [f"n{k}"], [f"r{k}"], name=f"relu{k}"),
        ]
        inits += [weight(f"w{k}", (c, c, 3, 3), k), weight(f"s{k}", (c,), k), weight(f"b{k}", (c,), k),
                  weight(f"m{k}", (c,), k),
                  onnx.numpy_helper.from_array(np.full(c, 0.5, np.float32), f"v{k}")]
        x = f"r{k}"
    nodes += [helper.make_node("Flatten", [x], ["f"], name="flatten"),
              helper.make_node("MatMul", ["f", "fc_w"], ["mm"], name="fc"),
              helper.make_node("Add", ["mm", "fc_b"], ["y"], name="fc_bias")]
    inits += [weight("fc_w", (c * 8 * 8, 10)), weight("fc_b", (10,))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])]
    return make_model(nodes, inputs, outputs, inits)


def compile_fused(models: Path, out: Path, h: int) -> dict:
    result = runner.invoke(app, ["compile", str(models), "-o", str(out), "-H", str(h), "--fusion"])
    assert result.exit_code == 0, result.output
    return json.loads((out.parent / f"{out.name}.plan.json").read_text())


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fusion_models")
    onnx.save(conv_net(), str(d / "convnet.onnx"))
    return d


def instance_ops(plan: dict) -> list[list[str]]:
    (model,) = plan["models"]
    return [plan["bricks"][i["brick"]]["ops"] for i in model["instances"]]


def test_fused_groups_are_never_cut(models: Path, tmp_path: Path):
    plan = compile_fused(models, tmp_path / "h1", 1)
    ops = instance_ops(plan)
    assert sum(map(len, ops)) == plan["models"][0]["layers"] == 9  # every layer, once
    assert ops.count(CONV_BN_RELU) == 2  # each block is one fused kernel: one brick at H=1
    assert ["MatMul", "Add"] in ops  # MatMul + Add is one Gemm


def test_h_counts_fused_kernels(models: Path, tmp_path: Path):
    kernels_h1 = len(instance_ops(compile_fused(models, tmp_path / "h1", 1)))
    ops_h2 = instance_ops(compile_fused(models, tmp_path / "h2", 2))
    assert CONV_BN_RELU * 2 in ops_h2  # two kernels, six layers, one brick at H=2
    assert len(ops_h2) == (kernels_h1 + 1) // 2
    plain = runner.invoke(app, ["compile", str(models), "-o", str(tmp_path / "plain"), "-H", "2", "--no-fusion"])
    assert plain.exit_code == 0, plain.output
    plain_ops = instance_ops(json.loads((tmp_path / "plain.plan.json").read_text()))
    assert max(map(len, plain_ops)) == 2  # with --no-fusion, H counts layers


def test_fusion_is_the_default(models: Path, tmp_path: Path):
    result = runner.invoke(app, ["compile", str(models), "-o", str(tmp_path / "d"), "-H", "1"])
    assert result.exit_code == 0, result.output
    assert instance_ops(json.loads((tmp_path / "d.plan.json").read_text())) == \
        instance_ops(compile_fused(models, tmp_path / "f", 1))


def test_fused_suite_is_the_same_twice(models: Path, tmp_path: Path):
    first = compile_fused(models, tmp_path / "a", 2)
    second = compile_fused(models, tmp_path / "b", 2)
    assert first == second
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def masked_layers() -> onnx.ModelProto:
    """Three "layers" each adding Where(mask, 0, -inf) to their input, as a TorchScript-exported
    BERT does: ONNX Runtime drops the no-op Expand the mask passes through (after an And whose
    output shape it knows) and merges the two identical Where nodes (keeping the last), so the mask ops and the
    first two layers' Adds become one "group" that the first layer's Relu lies between."""
    mask_shape = const("shape", [1, 4])
    zero = onnx.numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    ninf = onnx.numpy_helper.from_array(np.full(1, -np.inf, np.float32), "ninf")
    true = onnx.numpy_helper.from_array(np.ones((1, 4), np.bool_), "true")
    nodes = [helper.make_node("And", ["true", "m"], ["t"], name="and"),
             helper.make_node("Expand", ["t", "shape"], ["e"], name="expand")]
    x = "x"
    for k in range(3):
        nodes += [helper.make_node("Where", ["e", "zero", "ninf"], [f"w{k}"], name=f"where{k}"),
                  helper.make_node("Add", [x, f"w{k}"], [f"a{k}"], name=f"add{k}"),
                  helper.make_node("Relu", [f"a{k}"], [f"r{k}"], name=f"relu{k}")]
        x = f"r{k}"
    nodes += [helper.make_node("MatMul", [x, "fc_w"], ["mm"], name="fc"),  # fused into a Gemm
              helper.make_node("Add", ["mm", "fc_b"], ["y"], name="fc_bias")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
              helper.make_tensor_value_info("m", TensorProto.BOOL, [1, 4])]
    return make_model(nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                      [mask_shape, zero, ninf, true, weight("fc_w", (4, 4)), weight("fc_b", (4,))])


def test_a_group_that_a_path_leaves_and_reenters_is_split_not_the_whole_model(tmp_path: Path):
    onnx.save(masked_layers(), str(tmp_path / "masked.onnx"))
    model = load_model(tmp_path / "masked.onnx", tmp_path, ShapeOptions(batch=1))
    groups = fused_groups(model)
    used_by = consumers(model)
    for g in set(groups):  # every group left is convex: it can be one brick
        members = {i for i, x in enumerate(groups) if x == g}
        assert not _leaves_and_returns(model, members, used_by), ([str(n) for n in model.nodes], groups)
    _, units = fusion_units([model])
    assert len(units[model.name]) < len(model.nodes)  # the rest still fuses: no one-layer-per-unit fallback
