"""Image generation and super-resolution nets."""

from __future__ import annotations

from onnx import TensorProto

from .builder import Builder
from .cnn import image_input


def build_espcn(b: Builder, scale: int = 3) -> None:
    """ESPCN (Shi et al. 2016) on the luminance channel: 5x5 64, 3x3 32 (tanh), 3x3 r^2,
    then the sub-pixel shuffle (DepthToSpace)."""
    y = b.act(b.conv(image_input(b, 1), 64, 5, bias=True), "tanh")
    y = b.act(b.conv(y, 32, 3, bias=True), "tanh")
    y = b.conv(y, scale * scale, 3, bias=True, fixed=True)
    b.output(b.depth_to_space(y, scale), "output")


def build_srresnet(b: Builder, blocks: int = 16) -> None:
    """SRResNet (Ledig et al. 2017): 9x9 conv + PReLU, 16 residual blocks, two x2 sub-pixel
    upsampling blocks, 9x9 conv to RGB (x4 super-resolution)."""
    head = b.act(b.conv(image_input(b), 64, 9, bias=True), "prelu")
    y = head
    for _ in range(blocks):
        z = b.act(b.bn(b.conv(y, 64, 3, bias=True)), "prelu")
        y = b.add(b.bn(b.conv(z, 64, 3, bias=True)), y)
    y = b.add(b.bn(b.conv(y, 64, 3, bias=True)), head)
    for _ in range(2):
        y = b.act(b.depth_to_space(b.conv(y, 256, 3, bias=True), 2), "prelu")
    b.output(b.conv(y, 3, 9, bias=True, fixed=True), "output")


def build_dcgan_generator(b: Builder, latent: int = 100) -> None:
    """DCGAN generator (Radford et al. 2016, PyTorch example): latent [B, 100, 1, 1] ->
    transposed convs 512-256-128-64 with BN + ReLU -> 3 x 64 x 64 tanh."""
    y = b.input("input", (b.batch, latent, 1, 1), TensorProto.FLOAT)
    y = b.act(b.bn(b.conv_transpose(y, 512, 4, 1, 0)), "relu")
    for cout in (256, 128, 64):
        y = b.act(b.bn(b.conv_transpose(y, cout, 4, 2, 1)), "relu")
    b.output(b.act(b.conv_transpose(y, 3, 4, 2, 1, fixed=True), "tanh"), "output")
