"""ONNX Runtime's own optimized graph of a model: what the passes learn the runtime's choices from."""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ..ir import Model
from ..ir.spec import brick_spec
from ..runtime.core.data import element_type, random_array
from ..runtime.core.spec import MIN_IR_FOR_DTYPE, build_model, make_tensor
from .partition import consumers, make_brick

LEVELS = {"extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
WEIGHTS_FILE = "weights.bin"


@functools.lru_cache(maxsize=2)
def optimized_graph(model: Model, level: str) -> onnx.GraphProto:
    """The graph ONNX Runtime (CPU, 1 thread) runs for the whole `model` at `level` ("extended":
    every fusion, no layout change; "all": also the NCHWc layout), with its weights left on disk.
    Kept for the last model's two levels (the fusion and the layout pass both read "extended";
    `clear_whole_model`); callers only read it."""
    built = _whole_model(model)
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    # Only the graph is read: no kernel will run, so weights are not packed for one.
    options.add_session_config_entry("session.disable_prepacking", "1")
    if built.names:
        options.add_external_initializers(list(built.names), list(built.values))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optimized.onnx"
        options.optimized_model_filepath = str(path)
        _discard(Path(tmp) / WEIGHTS_FILE)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", WEIGHTS_FILE)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(built.model, options, providers=["CPUExecutionProvider"])
        return onnx.load_model(str(path), load_external_data=False).graph


def _discard(path: Path) -> None:
    """Make `path` a link to the null device where the system has one: the optimized weights
    are never read back, so writing them (a model's size, per pass) is saved."""
    try:
        os.symlink(os.devnull, path)
    except (OSError, NotImplementedError):
        pass  # the weights are then written to the temporary folder


@dataclass(frozen=True)
class _WholeModel:
    model: bytes  # the graph; its random weights, given to the session from memory:
    names: tuple[str, ...]
    values: tuple[ort.OrtValue, ...]
    arrays: tuple[np.ndarray, ...]  # the memory the values point to


@functools.lru_cache(maxsize=1)
def _whole_model(model: Model) -> _WholeModel:
    """The whole model as one brick (brick_spec's value names: in<k>, t<i>_<j>), with seeded
    random weights as the suite would give it (the data policy's values): what the runtime is
    asked to optimize. The weights go to the session from memory, not through protobuf: the
    fusion and the layout pass each optimize the model, and copying the weights cost as much
    as a session. Kept for the last model (`clear_whole_model`)."""
    spec = brick_spec("model", make_brick(model, 0, len(model.nodes), consumers(model)))
    weights = [t for t in spec["initializers"] if t["data"] == "random"]
    proto = build_model({**spec, "initializers": [t for t in spec["initializers"] if t["data"] != "random"]})
    names, values, arrays = [], [], []
    for t in weights:
        array = np.ascontiguousarray(random_array(t["name"], t["dtype"], t["shape"], "weight"))
        try:
            value = ort.OrtValue.ortvalue_from_numpy(array)
        except (RuntimeError, TypeError, ValueError):  # an element type numpy does not hold natively
            proto.graph.initializer.append(make_tensor(t["name"], t))
            continue
        tensor = onnx.TensorProto(name=t["name"], data_type=element_type(t["dtype"]), dims=t["shape"],
                                  data_location=onnx.TensorProto.EXTERNAL)
        for key, text in (("location", "given-in-memory"), ("offset", "0"), ("length", str(array.nbytes))):
            tensor.external_data.add(key=key, value=text)
        proto.graph.initializer.append(tensor)
        names.append(t["name"])
        values.append(value)
        arrays.append(array)
    proto.ir_version = max([proto.ir_version, *(MIN_IR_FOR_DTYPE.get(t["dtype"], 3) for t in weights)])
    return _WholeModel(proto.SerializeToString(), tuple(names), tuple(values), tuple(arrays))


def clear_whole_model() -> None:
    """Forget the last whole model (and free its weights) and its optimized graphs."""
    _whole_model.cache_clear()
    optimized_graph.cache_clear()


def graph_values(graph: onnx.GraphProto) -> set[str]:
    """Every value name an (optimized) graph computes or reads: a value of the original graph
    missing here was fused away or changed layout."""
    names = {v.name for v in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names
