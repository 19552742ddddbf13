"""A brick's latency guessed from its FLOPs and bytes, before anything is measured.

Compile time knows shapes, not timings, so the decoy budget (`--decoys 20%`: a share of the
suite's latency) is spent against this roofline guess: per layer, the larger of FLOPs over a
round single-core FP32 rate and bytes moved over a round memory rate, plus one session call per
brick. It ranks and sums bricks; it is not an estimate of any model (the suite measures that).
"""

from __future__ import annotations

import math

from onnx import TensorProto, helper

from ..ir import Brick, Kind, Layer, TensorType

PEAK_FLOPS = 50e9  # FP32 FLOP/s of one core with FMA vectors, a round figure
PEAK_BYTES = 10e9  # bytes/s one core streams from cache and memory, a round figure
CALL_S = 10e-6  # one ONNX Runtime session call
# The suite's measurement policy (runtime/core/settings.py FULL_POLICY): at least 100 timed
# calls in values of at least 1 ms each, plus about 10 ms of session creation and warm-up.
MIN_RUNS, MIN_VALUES, MIN_VALUE_S, FIXED_S = 100, 10, 0.001, 0.010


def _elements(t: TensorType | None) -> int:
    return math.prod(t.shape) if t is not None else 0


def _bytes(t: TensorType | None) -> int:
    if t is None:
        return 0
    dtype = TensorProto.DataType.Value(t.dtype)
    size = 1 if t.dtype in ("STRING", "BOOL") else helper.tensor_dtype_to_np_dtype(dtype).itemsize
    return _elements(t) * size


def layer_flops(layer: Layer) -> int:
    """Multiply-adds x 2 for Conv, MatMul and Gemm; one operation per output element otherwise."""
    out = sum(_elements(t) for t in layer.outputs)
    types = [o.type for o in layer.inputs if o.kind is not Kind.ABSENT]
    if layer.op_type in ("Conv", "ConvTranspose", "FusedConv") and len(types) > 1 and types[1] is not None:
        return 2 * out * math.prod(types[1].shape[1:])
    if layer.op_type in ("MatMul", "Gemm", "FusedMatMul") and types and types[0] is not None and types[0].shape:
        trans = any(a.name == "transA" and a.value for a in layer.attributes)
        k = types[0].shape[0] if trans else types[0].shape[-1]
        return 2 * out * k
    return out + sum(_elements(t) for t in types)


def layer_bytes(layer: Layer) -> int:
    return sum(_bytes(o.type) for o in layer.inputs) + sum(_bytes(t) for t in layer.outputs)


def brick_cost(brick: Brick) -> float:
    """Guessed seconds per call of the brick (roofline per layer + one call)."""
    return CALL_S + sum(max(layer_flops(layer) / PEAK_FLOPS, layer_bytes(layer) / PEAK_BYTES)
                        for layer in brick.layers)


def measuring_s(latency: float) -> float:
    """Guessed seconds the suite spends measuring a brick of this latency (its policy's floor)."""
    return FIXED_S + max(MIN_RUNS * latency, MIN_VALUES * max(MIN_VALUE_S, latency))
