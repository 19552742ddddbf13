"""A small ONNX graph builder that writes graphs the way exporters do (torch.onnx dynamo, opset 18).

Every method appends nodes, returns the name of its output tensor and records that tensor's
static shape, so model code never spells input channel counts out. Like an eval-mode export, a
BatchNormalization right after a Conv is folded into that Conv's weight and bias; pooling to 1x1
is ReduceMean and flattening is Reshape, as the dynamo exporter writes them
(benchmarks/zoo_vs_exports.py compares the op counts with real exports). Widths passed to the builder
are full-scale; `tiny` divides them by 8 (see `ch`) unless `fixed=True` (class counts, RGB, ...).
Weights are float32 initializers drawn with one numpy call per tensor, seeded from the model id
and the tensor name, so the same options give byte-identical models.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
IR_VERSION = 8
PRODUCER = "dlbricks-gen-zoo"

Shape = tuple[int, ...]
IntPair = int | tuple[int, int]


def _pair(v: IntPair) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window_out(size: int, k: int, s: int, pad: int, d: int = 1, ceil: bool = False) -> int:
    span = size + pad - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + pad // 2:  # PyTorch: the last window must start inside
        out -= 1
    return out


class Builder:
    """Accumulates one graph: nodes, seeded initializers, and the static shape of every tensor."""

    def __init__(self, model_id: str, *, batch: int, tiny: bool, image_size: int, seq_len: int):
        self.model_id = model_id
        self.batch = batch
        self.tiny = tiny
        self.image_size = image_size
        self.seq_len = seq_len
        self.nodes: list[onnx.NodeProto] = []
        # initializers go straight into the final proto: big models are never copied
        self.proto = onnx.ModelProto()
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.shapes: dict[str, Shape] = {}
        self.types: dict[str, int] = {}
        self._counts: Counter[str] = Counter()
        self._consts: dict[tuple, str] = {}
        self._floats: dict[str, TensorProto] = {}  # float initializers by name (BN folding)

    # ---- sizes, names, tensors -------------------------------------------------------------

    def ch(self, c: int) -> int:
        """A full-scale width at this build's scale (tiny: divided by 8, at least 4)."""
        return max(4, c // 8) if self.tiny else c

    def shape(self, x: str) -> Shape:
        return self.shapes[x]

    def channels(self, x: str) -> int:
        return self.shapes[x][1]

    def _fresh(self, op: str) -> str:
        i = self._counts[op]
        self._counts[op] += 1
        return f"{op}_{i}"

    def _rng(self, name: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.model_id}/{name}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "big"))

    def weight(self, name: str, shape: Sequence[int], kind: str = "fan_in") -> str:
        """A float32 initializer, uniform (the fastest draw) with a spread chosen by `kind`:
        'fan_in' He-scaled over dims 1.. (conv / Gemm weights), 'linear' over dim 0 (MatMul
        weights [in, out]), 'embed' std 0.02, 'scale' in [0.5, 1.5), 'small' in [-0.1, 0.1)."""
        return self._tensor(name, self._draw(name, shape, kind))

    def _draw(self, name: str, shape: Sequence[int], kind: str) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        if kind == "fan_in":
            low, high = self._he_bound(math.prod(shape[1:]))
        elif kind == "linear":
            low, high = self._he_bound(2 * shape[0])  # std sqrt(1 / fan_in)
        elif kind == "embed":
            low, high = -0.02 * math.sqrt(3.0), 0.02 * math.sqrt(3.0)
        elif kind == "scale":
            low, high = 0.5, 1.5
        elif kind == "small":
            low, high = -0.1, 0.1
        else:
            raise ValueError(f"unknown weight kind {kind!r}")
        data = self._rng(name).random(shape, dtype=np.float32)  # one draw per tensor, in [0, 1)
        data *= np.float32(high - low)
        data += np.float32(low)
        return data

    def _tensor(self, name: str, data: np.ndarray) -> str:
        tensor = self.proto.graph.initializer.add()
        tensor.name, tensor.data_type = name, TensorProto.FLOAT
        tensor.dims.extend(data.shape)
        tensor.raw_data = data.astype(np.float32).tobytes()
        self._floats[name] = tensor
        return self._record(tensor)

    @staticmethod
    def _he_bound(fan_in: int) -> tuple[float, float]:
        bound = math.sqrt(6.0 / max(1, fan_in))  # uniform(-b, b) has std sqrt(2 / fan_in)
        return -bound, bound

    def const(self, values, dtype=np.int64) -> str:
        """A literal constant (shapes, axes, scalars); equal constants share one initializer."""
        array = np.asarray(values, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = f"const_{len(self._consts)}"
            tensor = self.proto.graph.initializer.add()
            tensor.CopyFrom(numpy_helper.from_array(array, name))
            self._consts[key] = self._record(tensor)
        return self._consts[key]

    def _record(self, tensor: TensorProto) -> str:
        self.shapes[tensor.name] = tuple(tensor.dims)
        self.types[tensor.name] = tensor.data_type
        return tensor.name

    def input(self, name: str, shape: Sequence[int], elem_type: int = TensorProto.FLOAT) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        self.shapes[name] = tuple(shape)
        self.types[name] = elem_type
        return name

    def output(self, x: str, name: str) -> str:
        """Expose `x` as graph output `name` by renaming its producer's output (no Identity
        node, as exporters do); later code must use the returned name."""
        last = next(n for n in reversed(self.nodes) if x in n.output)
        last.output[list(last.output).index(x)] = name
        for node in self.nodes:  # keep later readers of x pointing at the renamed tensor
            for i, inp in enumerate(node.input):
                if inp == x:
                    node.input[i] = name
        self.shapes[name], self.types[name] = self.shapes[x], self.types[x]
        self.outputs.append(helper.make_tensor_value_info(name, self.types[x], list(self.shapes[x])))
        return name

    def op(self, op_type: str, inputs: Sequence[str], shape: Shape, *,
           elem_type: int | None = None, **attrs) -> str:
        """Append a one-output node whose output has `shape`; returns the output's name."""
        return self.node(op_type, inputs, [shape], elem_type=elem_type, **attrs)[0]

    def node(self, op_type: str, inputs: Sequence[str], shapes: Sequence[Shape], *,
             elem_type: int | None = None, **attrs) -> list[str]:
        """Append a node with one output per shape (named `<op>_<i>`, or `_<k>` suffixed)."""
        for s in shapes:
            if any(int(d) <= 0 for d in s):
                raise ValueError(f"{self.model_id}: {op_type} output would be empty {tuple(s)}; "
                                 f"input too small?")
        name = self._fresh(op_type)
        base = name.lower()
        outs = [base] if len(shapes) == 1 else [f"{base}_{k}" for k in range(len(shapes))]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        out_type = elem_type if elem_type is not None else self.types[inputs[0]]
        for out, s in zip(outs, shapes, strict=True):
            self.shapes[out] = tuple(int(d) for d in s)
            self.types[out] = out_type
        return outs

    def model(self, doc: str = "") -> onnx.ModelProto:
        """The finished model; call once (the builder hands over its proto)."""
        model, graph = self.proto, self.proto.graph
        graph.name = self.model_id
        graph.node.extend(self.nodes)
        graph.input.extend(self.inputs)
        graph.output.extend(self.outputs)
        model.ir_version = IR_VERSION
        model.producer_name = PRODUCER
        model.doc_string = doc
        model.opset_import.append(helper.make_opsetid("", OPSET))
        return model

    # ---- convolutions and normalisation ---------------------------------------------------

    def conv(self, x: str, cout: int, k: IntPair, s: IntPair = 1, p: IntPair | None = None, *,
             groups: int = 1, d: IntPair = 1, bias: bool = False, depthwise: bool = False,
             fixed: bool = False) -> str:
        """Conv with torch's defaults spelled out; `p=None` pads 'same' for odd kernels.
        `depthwise=True` makes one group per input channel and ignores `cout` (pass 0)."""
        n, cin, h, w = self.shapes[x]
        (kh, kw), (sh, sw), (dh, dw) = _pair(k), _pair(s), _pair(d)
        ph, pw = _pair(p) if p is not None else ((kh - 1) // 2 * dh, (kw - 1) // 2 * dw)
        if depthwise:
            cout, groups = cin, cin
        else:
            cout = cout if fixed else self.ch(cout)
            groups = self._groups(groups, cin, cout)
        name = f"Conv_{self._counts['Conv']}"
        inputs = [x, self.weight(f"{name}.weight", (cout, cin // groups, kh, kw))]
        if bias:
            inputs.append(self.weight(f"{name}.bias", (cout,), "small"))
        shape = (n, cout, _window_out(h, kh, sh, 2 * ph, dh), _window_out(w, kw, sw, 2 * pw, dw))
        return self.op("Conv", inputs, shape, dilations=[dh, dw], group=groups,
                       kernel_shape=[kh, kw], pads=[ph, pw, ph, pw], strides=[sh, sw])

    def _groups(self, groups: int, cin: int, cout: int) -> int:
        """At tiny scale a grouped conv keeps about 1/8 of its groups, dividing both widths."""
        if not self.tiny or groups == 1:
            return groups
        g = max(1, groups // 8)
        while cin % g or cout % g:
            g -= 1
        return g

    def conv_transpose(self, x: str, cout: int, k: int, s: int, p: int = 0, *,
                       bias: bool = False, fixed: bool = False) -> str:
        n, cin, h, w = self.shapes[x]
        cout = cout if fixed else self.ch(cout)
        name = f"ConvTranspose_{self._counts['ConvTranspose']}"
        inputs = [x, self.weight(f"{name}.weight", (cin, cout, k, k))]
        if bias:
            inputs.append(self.weight(f"{name}.bias", (cout,), "small"))
        shape = (n, cout, (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k)
        return self.op("ConvTranspose", inputs, shape, dilations=[1, 1], group=1,
                       kernel_shape=[k, k], pads=[p, p, p, p], strides=[s, s])

    def bn(self, x: str, eps: float = 1e-5) -> str:
        """BatchNormalization in eval mode: folded into the Conv that computes `x` when nothing
        else reads it yet (as exporters do), else a BatchNormalization node."""
        c = self.channels(x)
        name = f"BatchNormalization_{self._counts['BatchNormalization']}"
        params = [(f"{name}.{p}", self._draw(f"{name}.{p}", (c,), kind))
                  for p, kind in (("weight", "scale"), ("bias", "small"),
                                  ("running_mean", "small"), ("running_var", "scale"))]
        last = self.nodes[-1] if self.nodes else None
        if last is not None and last.op_type == "Conv" and list(last.output) == [x]:
            self._counts["BatchNormalization"] += 1  # later names and draws do not depend on it
            self._fold_bn(last, [data for _, data in params], eps)
            return x
        return self.op("BatchNormalization", [x, *(self._tensor(n, d) for n, d in params)],
                       self.shapes[x], epsilon=eps, momentum=0.9)

    def _fold_bn(self, conv: onnx.NodeProto, params: Sequence[np.ndarray], eps: float) -> None:
        """w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta."""
        gamma, beta, mean, var = params
        scale = gamma / np.sqrt(var + np.float32(eps))
        weight = self._floats[conv.input[1]]
        w = numpy_helper.to_array(weight) * scale.reshape(-1, 1, 1, 1)
        weight.raw_data = w.astype(np.float32).tobytes()
        if len(conv.input) > 2:
            bias = self._floats[conv.input[2]]
            b = numpy_helper.to_array(bias)
        else:
            b = np.zeros_like(scale)
            conv.input.append(self._tensor(f"{conv.name}.bias", b))
            bias = self._floats[conv.input[2]]
        bias.raw_data = ((b - mean) * scale + beta).astype(np.float32).tobytes()

    def act(self, x: str, kind: str | None) -> str:
        """Activations as torch.onnx writes them (ReLU6 as Clip, SiLU as Sigmoid*x, ...)."""
        s = self.shapes[x]
        if kind is None:
            return x
        if kind == "relu":
            return self.op("Relu", [x], s)
        if kind == "relu6":
            return self.op("Clip", [x, self.const(0.0, np.float32), self.const(6.0, np.float32)], s)
        if kind == "hswish":
            return self.op("HardSwish", [x], s)
        if kind == "hsigmoid":
            return self.op("HardSigmoid", [x], s, alpha=1.0 / 6, beta=0.5)
        if kind in ("sigmoid", "tanh"):
            return self.op(kind.capitalize(), [x], s)
        if kind == "silu":
            return self.mul(x, self.op("Sigmoid", [x], s))
        if kind == "leaky":
            return self.op("LeakyRelu", [x], s, alpha=0.1)
        if kind == "prelu":
            name = f"PRelu_{self._counts['PRelu']}.weight"
            return self.op("PRelu", [x, self.weight(name, (s[1], 1, 1), "small")], s)
        if kind == "gelu":
            return self.gelu(x)
        raise ValueError(f"unknown activation {kind!r}")

    def conv_bn_act(self, x: str, cout: int, k: IntPair, s: IntPair = 1, p: IntPair | None = None,
                    *, act: str | None = "relu", groups: int = 1, d: IntPair = 1,
                    depthwise: bool = False, eps: float = 1e-5) -> str:
        y = self.conv(x, cout, k, s, p, groups=groups, d=d, depthwise=depthwise)
        return self.act(self.bn(y, eps), act)

    # ---- pooling, heads ---------------------------------------------------------------------

    def maxpool(self, x: str, k: IntPair, s: IntPair, p: IntPair = 0, *, ceil: bool = False,
                pads: Sequence[int] | None = None) -> str:
        return self._pool("MaxPool", x, k, s, p, ceil, pads)

    def avgpool(self, x: str, k: IntPair, s: IntPair, p: IntPair = 0, *, ceil: bool = False) -> str:
        return self._pool("AveragePool", x, k, s, p, ceil, None, count_include_pad=1)

    def _pool(self, op: str, x: str, k: IntPair, s: IntPair, p: IntPair, ceil: bool,
              pads: Sequence[int] | None, **extra) -> str:
        n, c, h, w = self.shapes[x]
        (kh, kw), (sh, sw), (ph, pw) = _pair(k), _pair(s), _pair(p)
        pads = list(pads) if pads is not None else [ph, pw, ph, pw]
        shape = (n, c, _window_out(h, kh, sh, pads[0] + pads[2], ceil=ceil),
                 _window_out(w, kw, sw, pads[1] + pads[3], ceil=ceil))
        return self.op(op, [x], shape, ceil_mode=int(ceil), kernel_shape=[kh, kw], pads=pads,
                       strides=[sh, sw], **extra)

    def gap(self, x: str) -> str:
        """AdaptiveAvgPool2d(1) as the dynamo exporter writes it: ReduceMean over H, W."""
        return self.reduce_mean(x, [-1, -2], keepdims=True)

    def flatten(self, x: str) -> str:
        """torch.flatten(x, 1) as the dynamo exporter writes it: a Reshape."""
        s = self.shapes[x]
        return self.reshape(x, (s[0], math.prod(s[1:])))

    def gemm(self, x: str, out: int, *, fixed: bool = False) -> str:
        n, cin = self.shapes[x]
        out = out if fixed else self.ch(out)
        name = f"Gemm_{self._counts['Gemm']}"
        w = self.weight(f"{name}.weight", (out, cin))
        bias = self.weight(f"{name}.bias", (out,), "small")
        return self.op("Gemm", [x, w, bias], (n, out), alpha=1.0, beta=1.0, transB=1)

    def classifier(self, x: str, classes: int = 1000) -> str:
        """ReduceMean -> Reshape -> Gemm, torchvision's usual head as exported."""
        return self.gemm(self.flatten(self.gap(x)), classes, fixed=True)

    # ---- elementwise and tensor plumbing -----------------------------------------------------

    def _binary(self, op: str, a: str, b: str) -> str:
        shape = np.broadcast_shapes(self.shapes[a], self.shapes[b])
        return self.op(op, [a, b], shape)

    def add(self, a: str, b: str) -> str:
        return self._binary("Add", a, b)

    def mul(self, a: str, b: str) -> str:
        return self._binary("Mul", a, b)

    def div(self, a: str, b: str) -> str:
        return self._binary("Div", a, b)

    def sub(self, a: str, b: str) -> str:
        return self._binary("Sub", a, b)

    def concat(self, xs: Sequence[str], axis: int = 1) -> str:
        shape = list(self.shapes[xs[0]])
        shape[axis] = sum(self.shapes[x][axis] for x in xs)
        return self.op("Concat", xs, tuple(shape), axis=axis)

    def split(self, x: str, sizes: Sequence[int], axis: int = 1) -> list[str]:
        base = self.shapes[x]
        shapes = [base[:axis] + (s,) + base[axis + 1:] for s in sizes]
        return self.node("Split", [x, self.const(list(sizes))], shapes, axis=axis)

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self.op("Reshape", [x, self.const(list(shape))], tuple(shape))

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        s = self.shapes[x]
        return self.op("Transpose", [x], tuple(s[p] for p in perm), perm=list(perm))

    def matmul(self, a: str, b: str) -> str:
        sa, sb = self.shapes[a], self.shapes[b]
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        return self.op("MatMul", [a, b], (*batch, sa[-2], sb[-1]))

    def linear(self, x: str, out: int, *, bias: bool = True) -> str:
        """nn.Linear on a >2-D tensor as exporters write it: MatMul [in, out] (+ Add bias)."""
        cin = self.shapes[x][-1]
        name = f"MatMul_{self._counts['MatMul']}"
        y = self.matmul(x, self.weight(f"{name}.weight", (cin, out), "linear"))
        return self.add(y, self.weight(f"{name}.bias", (out,), "small")) if bias else y

    def layer_norm(self, x: str, eps: float = 1e-5) -> str:
        c = self.shapes[x][-1]
        name = f"LayerNormalization_{self._counts['LayerNormalization']}"
        scale = self.weight(f"{name}.weight", (c,), "scale")
        bias = self.weight(f"{name}.bias", (c,), "small")
        return self.op("LayerNormalization", [x, scale, bias], self.shapes[x], axis=-1,
                       epsilon=eps)

    def gelu(self, x: str) -> str:
        """GELU as torch.onnx writes it below opset 20: x * 0.5 * (1 + erf(x / sqrt 2))."""
        s = self.shapes[x]
        e = self.op("Erf", [self.div(x, self.const(math.sqrt(2.0), np.float32))], s)
        y = self.mul(x, self.add(e, self.const(1.0, np.float32)))
        return self.mul(y, self.const(0.5, np.float32))

    def softmax(self, x: str, axis: int = -1) -> str:
        return self.op("Softmax", [x], self.shapes[x], axis=axis)

    def reduce_mean(self, x: str, axes: Sequence[int], keepdims: bool) -> str:
        s = self.shapes[x]
        dims = [a % len(s) for a in axes]
        shape = tuple(1 if i in dims else d for i, d in enumerate(s) if keepdims or i not in dims)
        return self.op("ReduceMean", [x, self.const(list(axes))], shape,
                       keepdims=int(keepdims))

    def gather(self, data: str, indices: str, axis: int = 0) -> str:
        sd, si = self.shapes[data], self.shapes[indices]
        axis %= len(sd)
        return self.op("Gather", [data, indices], sd[:axis] + si + sd[axis + 1:], axis=axis)

    def resize(self, x: str, size: Sequence[int], mode: str = "linear",
               align_corners: bool = False) -> str:
        n, c = self.shapes[x][:2]
        sizes = self.const([n, c, *size])
        ct = "align_corners" if align_corners else ("asymmetric" if mode == "nearest"
                                                    else "pytorch_half_pixel")
        attrs: dict[str, Any] = {"coordinate_transformation_mode": ct, "cubic_coeff_a": -0.75, "mode": mode}
        if mode == "nearest":
            attrs["nearest_mode"] = "floor"
        return self.op("Resize", [x, "", "", sizes], (n, c, *size), **attrs)

    def depth_to_space(self, x: str, r: int) -> str:
        """nn.PixelShuffle as torch.onnx writes it (DepthToSpace, CRD)."""
        n, c, h, w = self.shapes[x]
        return self.op("DepthToSpace", [x], (n, c // (r * r), h * r, w * r), blocksize=r,
                       mode="CRD")
