"""Real exporter output (tests/fixtures/, made by make_fixtures.py with torch and transformers):
every fixture lowers or fails with one clear line, and every brick of every fixture is a valid
ONNX graph that ONNX Runtime loads."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
from conftest import FIXTURES

from dlbricks_gen.frontend import ShapeOptions, load_model
from dlbricks_gen.ir.spec import brick_spec
from dlbricks_gen.passes.partition import partition
from dlbricks_gen.runtime.core.spec import build_model

OPTIONS = ShapeOptions(batch=1, dims=(("sequence_length", 8),))
LOWERED = {
    "torchscript_cnn": {"Conv", "Gemm", "GlobalAveragePool"},
    "dynamo_cnn": {"Conv", "Gemm", "ReduceMean"},
    "external_data_cnn": {"Conv", "Gemm"},
    "hf_bert_tiny": {"MatMul", "Softmax", "Erf"},
    "hf_gpt2_tiny": {"Gemm", "Softmax", "Tanh"},
    "hf_vit_tiny": {"Conv", "MatMul", "Softmax"},
    "opset7_mlp": {"Gemm", "BatchNormalization"},
    "ml_domain": {"ai.onnx.ml.Normalizer", "ai.onnx.ml.LinearClassifier"},
    "ms_domain": {"com.microsoft.Attention", "com.microsoft.SkipLayerNormalization"},
}
# What the recorded run (random inputs by the data policy) shows each control flow fixture doing.
CONTROL_FLOW = {"control_flow_if": "If took then_branch", "loop": "Loop ran 0 times", "scan": "Scan ran 8 times"}
SHAPE_OPS = {"Shape", "Constant", "Unsqueeze", "ConstantOfShape", "Identity"}  # Concat is real in ViT


@pytest.mark.parametrize("name", sorted(LOWERED))
def test_fixture_lowers_without_shape_arithmetic(name: str):
    model = load_model(FIXTURES / f"{name}.onnx", FIXTURES, OPTIONS)
    ops = {n.layer.qualified_op for n in model.nodes}
    assert LOWERED[name] <= ops
    assert not ops & SHAPE_OPS, ops & SHAPE_OPS
    for node in model.nodes:
        assert all(t is not None and all(d >= 0 for d in t.shape) for t in node.layer.outputs if t)


@pytest.mark.parametrize("name", sorted(CONTROL_FLOW))
def test_control_flow_fixtures_lower_as_they_ran(name: str):
    model = load_model(FIXTURES / f"{name}.onnx", FIXTURES, OPTIONS)
    assert CONTROL_FLOW[name] in {text for _, text in model.assumed}
    assert model.assumed[0][0] == "recorded run"
    assert not {"If", "Loop", "Scan"} & {n.layer.op_type for n in model.nodes}


def test_shape_arithmetic_of_transformer_exports_is_folded():
    bert = load_model(FIXTURES / "hf_bert_tiny.onnx", FIXTURES, OPTIONS)
    gpt2 = load_model(FIXTURES / "hf_gpt2_tiny.onnx", FIXTURES, OPTIONS)
    assert bert.folded > 150 and len(bert.nodes) < 130  # 341 exported nodes
    assert gpt2.folded > 350 and len(gpt2.nodes) < 140  # 544 exported nodes
    for model in (bert, gpt2):
        assert "Concat" not in {n.layer.op_type for n in model.nodes}  # only shape arithmetic


@pytest.mark.parametrize("granularity", [1, 3])
def test_every_fixture_brick_loads_in_onnxruntime(granularity: int):
    models = [load_model(FIXTURES / f"{name}.onnx", FIXTURES, OPTIONS) for name in sorted(LOWERED)]
    parts = partition(models, granularity)
    for digest, brick in parts.bricks:
        model = build_model(brick_spec(digest, brick))
        onnx.checker.check_model(model)
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
