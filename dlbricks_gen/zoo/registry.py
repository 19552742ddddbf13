"""The zoo's catalogue: every model id with its family, source, default size and build function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import onnx

from . import cnn, detection, generative, segmentation, transformers
from .builder import Builder

TINY_IMAGE_SIZE = 64
TINY_SEQ_LEN = 16
DEFAULT_SEQ_LEN = 128


@dataclass(frozen=True)
class ZooOptions:
    """How to build a zoo model. `image_size=None` means the model's own default; `tiny`
    divides widths by 8 (same layers), defaults the image size to 64 and seq_len 128 to 16."""

    batch: int = 1
    image_size: int | None = None
    seq_len: int = DEFAULT_SEQ_LEN
    tiny: bool = False


@dataclass(frozen=True)
class ModelInfo:
    id: str
    family: str  # "classification", "detection", "segmentation", "language" or "generation"
    source: str  # paper / reference implementation of the definition
    description: str


@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    build: Callable[[Builder], None]
    image_size: int  # default input size (0: the model takes no image)
    tiny_image_size: int = TINY_IMAGE_SIZE
    multiple: int = 1  # the image size must be a multiple of this


TV = "torchvision.models"
_ENTRIES: list[_Entry] = []


def _add(model_id: str, family: str, source: str, description: str,
         build: Callable[[Builder], None], image_size: int = 224, **kw) -> None:
    _ENTRIES.append(_Entry(ModelInfo(model_id, family, source, description), build, image_size,
                           **kw))


for _d in (18, 34, 50, 101, 152):
    _add(f"resnet{_d}", "classification", f"He et al. 2016, Deep Residual Learning; {TV}.resnet{_d}",
         f"ResNet-{_d}", partial(cnn.build_resnet, depth=_d))
_add("resnext50_32x4d", "classification", f"Xie et al. 2017, ResNeXt; {TV}.resnext50_32x4d",
     "ResNeXt-50, 32 groups of width 4", partial(cnn.build_resnet, depth=50, groups=32,
                                                   base_width=4))
_add("wide_resnet50_2", "classification", f"Zagoruyko & Komodakis 2016; {TV}.wide_resnet50_2",
     "ResNet-50 with bottlenecks twice as wide", partial(cnn.build_resnet, depth=50,
                                                          base_width=128))
for _d in (11, 13, 16, 19):
    _add(f"vgg{_d}", "classification", f"Simonyan & Zisserman 2015; {TV}.vgg{_d}",
         f"VGG-{_d}", partial(cnn.build_vgg, depth=_d))
    _add(f"vgg{_d}_bn", "classification", f"Simonyan & Zisserman 2015; {TV}.vgg{_d}_bn",
         f"VGG-{_d} with batch normalization", partial(cnn.build_vgg, depth=_d, batch_norm=True))
_add("alexnet", "classification", f"Krizhevsky et al. 2012 (one-GPU variant); {TV}.alexnet",
     "AlexNet", cnn.build_alexnet)
_add("squeezenet1_0", "classification", f"Iandola et al. 2016; {TV}.squeezenet1_0",
     "SqueezeNet 1.0", partial(cnn.build_squeezenet, version="1_0"))
_add("squeezenet1_1", "classification", f"SqueezeNet v1.1 (DeepScale); {TV}.squeezenet1_1",
     "SqueezeNet 1.1 (2.4x less compute than 1.0)", partial(cnn.build_squeezenet, version="1_1"))
for _d in (121, 169, 201):
    _add(f"densenet{_d}", "classification", f"Huang et al. 2017; {TV}.densenet{_d}",
         f"DenseNet-{_d}, growth 32", partial(cnn.build_densenet, depth=_d))
_add("googlenet", "classification", f"Szegedy et al. 2015, Going Deeper; {TV}.googlenet",
     "GoogLeNet (Inception v1) with BN, no auxiliary heads", cnn.build_googlenet)
_add("inception_v3", "classification", f"Szegedy et al. 2016; {TV}.inception_v3",
     "Inception v3, no auxiliary head", cnn.build_inception_v3, 299, tiny_image_size=75)
_add("mobilenet_v1", "classification", "Howard et al. 2017, MobileNets, Table 1",
     "MobileNet v1 1.0", cnn.build_mobilenet_v1)
_add("mobilenet_v2", "classification", f"Sandler et al. 2018; {TV}.mobilenet_v2",
     "MobileNet v2 1.0", cnn.build_mobilenet_v2)
for _s in ("large", "small"):
    _add(f"mobilenet_v3_{_s}", "classification", f"Howard et al. 2019; {TV}.mobilenet_v3_{_s}",
         f"MobileNet v3 {_s}", partial(cnn.build_mobilenet_v3, size=_s))
_add("shufflenet_v2_x1_0", "classification", f"Ma et al. 2018; {TV}.shufflenet_v2_x1_0",
     "ShuffleNet v2 1.0x", cnn.build_shufflenet_v2)
_add("mnasnet1_0", "classification", f"Tan et al. 2019; {TV}.mnasnet1_0", "MnasNet 1.0",
     cnn.build_mnasnet)
_add("efficientnet_b0", "classification", f"Tan & Le 2019; {TV}.efficientnet_b0",
     "EfficientNet-B0", cnn.build_efficientnet_b0)
_add("regnet_y_400mf", "classification", f"Radosavovic et al. 2020; {TV}.regnet_y_400mf",
     "RegNetY-400MF", cnn.build_regnet_y_400mf)
_add("convnext_tiny", "classification", f"Liu et al. 2022; {TV}.convnext_tiny", "ConvNeXt-T",
     cnn.build_convnext_tiny, multiple=32)
_add("vit_b_16", "classification", f"Dosovitskiy et al. 2021; {TV}.vit_b_16",
     "Vision Transformer B/16", transformers.build_vit_b_16, multiple=16)
_add("ssd_mobilenet", "detection",
     "Sandler et al. 2018 (SSDLite); TF Object Detection API ssdlite_mobilenet_v2_coco",
     "SSDLite on MobileNet v2, 300x300, 1917 anchors, raw box and class outputs",
     detection.build_ssd_mobilenet, 300)
_add("yolov3_tiny", "detection", "Redmon & Farhadi 2018; darknet cfg/yolov3-tiny.cfg",
     "YOLOv3-tiny, raw outputs of both YOLO heads", detection.build_yolov3_tiny, 416,
     multiple=32)
_add("fcn_resnet50", "segmentation", f"Long et al. 2015; {TV}.segmentation.fcn_resnet50",
     "FCN on dilated ResNet-50, 21 classes", segmentation.build_fcn_resnet50, 520, multiple=8)
_add("deeplabv3_resnet50", "segmentation",
     f"Chen et al. 2017; {TV}.segmentation.deeplabv3_resnet50",
     "DeepLabV3 (ASPP) on dilated ResNet-50, 21 classes", segmentation.build_deeplabv3_resnet50,
     520, multiple=8)
_add("unet", "segmentation", "Ronneberger et al. 2015; github.com/milesial/Pytorch-UNet",
     "U-Net, padded convs with BN, transposed-conv upsampling, 2 classes",
     segmentation.build_unet, 256, multiple=16)
_add("bert_base", "language", "Devlin et al. 2019; HuggingFace bert-base-uncased",
     "BERT-base encoder with pooler", transformers.build_bert, 0)
_add("distilbert", "language", "Sanh et al. 2019; HuggingFace distilbert-base-uncased",
     "DistilBERT encoder (6 layers)", transformers.build_distilbert, 0)
_add("gpt2", "language", "Radford et al. 2019; HuggingFace gpt2",
     "GPT-2 small, one causal forward pass to LM logits", transformers.build_gpt2, 0)
_add("t5_encoder", "language", "Raffel et al. 2020; HuggingFace t5-small (encoder)",
     "T5-small encoder", transformers.build_t5_encoder, 0)
_add("espcn", "generation", "Shi et al. 2016, ESPCN", "ESPCN x3 super-resolution (Y channel)",
     generative.build_espcn, 224, tiny_image_size=32)
_add("srresnet", "generation", "Ledig et al. 2017, SRResNet", "SRResNet x4 super-resolution",
     generative.build_srresnet, 96, tiny_image_size=32)
_add("dcgan_generator", "generation", "Radford et al. 2016; pytorch/examples dcgan",
     "DCGAN generator, 100-d latent to 64x64 RGB", generative.build_dcgan_generator, 0)

_BY_ID = {e.info.id: e for e in _ENTRIES}

DEMO_MODELS: tuple[str, ...] = ("resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "vgg11",
                                "bert_base")


def list_models() -> list[ModelInfo]:
    """Every zoo model, sorted by id."""
    return sorted((e.info for e in _ENTRIES), key=lambda m: m.id)


def _entry(model_id: str) -> _Entry:
    if model_id not in _BY_ID:
        raise ValueError(f"unknown zoo model {model_id!r}; known: {', '.join(sorted(_BY_ID))}")
    return _BY_ID[model_id]


def input_size(model_id: str, options: ZooOptions) -> tuple[int, int]:
    """(image size, seq_len) a build with these options uses (image size 0: no image input)."""
    entry = _entry(model_id)
    seq = TINY_SEQ_LEN if options.tiny and options.seq_len == DEFAULT_SEQ_LEN else options.seq_len
    if entry.image_size == 0:
        return 0, seq
    if options.image_size is not None:
        size = options.image_size
    else:
        size = entry.tiny_image_size if options.tiny else entry.image_size
    return size, seq


def build_model(model_id: str, options: ZooOptions) -> onnx.ModelProto:
    """Build one zoo model (opset 18, ir_version 8, static shapes, seeded random weights)."""
    entry = _entry(model_id)
    size, seq = input_size(model_id, options)
    if options.batch < 1 or seq < 1:
        raise ValueError(f"{model_id}: batch and seq_len must be >= 1")
    if size and size % entry.multiple:
        raise ValueError(f"{model_id}: image size {size} is not a multiple of {entry.multiple}")
    b = Builder(model_id, batch=options.batch, tiny=options.tiny, image_size=size, seq_len=seq)
    try:
        entry.build(b)
    except (KeyError, ValueError, ZeroDivisionError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(model_id):
            raise
        raise ValueError(f"{model_id}: cannot build at image size {size}: {exc}") from exc
    return b.model(entry.info.description)


def node_count(model_id: str, options: ZooOptions | None = None) -> int:
    """Number of layers (nodes). Tiny builds have the same nodes, so they are the default."""
    return len(build_model(model_id, options or ZooOptions(tiny=True)).graph.node)
