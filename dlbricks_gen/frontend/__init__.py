"""The frontend: the only stage that reads model files. ONNX file -> `ir.Model`.

    model = load_model(Path("models/resnet18.onnx"), root=Path("models"), options=ShapeOptions())

Steps: parse without weight bytes, bind symbolic input dimensions, infer shapes, fold what
ONNX Runtime folds at session start, lower the remaining nodes to layers in canonical order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from ..ir import Model, TensorType
from ..runtime.core.data import random_array
from .control import MAX_NESTING, expand, has_subgraph, instrument
from .errors import FrontendError
from .fold import Known, fold, probe_types
from .load import is_small_int, numel, read_model
from .lower import SHAPE_INPUTS, Lowerer, canonical_order
from .record import BudgetError, Recorded, read_samples, record, sample_feeds
from .shapes import ShapeOptions, bind_inputs, graph_inputs, infer
from .validate import check_graph, check_sizes, initializer_dims

__all__ = ["FrontendError", "ShapeOptions", "find_models", "load_model", "lower_proto"]

# Initializers up to this size are read into memory so that folding can compute with them.
KNOWN_DATA_NUMEL = 4096
MAX_FOLD_ROUNDS = 8


def find_models(root: Path) -> list[Path]:
    """All *.onnx files below `root` (or `root` itself), in a stable order."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.onnx") if p.is_file())


def model_name(path: Path, root: Path) -> str:
    base = root.parent if root.is_file() else root
    return path.relative_to(base).with_suffix("").as_posix()


def load_model(path: Path, root: Path, options: ShapeOptions) -> Model:
    """Read, bind, infer, fold and lower one model file. Raises FrontendError (one line)."""
    display = path.as_posix()
    proto = read_model(path, display)
    file = path.relative_to(root.parent if root.is_file() else root).as_posix()
    samples = read_samples(options.inputs, display, options.max_bytes) if options.inputs is not None else None
    return lower_proto(proto, model_name(path, root), file, options, display, samples, path.parent,
                       options.inputs.name if options.inputs is not None else None)


def lower_proto(proto: onnx.ModelProto, name: str, file: str, options: ShapeOptions,
                display: str | None = None, inputs: dict[str, np.ndarray] | None = None,
                base_dir: Path | None = None, source: str | None = None) -> Model:
    """Lower an in-memory model (its external data, if any, read from `base_dir` only for a
    recorded run). `inputs`: sample inputs for that run (else seeded random data)."""
    display = display or file
    check_graph(proto.graph, display)
    initializer_dims(proto.graph, display)
    bind_inputs(proto, _with_sample_shapes(options, proto, inputs), display)
    for index, node in enumerate(proto.graph.node):
        node.name = node.name or f"#{index}"  # for error messages only
    settled = _settle(proto, options, display, inputs, base_dir, source)
    nodes, known, types, recorded, failure = (settled.nodes, settled.known, settled.types,
                                              settled.recorded, settled.failure)
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in proto.opset_import}
    external = {t.name for t in proto.graph.initializer  # left unread by load_small_external
                if external_data_helper.uses_external_data(t) and (is_small_int(t) or numel(t) <= 1)}
    lowerer = Lowerer(display, known, types, opsets, recorded.values if recorded else {}, external)
    try:
        lowered = [lowerer.node(nodes[i], i) for i in canonical_order(nodes, display)]
    except FrontendError as exc:
        if failure is None:
            raise
        raise FrontendError(display, f"{exc.message}; {failure.message}", exc.node, exc.op) from None
    inputs_ = tuple(v.name for v in graph_inputs(proto.graph))
    return Model(name, file, tuple(lowered), inputs_, tuple(outputs_in_order(proto.graph)),
                 settled.folded, settled.assumed())


@dataclass(slots=True)
class _Settled:
    """The graph ready to lower: nodes left after folding, what is known, and what was assumed."""

    nodes: list[onnx.NodeProto]
    known: dict[str, Known]
    types: dict[str, TensorType]
    folded: int
    recorded: Recorded | None = None
    expanded: list[tuple[str, str]] = field(default_factory=list)  # control flow, as it ran
    runs: int = 0
    failure: FrontendError | None = None  # a recorded run that failed: added to lowering errors

    def assumed(self) -> tuple[tuple[str, str], ...]:
        if self.recorded is None:
            return tuple(self.expanded)
        count = "one inference" if self.runs == 1 else f"{self.runs} inferences (one per level of control flow)"
        return (("recorded run", f"shapes from {count} on {self.recorded.source}"), *self.expanded)


def _settle(proto: onnx.ModelProto, options: ShapeOptions, display: str, inputs: dict | None,
            base_dir: Path | None, source: str | None) -> _Settled:
    """Fold; where static inference gives up or control flow remains, record a run, expand one
    level of control flow as it ran and fold again (in place on `proto`)."""
    state = _Settled(*_fold_rounds(proto, options, display, None))
    for _ in range(MAX_NESTING):
        flow = any(has_subgraph(n) for n in state.nodes)
        if not flow and _all_typed(state.nodes, state.known, state.types) \
                and not _shapes_at_run_time(state.nodes, state.known):
            break
        feeds = sample_feeds(proto, inputs, display)
        state.runs += 1
        try:
            state.recorded = record(instrument(proto), feeds, state.types, options.max_bytes, base_dir,
                                    display, source or ("given inputs" if inputs else "random (data policy)"))
        except BudgetError:
            raise
        except FrontendError as exc:
            state.failure = exc  # the lowering names the node that needed it, and why
            break
        if flow:
            state.expanded += expand(proto, {**state.recorded.values, **feeds},
                                     {**state.types, **state.recorded.types}, display)
        state.nodes, state.known, state.types, state.folded = _fold_rounds(proto, options, display,
                                                                           state.recorded)
        if not flow:
            break
    return state


def _with_sample_shapes(options: ShapeOptions, proto: onnx.ModelProto,
                        inputs: dict[str, np.ndarray] | None) -> ShapeOptions:
    """Sample inputs bind the shapes of the inputs they give (--input-shape still wins)."""
    if not inputs:
        return options
    names = {v.name for v in graph_inputs(proto.graph)}
    explicit = dict(options.input_shapes)
    for key, value in sorted(inputs.items()):
        if key in names and key not in explicit and isinstance(value, np.ndarray):
            explicit[key] = tuple(int(d) for d in np.shape(value))
    return replace(options, input_shapes=tuple(sorted(explicit.items())))


def _fold_rounds(proto: onnx.ModelProto, options: ShapeOptions, display: str, recorded: Recorded | None):
    """Infer and fold until nothing changes; recorded types fill what inference leaves open."""
    known = {t.name: _known_initializer(t) for t in proto.graph.initializer}
    outputs = {v.name for v in proto.graph.output}
    nodes, folded = list(proto.graph.node), 0
    probed: dict[str, TensorType] = {}
    extra = recorded.types if recorded else {}
    working = _rebuild(proto, nodes, known, {})  # weights as typed inputs: no bytes copied
    types: dict[str, TensorType] = {}
    for _ in range(MAX_FOLD_ROUNDS):
        # what ran beats what inference guessed (it errs on zero-size and data-dependent dims)
        types = {**static_types(infer(working, display).graph), **probed, **extra}
        check_sizes(nodes, types, options.max_bytes, display)  # before anything is computed
        result = fold(nodes, known, types, outputs, list(proto.opset_import))
        nodes, known = result.nodes, result.known
        folded += result.folded
        if _all_typed(nodes, known, types):
            break
        new = probe_types(nodes, known, types, list(proto.opset_import), _probe_value)
        if not result.folded and not new:
            break
        probed.update(new)
        working = _rebuild(proto, nodes, known, {**extra, **probed})
    return nodes, known, types, folded


def _all_typed(nodes: list[onnx.NodeProto], known: dict[str, Known], types: dict) -> bool:
    """Whether another round of shape inference could add anything."""
    return all(name in types or name in known for node in nodes for name in [*node.input, *node.output] if name)


def _shapes_at_run_time(nodes: list[onnx.NodeProto], known: dict[str, Known]) -> bool:
    """Whether an input that decides an output shape (a Reshape's shape ...) is computed at run
    time: its value, and so the brick, is known only from a run."""
    return any(slot < len(node.input) and node.input[slot] and node.input[slot] not in known
               for node in nodes for slot in SHAPE_INPUTS.get(node.op_type, ()))


def _probe_value(name: str, t: TensorType) -> np.ndarray:
    role = "input" if t.dtype in ("INT64", "INT32", "BOOL") else "weight"
    return random_array(name, t.dtype, list(t.shape), role)


def _rebuild(proto: onnx.ModelProto, nodes: list[onnx.NodeProto], known: dict[str, Known],
             probed: dict[str, TensorType]) -> onnx.ModelProto:
    """The graph after folding, for the next round of shape inference: known tensors become
    typed inputs (weights need no bytes for that), and initializers where values are known."""
    inputs = list(graph_inputs(proto.graph))
    inits = []
    for name, k in known.items():
        inputs.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.DataType.Value(k.type.dtype), list(k.type.shape)))
        if k.data is not None:
            inits.append(numpy_helper.from_array(np.asarray(k.data), name))
        elif k.proto is not None:
            inits.append(k.proto)
    value_info = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.DataType.Value(t.dtype), list(t.shape))
                  for name, t in probed.items() if t.sequence is None]  # inference types sequences itself
    graph = onnx.helper.make_graph(nodes, proto.graph.name, inputs, list(proto.graph.output), inits,
                                   value_info=value_info)
    rebuilt = onnx.helper.make_model(graph, opset_imports=list(proto.opset_import))
    rebuilt.ir_version = max(proto.ir_version, 4)
    return rebuilt


def outputs_in_order(graph: onnx.GraphProto) -> list[str]:
    return [v.name for v in graph.output]


def static_types(graph: onnx.GraphProto) -> dict[str, TensorType]:
    """Every value with a known element type and a fully static shape."""
    types = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tt = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not tt.elem_type or not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
            dtype = onnx.TensorProto.DataType.Name(tt.elem_type)
            types[value.name] = TensorType(dtype, tuple(d.dim_value for d in dims))
    return types


def _known_initializer(tensor: onnx.TensorProto) -> Known:
    type_ = TensorType(onnx.TensorProto.DataType.Name(tensor.data_type), tuple(tensor.dims))
    readable = not external_data_helper.uses_external_data(tensor)
    return Known(type_, None, tensor if readable and numel(tensor) <= KNOWN_DATA_NUMEL else None)
