"""The runtime copied into every generated suite: harness.py (build, time, write a result) and
runner.py (the suite's run.py). Both import only the standard library, numpy, onnx and
onnxruntime, because dlbricks-gen itself is not installed where the suite runs."""
