"""Transformer encoders and decoders as HuggingFace / torchvision exports look (opset 17).

Linear layers are MatMul [in, out] + Add, attention is written out with static Reshape /
Transpose shape constants, LayerNormalization is one node and GELU is the Erf decomposition.
Text models take int64 `input_ids` [batch, seq_len]; position (and token type) ids are constant
initializers, as constant folding leaves them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from .builder import Builder
from .cnn import image_input


@dataclass(frozen=True)
class TextConfig:
    vocab: int
    hidden: int
    heads: int
    layers: int
    ffn: int
    max_positions: int
    eps: float


def scaled(b: Builder, cfg: TextConfig) -> TextConfig:
    """Tiny: hidden and FFN sizes / 8 (heads kept, so head size / 8), vocabulary / 32."""
    if not b.tiny:
        return cfg
    return TextConfig(max(64, cfg.vocab // 32), b.ch(cfg.hidden), cfg.heads, cfg.layers,
                      b.ch(cfg.ffn), cfg.max_positions, cfg.eps)


def split_heads(b: Builder, x: str, heads: int, transpose_key: bool = False) -> str:
    n, s, h = b.shape(x)
    y = b.reshape(x, (n, s, heads, h // heads))
    return b.transpose(y, (0, 2, 3, 1) if transpose_key else (0, 2, 1, 3))


def merge_heads(b: Builder, x: str) -> str:
    n, heads, s, d = b.shape(x)
    return b.reshape(b.transpose(x, (0, 2, 1, 3)), (n, s, heads * d))


def attention(b: Builder, q: str, k: str, v: str, heads: int, *, scale: bool = True,
              bias: str | None = None) -> str:
    """softmax(q k^T / sqrt(d) + bias) v over `heads` heads, written out op by op (T5)."""
    qh, kh, vh = split_heads(b, q, heads), split_heads(b, k, heads, True), split_heads(b, v, heads)
    scores = b.matmul(qh, kh)
    if scale:
        d = b.shape(q)[-1] // heads
        scores = b.div(scores, b.const(math.sqrt(d), np.float32))
    if bias is not None:
        scores = b.add(scores, bias)
    return merge_heads(b, b.matmul(b.softmax(scores), vh))


def sdpa(b: Builder, q: str, k: str, v: str, heads: int, mask: str | None = None) -> str:
    """F.scaled_dot_product_attention as the dynamo exporter writes it (opset 18): K^T through
    Reshape/Transpose/Reshape, q and k^T each scaled by d^-1/4, the mask an additive bias, and
    softmax rows of NaN (fully masked) replaced by 0."""
    qh, kh, vh = split_heads(b, q, heads), split_heads(b, k, heads), split_heads(b, v, heads)
    return merge_heads(b, attend(b, qh, kh, vh, mask))


def attend(b: Builder, qh: str, kh: str, vh: str, mask: str | None) -> str:
    """The SDPA core on [batch, heads, seq, d] tensors."""
    n, h, s, d = b.shape(kh)
    kt = b.reshape(b.transpose(b.reshape(kh, (n * h, s, d)), (0, 2, 1)), (n, h, d, s))
    c = b.const(d ** -0.25, np.float32)
    scores = b.matmul(b.mul(qh, c), b.mul(kt, c))
    probs = b.softmax(b.add(scores, mask) if mask is not None else scores)
    nan = b.op("IsNaN", [probs], b.shape(probs), elem_type=TensorProto.BOOL)
    probs = b.op("Where", [nan, b.const(0.0, np.float32), probs], b.shape(probs),
                 elem_type=TensorProto.FLOAT)
    return b.matmul(probs, vh)


def mask_bias(b: Builder, mask: str, causal: bool = False) -> str:
    """HF's padding mask [batch, seq] as the dynamo export computes it once: Cast to bool,
    GatherND to [batch, 1, 1, seq], And with the rows allowed ([1, 1, seq, 1] all true, or the
    causal triangle, itself an And), Where 0 / lowest."""
    n, s = b.shape(mask)
    if causal:
        mask = b.reshape(mask, (n, s))  # GPT-2's attention_mask.view(batch, -1)
        tril = b.const(np.tril(np.ones((s, s), dtype=bool))[None, None], np.bool_)
        rows = b.op("And", [b.const(True, np.bool_), tril], (1, 1, s, s))
    else:
        rows = b.const(np.ones((1, 1, s, 1), dtype=bool), np.bool_)
    keep = b.op("Cast", [mask], (n, s), elem_type=TensorProto.BOOL, to=TensorProto.BOOL)
    index = np.stack(np.meshgrid(np.arange(n), np.arange(s), indexing="ij"), -1)
    keep = b.op("GatherND", [keep, b.const(index.reshape(n, 1, 1, s, 2))], (n, 1, 1, s),
                batch_dims=0)
    keep = b.op("And", [rows, keep], (n, 1, s, s))
    lowest = b.const(np.finfo(np.float32).min, np.float32)
    return b.op("Where", [keep, b.const(0.0, np.float32), lowest], (n, 1, s, s),
                elem_type=TensorProto.FLOAT)


def self_attention(b: Builder, x: str, heads: int, mask: str | None = None) -> str:
    h = b.shape(x)[-1]
    q, k, v = (b.linear(x, h) for _ in range(3))
    return b.linear(sdpa(b, q, k, v, heads, mask), h)


def feed_forward(b: Builder, x: str, ffn: int, act: str = "gelu") -> str:
    h = b.shape(x)[-1]
    return b.linear(b.act(b.linear(x, ffn), act), h)


def text_input(b: Builder) -> str:
    return b.input("input_ids", (b.batch, b.seq_len), TensorProto.INT64)


def mask_input(b: Builder) -> str:
    return b.input("attention_mask", (b.batch, b.seq_len), TensorProto.INT64)


def embed(b: Builder, ids: str, cfg: TextConfig, name: str, token_types: bool) -> str:
    """Word + learned position (+ token type) embeddings, each a Gather, summed."""
    if b.seq_len > cfg.max_positions:
        raise ValueError(f"{b.model_id}: seq_len {b.seq_len} > {cfg.max_positions} positions")
    y = b.gather(b.weight(f"{name}.word_embeddings", (cfg.vocab, cfg.hidden), "embed"), ids)
    positions = b.const([list(range(b.seq_len))])
    pos_table = b.weight(f"{name}.position_embeddings", (cfg.max_positions, cfg.hidden), "embed")
    y = b.add(y, b.gather(pos_table, positions))
    if token_types:
        types = b.weight(f"{name}.token_type_embeddings", (2, cfg.hidden), "embed")
        y = b.add(y, b.gather(types, b.const([[0] * b.seq_len])))
    return y


BERT_BASE = TextConfig(30522, 768, 12, 12, 3072, 512, 1e-12)
DISTILBERT = TextConfig(30522, 768, 12, 6, 3072, 512, 1e-12)
GPT2 = TextConfig(50257, 768, 12, 12, 3072, 1024, 1e-5)
T5_SMALL = TextConfig(32128, 512, 8, 6, 2048, 512, 1e-6)


def post_ln_encoder(b: Builder, cfg: TextConfig, token_types: bool) -> str:
    """BERT-style: embeddings -> LN, then per layer x = LN(x + attn(x)); x = LN(x + ffn(x))."""
    cfg = scaled(b, cfg)
    ids, mask = text_input(b), mask_input(b)
    y = b.layer_norm(embed(b, ids, cfg, "embeddings", token_types), cfg.eps)
    bias = mask_bias(b, mask)
    for _ in range(cfg.layers):
        y = b.layer_norm(b.add(self_attention(b, y, cfg.heads, bias), y), cfg.eps)
        y = b.layer_norm(b.add(feed_forward(b, y, cfg.ffn), y), cfg.eps)
    return y


def build_bert(b: Builder) -> None:
    y = post_ln_encoder(b, BERT_BASE, token_types=True)
    y = b.output(y, "last_hidden_state")
    first = b.gather(y, b.const(0), axis=1)  # pooler: tanh(W h[CLS] + b)
    b.output(b.act(b.linear(first, b.shape(first)[-1]), "tanh"), "pooler_output")


def build_distilbert(b: Builder) -> None:
    b.output(post_ln_encoder(b, DISTILBERT, token_types=False), "last_hidden_state")


def gelu_tanh(b: Builder, x: str) -> str:
    """GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    cube = b.op("Pow", [x, b.const(3.0, np.float32)], b.shape(x))
    inner = b.add(x, b.mul(cube, b.const(0.044715, np.float32)))
    t = b.act(b.mul(inner, b.const(math.sqrt(2.0 / math.pi), np.float32)), "tanh")
    return b.mul(b.mul(x, b.const(0.5, np.float32)), b.add(t, b.const(1.0, np.float32)))


def conv1d(b: Builder, x: str, out: int) -> str:
    """HF's Conv1D as exported: Reshape to [tokens, in], Gemm with weight [in, out] and bias,
    Reshape back to [batch, seq, out]."""
    h = b.shape(x)[-1]
    flat = x if len(b.shape(x)) == 2 else b.reshape(x, (b.batch * b.seq_len, h))
    name = f"Gemm_{len(b.nodes)}"
    y = b.op("Gemm", [flat, b.weight(f"{name}.weight", (h, out), "linear"),
                      b.weight(f"{name}.bias", (out,), "small")],
             (b.batch * b.seq_len, out), alpha=1.0, beta=1.0, transB=0)
    return b.reshape(y, (b.batch, b.seq_len, out))


def gpt2_attention(b: Builder, x: str, heads: int, mask: str) -> str:
    hidden = b.shape(x)[-1]
    q, k, v = b.split(conv1d(b, x, 3 * hidden), [hidden] * 3, axis=2)
    qh, kh, vh = split_heads(b, q, heads), split_heads(b, k, heads), split_heads(b, v, heads)
    a = b.transpose(attend(b, qh, kh, vh, mask), (0, 2, 1, 3))
    return conv1d(b, b.reshape(a, (b.batch * b.seq_len, hidden)), hidden)


def build_gpt2(b: Builder) -> None:
    """GPT-2 small (Radford et al. 2019): pre-LN decoder, fused QKV Conv1D, tied LM head, as
    the dynamo exporter writes transformers' GPT2LMHeadModel."""
    cfg = scaled(b, GPT2)
    ids, mask = text_input(b), mask_input(b)
    y = embed(b, b.reshape(ids, b.shape(ids)), cfg, "transformer", token_types=False)
    bias = mask_bias(b, mask, causal=True)
    for _ in range(cfg.layers):
        y = b.add(gpt2_attention(b, b.layer_norm(y, cfg.eps), cfg.heads, bias), y)
        h = conv1d(b, gelu_tanh(b, conv1d(b, b.layer_norm(y, cfg.eps), cfg.ffn)), cfg.hidden)
        y = b.add(y, h)
    y = b.layer_norm(y, cfg.eps)
    head = b.transpose("transformer.word_embeddings", (1, 0))  # tied to the input embedding
    b.output(b.matmul(b.reshape(y, b.shape(y)), head), "logits")


def rms_norm(b: Builder, x: str, eps: float) -> str:
    """T5LayerNorm: x / sqrt(mean(x^2) + eps) * weight, no mean subtraction, no bias."""
    var = b.reduce_mean(b.op("Pow", [x, b.const(2.0, np.float32)], b.shape(x)), [-1], True)
    root = b.op("Sqrt", [b.add(var, b.const(eps, np.float32))], b.shape(var))
    weight = b.weight(f"rms_norm_{len(b.nodes)}.weight", (b.shape(x)[-1],), "scale")
    return b.mul(weight, b.mul(x, b.op("Reciprocal", [root], b.shape(root))))  # torch.rsqrt


def relative_buckets(seq_len: int, num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """T5's bidirectional relative position buckets [seq, seq] (what constant folding leaves)."""
    rel = np.arange(seq_len)[None, :] - np.arange(seq_len)[:, None]
    num_buckets //= 2
    buckets = (rel > 0).astype(np.int64) * num_buckets
    rel = np.abs(rel)
    max_exact = num_buckets // 2
    safe = np.maximum(rel, 1).astype(np.float64)
    large = max_exact + (np.log(safe / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return buckets + np.where(rel < max_exact, rel, large)


def build_t5_encoder(b: Builder) -> None:
    """T5-small encoder (Raffel et al. 2020): pre-RMSNorm, no biases, ReLU FFN, unscaled
    attention with a relative position bias computed in the first layer and shared."""
    cfg = scaled(b, T5_SMALL)
    ids = text_input(b)
    y = b.gather(b.weight("shared", (cfg.vocab, cfg.hidden), "embed"), ids)
    table = b.weight("relative_attention_bias", (32, cfg.heads), "embed")
    bias = b.gather(table, b.const(relative_buckets(b.seq_len)))  # [s, s, heads]
    bias = b.op("Unsqueeze", [b.transpose(bias, (2, 0, 1)), b.const([0])],
                (1, cfg.heads, b.seq_len, b.seq_len))
    for _ in range(cfg.layers):
        x = rms_norm(b, y, cfg.eps)
        q, k, v = (b.linear(x, cfg.hidden, bias=False) for _ in range(3))
        a = attention(b, q, k, v, cfg.heads, scale=False, bias=bias)
        y = b.add(y, b.linear(a, cfg.hidden, bias=False))
        x = rms_norm(b, y, cfg.eps)
        h = b.linear(b.act(b.linear(x, cfg.ffn, bias=False), "relu"), cfg.hidden, bias=False)
        y = b.add(y, h)
    b.output(rms_norm(b, y, cfg.eps), "last_hidden_state")


def build_vit_b_16(b: Builder) -> None:
    """ViT-B/16 (Dosovitskiy et al. 2021) as torchvision defines it: pre-LN, eps 1e-6."""
    hidden, heads, layers, mlp = b.ch(768), 12, 12, b.ch(3072)
    n = b.batch
    y = b.conv(image_input(b), 768, 16, 16, 0, bias=True)
    tokens = b.shape(y)[2] * b.shape(y)[3]
    y = b.transpose(b.reshape(y, (n, hidden, tokens)), (0, 2, 1))
    cls = b.weight("class_token", (1, 1, hidden), "embed")
    cls = b.op("Expand", [cls, b.const([n, 1, hidden])], (n, 1, hidden))
    y = b.concat([cls, y], axis=1)
    y = b.add(y, b.weight("encoder.pos_embedding", (1, tokens + 1, hidden), "embed"))
    for _ in range(layers):
        y = b.add(self_attention(b, b.layer_norm(y, 1e-6), heads), y)
        y = b.add(feed_forward(b, b.layer_norm(y, 1e-6), mlp), y)
    y = b.gather(b.layer_norm(y, 1e-6), b.const(0), axis=1)
    b.output(b.gemm(y, 1000, fixed=True), "output")
