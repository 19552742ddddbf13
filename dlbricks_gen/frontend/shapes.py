"""Binding symbolic input dimensions and running ONNX shape inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from .errors import FrontendError

# Default of --max-bytes: the tensors one layer reads and writes (inputs, weights, outputs).
DEFAULT_MAX_BYTES = 4 << 30


@dataclass(frozen=True, slots=True)
class ShapeOptions:
    """How to make every input dimension concrete (the CLI's --batch, --input-shape, --dim)."""

    batch: int | None = None
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    dims: tuple[tuple[str, int], ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES  # refuse a layer whose tensors need more (--max-bytes)
    inputs: Path | None = None  # sample inputs for the recorded run (--inputs): .npz or a folder


def graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: old IR versions also list initializers as inputs."""
    inits = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in inits]


def bind_inputs(model: onnx.ModelProto, options: ShapeOptions, display: str) -> None:
    """Make every graph input shape concrete, in place; error naming the unresolved inputs."""
    graph = model.graph
    explicit = dict(options.input_shapes)
    symbols = dict(options.dims)
    for value in graph_inputs(graph):
        dims = value.type.tensor_type.shape.dim
        if (options.batch is not None and value.name not in explicit and dims
                and dims[0].dim_param and dims[0].dim_param not in symbols):
            symbols[dims[0].dim_param] = options.batch
    unresolved = []
    for value in graph_inputs(graph):
        if value.type.HasField("sequence_type") and value.type.sequence_type.elem_type.HasField("tensor_type"):
            continue  # a sequence of tensors: its elements come from the sample inputs
        if not value.type.HasField("tensor_type"):
            raise FrontendError(display, f"input {value.name!r} is a map or an optional: only tensors and "
                                "sequences of tensors are supported in bricks")
        shape = value.type.tensor_type.shape
        if value.name in explicit:
            _check_explicit(value.name, shape, explicit[value.name], display)
            _set_shape(shape, explicit[value.name])
            continue
        missing = []
        for index, dim in enumerate(shape.dim):
            if dim.HasField("dim_value") and dim.dim_value >= 0:
                continue  # zero-size dimensions are static too; -1 (Paddle exports) is symbolic
            if dim.dim_param in symbols:
                dim.dim_value = symbols[dim.dim_param]
            elif index == 0 and options.batch is not None:
                dim.dim_value = options.batch
            else:
                missing.append(dim.dim_param or f"dim {index}"
                               + (f" is {dim.dim_value}" if dim.HasField("dim_value") else ""))
        if missing or not value.type.tensor_type.HasField("shape"):
            unresolved.append(f"{value.name} ({', '.join(missing) or 'no shape'})")
    if unresolved:
        raise FrontendError(
            display,
            "unresolved input dimensions: " + "; ".join(unresolved)
            + " (bind them with --batch, --dim NAME=VALUE or --input-shape NAME=DIMS)",
        )
    _bind_outputs(graph, symbols)


def option_problems(paths: list[Path], options: ShapeOptions) -> list[str]:
    """--input-shape and --dim against the inputs of every model, before any work: a name no
    model's input has, a wrong rank, a changed fixed dimension (one line each). An option
    applies to the models that have the name; unreadable models are left to the lowering."""
    from .load import read_model

    explicit, problems = dict(options.input_shapes), []
    inputs: set[str] = set()
    symbols: set[str] = set()
    for path in paths:
        try:
            graph = read_model(path, path.as_posix()).graph
        except FrontendError:
            continue
        for value in graph_inputs(graph):
            inputs.add(value.name)
            shape = value.type.tensor_type.shape
            symbols.update(d.dim_param for d in shape.dim if d.dim_param)
            if value.name in explicit:
                try:
                    _check_explicit(value.name, shape, explicit[value.name], path.as_posix())
                except FrontendError as exc:
                    problems.append(str(exc))
    for name in sorted(set(explicit) - inputs):
        problems.append(f"--input-shape {name}=...: no model has an input named {name!r} "
                        f"(inputs: {_listed(inputs)})")
    for name, size in options.dims:
        if name not in symbols:
            problems.append(f"--dim {name}={size}: no input of the models has a dimension named "
                            f"{name!r} (named dimensions: {_listed(symbols)})")
    return problems


def _listed(names: set[str], most: int = 20) -> str:
    shown = sorted(names)
    return (", ".join(shown[:most]) + (f", ... ({len(shown)} in all)" if len(shown) > most else "")
            if shown else "none")


def _check_explicit(name: str, shape: onnx.TensorShapeProto, dims: tuple[int, ...], display: str) -> None:
    """--input-shape may bind the symbolic dimensions of an input, not change its rank or a
    dimension the model fixes (shape inference would fail later, naming something else)."""
    if not shape.dim:
        return  # no shape recorded: any shape is the user's to give
    given = "x".join(map(str, dims))
    if len(dims) != len(shape.dim):
        raise FrontendError(display, f"--input-shape {name}={given}: input {name!r} has rank "
                                     f"{len(shape.dim)}, not {len(dims)}")
    for index, (dim, value) in enumerate(zip(shape.dim, dims, strict=True)):
        if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != value:
            raise FrontendError(display, f"--input-shape {name}={given}: dimension {index} of input "
                                         f"{name!r} is fixed at {dim.dim_value} by the model")


def _set_shape(shape: onnx.TensorShapeProto, dims: tuple[int, ...]) -> None:
    del shape.dim[:]
    for d in dims:
        shape.dim.add().dim_value = d


def _bind_outputs(graph: onnx.GraphProto, symbols: dict[str, int]) -> None:
    """Drop stale intermediate shapes; substitute known symbols in output shapes."""
    del graph.value_info[:]
    for value in graph.output:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_value = symbols[dim.dim_param]
            elif dim.dim_param:
                dim.Clear()


def infer(model: onnx.ModelProto, display: str) -> onnx.ModelProto:
    """ONNX shape inference; for models with com.microsoft ops (unknown to onnx), ONNX
    Runtime's own symbolic shape inference, which knows them (what it leaves untyped, as in
    QOperator models, is then typed by probing nodes or by a recorded run)."""
    try:
        if any(node.domain == "com.microsoft" for node in model.graph.node):
            return _infer_contrib(model)
        return onnx.shape_inference.infer_shapes(model, check_type=False, data_prop=True)
    except FrontendError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError, ValidationError, RuntimeError
        raise FrontendError(display, f"shape inference failed: {' '.join(str(exc).split())}") from None


def _infer_contrib(model: onnx.ModelProto) -> onnx.ModelProto:
    """SymbolicShapeInference.infer_shapes step by step: when it cannot finish (QOperator
    models) its public entry point saves `sym_shape_infer_temp.onnx` into the working
    directory and raises; here the partial result is kept (a recorded run types the rest)."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    inference = SymbolicShapeInference(2**31 - 1, True, False, 0)
    inference._preprocess(model)
    while inference.run_:
        inference._infer_impl()
    inference._update_output_from_vi()
    return inference.out_mp_
