"""The built-in model zoo: real architectures built with onnx.helper, seeded random weights.

    from dlbricks_gen.zoo import ZooOptions, build_model, list_models
    model = build_model("resnet50", ZooOptions(batch=1, tiny=True))
"""

from .registry import (
                       DEMO_MODELS,
                       ModelInfo,
                       ZooOptions,
                       build_model,
                       input_size,
                       list_models,
                       node_count,
)

__all__ = ["DEMO_MODELS", "ModelInfo", "ZooOptions", "build_model", "input_size", "list_models",
           "node_count"]
