"""Reading ONNX files: the graph without the weight bytes, plus the few small external
constants whose values decide semantics (shape tensors, axes, indices)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import TensorProto, external_data_helper

from .errors import FrontendError
from .roles import INT_DTYPES, SMALL_INT_NUMEL

# Integer tensors up to this many elements are loaded (and kept) as semantic constants.
MIN_OPSET = 7


def read_model(path: Path, display: str) -> onnx.ModelProto:
    """Parse `path` without reading external weight data; one-line errors for bad files."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FrontendError(display, f"cannot read file: {exc.strerror}") from None
    if size == 0:
        raise FrontendError(display, "empty file, not an ONNX model")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as exc:
        raise FrontendError(display, f"not a valid ONNX file (truncated, corrupt, or with "
                             f"text that is not UTF-8): {exc}") from None
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types for garbage input
        raise FrontendError(display, f"not a valid ONNX file: {type(exc).__name__}: {exc}") from None
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise FrontendError(display, "not an ONNX model (no graph)")
    try:
        check_text(model)
    except UnicodeDecodeError:
        raise FrontendError(display, "not a valid ONNX file: holds text (a name, doc string or "
                            "metadata) that is not UTF-8") from None
    check_opsets(model, display)
    load_small_external(model, path.parent, display)
    if model.functions:  # model-local functions: ONNX Runtime inlines them, so do we
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:  # noqa: BLE001 - the inliner's errors are untyped (C++ and Python)
            raise FrontendError(display, f"cannot inline the model's local functions: {exc}") from None
    return model


def check_text(message) -> None:
    """Every string field must be UTF-8: protobuf hands back invalid text as bytes (or raises)."""
    for field, value in message.ListFields():
        if field.type == field.TYPE_STRING:
            for text in value if field.is_repeated else [value]:
                if not isinstance(text, str):
                    raise UnicodeDecodeError("utf-8", bytes(text), 0, 1, f"in field {field.name}")
        elif field.type == field.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                check_text(item)


def check_opsets(model: onnx.ModelProto, display: str) -> None:
    opsets = {o.domain or "": o.version for o in model.opset_import}
    version = opsets.get("", opsets.get("ai.onnx"))
    if version is None:
        if "ai.onnx.ml" in opsets:
            return  # a model of ai.onnx.ml operators only: its bricks import ai.onnx too
        raise FrontendError(display, "model imports no ai.onnx or ai.onnx.ml opset")
    if version < MIN_OPSET:
        raise FrontendError(display, f"opset {version} is older than the supported {MIN_OPSET}")
    newest = onnx.defs.onnx_opset_version()
    if version > newest:
        raise FrontendError(
            display, f"opset {version} is newer than this onnx ({onnx.__version__}) knows ({newest})"
        )


def numel(tensor: TensorProto) -> int:
    return math.prod(tensor.dims)


def is_small_int(tensor: TensorProto) -> bool:
    return tensor.data_type in INT_TYPES and numel(tensor) <= SMALL_INT_NUMEL


def load_small_external(model: onnx.ModelProto, base_dir: Path, display: str) -> None:
    """Load the bytes of small external constants (cheap); leave weights on disk.

    A missing data file is not an error here: shapes are in the graph, and a constant whose
    values turn out to be needed is reported by the lowering, naming the node.
    """
    for tensor in model.graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            continue
        if not (is_small_int(tensor) or numel(tensor) <= 1):
            continue
        info = external_data_helper.ExternalDataInfo(tensor)
        location = os.path.normpath(base_dir / info.location)
        if not location.startswith(os.path.normpath(base_dir)) or not os.path.isfile(location):
            continue
        try:
            external_data_helper.load_external_data_for_tensor(tensor, str(base_dir))
        except (OSError, ValueError) as exc:
            raise FrontendError(display, f"cannot read external data of {tensor.name!r}: {exc}") from None
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT


INT_TYPES = frozenset(TensorProto.DataType.Value(name) for name in INT_DTYPES)
