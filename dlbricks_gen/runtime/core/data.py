"""The random data policy v4 (docs/FORMATS.md): every input and weight is drawn from a
generator seeded by the tensor's name, so it is the same on every run and machine."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

import numpy as np

FLOAT_DTYPES = frozenset({
    "FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16", "COMPLEX64", "COMPLEX128",
    "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1",
})
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# A session's inputs: a tensor per name, or a list of them for a sequence input.
Feeds = dict[str, "np.ndarray | list[np.ndarray]"]

# 8-bit integers are quantized data, never indices: drawn over their range, zero points (rank
# <= 1 weights) at the middle of it, as onnxruntime.quantization writes them.
QUANTIZED = {"INT8": (-127, 127, 0), "UINT8": (0, 255, 128)}  # low, high, zero point


def seed_of(name: str) -> int:
    """First 8 bytes of sha256(name), big-endian (docs/FORMATS.md, random data policy)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


def element_type(dtype: str) -> int:
    import onnx  # here, not at the top: see NUMPY_NAMES

    try:
        return onnx.TensorProto.DataType.Value(dtype)
    except ValueError:
        raise ValueError(f"unknown dtype {dtype!r}") from None


# numpy's own types, so that inputs are drawn without importing onnx (about a second, for
# ml_dtypes) in a worker that reuses built graphs; onnx's table gives the others and the same
# answer for these (tests/test_effort.py checks it).
NUMPY_NAMES = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "INT8": "int8",
               "INT16": "int16", "INT32": "int32", "INT64": "int64", "UINT8": "uint8",
               "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64", "BOOL": "bool"}


def numpy_dtype(dtype: str) -> np.dtype:
    if dtype in NUMPY_NAMES:
        return np.dtype(NUMPY_NAMES[dtype])
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(element_type(dtype)))


def _bounds(shape: tuple[int, ...], role: str) -> tuple[float, float]:
    if role == "input":
        return -1.0, 1.0
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return (-1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in)) if fan_in else (-1.0, 1.0)
    return 0.5, 1.5  # scales, biases, BatchNorm variances: positive


def is_mask(name: str) -> bool:
    """An integer or boolean graph input named as a mask (HF exporters' `attention_mask`): all
    ones (every token attended, no padding), as ONNX Runtime's transformer benchmarks feed it.
    Zeros would mask every token, rows of -inf before the Softmax: a degenerate input that
    some exports run far slower (NaN rows) than any real one."""
    return "mask" in name.lower()


def random_array(name: str, dtype: str, shape: Iterable[int], role: str) -> np.ndarray:
    """The data policy v4: seeded by the tensor name, the same on every run and machine."""
    if role not in ("input", "weight"):
        raise ValueError(f"role must be 'input' or 'weight', not {role!r}")
    dims = tuple(int(d) for d in shape)
    np_type = numpy_dtype(dtype)
    if dtype == "STRING":
        return np.full(dims, "", dtype=object)
    if dtype in QUANTIZED:
        return _quantized(name, dtype, dims, role)
    if dtype not in FLOAT_DTYPES:  # other integers are zeros (always valid indices), BOOL is False
        return (np.ones if role == "input" and is_mask(name) else np.zeros)(dims, dtype=np_type)
    rng = np.random.default_rng(seed_of(name))
    low, high = _bounds(dims, role)
    if np_type == np.float32:  # most weights: drawn in float32 directly, twice as fast
        array = rng.random(size=dims, dtype=np.float32)
        array *= np.float32(high - low)
        array += np.float32(low)
        return array
    return rng.uniform(low, high, size=dims).astype(np_type)


def _quantized(name: str, dtype: str, dims: tuple[int, ...], role: str) -> np.ndarray:
    low, high, zero_point = QUANTIZED[dtype]
    if role == "weight" and len(dims) < 2:
        return np.full(dims, zero_point, dtype=numpy_dtype(dtype))
    rng = np.random.default_rng(seed_of(name))
    return rng.integers(low, high, size=dims, endpoint=True).astype(numpy_dtype(dtype))


def literal_array(dtype: str, shape: Iterable[int], data: list) -> np.ndarray:
    """A constant given literally in a SPEC (flat, row-major; non-finite floats as strings)."""
    np_type = numpy_dtype(dtype)
    if dtype == "STRING":
        array = np.array(data, dtype=object)
    elif dtype in FLOAT_DTYPES:
        array = np.array([NON_FINITE[v] if isinstance(v, str) else v for v in data],
                         dtype=np.float64).astype(np_type)
    else:
        array = np.array(data, dtype=np_type)
    return array.reshape(tuple(int(d) for d in shape))


def input_feeds(inputs: list[dict]) -> Feeds:
    """Seeded random data for graph inputs given as [{"name", "dtype", "shape"}]; a sequence
    input ({"sequence": [shape, ...]}) gets one array per element, element k seeded by NAME.k."""
    return {t["name"]: ([random_array(f"{t['name']}.{k}", t["dtype"], shape, "input")
                         for k, shape in enumerate(t["sequence"])] if "sequence" in t else
                        random_array(t["name"], t["dtype"], t["shape"], "input")) for t in inputs}
