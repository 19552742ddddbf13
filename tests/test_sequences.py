"""Sequence-typed values (SplitToSequence, SequenceAt, ConcatFromSequence ...): typed by the
recorded run (element dtype, each element's shape), carried by brick SPECs, built and run in
real ONNX Runtime sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.frontend import FrontendError, ShapeOptions, load_model, lower_proto
from dlbricks_gen.ir import TensorType
from dlbricks_gen.ir.canonical import type_text
from dlbricks_gen.ir.spec import brick_spec
from dlbricks_gen.passes.partition import partition
from dlbricks_gen.runtime.core.data import input_feeds
from dlbricks_gen.runtime.core.spec import build_model, model_inputs


def _split_model() -> onnx.ModelProto:
    """x -> Relu -> SplitToSequence([2, 4]) -> SequenceAt(1) -> Sigmoid, ConcatFromSequence, SequenceLength."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("SplitToSequence", ["r", "split"], ["s"], axis=1),
             helper.make_node("SequenceAt", ["s", "one"], ["a"]),
             helper.make_node("ConcatFromSequence", ["s"], ["c"], axis=1),
             helper.make_node("SequenceLength", ["s"], ["n"]),
             helper.make_node("Sigmoid", ["a"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, ["batch", 6]),
         helper.make_tensor_value_info("n", TensorProto.INT64, [])],
        [numpy_helper.from_array(np.array([2, 4], dtype=np.int64), "split"),
         numpy_helper.from_array(np.array(1, dtype=np.int64), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def _sequence_input_model() -> onnx.ModelProto:
    """seq -> SequenceAt(1) -> Relu: the sequence's elements come from the sample inputs."""
    graph = helper.make_graph(
        [helper.make_node("SequenceAt", ["seq", "one"], ["a"]), helper.make_node("Relu", ["a"], ["y"])], "g",
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(1, dtype=np.int64), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def test_a_sequence_type_is_its_dtype_and_each_element_shape():
    model = lower_proto(_split_model(), "m", "m.onnx", ShapeOptions(batch=2))
    split = next(n for n in model.nodes if n.layer.op_type == "SplitToSequence")
    assert split.layer.outputs == (TensorType("FLOAT", (), ((2, 2), (2, 4))),)
    assert type_text(split.layer.outputs[0]) == "seq FLOAT([2,2], [2,4])"
    assert type_text(TensorType("FLOAT", (2, 4))) == "FLOAT[2,4]"  # tensors as ever: no digest moves


@pytest.mark.parametrize("h", [1, 2, 6])
def test_bricks_with_sequence_inputs_and_outputs_build_load_and_run(h: int):
    model = lower_proto(_split_model(), "m", "m.onnx", ShapeOptions(batch=2))
    specs = [brick_spec(digest, brick) for digest, brick in partition([model], h).bricks]
    assert any("sequence" in t for s in specs for t in s["inputs"] + s["outputs"]) or h == 6
    for spec in specs:
        built = build_model(spec)
        onnx.checker.check_model(built, full_check=True)
        session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = input_feeds(model_inputs(built))
        outputs = session.run(None, feeds)
        for want, got in zip(spec["outputs"], outputs, strict=True):
            if "sequence" in want:
                assert [list(a.shape) for a in got] == want["sequence"]
            else:
                assert list(np.shape(got)) == want["shape"]
        for t in spec["inputs"]:  # seeded element by element: the same data on every run
            if "sequence" in t:
                assert [a.shape for a in feeds[t["name"]]] == [tuple(s) for s in t["sequence"]]


def test_a_sequence_input_takes_its_elements_from_sample_inputs(tmp_path: Path):
    onnx.save(_sequence_input_model(), tmp_path / "seq.onnx")
    np.savez(tmp_path / "s.npz", **{"seq@0": np.ones((2, 3), np.float32), "seq@1": np.ones((4, 3), np.float32)})
    model = load_model(tmp_path / "seq.onnx", tmp_path, ShapeOptions(inputs=tmp_path / "s.npz"))
    at, relu = model.nodes
    assert at.layer.inputs[0].type == TensorType("FLOAT", (), ((2, 3), (4, 3)))
    assert relu.layer.outputs[0] == TensorType("FLOAT", (4, 3))


@pytest.mark.parametrize(("arrays", "message"), [
    (None, "input 'seq' is a sequence: its elements"), ({"seq@0": 1, "seq@2": 1}, "are not seq@0 .. seq@1")])
def test_a_sequence_input_without_its_elements_is_a_one_line_error(tmp_path: Path, arrays, message: str):
    onnx.save(_sequence_input_model(), tmp_path / "seq.onnx")
    options = ShapeOptions()
    if arrays is not None:
        np.savez(tmp_path / "s.npz", **{k: np.full((2, 3), v, np.float32) for k, v in arrays.items()})
        options = ShapeOptions(inputs=tmp_path / "s.npz")
    with pytest.raises(FrontendError, match=message) as err:
        load_model(tmp_path / "seq.onnx", tmp_path, options)
    assert "\n" not in str(err.value) and "seq.onnx" in str(err.value)


def test_compile_writes_a_suite_of_sequence_bricks_that_passes_its_audit(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    onnx.save(_split_model(), models / "split.onnx")
    result = CliRunner().invoke(app, ["compile", str(models), "-o", str(tmp_path / "suite"), "--batch", "2",
                                      "-H", "2"])
    assert result.exit_code == 0, result.output
    assert "audit: passed" in result.output
    texts = [p.read_text(encoding="utf-8") for p in (tmp_path / "suite" / "bricks").glob("*.py")]
    assert any("'sequence': [[2, 2], [2, 4]]" in t for t in texts)
