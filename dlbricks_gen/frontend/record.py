"""Shapes from a real run: the model run once in ONNX Runtime on sample inputs, every
intermediate value exposed as an output, its type (and, when small and integer, its value)
recorded.

Used only where static shape inference gives up (data-dependent sizes such as NonZero, Reshape
to computed sizes, com.microsoft ops, QOperator models) and for control flow (which branch an If
takes, how many times a Loop runs). The recorded shapes are those of this one input: a detector's
box count, for instance, is the one found in the sample.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from ..ir import TensorType
from ..runtime.core.data import random_array
from .errors import FrontendError
from .roles import INT_DTYPES, SMALL_INT_NUMEL
from .shapes import graph_inputs
from .validate import tensor_bytes

# Folder of sample inputs: one file per input, named after it.
SAMPLE_SUFFIXES = (".npy", ".pb")
SEQUENCE_ELEMENT = "@"  # NAME@K: element K of the sequence input NAME


class BudgetError(FrontendError):
    """The recorded run would need (or needed) more memory than --max-bytes: the real cause."""


def _over_budget(display: str, needed: int, max_bytes: int, at_least: bool) -> BudgetError:
    return BudgetError(display, f"recording the shapes of every value needs {'at least ' if at_least else ''}"
                       f"{needed} bytes, more than --max-bytes {max_bytes} (raise it, or give smaller --inputs)")


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one run showed: the type of every tensor value, the values of small integer ones."""

    types: dict[str, TensorType]
    values: dict[str, np.ndarray]
    source: str  # where the inputs came from: a file name or "random (data policy)"


def read_samples(path: Path, display: str, max_bytes: int) -> dict[str, np.ndarray]:
    """Sample inputs from an .npz file or a folder of .npy / .pb (TensorProto) files; inputs a
    model lacks are ignored (one file may serve a folder of models). Refused above `max_bytes`."""
    try:
        files = sorted(f for f in path.iterdir() if f.suffix in SAMPLE_SUFFIXES) if path.is_dir() else []
        size = (sum(f.stat().st_size for f in files) if path.is_dir() else
                sum(i.file_size for i in zipfile.ZipFile(path).infolist()))  # uncompressed sizes
        if size > max_bytes:
            raise FrontendError(display, f"sample inputs {path} hold {size} bytes, more than --max-bytes {max_bytes}")
        if path.is_dir():
            return _sequences({f.stem: _read_one(f) for f in files})
        with np.load(path, allow_pickle=False) as archive:
            return _sequences({name: np.asarray(archive[name]) for name in archive.files})
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, DecodeError) as exc:
        raise FrontendError(display, f"cannot read sample inputs {path} (an .npz file or a folder of "
                            f".npy / .pb files): {exc}") from None


def _sequences(arrays: dict[str, np.ndarray]) -> dict:
    """Arrays named NAME@0, NAME@1 ... are the elements of the sequence input NAME, in order."""
    out: dict = {}
    elements: dict[str, dict[int, np.ndarray]] = {}
    for key, array in arrays.items():
        base, _, index = key.rpartition(SEQUENCE_ELEMENT)
        if base and index.isdigit() and base not in arrays:
            elements.setdefault(base, {})[int(index)] = array
        else:
            out[key] = array
    for base, items in elements.items():
        if sorted(items) != list(range(len(items))):
            raise ValueError(f"sequence input {base}: elements {sorted(items)} are not {base}@0 .. "
                             f"{base}@{len(items) - 1}")
        out[base] = [items[k] for k in range(len(items))]
    return out


def _read_one(file: Path) -> np.ndarray:
    if file.suffix == ".npy":
        return np.load(file, allow_pickle=False)
    tensor = onnx.TensorProto()
    tensor.ParseFromString(file.read_bytes())
    return onnx.numpy_helper.to_array(tensor)


def sample_feeds(model: onnx.ModelProto, given: dict[str, np.ndarray] | None, display: str
                 ) -> dict[str, np.ndarray]:
    """Given inputs, the rest (shapes already bound) drawn by the random data policy."""
    feeds = dict(given or {})
    for value in graph_inputs(model.graph):
        if value.name not in feeds and value.type.HasField("sequence_type"):
            raise FrontendError(display, f"input {value.name!r} is a sequence: its elements (how many, "
                                f"their shapes) come only from sample inputs (--inputs with {value.name}@0, "
                                f"{value.name}@1 ...)")
        if value.name not in feeds:
            tt = value.type.tensor_type
            dtype = onnx.TensorProto.DataType.Name(tt.elem_type)
            feeds[value.name] = random_array(value.name, dtype, [d.dim_value for d in tt.shape.dim], "input")
    return feeds


def record(model: onnx.ModelProto, feeds: dict[str, np.ndarray], known_types: dict[str, TensorType],
           max_bytes: int, base_dir: Path | None, display: str, source: str) -> Recorded:
    """Run `model` once (CPU, one thread, no graph optimization, so every original value
    exists) with every node output exposed; refuse when the values would exceed `max_bytes`."""
    names = list(dict.fromkeys(o for node in model.graph.node for o in node.output if o))
    static = sum(tensor_bytes(known_types[n]) for n in names if n in known_types)
    if static > max_bytes:
        raise _over_budget(display, static, max_bytes, at_least=True)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    try:
        outputs, declared = _run(probe, feeds, base_dir)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        hint = " (give a real sample with --inputs)" if source.startswith("random") else ""
        raise FrontendError(display, f"the recorded run (shapes from a real run) on {source} inputs failed in "
                            f"ONNX Runtime{hint}: {' '.join(str(exc).split())[:300]}") from None
    types, values, total = {}, {}, 0
    declared.update({v.name: _declared(v) for v in graph_inputs(model.graph)})
    given = [(k, v) for k, v in feeds.items() if k not in names]
    for name, value in [*given, *zip(names, outputs, strict=True)]:
        t = _type_of(value, declared.get(name, ""))
        if t is None:
            continue  # maps and optionals have no tensor type
        types[name] = t
        total += sum(a.nbytes for a in value) if isinstance(value, list) else value.nbytes
        if t.dtype in INT_DTYPES and t.sequence is None and value.size <= SMALL_INT_NUMEL:
            values[name] = value
    if total > max_bytes:
        raise _over_budget(display, total, max_bytes, at_least=False)
    return Recorded(types, values, source)


def _type_of(value: object, declared: str) -> TensorType | None:
    """The type of a value ONNX Runtime returned: a tensor, or a sequence of tensors (a list,
    whose element type, for an empty one, is the declared `seq(tensor(float))`)."""
    if isinstance(value, np.ndarray):
        return TensorType(_dtype(value), tuple(int(d) for d in value.shape))
    if not isinstance(value, list) or not all(isinstance(a, np.ndarray) for a in value):
        return None
    if value:
        dtype = _dtype(value[0])
    elif declared.startswith("seq(tensor(") and declared.endswith("))"):
        dtype = declared[len("seq(tensor("):-2].upper()  # ONNX Runtime's names, lower case
    else:
        return None
    return TensorType(dtype, (), tuple(tuple(int(d) for d in a.shape) for a in value))


def _dtype(array: np.ndarray) -> str:
    return onnx.TensorProto.DataType.Name(helper.np_dtype_to_tensor_dtype(array.dtype))


def _declared(value: onnx.ValueInfoProto) -> str:
    """A graph input's type spelled as ONNX Runtime spells it (sequences only)."""
    if not value.type.HasField("sequence_type"):
        return ""
    elem = value.type.sequence_type.elem_type.tensor_type.elem_type
    return f"seq(tensor({onnx.TensorProto.DataType.Name(elem).lower()}))"


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], base_dir: Path | None
         ) -> tuple[list, dict[str, str]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if base_dir is not None:  # weights in external data files, relative to the model's folder
        options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                         str(base_dir))
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    declared = {o.name: o.type for o in session.get_outputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in wanted}), declared
