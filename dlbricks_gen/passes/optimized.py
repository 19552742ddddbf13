"""ONNX Runtime's own optimized graph of a model: what the passes learn the runtime's choices from."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import onnxruntime as ort

from ..ir import Model
from ..ir.spec import brick_spec
from ..runtime.core.spec import build_model
from .partition import consumers, make_brick

LEVELS = {"extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def optimized_graph(model: onnx.ModelProto, level: str) -> onnx.GraphProto:
    """The graph ONNX Runtime (CPU, 1 thread) runs for `model` at `level` ("extended": every
    fusion, no layout change; "all": also the NCHWc layout), with its weights left on disk."""
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optimized.onnx"
        options.optimized_model_filepath = str(path)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", "weights.bin")
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return onnx.load_model(str(path), load_external_data=False).graph


def graph_values(graph: onnx.GraphProto) -> set[str]:
    """Every value name an (optimized) graph computes or reads: a value of the original graph
    missing here was fused away or changed layout."""
    names = {v.name for v in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def whole_model(model: Model) -> onnx.ModelProto:
    """The whole model as one brick (brick_spec's value names: in<k>, t<i>_<j>), with seeded
    random weights as the suite would give it: what the runtime is asked to optimize."""
    return build_model(brick_spec("model", make_brick(model, 0, len(model.nodes), consumers(model))))
