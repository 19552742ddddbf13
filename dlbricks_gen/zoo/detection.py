"""Object detectors up to their raw head outputs (no anchor decoding, no NMS)."""

from __future__ import annotations

from .builder import Builder
from .cnn import image_input, mobilenet_v2_features

COCO_CLASSES = 91  # 90 COCO classes + background, as the TF Object Detection API counts them
SSD_EXTRA_DEPTHS = (512, 256, 256, 128)


def ssd_head(b: Builder, feature: str, anchors: int, width: int) -> str:
    """SSDLite predictor: depthwise 3x3 + BN + ReLU6, then a 1x1 conv; [B, H*W*A, width]."""
    y = b.conv_bn_act(feature, 0, 3, depthwise=True, act="relu6")
    y = b.conv(y, anchors * width, 1, p=0, bias=True, fixed=True)
    n, _, h, w = b.shape(y)
    return b.reshape(b.transpose(y, (0, 2, 3, 1)), (n, h * w * anchors, width))


def build_ssd_mobilenet(b: Builder) -> None:
    """SSDLite on MobileNetV2 (Sandler et al. 2018, sec. 6.2; TF ssdlite_mobilenet_v2_coco):
    heads on the expansion of block 13 (stride 16) and the last 1x1 conv (stride 32), plus four
    extra 1x1 / depthwise-3x3-stride-2 / 1x1 layers; 3 anchors on the first map, 6 elsewhere."""
    last, tapped = mobilenet_v2_features(b, image_input(b), tap_block=13)
    assert tapped is not None
    features = [tapped, last]
    y = last
    for depth in SSD_EXTRA_DEPTHS:
        y = b.conv_bn_act(y, depth // 2, 1, p=0, act="relu6")
        y = b.conv_bn_act(y, 0, 3, 2, depthwise=True, act="relu6")
        y = b.conv_bn_act(y, depth, 1, p=0, act="relu6")
        features.append(y)
    anchors = [3] + [6] * (len(features) - 1)
    boxes = [ssd_head(b, f, a, 4) for f, a in zip(features, anchors, strict=True)]
    scores = [ssd_head(b, f, a, COCO_CLASSES) for f, a in zip(features, anchors, strict=True)]
    b.output(b.concat(boxes, axis=1), "boxes")
    b.output(b.concat(scores, axis=1), "scores")


def build_yolov3_tiny(b: Builder) -> None:
    """YOLOv3-tiny (Redmon & Farhadi 2018, darknet yolov3-tiny.cfg): 13 convs, BN + leaky ReLU,
    two YOLO heads of 3 x (5 + 80) channels at strides 32 and 16."""
    yolo = 3 * (5 + 80)
    y = image_input(b)
    for i, cout in enumerate((16, 32, 64, 128, 256, 512)):
        y = b.conv_bn_act(y, cout, 3, act="leaky")
        if i == 4:
            route = y
        # darknet's size-2 stride-1 maxpool pads right and bottom to keep 13x13
        y = b.maxpool(y, 2, 1, pads=(0, 0, 1, 1)) if i == 5 else b.maxpool(y, 2, 2)
    y = b.conv_bn_act(y, 1024, 3, act="leaky")
    mid = b.conv_bn_act(y, 256, 1, p=0, act="leaky")
    y = b.conv_bn_act(mid, 512, 3, act="leaky")
    b.output(b.conv(y, yolo, 1, p=0, bias=True, fixed=True), "output0")
    y = b.conv_bn_act(mid, 128, 1, p=0, act="leaky")
    h, w = b.shape(route)[2:]
    y = b.concat([b.resize(y, (h, w), mode="nearest"), route])
    y = b.conv_bn_act(y, 256, 3, act="leaky")
    b.output(b.conv(y, yolo, 1, p=0, bias=True, fixed=True), "output1")
