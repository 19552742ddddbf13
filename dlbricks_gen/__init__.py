"""dlbricks-gen: DLBricks benchmark generation for ONNX models."""

__version__ = "0.1.0"
