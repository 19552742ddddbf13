"""The frontend: identity of layers, folding, shapes, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import branchy_mlp, const, make_model, residual_cnn, weight
from onnx import TensorProto, helper

from dlbricks_gen.frontend import FrontendError, ShapeOptions, load_model, lower_proto
from dlbricks_gen.ir import Kind
from dlbricks_gen.passes.partition import partition
from dlbricks_gen.workflows.compile import lower_all

B1 = ShapeOptions(batch=1)


def lower(model: onnx.ModelProto, options: ShapeOptions = B1):
    return lower_proto(model, "m", "m.onnx", options)


def test_equal_layers_with_different_weights_get_the_same_digest():
    a, b = lower(residual_cnn(seed=1)), lower(residual_cnn(seed=2))
    assert [n.layer for n in a.nodes] == [n.layer for n in b.nodes]
    pa, pb = partition([a], 1), partition([b], 1)
    assert [d for d, _ in pa.bricks] == [d for d, _ in pb.bricks]
    assert partition([a, b], 2).bricks == partition([a], 2).bricks


def test_different_shapes_or_attributes_get_different_layers():
    a = lower(residual_cnn(channels=8))
    b = lower(residual_cnn(channels=16))
    assert a.nodes[0].layer != b.nodes[0].layer


def test_shape_arithmetic_identity_and_dropout_are_folded_like_the_runtime():
    model = lower(residual_cnn())
    ops = [n.layer.op_type for n in model.nodes]
    assert ops == ["Conv", "BatchNormalization", "Relu", "Conv", "Add", "Reshape", "Relu"]
    assert model.folded == 5  # Shape, Gather, Unsqueeze, Concat, Dropout
    reshape = model.nodes[5].layer
    assert reshape.inputs[1].kind is Kind.CONSTANT and reshape.inputs[1].data == (1, -1)
    assert reshape.outputs[0].shape == (1, 8 * 16 * 16)


def test_weights_are_shapes_only_and_small_constants_are_values():
    conv = lower(residual_cnn()).nodes[0].layer
    assert conv.inputs[0].kind is Kind.ACTIVATION
    assert conv.inputs[1].kind is Kind.WEIGHT and conv.inputs[1].data is None
    assert conv.inputs[1].type.shape == (8, 8, 3, 3)


def test_schema_defaults_and_implicit_conv_attributes_are_filled_in():
    explicit = lower(residual_cnn()).nodes[0].layer  # conv1 states kernel_shape
    implicit = lower(residual_cnn()).nodes[3].layer  # conv2 does not
    assert explicit == implicit
    names = {a.name: a.value for a in explicit.attributes}
    assert names["group"] == 1 and names["strides"] == (1, 1) and names["auto_pad"] == "NOTSET"


def test_symbolic_dims_are_bound_or_reported_with_input_names():
    with pytest.raises(FrontendError) as err:
        lower(residual_cnn(batch="N"), ShapeOptions())
    assert "x (N)" in str(err.value) and "\n" not in str(err.value)
    by_dim = lower(residual_cnn(batch="N"), ShapeOptions(dims=(("N", 2),)))
    assert by_dim.nodes[0].layer.inputs[0].type.shape == (2, 8, 16, 16)
    by_shape = lower(residual_cnn(batch="N"), ShapeOptions(input_shapes=(("x", (3, 8, 16, 16)),)))
    assert by_shape.nodes[0].layer.inputs[0].type.shape == (3, 8, 16, 16)
    # --input-shape applies to the models of a folder that have the input (the command line
    # refuses, before any work, a name no model has: shapes.option_problems)
    kept = lower(residual_cnn(), ShapeOptions(batch=1, input_shapes=(("nope", (1,)),)))
    assert kept.nodes[0].layer.inputs[0].type.shape == (1, 8, 16, 16)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 10, b"hello, not onnx"])
def test_bad_files_fail_alone_with_one_line(tmp_path: Path, content: bytes):
    good = tmp_path / "good.onnx"
    onnx.save(branchy_mlp(), str(good))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    models, failed = lower_all(tmp_path, B1)
    assert [m.name for m in models] == ["good"]
    assert len(failed) == 1 and failed[0][0].endswith("bad.onnx")
    assert "bad.onnx" in failed[0][1] and "\n" not in failed[0][1]


def test_truncated_file_fails_with_one_line(tmp_path: Path):
    data = residual_cnn().SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    models, failed = lower_all(tmp_path, B1)
    assert not models and "cut.onnx" in failed[0][1]


def test_custom_domain_names_the_node():
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example", name="frob")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = make_model([node], [x], [y])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(FrontendError, match=r"node 'frob' \(Frobnicate\): custom domain"):
        lower(model)


def test_external_data_is_not_read_and_may_be_missing(tmp_path: Path):
    path = tmp_path / "ext.onnx"
    model = residual_cnn(channels=32)
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.data")
    full = load_model(path, tmp_path, B1)
    (tmp_path / "ext.data").unlink()
    missing = load_model(path, tmp_path, B1)
    assert [n.layer for n in missing.nodes] == [n.layer for n in full.nodes]


def test_external_small_constants_are_read_and_their_absence_is_named(tmp_path: Path):
    path = tmp_path / "all_ext.onnx"
    onnx.save_model(residual_cnn(), str(path), save_as_external_data=True,
                    location="all.data", size_threshold=0)
    assert load_model(path, tmp_path, B1).nodes[5].layer.inputs[1].data == (1, -1)
    (tmp_path / "all.data").unlink()
    with pytest.raises(FrontendError, match="all_ext.onnx: node .*not available"):
        load_model(path, tmp_path, B1)


def test_old_opset_is_refused_with_a_clear_message():
    model = branchy_mlp()
    model.opset_import[0].version = 6
    from dlbricks_gen.frontend.load import check_opsets

    with pytest.raises(FrontendError, match="opset 6 is older"):
        check_opsets(model, "old.onnx")


def test_large_integer_and_float_constants_follow_the_weight_policy():
    gather = helper.make_node("Gather", ["table", "x"], ["y"], axis=0, name="gather")
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])
    model = make_model([gather], [x], [y], [weight("table", (100, 8))])
    layer = lower(model).nodes[0].layer
    assert layer.inputs[0].kind is Kind.WEIGHT and layer.inputs[1].kind is Kind.ACTIVATION


def test_clip_bounds_are_kept_as_values():
    clip = helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = make_model([clip], [x], [y], [const("lo", 0.0, np.float32), const("hi", 6.0, np.float32)])
    layer = lower(model).nodes[0].layer
    assert layer.inputs[1].data == (0.0,) and layer.inputs[2].data == (6.0,)


def test_contrib_ops_get_shapes_from_onnxruntimes_inference():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
             helper.make_node("Gelu", ["a"], ["g"], domain="com.microsoft", name="gelu"),
             helper.make_node("Relu", ["g"], ["y"], name="relu")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], [weight("w", (8, 16))])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    gelu = lower(model).nodes[1].layer
    assert gelu.domain == "com.microsoft" and gelu.outputs[0].shape == (1, 16)


@pytest.mark.parametrize(("taken", "op"), [(True, "Relu"), (False, "Neg")])
def test_an_if_becomes_the_branch_it_takes_on_the_sample_input(taken: bool, op: str):
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="branch")
    model = make_model([node], [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    x = np.ones((1, 4), np.float32)
    lowered = lower_proto(model, "m", "m.onnx", ShapeOptions(), inputs={"c": np.array(taken), "x": x})
    assert [n.layer.op_type for n in lowered.nodes] == [op]
    assert ("branch", f"If took {'then' if taken else 'else'}_branch") in lowered.assumed


def test_model_local_functions_are_inlined(tmp_path: Path):
    body = [helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Neg", ["b"], ["c"])]
    fn = helper.make_function("local.fn", "ReluNeg", ["a"], ["c"], body,
                              [helper.make_opsetid("", 13)])
    node = helper.make_node("ReluNeg", ["x"], ["y"], domain="local.fn", name="call")
    model = make_model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model.opset_import.append(helper.make_opsetid("local.fn", 1))
    model.functions.append(fn)
    onnx.save(model, str(tmp_path / "f.onnx"))
    lowered = load_model(tmp_path / "f.onnx", tmp_path, B1)
    assert [n.layer.op_type for n in lowered.nodes] == ["Relu", "Neg"]


def test_the_newest_opset_lowers_and_its_bricks_load():
    import onnxruntime as ort

    from dlbricks_gen.ir.spec import brick_spec
    from dlbricks_gen.passes.partition import partition
    from dlbricks_gen.runtime.core.spec import build_model

    newest = onnx.defs.onnx_opset_version()
    model = lower(residual_cnn())  # opset 13 model ...
    proto = residual_cnn()
    proto.opset_import[0].version = newest  # ... re-declared at the newest opset onnx knows
    proto.ir_version = onnx.IR_VERSION
    newest_model = lower(proto)
    first, old = newest_model.nodes[0].layer, model.nodes[0].layer
    assert (first.op_type, first.inputs, first.outputs) == (old.op_type, old.inputs, old.outputs)
    assert first.since_version >= old.since_version  # the schema version is part of identity
    for digest, brick in partition([newest_model], 2).bricks:
        ort.InferenceSession(build_model(brick_spec(digest, brick)).SerializeToString(),
                             providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("shape, finding", [((8, 16, 16), "has rank 4, not 3"),
                                            ((1, 9, 16, 16), "dimension 1 of input 'x' is fixed at 8")])
def test_input_shapes_may_bind_symbols_not_change_rank_or_fixed_dims(shape, finding: str):
    with pytest.raises(FrontendError, match=finding) as err:
        lower(residual_cnn(batch="N"), ShapeOptions(input_shapes=(("x", shape),)))
    assert "--input-shape x=" in str(err.value)
