"""Shapes from a real run, sample inputs (--inputs), control flow as it ran, and the refusals
that remain: real fixtures, real ONNX Runtime sessions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.frontend import FrontendError, ShapeOptions, load_model, lower_proto
from dlbricks_gen.passes.plan import load_plan

FIXTURES = Path(__file__).parent / "fixtures"
B1 = ShapeOptions(batch=1)
# The real Paddle export's inputs: -1 batch, symbolic image size (the feature map is the head's input)
PADDLE = ShapeOptions(input_shapes=(("hardswish_17.tmp_0", (2, 200, 2, 96)), ("x", (2, 3, 48, 192))))


def _image(scale: float) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((1, 3, 32, 32)) * scale).astype(np.float32)


def _kept_boxes(model) -> int:
    [last] = [n for n in model.nodes if n.layer.op_type == "Gemm"][-1:]
    return last.layer.outputs[0].shape[0]


def test_a_detector_box_count_is_the_one_of_the_sample_input(tmp_path: Path):
    sample = tmp_path / "image.npz"
    np.savez(sample, image=_image(3.0))
    given = load_model(FIXTURES / "detector_nonzero.onnx", FIXTURES, ShapeOptions(inputs=sample))
    random = load_model(FIXTURES / "detector_nonzero.onnx", FIXTURES, B1)
    assert _kept_boxes(given) == 2 and _kept_boxes(random) == 0  # what ONNX Runtime returns for each
    assert given.assumed == (("recorded run", "shapes from one inference on image.npz"),)
    assert "NonZero" in {n.layer.op_type for n in given.nodes}


@pytest.mark.parametrize("kind", ["npy", "pb"])
def test_sample_inputs_come_from_a_folder_of_npy_or_pb_files(tmp_path: Path, kind: str):
    folder = tmp_path / "samples"
    folder.mkdir()
    if kind == "npy":
        np.save(folder / "image.npy", _image(3.0))
    else:
        (folder / "image.pb").write_bytes(numpy_helper.from_array(_image(3.0), "image").SerializeToString())
    model = load_model(FIXTURES / "detector_nonzero.onnx", FIXTURES, ShapeOptions(inputs=folder))
    assert _kept_boxes(model) == 2


def test_a_recorded_run_beyond_max_bytes_is_refused():
    with pytest.raises(FrontendError, match=r"recording the shapes of every value needs .* --max-bytes"):
        load_model(FIXTURES / "detector_nonzero.onnx", FIXTURES, ShapeOptions(batch=1, max_bytes=25_000))


def test_minus_one_dims_are_symbolic_and_input_shape_binds_them():
    with pytest.raises(FrontendError, match=r"image \(dim 0 is -1\) \(bind them with"):
        load_model(FIXTURES / "paddle_minus1.onnx", FIXTURES, ShapeOptions())
    bound = ShapeOptions(input_shapes=(("image", (2, 3, 16, 16)),))
    model = load_model(FIXTURES / "paddle_minus1.onnx", FIXTURES, bound)
    assert model.nodes[-1].layer.outputs[0].shape == (2, 5) and not model.assumed
    assert load_model(FIXTURES / "paddle_minus1.onnx", FIXTURES, ShapeOptions(batch=3)).nodes[0].layer.inputs[0].type.shape[0] == 3


def test_a_loop_is_its_body_at_the_recorded_trip_count(tmp_path: Path):
    sample = tmp_path / "loop.npz"
    np.savez(sample, x=np.ones((1, 8), np.float32), steps=np.array(3, np.int64))
    model = load_model(FIXTURES / "loop.onnx", FIXTURES, ShapeOptions(inputs=sample))
    assert ("/Loop", "Loop ran 3 times") in model.assumed
    body = load_model(FIXTURES / "loop.onnx", FIXTURES, ShapeOptions(inputs=sample, batch=1))
    assert not {"Loop"} & {n.layer.op_type for n in body.nodes}
    np.savez(sample, x=np.ones((1, 8), np.float32), steps=np.array(6, np.int64))
    longer = load_model(FIXTURES / "loop.onnx", FIXTURES, ShapeOptions(inputs=sample))
    assert len(longer.nodes) > len(model.nodes)


def test_zero_size_dimensions_are_static():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 0, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 0, 4])])
    assert lower_proto(model, "m", "m.onnx", ShapeOptions()).nodes[0].layer.outputs[0].shape == (2, 0, 4)


def test_a_model_of_only_ai_onnx_ml_compiles():
    node = helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="L2")
    graph = helper.make_graph([node], "ml", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1)])
    assert [n.layer.qualified_op for n in lower_proto(model, "m", "m.onnx", ShapeOptions()).nodes] == \
        ["ai.onnx.ml.Normalizer"]


def test_optional_values_are_refused_naming_the_node():
    nodes = [helper.make_node("Optional", ["x"], ["o"], name="wrap"),
             helper.make_node("OptionalGetElement", ["o"], ["y"], name="unwrap")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2])], opset=18)
    with pytest.raises(FrontendError, match=r"node 'wrap' \(Optional\): optional-typed values are not supported"):
        lower_proto(model, "m", "m.onnx", ShapeOptions())


def test_compile_with_inputs_writes_what_was_assumed_into_the_plan(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("detector_nonzero.onnx", "control_flow_if.onnx"):
        onnx.save(onnx.load(FIXTURES / name), models / name)
    sample = tmp_path / "samples.npz"
    np.savez(sample, image=_image(3.0), x=np.ones((1, 8), np.float32))
    result = CliRunner().invoke(app, ["compile", str(models), "-o", str(tmp_path / "suite"),
                                      "--inputs", str(sample), "--batch", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "suite.plan.json").read_text())
    assert data["shapes"]["inputs"] == "samples.npz" and not data["failed"]
    plan = load_plan(tmp_path / "suite.plan.json")
    assert plan.assumed["detector_nonzero"][0] == ("recorded run", "shapes from one inference on samples.npz")
    assert any(a.startswith("If took") for _, a in plan.assumed["control_flow_if"])


def test_nested_control_flow_is_lowered_one_level_per_recorded_run():
    from hostile import nested_subgraph  # an If inside a Loop

    feeds = {"n": np.array(3, np.int64), "c": np.array(True), "x": np.ones((1, 4), np.float32)}
    model = lower_proto(nested_subgraph(), "m", "m.onnx", ShapeOptions(), inputs=feeds)
    assert ("outer_loop", "Loop ran 3 times") in model.assumed
    assert ("inner_if@outer_loop.2", "If took then_branch") in model.assumed
    assert [n.layer.op_type for n in model.nodes].count("Relu") == 3
    assert model.nodes[-1].layer.outputs[0].shape == (3, 1, 4)


@pytest.mark.parametrize(("name", "options"), [
    ("detector_nonzero", B1), ("qoperator_cnn", B1), ("control_flow_if", B1), ("scan", B1),
    ("paddle_minus1", ShapeOptions(batch=2)), ("realworld/nonzero_detector_dynamo", B1),
    ("realworld/cond_if_dynamo", B1), ("realworld/paddle_cls_minus1", PADDLE)])
def test_bricks_of_dynamic_fixtures_build_load_and_run(name: str, options: ShapeOptions):
    import onnxruntime as ort

    from dlbricks_gen.ir.spec import brick_spec
    from dlbricks_gen.passes.partition import partition
    from dlbricks_gen.runtime.core.data import input_feeds
    from dlbricks_gen.runtime.core.spec import build_model, model_inputs

    model = load_model(FIXTURES / f"{name}.onnx", FIXTURES, options)
    for digest, brick in partition([model], 2).bricks:
        built = build_model(brick_spec(digest, brick))
        session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
        session.run(None, input_feeds(model_inputs(built)))


def test_a_recorded_run_reads_external_weights_from_the_model_folder(tmp_path: Path):
    onnx.save_model(onnx.load(FIXTURES / "detector_nonzero.onnx"), str(tmp_path / "det.onnx"),
                    save_as_external_data=True, location="det.data", size_threshold=0)
    np.savez(tmp_path / "image.npz", image=_image(3.0))
    model = load_model(tmp_path / "det.onnx", tmp_path, ShapeOptions(inputs=tmp_path / "image.npz"))
    assert _kept_boxes(model) == 2  # the real weights decided it, as with the weights inside


@pytest.mark.parametrize(("content", "message"), [
    (b"not a zip", "cannot read sample inputs"), (None, "more than --max-bytes 100")])
def test_bad_or_oversized_sample_inputs_are_one_line_errors(tmp_path: Path, content, message: str):
    sample = tmp_path / "s.npz"
    if content is None:
        np.savez(sample, image=_image(1.0))
    else:
        sample.write_bytes(content)
    with pytest.raises(FrontendError, match=message) as err:
        load_model(FIXTURES / "detector_nonzero.onnx", FIXTURES, ShapeOptions(inputs=sample, max_bytes=100))
    assert "\n" not in str(err.value) and "detector_nonzero.onnx" in str(err.value)


def test_a_suite_made_with_a_recorded_run_is_byte_identical_twice():
    from dlbricks_gen.workflows.compile import Recipe, assemble

    def suite():
        models = [load_model(FIXTURES / f"{n}.onnx", FIXTURES, B1) for n in ("detector_nonzero", "scan")]
        return assemble(models, Recipe(2, B1))

    first, second = suite(), suite()
    assert first.files == second.files and first.plan == second.plan


def test_lowering_a_qoperator_model_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # ONNX Runtime's symbolic inference saves a temp model here when it stops
    model = load_model(FIXTURES / "qoperator_cnn.onnx", FIXTURES, B1)
    assert "QLinearConv" in {n.layer.op_type for n in model.nodes}
    assert list(tmp_path.iterdir()) == []


def test_real_exports_of_the_new_classes_compile():
    """torch's dynamo exporter (NonZero; torch.cond as If) and paddle2onnx (-1 dims)."""
    real = FIXTURES / "realworld"
    detector = load_model(real / "nonzero_detector_dynamo.onnx", real, B1)
    assert "NonZero" in {n.layer.op_type for n in detector.nodes}
    assert detector.assumed[0][0] == "recorded run"
    cond = load_model(real / "cond_if_dynamo.onnx", real, B1)
    assert "If" not in {n.layer.op_type for n in cond.nodes}
    assert any(what.startswith("If took ") for _, what in cond.assumed)
    with pytest.raises(FrontendError, match=r"x \(dim 0 is -1, "):
        load_model(real / "paddle_cls_minus1.onnx", real, ShapeOptions())
    paddle = load_model(real / "paddle_cls_minus1.onnx", real, PADDLE)
    [softmax] = [n for n in paddle.nodes if n.layer.op_type == "Softmax"]
    assert softmax.layer.outputs[0].shape == (2, 2) and "Reshape" in {n.layer.op_type for n in paddle.nodes}
    assert not paddle.assumed  # the computed Reshape size folds once the batch is bound


def test_a_recorded_run_that_fails_on_random_inputs_says_to_give_a_real_sample():
    nodes = [helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="range")]
    model = make_model(nodes, [helper.make_tensor_value_info("delta", TensorProto.INT64, [])],
                       [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
                       [numpy_helper.from_array(np.array(0, np.int64), "start"),
                        numpy_helper.from_array(np.array(4, np.int64), "limit")], opset=18)
    with pytest.raises(FrontendError, match=r"on random \(data policy\) inputs failed in ONNX Runtime \(give a "
                                            r"real sample with --inputs\)") as err:
        lower_proto(model, "m", "m.onnx", ShapeOptions())  # integer inputs are zeros: a zero delta
    assert "\n" not in str(err.value)
    fine = lower_proto(model, "m", "m.onnx", ShapeOptions(), inputs={"delta": np.array(1, np.int64)})
    assert fine.nodes[0].layer.outputs[0].shape == (4,)
