"""Lowering an inferred, folded ONNX graph to IR layers in the canonical topological order."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper

from ..ir import Attribute, Kind, Layer, Node, Operand, TensorType
from ..ir.order import depth_first_order
from .control import MAX_NESTING
from .errors import FrontendError
from .fold import Known
from .roles import INT_DTYPES, OPTIONAL_OPS, is_semantic

# Domains run by ONNX Runtime's CPU provider without a custom op library.
KNOWN_DOMAINS = ("", "ai.onnx.ml", "com.microsoft")
# Tensor attributes of ai.onnx.ml operators up to this size keep their values.
ML_TENSOR_NUMEL = 1 << 14
# Integer inputs that decide a kernel's output shape: computed at run time, they take the
# value recorded in the sample run (and become constants of the brick).
SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "ConstantOfShape": (0,),
    "Range": (0, 1, 2), "Resize": (3,), "Upsample": (1,), "Pad": (1, 3), "Squeeze": (1,),
    "Unsqueeze": (1,), "Split": (1,), "OneHot": (1,), "TopK": (1,), "CenterCropPad": (1,),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,),
    "ReduceL1": (1,), "ReduceL2": (1,), "ReduceLogSum": (1,), "ReduceLogSumExp": (1,),
    "ReduceSumSquare": (1,), "NonMaxSuppression": (2,), "Col2Im": (1, 2), "DFT": (1, 2),
    "RandomNormalLike": (), "Trilu": (1,), "BlackmanWindow": (0,), "HannWindow": (0,),
    "HammingWindow": (0,), "STFT": (1, 3), "MelWeightMatrix": (0, 1, 2),
    "SplitToSequence": (1,), "SequenceAt": (1,), "SequenceInsert": (2,), "SequenceErase": (1,),
}
# Attributes that the schema leaves implicit but that have a fixed meaning when absent.
IMPLICIT_SPATIAL = {
    "Conv": ("dilations", "strides", "pads", "kernel_shape"),
    "ConvTranspose": ("dilations", "strides", "pads", "kernel_shape"),
    "ConvInteger": ("dilations", "strides", "pads"),
    "QLinearConv": ("dilations", "strides", "pads"),
    "MaxPool": ("dilations", "strides", "pads"),
    "AveragePool": ("strides", "pads"),
    "LpPool": ("strides", "pads"),
}


class Lowerer:
    """Turns node protos into IR nodes for one model; holds the per-model lookup tables."""

    def __init__(self, display: str, known: dict[str, Known], types: dict[str, TensorType],
                 opsets: dict[str, int], recorded: dict[str, np.ndarray] | None = None,
                 external: set[str] | None = None):
        self.display = display
        self.known = known
        self.types = types
        self.opsets = opsets
        self.recorded = recorded or {}  # small integer values seen in the recorded run
        self.external = external or set()  # small integer initializers whose external data is unread

    def error(self, node: onnx.NodeProto, index: int, message: str) -> FrontendError:
        return FrontendError(self.display, message, node=node.name or f"#{index}", op=node.op_type)

    def node(self, proto: onnx.NodeProto, index: int) -> Node:
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        if domain not in KNOWN_DOMAINS:
            raise self.error(proto, index, f"custom domain {domain!r} is not supported "
                             "(ONNX Runtime needs a custom op library for it)")
        if domain == "" and proto.op_type in OPTIONAL_OPS:
            raise self.error(proto, index, "optional-typed values are not supported in bricks")
        if domain == "" and proto.op_type == "SequenceMap":
            raise self.error(proto, index, "SequenceMap (a body run once per sequence element) is "
                             "not supported")
        schema = self.schema(proto, index, domain)
        since = schema.since_version if schema else self.opsets.get(domain, 1)
        for attr in proto.attribute:  # control flow is reported before any missing shape
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                self.attribute(proto, index, attr)
        operands, names = [], []
        for slot, name in enumerate(proto.input):
            operand = self.operand(proto, index, slot, name)
            operands.append(operand)
            names.append(name if operand.kind is Kind.ACTIVATION else "")
        outputs = tuple(self.output_type(proto, index, name) for name in proto.output)
        layer = Layer(proto.op_type, domain, since, tuple(operands), outputs,
                      self.attributes(proto, index, schema, operands))
        return Node(proto.name or f"#{index}", layer, tuple(names), tuple(proto.output))

    def schema(self, proto: onnx.NodeProto, index: int, domain: str) -> onnx.defs.OpSchema | None:
        if domain == "com.microsoft":
            return None  # contrib schemas live in onnxruntime, not in onnx.defs
        try:
            return onnx.defs.get_schema(proto.op_type, self.opsets.get(domain, 1), domain)
        except onnx.defs.SchemaError:
            raise self.error(proto, index, f"unknown operator {domain or 'ai.onnx'}.{proto.op_type} "
                             f"at opset {self.opsets.get(domain, 1)}") from None

    def operand(self, proto: onnx.NodeProto, index: int, slot: int, name: str) -> Operand:
        if not name:
            return Operand(Kind.ABSENT)
        if name in self.known:
            return self.constant_operand(proto, index, slot, self.known[name])
        if name not in self.types:
            raise self.error(proto, index, f"input {name!r} has no static shape after shape inference")
        if name in self.recorded and slot in SHAPE_INPUTS.get(proto.op_type, ()):
            # computed at run time, it decides the output shape: the recorded value decides the brick
            value = self.recorded[name]
            type_ = self.types[name]
            if proto.op_type == "Range" and value.size == 1:  # ONNX Runtime accepts [1] at run time only
                type_ = TensorType(type_.dtype, ())
            return Operand(Kind.CONSTANT, type_, flat_values(value))
        return Operand(Kind.ACTIVATION, self.types[name])

    def constant_operand(self, proto: onnx.NodeProto, index: int, slot: int, known: Known) -> Operand:
        t = known.type
        if not is_semantic(t.dtype, math.prod(t.shape), [(proto.op_type, slot)]):
            return Operand(Kind.WEIGHT, t)
        if not known.has_data:
            if t.dtype in INT_DTYPES:
                name = proto.input[slot]
                unread = ", ".join(repr(n) for n in sorted(self.external)[:3])
                cause = ("its external data file is missing or outside the model's folder"
                         if name in self.external else
                         f"it is computed at session start from {unread}, whose external data file is "
                         "missing or outside the model's folder" if unread else
                         "it is computed at session start from values that are not read (weights, "
                         "or results too large to fold)")
                raise self.error(proto, index, f"the values of constant input {name!r} are not "
                                 f"available: {cause}")
            return Operand(Kind.WEIGHT, t)
        return Operand(Kind.CONSTANT, t, flat_values(known.values()))

    def output_type(self, proto: onnx.NodeProto, index: int, name: str) -> TensorType | None:
        if not name:
            return None
        if name not in self.types:
            raise self.error(proto, index, f"output {name!r} has no static shape after shape "
                             "inference (bind symbolic dimensions with --dim or --input-shape)")
        return self.types[name]

    def attributes(self, proto, index, schema, operands) -> tuple[Attribute, ...]:
        # Attributes the schema does not know change no kernel: dropped, so that free text
        # (doc-like strings, names) never reaches a brick. Contrib ops have no schema here.
        attrs = {a.name: self.attribute(proto, index, a) for a in proto.attribute
                 if schema is None or a.name in schema.attributes}
        if schema is not None:
            for name, spec in schema.attributes.items():
                if name not in attrs and spec.default_value.type != onnx.AttributeProto.UNDEFINED:
                    attrs[name] = self.attribute(proto, index, spec.default_value, name)
        for name in IMPLICIT_SPATIAL.get(proto.op_type, ()):
            implicit = _implicit_spatial(name, operands)
            if name not in attrs and implicit is not None and "auto_pad" not in _explicit(attrs):
                attrs[name] = Attribute(name, "INTS", implicit)
        return tuple(attrs[name] for name in sorted(attrs))

    def attribute(self, proto, index, attr: onnx.AttributeProto, name: str | None = None) -> Attribute:
        kind = onnx.AttributeProto.AttributeType.Name(attr.type)
        name = name or attr.name
        if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise self.error(proto, index, f"control flow ({proto.op_type} with subgraph attribute "
                             f"{name!r}) was not expanded: nested more than {MAX_NESTING} levels deep, "
                             "or the recorded run failed")
        if attr.type == onnx.AttributeProto.TENSOR:
            array = onnx.numpy_helper.to_array(attr.t)
            type_ = TensorType(onnx.TensorProto.DataType.Name(attr.t.data_type), tuple(array.shape))
            if proto.domain == "ai.onnx.ml" and array.size <= ML_TENSOR_NUMEL:
                # a classical ML operator's tensors are its model (tree splits, label maps)
                return Attribute(name, kind, Operand(Kind.CONSTANT, type_, flat_values(array)))
            return Attribute(name, kind, self.constant_operand(proto, index, -1, Known(type_, array)))
        if attr.type not in _PLAIN_ATTRIBUTE_TYPES:
            raise self.error(proto, index, f"attribute {name!r} of type {kind} is not supported")
        value = helper.get_attribute_value(attr)
        try:
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            elif isinstance(value, list):
                value = tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
        except UnicodeDecodeError:
            raise self.error(proto, index, f"attribute {name!r} holds bytes that are not UTF-8 text") from None
        return Attribute(name, kind, value)


_PLAIN_ATTRIBUTE_TYPES = frozenset(
    {onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING,
     onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS, onnx.AttributeProto.STRINGS}
)


def _explicit(attrs: dict[str, Attribute]) -> set[str]:
    """'auto_pad' counts as set only when it is not NOTSET (then pads are derived by it)."""
    pad = attrs.get("auto_pad")
    return {"auto_pad"} if pad is not None and pad.value not in ("NOTSET", "") else set()


def _implicit_spatial(name: str, operands: list[Operand]) -> tuple[int, ...] | None:
    data = operands[0].type if operands and operands[0].type else None
    if data is None or len(data.shape) < 3:
        return None
    spatial = len(data.shape) - 2
    if name == "kernel_shape":
        weight = operands[1].type if len(operands) > 1 else None
        return tuple(weight.shape[2:]) if weight is not None else None
    return (0,) * (2 * spatial) if name == "pads" else (1,) * spatial


def flat_values(array: np.ndarray) -> tuple:
    flat = np.asarray(array).reshape(-1)
    if flat.dtype == np.bool_:
        return tuple(bool(v) for v in flat)
    if np.issubdtype(flat.dtype, np.integer):
        return tuple(int(v) for v in flat)
    if flat.dtype.kind in "OSU":  # strings (ai.onnx.ml label maps)
        return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat)
    return tuple(float(v) for v in flat.astype(np.float64))


def canonical_order(nodes: list[onnx.NodeProto], display: str) -> list[int]:
    """The canonical topological order of a graph's nodes (`ir.order.depth_first_order`)."""
    producer = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    order = depth_first_order([[producer[name] for name in n.input if name in producer] for n in nodes])
    if order is None:
        raise FrontendError(display, "the graph has a cycle")
    return order
