"""Constant folding, the way ONNX Runtime does it when a session starts.

ONNX Runtime folds every node whose inputs are all initializers (Constant nodes, shape
arithmetic on static shapes, ConstantOfShape, Range, Cast of weights ...) and removes Identity
and inference-mode Dropout. Those nodes never run, so they must not become bricks: they are
folded here into known tensors, with values where the inputs' values are known and with only a
type (a weight) where they depend on weight bytes that are never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..ir import TensorType
from .roles import SEQUENCE_OPS

# Not folded by ONNX Runtime (random) or never worth folding.
NOT_FOLDED = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
     "Bernoulli", "DequantizeLinear", "QuantizeLinear"}
)
ELIMINATED = frozenset({"Identity", "Dropout"})
# Folded results above this many elements are kept as typed weights, without their values.
MAX_FOLDED_NUMEL = 1 << 16


@dataclass(slots=True)
class Known:
    """A tensor known before the run: an initializer or a folded value.

    Values are held as an array or, for initializers, as the proto they are read from when
    first needed (most small initializers, such as BatchNorm parameters, never are).
    """

    type: TensorType
    data: np.ndarray | None  # None and no proto: a weight whose bytes are not read
    proto: onnx.TensorProto | None = None

    @property
    def has_data(self) -> bool:
        return self.data is not None or self.proto is not None

    def values(self) -> np.ndarray:
        if self.data is None:
            if self.proto is None:
                raise ValueError("a weight whose bytes are not read has no values")
            self.data = np.asarray(numpy_helper.to_array(self.proto))
        return self.data


@dataclass(slots=True)
class FoldResult:
    nodes: list[onnx.NodeProto]  # what still runs, inputs renamed
    known: dict[str, Known]
    folded: int


def fold(
    nodes: list[onnx.NodeProto],
    known: dict[str, Known],
    types: dict[str, TensorType],
    graph_outputs: set[str],
    opsets: list[onnx.OperatorSetIdProto],
) -> FoldResult:
    """Fold constant nodes; return the nodes that remain, with Identity/Dropout removed."""
    renames: dict[str, str] = {}
    remaining: list[onnx.NodeProto] = []
    folded = 0
    for proto in nodes:
        node = _renamed(proto, renames)
        if _eliminable(node, graph_outputs):
            renames[node.output[0]] = node.input[0]
            folded += 1
        elif _foldable(node, known, types):
            results = _evaluate(node, known, types, opsets)
            if results is None:
                remaining.append(node)
                continue
            known.update(results)
            folded += 1
        else:
            remaining.append(node)
    return FoldResult(remaining, known, folded)


def _renamed(node: onnx.NodeProto, renames: dict[str, str]) -> onnx.NodeProto:
    if not any(name in renames for name in node.input):
        return node
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    for i, name in enumerate(copy.input):
        while name in renames:
            name = renames[name]
        copy.input[i] = name
    return copy


def _eliminable(node: onnx.NodeProto, graph_outputs: set[str]) -> bool:
    if node.domain not in ("", "ai.onnx") or node.op_type not in ELIMINATED:
        return False
    if node.output[0] in graph_outputs or not node.input:
        return False
    if node.op_type == "Dropout":
        extra = [o for o in node.output[1:] if o]
        training = len(node.input) > 2 and node.input[2]
        return not extra and not training
    return True


def _foldable(node: onnx.NodeProto, known: dict[str, Known], types: dict[str, TensorType]) -> bool:
    if node.domain not in ("", "ai.onnx") or node.op_type in NOT_FOLDED or node.op_type in SEQUENCE_OPS:
        return False
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return False
    if node.op_type in ("Shape", "Size") and node.input[0] in types:
        return True
    return all(name in known for name in node.input if name)


def _evaluate(
    node: onnx.NodeProto,
    known: dict[str, Known],
    types: dict[str, TensorType],
    opsets: list[onnx.OperatorSetIdProto],
) -> dict[str, Known] | None:
    if node.op_type in ("Shape", "Size") and node.input[0] not in known:
        return _shape_of(node, types[node.input[0]])
    inputs = [known[name] for name in node.input if name]
    if all(k.has_data for k in inputs):
        values = _run_reference(node, known, opsets)
        if values is not None:
            return {
                name: Known(TensorType(_dtype_name(v), tuple(v.shape)), v if v.size <= MAX_FOLDED_NUMEL else None)
                # the evaluators return the present outputs only, omitted ones ("") are skipped
                for name, v in zip((o for o in node.output if o), values, strict=True)
            }
    # Values depend on weight bytes (or the evaluator cannot run it): keep the types only.
    if not all(name in types for name in node.output if name):
        return None
    return {name: Known(types[name], None) for name in node.output if name}


def _shape_of(node: onnx.NodeProto, type_: TensorType) -> dict[str, Known]:
    shape = np.array(type_.shape, dtype=np.int64)
    if node.op_type == "Size":
        return {node.output[0]: Known(TensorType("INT64", ()), np.array(shape.prod(), dtype=np.int64))}
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rank = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    start, end = (max(0, min(rank, v + rank if v < 0 else v)) for v in (start, end))
    value = shape[start:end]
    return {node.output[0]: Known(TensorType("INT64", (len(value),)), value)}


def _run_reference(
    node: onnx.NodeProto, known: dict[str, Known], opsets: list[onnx.OperatorSetIdProto]
) -> list[np.ndarray] | None:
    """Evaluate a node on known values: onnx's reference evaluator, then ONNX Runtime."""
    node, originals = _plain_names(node, opsets)  # model names and free text never reach the evaluators
    values = {plain: known[name].values() for plain, name in originals.items()}
    inits = [numpy_helper.from_array(v, n) for n, v in values.items()]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = helper.make_graph([node], "fold", [], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=opsets)
    # Either evaluator may raise anything for an op it lacks or mishandles (NotImplementedError,
    # onnxruntime's own types, numpy errors): the next one is tried, and a node that neither
    # can evaluate is simply not folded.
    try:
        return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, {})]
    except Exception:  # noqa: BLE001, S110
        pass
    try:
        return run_node(node, values, opsets)
    except Exception:  # noqa: BLE001
        return None


def _plain_names(node: onnx.NodeProto, opsets: list[onnx.OperatorSetIdProto]
                 ) -> tuple[onnx.NodeProto, dict[str, str]]:
    """A copy of `node` with inputs i0.. and outputs o0.. and without attributes its schema
    does not know (the evaluators reject them); plain input name -> original."""
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name, copy.doc_string = "n", ""
    version = next((o.version for o in opsets if o.domain in ("", "ai.onnx")), None)
    try:
        known = onnx.defs.get_schema(node.op_type, version or 1, node.domain).attributes
    except onnx.defs.SchemaError:
        known = None
    if known is not None and node.domain in ("", "ai.onnx"):
        kept = [a for a in copy.attribute if a.name in known]
        del copy.attribute[:]
        copy.attribute.extend(kept)
    plain: dict[str, str] = {}
    for k, name in enumerate(copy.input):
        if name:
            copy.input[k] = plain.setdefault(name, f"i{len(plain)}")
    for k, name in enumerate(copy.output):
        if name:
            copy.output[k] = f"o{k}"
    return copy, {v: k for k, v in plain.items()}


def run_node(node: onnx.NodeProto, inputs: dict[str, np.ndarray],
             opsets: list[onnx.OperatorSetIdProto]) -> list[np.ndarray]:
    """Run one node in ONNX Runtime on the given input values (fed as graph inputs)."""
    import onnxruntime as ort

    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
           for n, v in inputs.items()]
    outs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    model = helper.make_model(helper.make_graph([node], "probe", ins, outs), opset_imports=opsets)
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, inputs)]


def probe_types(nodes: list[onnx.NodeProto], known: dict[str, Known], types: dict[str, TensorType],
                opsets: list[onnx.OperatorSetIdProto], random_value) -> dict[str, TensorType]:
    """Output types that shape inference could not give, found by running each such node alone
    in ONNX Runtime on data of the right types (ops onnx has no shape function for, such as
    some ai.onnx.ml ops). Nodes whose output shapes depend on values are not probed."""
    found: dict[str, TensorType] = {}
    for node in nodes:
        if all(o in types or o in found or not o for o in node.output) or node.op_type in VALUE_DEPENDENT \
                or node.op_type in SEQUENCE_OPS:
            continue
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            continue
        inputs = {}
        for name in dict.fromkeys(n for n in node.input if n):
            if name in known and known[name].has_data:
                inputs[name] = known[name].values()
            elif (t := found.get(name) or types.get(name) or (known[name].type if name in known else None)) \
                    and t.sequence is None:
                inputs[name] = random_value(name, t)
            else:
                break
        else:
            plain, originals = _plain_names(node, opsets)
            try:
                values = run_node(plain, {p: inputs[o] for p, o in originals.items()}, opsets)
            except Exception:  # noqa: BLE001, S112 - a node ONNX Runtime cannot run is not probed
                continue
            for name, v in zip((o for o in node.output if o), values, strict=True):
                found[name] = TensorType(_dtype_name(v), tuple(v.shape))
    return found


# Ops whose output shape depends on input values: a probe on random data would be wrong.
VALUE_DEPENDENT = frozenset({"NonZero", "Unique", "NonMaxSuppression", "Compress", "TopK", "Range",
                             "Reshape", "Expand", "Tile", "Slice", "ConstantOfShape", "Resize",
                             "Upsample", "OneHot", "Pad", "Squeeze", "Unsqueeze", "Split"})


def _dtype_name(array: np.ndarray) -> str:
    return onnx.TensorProto.DataType.Name(helper.np_dtype_to_tensor_dtype(array.dtype))
