"""8-bit models run channels-last: the values a QOperator model carries NHWC in ONNX Runtime are
given to and taken from its bricks NHWC, so that each brick runs the kernels the model runs
(an 8-bit MaxPool alone would run a slow NCHW kernel, a QLinearConv alone two transposes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from conftest import FIXTURES

from dlbricks_gen.frontend import ShapeOptions, load_model
from dlbricks_gen.ir import Brick
from dlbricks_gen.ir.canonical import brick_digest, brick_text
from dlbricks_gen.ir.spec import brick_spec
from dlbricks_gen.passes.layout import conversions
from dlbricks_gen.runtime.core.spec import build_model
from dlbricks_gen.workflows.compile import Recipe, assemble, fusion_groups, layout_conversions

B1 = ShapeOptions(batch=1)


@pytest.fixture(scope="module")
def qoperator():
    return load_model(FIXTURES / "qoperator_cnn.onnx", FIXTURES, B1)


@pytest.fixture(scope="module")
def bricks(qoperator) -> dict[str, Brick]:
    models, units = fusion_groups([qoperator], True)
    return dict(assemble(models, Recipe(1, B1), units, layouts=layout_conversions(models)).partition.bricks)


def kernels(brick: Brick, tmp: Path) -> list[str]:
    """The kernels ONNX Runtime (level "all") runs for the brick as the suite builds it."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp / "brick.onnx")
    ort.InferenceSession(build_model(brick_spec("b", brick)).SerializeToString(), options,
                         providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load_model(str(tmp / "brick.onnx")).graph.node]


def test_the_runtime_says_which_values_the_model_carries_channels_last(qoperator):
    found = conversions(qoperator)
    assert found is not None and found.nhwc
    by_name = {o: n for n in qoperator.nodes for o in n.outputs}
    pool = next(n for n in qoperator.nodes if n.layer.op_type == "MaxPool")
    assert pool.inputs[0] in found.nhwc and pool.outputs[0] in found.nhwc  # inside the region
    assert all(by_name[v].layer.outputs[0].dtype in ("UINT8", "INT8") for v in found.nhwc)
    quantize = qoperator.nodes[0]
    assert quantize.outputs[0] not in found.nhwc  # the model transposes there itself


def test_a_brick_runs_the_channels_last_kernels_the_model_runs(bricks, tmp_path: Path):
    (pool,) = [b for b in bricks.values() if b.ops == ("MaxPool",)]
    assert pool.nhwc_inputs == (0,) and pool.nhwc_outputs == (0,)
    assert kernels(pool, tmp_path) == ["NhwcMaxPool"]  # without the layout: the NCHW 8-bit MaxPool
    assert kernels(replace(pool, nhwc_inputs=(), nhwc_outputs=()), tmp_path) == ["MaxPool"]
    inner = [b for b in bricks.values() if b.ops == ("QLinearConv",) and b.nhwc_inputs and b.nhwc_outputs]
    assert inner and all("Transpose" not in kernels(b, tmp_path) for b in inner)  # no transposes of its own
    spec = brick_spec("b", pool)
    n, c, h, w = pool.inputs[0].shape
    assert spec["inputs"][0] == {"name": "in0", "dtype": pool.inputs[0].dtype, "shape": [n, h, w, c],
                                 "layout": "NHWC"}


def test_the_layout_is_part_of_a_bricks_identity_only_when_there(bricks):
    (pool,) = [b for b in bricks.values() if b.ops == ("MaxPool",)]
    plain = replace(pool, nhwc_inputs=(), nhwc_outputs=())
    assert "nhwc" not in brick_text(plain)  # every brick without one keeps its digest
    assert brick_text(pool).endswith("nhwc: in0, %0.0\n")
    assert brick_digest(pool) != brick_digest(plain)


def test_an_unknown_layout_is_refused(bricks):
    (pool,) = [b for b in bricks.values() if b.ops == ("MaxPool",)]
    spec = brick_spec("b", pool)
    spec["inputs"][0]["layout"] = "NCHW16c"
    with pytest.raises(ValueError, match="layout 'NCHW16c'"):
        build_model(spec)


def test_decoys_of_a_channels_last_model_have_nhwc_edges_too(qoperator):
    models, units = fusion_groups([qoperator], True)
    suite = assemble(models, Recipe(1, B1, decoys=12), units, layouts=layout_conversions(models))
    bricks = dict(suite.partition.bricks)
    assert suite.decoys
    assert any(bricks[d].nhwc_inputs or bricks[d].nhwc_outputs for d in suite.decoys)


def test_a_channels_last_suite_is_the_same_twice(qoperator):
    def files() -> dict[str, str]:
        models, units = fusion_groups([qoperator], True)
        return assemble(models, Recipe(1, B1), units, layouts=layout_conversions(models)).files

    first = files()
    assert any('"layout": "NHWC"' in text or "'layout': 'NHWC'" in text for text in first.values())
    assert first == files()
