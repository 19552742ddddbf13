"""What a model holds that a suite must never show: names, free text and weight bytes.

Used by the audit (audit.py) to search a suite for them. Reads the file like the frontend
does (no external data); a file that cannot be parsed still contributes its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import external_data_helper

MIN_TEXT = 4  # shorter strings ("x", "add") occur everywhere by chance
MIN_WEIGHT_BYTES = 64  # initializers at least this large give byte samples
SAMPLE_BYTES = 32
MIN_DISTINCT_BYTES = 12  # a sample of zeros or a constant fill proves nothing


@dataclass(frozen=True, slots=True)
class Secret:
    kind: str  # "file name", "node name", "doc string", "initializer data", ...
    data: bytes  # what to search for (UTF-8 for text)
    source: str  # the model file it comes from


def model_secrets(path: Path, root: Path) -> list[Secret]:
    """Every private string of one model file, and samples of its initializers' bytes."""
    rel = path.relative_to(root.parent if root.is_file() else root).as_posix()
    texts = [("file name", rel), ("file name", path.stem)]
    texts += [("folder name", part) for part in Path(rel).parent.parts]
    samples: list[bytes] = []
    try:
        model = onnx.load_model(str(path), load_external_data=False)
        texts += _model_texts(model)
        samples = [s for t in model.graph.initializer for s in weight_samples(t, path.parent)]
    except Exception:  # noqa: BLE001, S110 - a file the frontend refused still has a name
        pass
    found = {Secret(kind, text.encode("utf-8", "surrogatepass"), rel) for kind, text in texts
             if isinstance(text, str) and len(text.strip()) >= MIN_TEXT}
    found |= {Secret("initializer data", s, rel) for s in samples}
    return sorted(found, key=lambda s: (s.kind, s.data))


def _model_texts(model: onnx.ModelProto) -> list[tuple[str, str]]:
    graph = model.graph
    texts = [("graph name", graph.name), ("doc string", model.doc_string),
             ("doc string", graph.doc_string), ("producer name", model.producer_name),
             ("producer version", model.producer_version), ("model domain", model.domain)]
    texts += [("metadata", p.key) for p in model.metadata_props]
    texts += [("metadata", p.value) for p in model.metadata_props]
    for node in graph.node:
        texts += [("node name", node.name), ("doc string", node.doc_string)]
    values = [*graph.input, *graph.output, *graph.value_info]
    texts += [("tensor name", v.name) for v in values]
    texts += [("tensor name", t.name) for t in graph.initializer]
    texts += [("tensor name", name) for node in graph.node for name in node.output]
    for function in model.functions:
        texts += [("function name", function.name), ("doc string", function.doc_string)]
    return texts


def weight_samples(tensor: onnx.TensorProto, base_dir: Path) -> list[bytes]:
    """Up to three windows (start, middle, end) of an initializer's stored bytes, stored in the
    model or in its external data file (read at those offsets only)."""
    if external_data_helper.uses_external_data(tensor):
        return _external_samples(tensor, base_dir)
    return _windows(len(tensor.raw_data), lambda start: tensor.raw_data[start:start + SAMPLE_BYTES])


def _windows(size: int, read) -> list[bytes]:
    if size < MIN_WEIGHT_BYTES:
        return []
    starts = sorted({0, (size - SAMPLE_BYTES) // 2, size - SAMPLE_BYTES})
    windows = [read(start) for start in starts]
    return [w for w in windows if len(w) == SAMPLE_BYTES and len(set(w)) >= MIN_DISTINCT_BYTES]


def _external_samples(tensor: onnx.TensorProto, base_dir: Path) -> list[bytes]:
    info = external_data_helper.ExternalDataInfo(tensor)
    location = (base_dir / info.location).resolve()
    if base_dir.resolve() not in location.parents or not location.is_file():
        return []  # outside the model's folder (never read) or missing
    offset = int(info.offset or 0)
    length = int(info.length or (location.stat().st_size - offset))
    with open(location, "rb") as f:
        def read(start: int) -> bytes:
            f.seek(offset + start)
            return f.read(SAMPLE_BYTES)

        return _windows(length, read)
