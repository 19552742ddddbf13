"""Semantic segmentation nets: dilated ResNet-50 (FCN, DeepLabV3) and U-Net."""

from __future__ import annotations

from .builder import Builder
from .cnn import image_input, resnet_features

VOC_CLASSES = 21


def dilated_resnet50(b: Builder) -> tuple[str, tuple[int, ...]]:
    """torchvision's segmentation backbone: ResNet-50, layers 3-4 dilated (output stride 8)."""
    x = image_input(b)
    return resnet_features(b, x, 50, dilate=(False, True, True)), b.shape(x)[2:]


def build_fcn_resnet50(b: Builder) -> None:
    """FCN (Long et al. 2015) as torchvision's fcn_resnet50: FCNHead then bilinear upsampling."""
    y, size = dilated_resnet50(b)
    y = b.conv_bn_act(y, 2048 // 4, 3)
    y = b.conv(y, VOC_CLASSES, 1, p=0, bias=True, fixed=True)
    b.output(b.resize(y, size), "out")


def build_deeplabv3_resnet50(b: Builder) -> None:
    """DeepLabV3 (Chen et al. 2017) as torchvision's deeplabv3_resnet50: ASPP rates 12/24/36."""
    y, size = dilated_resnet50(b)
    branches = [b.conv_bn_act(y, 256, 1, p=0)]
    branches += [b.conv_bn_act(y, 256, 3, 1, rate, d=rate) for rate in (12, 24, 36)]
    pooled = b.conv_bn_act(b.gap(y), 256, 1, p=0)
    branches.append(b.resize(pooled, b.shape(y)[2:]))
    y = b.conv_bn_act(b.concat(branches), 256, 1, p=0)
    y = b.conv_bn_act(y, 256, 3)
    y = b.conv(y, VOC_CLASSES, 1, p=0, bias=True, fixed=True)
    b.output(b.resize(y, size), "out")


def double_conv(b: Builder, x: str, cout: int) -> str:
    return b.conv_bn_act(b.conv_bn_act(x, cout, 3), cout, 3)


def build_unet(b: Builder, classes: int = 2) -> None:
    """U-Net (Ronneberger et al. 2015) in its common padded form (milesial/Pytorch-UNet):
    double 3x3 conv + BN + ReLU, 4 max-pool downs, 4 transposed-conv ups with skip concat."""
    skips = [double_conv(b, image_input(b), 64)]
    for cout in (128, 256, 512, 1024):
        skips.append(double_conv(b, b.maxpool(skips[-1], 2, 2), cout))
    y = skips.pop()
    for cout in (512, 256, 128, 64):
        up = b.conv_transpose(y, cout, 2, 2, bias=True)
        y = double_conv(b, b.concat([skips.pop(), up]), cout)
    b.output(b.conv(y, classes, 1, p=0, bias=True, fixed=True), "output")
