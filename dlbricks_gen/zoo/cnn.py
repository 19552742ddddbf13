"""Image classifiers, following torchvision's definitions (and the papers where torchvision has none).

Each `build_*` function takes a Builder whose graph input is not yet declared and returns
nothing: it declares `input` [batch, 3, size, size] and the `output` logits [batch, 1000].
Reusable feature extractors (`resnet_features`, `mobilenet_v2_features`) serve the detection
and segmentation models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .builder import Builder


def image_input(b: Builder, channels: int = 3) -> str:
    return b.input("input", (b.batch, channels, b.image_size, b.image_size))


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to a multiple of 8, never down by more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# ---- ResNet family (He et al. 2016; ResNeXt, Wide ResNet) ----------------------------------

RESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                 152: (3, 8, 36, 3)}


def basic_block(b: Builder, x: str, planes: int, stride: int, downsample: bool) -> str:
    y = b.conv_bn_act(x, planes, 3, stride)
    y = b.bn(b.conv(y, planes, 3))
    skip = b.bn(b.conv(x, planes, 1, stride, 0)) if downsample else x
    return b.act(b.add(y, skip), "relu")


def bottleneck(b: Builder, x: str, planes: int, stride: int, downsample: bool, *,
               groups: int = 1, base_width: int = 64, dilation: int = 1) -> str:
    width = int(planes * (base_width / 64.0)) * groups
    y = b.conv_bn_act(x, width, 1, p=0)
    y = b.conv_bn_act(y, width, 3, stride, dilation, groups=groups, d=dilation)
    y = b.bn(b.conv(y, planes * 4, 1, p=0))
    skip = b.bn(b.conv(x, planes * 4, 1, stride, 0)) if downsample else x
    return b.act(b.add(y, skip), "relu")


def resnet_features(b: Builder, x: str, depth: int, *, groups: int = 1, base_width: int = 64,
                    dilate: Sequence[bool] = (False, False, False)) -> str:
    """torchvision ResNet up to layer4; `dilate` = replace_stride_with_dilation."""
    y = b.maxpool(b.conv_bn_act(x, 64, 7, 2, 3), 3, 2, 1)
    expansion = 1 if depth < 50 else 4
    inplanes, dilation = 64, 1
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), RESNET_LAYERS[depth], strict=True)):
        stride = 1 if stage == 0 else 2
        previous_dilation = dilation
        if stage > 0 and dilate[stage - 1]:
            dilation, stride = dilation * stride, 1
        for i in range(blocks):
            s = stride if i == 0 else 1
            down = i == 0 and (s != 1 or inplanes != planes * expansion)
            if expansion == 1:
                y = basic_block(b, y, planes, s, down)
            else:
                d = previous_dilation if i == 0 else dilation
                y = bottleneck(b, y, planes, s, down, groups=groups, base_width=base_width,
                               dilation=d)
            inplanes = planes * expansion
    return y


def build_resnet(b: Builder, depth: int, groups: int = 1, base_width: int = 64) -> None:
    y = resnet_features(b, image_input(b), depth, groups=groups, base_width=base_width)
    b.output(b.classifier(y), "output")


# ---- VGG (Simonyan & Zisserman 2015), AlexNet (Krizhevsky 2012) ------------------------------

VGG_CFGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}


def mlp_head(b: Builder, y: str, hidden: int) -> None:
    """Flatten -> (Gemm -> Relu -> Dropout) x2 -> Gemm: VGG's and AlexNet's classifier.

    The AdaptiveAvgPool2d before it is the identity at the nets' own input size (7x7 / 6x6),
    so it is left out, as exporters fold it; at other sizes the first Gemm takes what comes.
    """
    y = b.flatten(y)
    for _ in range(2):
        y = b.act(b.gemm(y, hidden), "relu")
    b.output(b.gemm(y, 1000, fixed=True), "output")


def build_vgg(b: Builder, depth: int, batch_norm: bool = False) -> None:
    y = image_input(b)
    for v in VGG_CFGS[depth]:
        if isinstance(v, str):  # "M"
            y = b.maxpool(y, 2, 2)
        elif batch_norm:
            y = b.act(b.bn(b.conv(y, v, 3, bias=True)), "relu")
        else:
            y = b.act(b.conv(y, v, 3, bias=True), "relu")
    mlp_head(b, y, 4096)


def build_alexnet(b: Builder) -> None:
    y = image_input(b)
    for cout, k, s, p, pool in ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                                (256, 3, 1, 1, False), (256, 3, 1, 1, True)):
        y = b.act(b.conv(y, cout, k, s, p, bias=True), "relu")
        if pool:
            y = b.maxpool(y, 3, 2)
    mlp_head(b, y, 4096)


# ---- SqueezeNet (Iandola et al. 2016) -------------------------------------------------------

def fire(b: Builder, x: str, squeeze: int, expand: int) -> str:
    s = b.act(b.conv(x, squeeze, 1, bias=True), "relu")
    e1 = b.act(b.conv(s, expand, 1, bias=True), "relu")
    e3 = b.act(b.conv(s, expand, 3, bias=True), "relu")
    return b.concat([e1, e3])


def build_squeezenet(b: Builder, version: str) -> None:
    x = image_input(b)
    plan: tuple[str | tuple[int, int], ...]
    if version == "1_0":
        y = b.act(b.conv(x, 96, 7, 2, 0, bias=True), "relu")
        plan = ("M", (16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192),
                (64, 256), "M", (64, 256))
    else:
        y = b.act(b.conv(x, 64, 3, 2, 0, bias=True), "relu")
        plan = ("M", (16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192),
                (64, 256), (64, 256))
    for step in plan:
        y = b.maxpool(y, 3, 2, ceil=True) if isinstance(step, str) else fire(b, y, *step)
    y = b.act(b.conv(y, 1000, 1, bias=True, fixed=True), "relu")
    b.output(b.flatten(b.gap(y)), "output")


# ---- DenseNet (Huang et al. 2017) -----------------------------------------------------------

DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


def build_densenet(b: Builder, depth: int, growth: int = 32, bn_size: int = 4) -> None:
    y = b.maxpool(b.conv_bn_act(image_input(b), 64, 7, 2, 3), 3, 2, 1)
    features = 64
    blocks = DENSENET_BLOCKS[depth]
    for i, layers in enumerate(blocks):
        # torchvision's _DenseLayer concatenates all earlier outputs itself: one Concat per layer
        prev = [y]
        for _ in range(layers):
            z = prev[0] if len(prev) == 1 else b.concat(prev)
            z = b.conv(b.act(b.bn(z), "relu"), bn_size * growth, 1, p=0)
            z = b.conv(b.act(b.bn(z), "relu"), growth, 3)
            prev.append(z)
        y = b.concat(prev)
        features += layers * growth
        if i != len(blocks) - 1:
            features //= 2
            y = b.conv(b.act(b.bn(y), "relu"), features, 1, p=0)
            y = b.avgpool(y, 2, 2)
    b.output(b.classifier(b.act(b.bn(y), "relu")), "output")


# ---- GoogLeNet (Szegedy et al. 2015), Inception v3 (Szegedy et al. 2016) ----------------------

def basic_conv(b: Builder, x: str, cout: int, k, s=1, p=0) -> str:
    """torchvision's BasicConv2d: Conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU."""
    return b.conv_bn_act(x, cout, k, s, p, eps=1e-3)


GOOGLENET_INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet_inception(b: Builder, x: str, c1, c3r, c3, c5r, c5, pool) -> str:
    b1 = basic_conv(b, x, c1, 1)
    b2 = basic_conv(b, basic_conv(b, x, c3r, 1), c3, 3, 1, 1)
    b3 = basic_conv(b, basic_conv(b, x, c5r, 1), c5, 5, 1, 2)  # the paper's 5x5
    b4 = basic_conv(b, b.maxpool(x, 3, 1, 1, ceil=True), pool, 1)
    return b.concat([b1, b2, b3, b4])


def build_googlenet(b: Builder) -> None:
    y = b.maxpool(basic_conv(b, image_input(b), 64, 7, 2, 3), 3, 2, ceil=True)
    y = basic_conv(b, basic_conv(b, y, 64, 1), 192, 3, 1, 1)
    y = b.maxpool(y, 3, 2, ceil=True)
    for name, cfg in GOOGLENET_INCEPTIONS.items():
        if name == "4a":
            y = b.maxpool(y, 3, 2, ceil=True)
        elif name == "5a":
            y = b.maxpool(y, 2, 2, ceil=True)
        y = googlenet_inception(b, y, *cfg)
    b.output(b.classifier(y), "output")


def inception_a(b: Builder, x: str, pool_features: int) -> str:
    b1 = basic_conv(b, x, 64, 1)
    b5 = basic_conv(b, basic_conv(b, x, 48, 1), 64, 5, 1, 2)
    b3 = basic_conv(b, basic_conv(b, basic_conv(b, x, 64, 1), 96, 3, 1, 1), 96, 3, 1, 1)
    bp = basic_conv(b, b.avgpool(x, 3, 1, 1), pool_features, 1)
    return b.concat([b1, b5, b3, bp])


def inception_b(b: Builder, x: str) -> str:
    b3 = basic_conv(b, x, 384, 3, 2)
    bd = basic_conv(b, basic_conv(b, basic_conv(b, x, 64, 1), 96, 3, 1, 1), 96, 3, 2)
    return b.concat([b3, bd, b.maxpool(x, 3, 2)])


def inception_c(b: Builder, x: str, c7: int) -> str:
    b1 = basic_conv(b, x, 192, 1)
    b7 = basic_conv(b, x, c7, 1)
    b7 = basic_conv(b, basic_conv(b, b7, c7, (1, 7), 1, (0, 3)), 192, (7, 1), 1, (3, 0))
    bd = basic_conv(b, x, c7, 1)
    for cout, k, p in ((c7, (7, 1), (3, 0)), (c7, (1, 7), (0, 3)), (c7, (7, 1), (3, 0)),
                       (192, (1, 7), (0, 3))):
        bd = basic_conv(b, bd, cout, k, 1, p)
    bp = basic_conv(b, b.avgpool(x, 3, 1, 1), 192, 1)
    return b.concat([b1, b7, bd, bp])


def inception_d(b: Builder, x: str) -> str:
    b3 = basic_conv(b, basic_conv(b, x, 192, 1), 320, 3, 2)
    b7 = basic_conv(b, x, 192, 1)
    b7 = basic_conv(b, basic_conv(b, b7, 192, (1, 7), 1, (0, 3)), 192, (7, 1), 1, (3, 0))
    b7 = basic_conv(b, b7, 192, 3, 2)
    return b.concat([b3, b7, b.maxpool(x, 3, 2)])


def inception_e(b: Builder, x: str) -> str:
    b1 = basic_conv(b, x, 320, 1)
    b3 = basic_conv(b, x, 384, 1)
    b3 = b.concat([basic_conv(b, b3, 384, (1, 3), 1, (0, 1)),
                   basic_conv(b, b3, 384, (3, 1), 1, (1, 0))])
    bd = basic_conv(b, basic_conv(b, x, 448, 1), 384, 3, 1, 1)
    bd = b.concat([basic_conv(b, bd, 384, (1, 3), 1, (0, 1)),
                   basic_conv(b, bd, 384, (3, 1), 1, (1, 0))])
    bp = basic_conv(b, b.avgpool(x, 3, 1, 1), 192, 1)
    return b.concat([b1, b3, bd, bp])


def build_inception_v3(b: Builder) -> None:
    y = basic_conv(b, image_input(b), 32, 3, 2)
    y = basic_conv(b, basic_conv(b, y, 32, 3), 64, 3, 1, 1)
    y = b.maxpool(y, 3, 2)
    y = b.maxpool(basic_conv(b, basic_conv(b, y, 80, 1), 192, 3), 3, 2)
    for pool_features in (32, 64, 64):
        y = inception_a(b, y, pool_features)
    y = inception_b(b, y)
    for c7 in (128, 160, 160, 192):
        y = inception_c(b, y, c7)
    y = inception_d(b, y)
    y = inception_e(b, inception_e(b, y))
    b.output(b.classifier(y), "output")


# ---- MobileNets, MnasNet, EfficientNet ------------------------------------------------------

def build_mobilenet_v1(b: Builder) -> None:
    """Howard et al. 2017, Table 1: a 3x3 conv then 13 depthwise-separable pairs (BN + ReLU)."""
    y = b.conv_bn_act(image_input(b), 32, 3, 2)
    plan = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
    for cout, s in plan:
        y = b.conv_bn_act(y, 0, 3, s, depthwise=True)
        y = b.conv_bn_act(y, cout, 1, p=0)
    b.output(b.classifier(y), "output")


MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def inverted_residual(b: Builder, x: str, inp: int, oup: int, stride: int, expand: int,
                      k: int = 3, act: str = "relu6", eps: float = 1e-5) -> tuple[str, str]:
    """MobileNetV2/MnasNet block; returns (output, expansion output)."""
    y = x if expand == 1 else b.conv_bn_act(x, inp * expand, 1, p=0, act=act, eps=eps)
    expanded = y
    y = b.conv_bn_act(y, 0, k, stride, depthwise=True, act=act, eps=eps)
    y = b.bn(b.conv(y, oup, 1, p=0), eps)
    return (b.add(x, y) if stride == 1 and inp == oup else y), expanded


def mobilenet_v2_features(b: Builder, x: str, tap_block: int = -1) -> tuple[str, str | None]:
    """features[0..18]; also returns the expansion output of block `tap_block` (SSDLite)."""
    y = b.conv_bn_act(x, 32, 3, 2, act="relu6")
    inp, block, tapped = 32, 0, None
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            y, expanded = inverted_residual(b, y, inp, c, s if i == 0 else 1, t)
            if block == tap_block:
                tapped = expanded
            inp, block = c, block + 1
    return b.conv_bn_act(y, 1280, 1, p=0, act="relu6"), tapped


def build_mobilenet_v2(b: Builder) -> None:
    y, _ = mobilenet_v2_features(b, image_input(b))
    b.output(b.classifier(y), "output")


def squeeze_excite(b: Builder, x: str, squeeze: int, act: str = "relu",
                   gate: str = "sigmoid") -> str:
    s = b.act(b.conv(b.gap(x), squeeze, 1, bias=True), act)
    s = b.act(b.conv(s, b.channels(x), 1, bias=True, fixed=True), gate)
    return b.mul(s, x)


MOBILENET_V3 = {  # in, kernel, expanded, out, use_se, activation, stride
    "large": ((16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2),
              (24, 3, 72, 24, False, "relu", 1), (24, 5, 72, 40, True, "relu", 2),
              (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
              (40, 3, 240, 80, False, "hswish", 2), (80, 3, 200, 80, False, "hswish", 1),
              (80, 3, 184, 80, False, "hswish", 1), (80, 3, 184, 80, False, "hswish", 1),
              (80, 3, 480, 112, True, "hswish", 1), (112, 3, 672, 112, True, "hswish", 1),
              (112, 5, 672, 160, True, "hswish", 2), (160, 5, 960, 160, True, "hswish", 1),
              (160, 5, 960, 160, True, "hswish", 1)),
    "small": ((16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2),
              (24, 3, 88, 24, False, "relu", 1), (24, 5, 96, 40, True, "hswish", 2),
              (40, 5, 240, 40, True, "hswish", 1), (40, 5, 240, 40, True, "hswish", 1),
              (40, 5, 120, 48, True, "hswish", 1), (48, 5, 144, 48, True, "hswish", 1),
              (48, 5, 288, 96, True, "hswish", 2), (96, 5, 576, 96, True, "hswish", 1),
              (96, 5, 576, 96, True, "hswish", 1)),
}


def build_mobilenet_v3(b: Builder, size: str) -> None:
    eps = 1e-3
    y = b.conv_bn_act(image_input(b), 16, 3, 2, act="hswish", eps=eps)
    for inp, k, exp, out, se, act, s in MOBILENET_V3[size]:
        x = y
        if exp != inp:
            y = b.conv_bn_act(y, exp, 1, p=0, act=act, eps=eps)
        y = b.conv_bn_act(y, 0, k, s, depthwise=True, act=act, eps=eps)
        if se:
            y = squeeze_excite(b, y, make_divisible(exp // 4), "relu", "hsigmoid")
        y = b.bn(b.conv(y, out, 1, p=0), eps)
        if s == 1 and inp == out:
            y = b.add(y, x)
    last = MOBILENET_V3[size][-1][3] * 6
    y = b.flatten(b.gap(b.conv_bn_act(y, last, 1, p=0, act="hswish", eps=eps)))
    y = b.act(b.gemm(y, 1280 if size == "large" else 1024), "hswish")
    b.output(b.gemm(y, 1000, fixed=True), "output")


MNASNET_STACKS = ((16, 24, 3, 2, 3, 3), (24, 40, 5, 2, 3, 3), (40, 80, 5, 2, 6, 3),
                  (80, 96, 3, 1, 6, 2), (96, 192, 5, 2, 6, 4), (192, 320, 3, 1, 6, 1))


def build_mnasnet(b: Builder) -> None:
    """torchvision mnasnet1_0 (Tan et al. 2019, MnasNet-A1 without SE)."""
    eps = 1e-5
    y = b.conv_bn_act(image_input(b), 32, 3, 2)
    y = b.conv_bn_act(y, 0, 3, depthwise=True)
    y = b.bn(b.conv(y, 16, 1, p=0))
    for inp, out, k, s, exp, repeats in MNASNET_STACKS:
        for i in range(repeats):
            y, _ = inverted_residual(b, y, inp if i == 0 else out, out, s if i == 0 else 1, exp,
                                     k, act="relu", eps=eps)
    y = b.conv_bn_act(y, 1280, 1, p=0)
    y = b.reduce_mean(y, [2, 3], keepdims=False)  # torchvision: x.mean([2, 3])
    b.output(b.gemm(y, 1000, fixed=True), "output")


EFFICIENTNET_B0 = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                   (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                   (6, 3, 1, 192, 320, 1))


def build_efficientnet_b0(b: Builder) -> None:
    eps = 1e-5
    y = b.conv_bn_act(image_input(b), 32, 3, 2, act="silu", eps=eps)
    for exp, k, s, inp, out, layers in EFFICIENTNET_B0:
        for i in range(layers):
            cin = inp if i == 0 else out
            x = y
            if exp != 1:
                y = b.conv_bn_act(y, cin * exp, 1, p=0, act="silu", eps=eps)
            y = b.conv_bn_act(y, 0, k, s if i == 0 else 1, depthwise=True, act="silu", eps=eps)
            y = squeeze_excite(b, y, max(1, cin // 4), "silu", "sigmoid")
            y = b.bn(b.conv(y, out, 1, p=0), eps)
            if i > 0 or (s == 1 and inp == out):
                y = b.add(y, x)
    y = b.conv_bn_act(y, 1280, 1, p=0, act="silu", eps=eps)
    b.output(b.classifier(y), "output")


# ---- ShuffleNet v2, RegNet, ConvNeXt -------------------------------------------------------

def channel_shuffle(b: Builder, x: str, groups: int = 2) -> str:
    n, c, h, w = b.shape(x)
    y = b.transpose(b.reshape(x, (n, groups, c // groups, h, w)), (0, 2, 1, 3, 4))
    return b.reshape(y, (n, c, h, w))


def shuffle_block(b: Builder, x: str, oup: int, stride: int) -> str:
    bf = oup // 2
    if stride == 1:
        c = b.channels(x)
        x1, x2 = b.split(x, [c // 2, c - c // 2])
        left = x1
    else:
        left = b.bn(b.conv(x, 0, 3, stride, depthwise=True))
        left = b.conv_bn_act(left, bf, 1, p=0)
        x2 = x
    right = b.conv_bn_act(x2, bf, 1, p=0)
    right = b.bn(b.conv(right, 0, 3, stride, depthwise=True))
    right = b.conv_bn_act(right, bf, 1, p=0)
    return channel_shuffle(b, b.concat([left, right]))


def build_shufflenet_v2(b: Builder) -> None:
    y = b.maxpool(b.conv_bn_act(image_input(b), 24, 3, 2), 3, 2, 1)
    for out, repeats in ((116, 4), (232, 8), (464, 4)):
        for i in range(repeats):
            y = shuffle_block(b, y, out, 2 if i == 0 else 1)
    y = b.conv_bn_act(y, 1024, 1, p=0)
    y = b.reduce_mean(y, [2, 3], keepdims=False)
    b.output(b.gemm(y, 1000, fixed=True), "output")


def build_regnet_y_400mf(b: Builder) -> None:
    """RegNetY-400MF (Radosavovic et al. 2020): depths 1,3,6,6; widths 48..440; groups of 8; SE."""
    y = b.conv_bn_act(image_input(b), 32, 3, 2)
    w_in = 32
    for depth, w_out in zip((1, 3, 6, 6), (48, 104, 208, 440), strict=True):
        for i in range(depth):
            s = 2 if i == 0 else 1
            x = y
            y = b.conv_bn_act(x, w_out, 1, p=0)
            y = b.conv_bn_act(y, w_out, 3, s, groups=w_out // 8)
            y = squeeze_excite(b, y, round(0.25 * w_in), "relu", "sigmoid")
            y = b.bn(b.conv(y, w_out, 1, p=0))
            skip = b.bn(b.conv(x, w_out, 1, s, 0)) if (w_in != w_out or s != 1) else x
            y = b.act(b.add(skip, y), "relu")
            w_in = w_out
    b.output(b.classifier(y), "output")


def layer_norm_2d(b: Builder, x: str, eps: float = 1e-6) -> str:
    """torchvision's LayerNorm2d: permute to channels-last, LayerNorm, permute back."""
    return b.transpose(b.layer_norm(b.transpose(x, (0, 2, 3, 1)), eps), (0, 3, 1, 2))


def build_convnext_tiny(b: Builder) -> None:
    """Liu et al. 2022, ConvNeXt-T: depths 3,3,9,3, dims 96..768, 7x7 depthwise, layer scale."""
    dims = (96, 192, 384, 768)
    y = layer_norm_2d(b, b.conv(image_input(b), dims[0], 4, 4, 0, bias=True))
    for stage, (depth, dim) in enumerate(zip((3, 3, 9, 3), dims, strict=True)):
        if stage > 0:
            y = b.conv(layer_norm_2d(b, y), dim, 2, 2, 0, bias=True)
        for _ in range(depth):
            z = b.conv(y, 0, 7, 1, 3, depthwise=True, bias=True)
            z = b.layer_norm(b.transpose(z, (0, 2, 3, 1)), 1e-6)
            z = b.linear(b.gelu(b.linear(z, 4 * b.ch(dim))), b.ch(dim))
            z = b.transpose(z, (0, 3, 1, 2))
            gamma = b.weight(f"layer_scale_{len(b.nodes)}", (b.ch(dim), 1, 1), "small")
            y = b.add(b.mul(gamma, z), y)
    y = b.flatten(layer_norm_2d(b, as_strided(b, b.gap(y))))
    b.output(b.gemm(y, 1000, fixed=True), "output")


def as_strided(b: Builder, x: str) -> str:
    """The copy dynamo leaves before ConvNeXt's head LayerNorm2d: Reshape to 1-D, then Gather
    of every element in the same shape (torch's as_strided decomposition)."""
    shape = b.shape(x)
    flat = b.reshape(x, (math.prod(shape),))
    return b.gather(flat, b.const(np.arange(math.prod(shape)).reshape(shape)))
