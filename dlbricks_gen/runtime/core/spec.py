"""Brick SPECs (format 1, docs/FORMATS.md): read from a brick file without executing it, and
built into an ONNX model whose weights follow the random data policy.

onnx is imported only where a graph is built: importing it costs about a second (ml_dtypes),
which a worker pass that reuses the first pass's built bytes (core/buildcache.py) never pays.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import NON_FINITE, element_type, literal_array, random_array

if TYPE_CHECKING:
    import numpy as np
    import onnx

SPEC_FORMAT = 1
# Model property of a built brick: its sequence inputs' element shapes, JSON {name: [shape, ...]}.
SEQUENCE_SHAPES = "dlbricks.sequence_shapes"
MAX_SEQUENCE_SHAPES_TEXT = 1 << 20
# The oldest IR version that can hold these element types (older ones reject them).
MIN_IR_FOR_DTYPE = {"FLOAT8E4M3FN": 9, "FLOAT8E4M3FNUZ": 9, "FLOAT8E5M2": 9, "FLOAT8E5M2FNUZ": 9,
                    "INT4": 10, "UINT4": 10, "FLOAT4E2M1": 11}


def load_spec(path: Path) -> dict:
    """The SPEC literal of a brick file, read with ast.literal_eval: never executed."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SPEC"
                                                for t in node.targets):
            spec = ast.literal_eval(node.value)
            if not isinstance(spec, dict):
                raise ValueError("SPEC is not a dict")
            return spec
    raise ValueError("no `SPEC = {...}` assignment")


# Element types whose raw_data is the numpy array's own bytes (on a little-endian host);
# the others (strings, packed 4-bit types, ml_dtypes floats) go through numpy_helper.
RAW_DTYPES = frozenset({"FLOAT", "DOUBLE", "FLOAT16", "INT8", "INT16", "INT32", "INT64", "UINT8",
                        "UINT16", "UINT32", "UINT64", "BOOL"})


def _array(name: str, tensor: dict) -> np.ndarray:
    dtype, shape, data = tensor["dtype"], tensor["shape"], tensor["data"]
    if data == "random":
        return random_array(name, dtype, shape, "weight")
    if isinstance(data, list):
        return literal_array(dtype, shape, data)
    raise ValueError(f"tensor {name}: data must be 'random' or a list")


def fill_tensor(proto: onnx.TensorProto, name: str, tensor: dict) -> None:
    """Fill an empty TensorProto in place (an initializer of the model being built) with a
    SPEC tensor: the weight bytes are copied into the model once, not once per nested message
    as make_graph and make_model do. The bytes are those numpy_helper.from_array writes."""
    from onnx import numpy_helper

    array = _array(name, tensor)
    if tensor["dtype"] in RAW_DTYPES and sys.byteorder == "little":
        proto.dims.extend(array.shape)
        proto.name = name
        proto.raw_data = array.tobytes()
    else:
        proto.CopyFrom(numpy_helper.from_array(array, name))
    proto.data_type = element_type(tensor["dtype"])


def make_tensor(name: str, tensor: dict) -> onnx.TensorProto:
    """A SPEC tensor ({"dtype", "shape", "data"}) as a TensorProto."""
    import onnx

    proto = onnx.TensorProto()
    fill_tensor(proto, name, tensor)
    return proto


def _attribute_value(name: str, kind: str, value: Any) -> Any:
    if kind == "FLOAT":
        return NON_FINITE.get(value, value) if isinstance(value, str) else float(value)
    if kind == "FLOATS":
        return [NON_FINITE[v] if isinstance(v, str) else float(v) for v in value]
    if kind == "TENSOR":
        return make_tensor(name, value)
    if kind in ("INT", "STRING", "INTS", "STRINGS"):
        return value
    raise ValueError(f"attribute {name}: type {kind} is not supported in a SPEC")


def make_attribute(attr: dict) -> onnx.AttributeProto:
    import onnx
    from onnx import helper

    kind = attr["type"]
    code = onnx.AttributeProto.AttributeType.Value(kind)
    return helper.make_attribute(attr["name"], _attribute_value(attr["name"], kind, attr["value"]),
                                 attr_type=code)


def build_model(spec: dict) -> onnx.ModelProto:
    """The ONNX model of a brick SPEC (format 1), weights filled by the random data policy.

    ir_version is the oldest one that can hold the model's opsets and types, so any ONNX
    Runtime that supports those opsets loads it.
    """
    from onnx import helper

    if spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"brick SPEC format {spec.get('format')!r} is not supported "
                         f"(this harness reads format {SPEC_FORMAT})")
    inputs = [value_info(t) for t in spec["inputs"]]
    outputs = [value_info(t) for t in spec["outputs"]]
    first, last, inner = _layout_edges(spec)
    nodes = []
    for index, n in enumerate(spec["nodes"]):
        node = helper.make_node(n["op_type"], [inner.get(v, v) for v in n["inputs"]],
                                [inner.get(v, v) for v in n["outputs"]], name=f"n{index}",
                                domain=n.get("domain", ""))
        node.attribute.extend(make_attribute(a) for a in n.get("attributes", []))
        nodes.append(node)
    graph = helper.make_graph(first + nodes + last, "brick", inputs, outputs)
    opsets = [helper.make_opsetid(domain, int(version))
              for domain, version in sorted(spec["opset_imports"].items())]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dlbricks-gen harness")
    for t in spec["initializers"]:  # filled in place: the same bytes, copied once
        fill_tensor(model.graph.initializer.add(), t["name"], t)
    sequences = {t["name"]: t["sequence"] for t in spec["inputs"] if "sequence" in t}
    if sequences:  # an ONNX sequence type has one element shape: each element's is kept here
        helper.set_model_props(model, {SEQUENCE_SHAPES: json.dumps(sequences, sort_keys=True)})
    dtypes = {t["dtype"] for t in [*spec["inputs"], *spec["outputs"], *spec["initializers"]]}
    # IR 4 at least: before it, initializers had to be listed as graph inputs too.
    model.ir_version = max([4, helper.find_min_ir_version_for(opsets, ignore_unknown=True),
                            *(MIN_IR_FOR_DTYPE.get(d, 3) for d in dtypes)])
    return model


def value_info(t: dict) -> onnx.ValueInfoProto:
    """A SPEC input or output as a graph value: a tensor, or a sequence of tensors whose
    element shape is the elements' common one (else left open: they differ)."""
    from onnx import helper

    if "sequence" not in t:
        return helper.make_tensor_value_info(t["name"], element_type(t["dtype"]), t["shape"])
    shapes = {tuple(s) for s in t["sequence"]}
    shape = list(shapes.pop()) if len(shapes) == 1 else None
    return helper.make_tensor_sequence_value_info(t["name"], element_type(t["dtype"]), shape)


def _sequence_shapes(model: onnx.ModelProto) -> dict:
    text = next((p.value for p in model.metadata_props if p.key == SEQUENCE_SHAPES), "{}")
    if len(text) > MAX_SEQUENCE_SHAPES_TEXT:
        raise ValueError(f"{SEQUENCE_SHAPES} holds {len(text)} characters, more than {MAX_SEQUENCE_SHAPES_TEXT}")
    shapes = json.loads(text)
    return shapes if isinstance(shapes, dict) else {}


def _layout_edges(spec: dict) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto], dict[str, str]]:
    """Transposes at the channels-last edges (SPEC "layout": "NHWC"): the graph takes and gives
    those values NHWC while its nodes see them NCHW, as inside the model; ONNX Runtime then runs
    the kernels channels-last and removes the transposes, as it does in the model."""
    from onnx import helper

    first: list[onnx.NodeProto] = []
    last: list[onnx.NodeProto] = []
    inner: dict[str, str] = {}
    for side, perm in (("inputs", [0, 3, 1, 2]), ("outputs", [0, 2, 3, 1])):
        for t in spec[side]:
            layout = t.get("layout", "NCHW")
            if layout == "NCHW":
                continue
            if layout != "NHWC" or len(t["shape"]) != 4:
                raise ValueError(f"{t['name']}: layout {layout!r} of a {len(t['shape'])}-D value is not supported")
            inner[t["name"]] = f"{t['name']}.nchw"
            pair = [t["name"], inner[t["name"]]] if side == "inputs" else [inner[t["name"]], t["name"]]
            node = helper.make_node("Transpose", pair[:1], pair[1:], name=f"{t['name']}.layout", perm=perm)
            (first if side == "inputs" else last).append(node)
    return first, last, inner


def model_inputs(model: onnx.ModelProto) -> list[dict]:
    """The graph inputs of a model with static shapes, as SPEC-style dicts (a sequence input
    of a brick with its elements' shapes, which build_model keeps in the model's properties)."""
    import onnx

    constant = {t.name for t in model.graph.initializer}
    sequences = _sequence_shapes(model)
    inputs = []
    for value in model.graph.input:
        if value.name in constant:
            continue
        if value.type.HasField("sequence_type") and value.name in sequences:
            elem = value.type.sequence_type.elem_type.tensor_type.elem_type
            inputs.append({"name": value.name, "dtype": onnx.TensorProto.DataType.Name(elem), "shape": [],
                           "sequence": [[int(d) for d in s] for s in sequences[value.name]]})
            continue
        if not value.type.HasField("tensor_type"):
            raise ValueError(f"input {value.name} is not a tensor")
        tensor = value.type.tensor_type
        shape = []
        for dim in tensor.shape.dim:
            if not dim.HasField("dim_value"):
                raise ValueError(f"input {value.name} has a symbolic dimension "
                                 f"{dim.dim_param or '?'}: bind it before measuring")
            shape.append(dim.dim_value)
        inputs.append({"name": value.name, "shape": shape,
                       "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type)})
    return inputs
