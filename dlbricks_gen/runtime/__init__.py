"""The runtime of a dlbricks-gen suite, copied verbatim into every suite as dlbricks_runtime/.

It is imported the same way at home (dlbricks_gen.runtime) and in a suite (dlbricks_runtime):
relative imports only, and nothing from the rest of dlbricks-gen, which is not installed where
the suite runs. Layers, each importing only the ones before it:

    core/       settings, random data, SPEC -> ONNX, timing, statistics, the machine,
                calibration, result files (standard library, numpy, onnx, onnxruntime, jsonschema)
    backends/   onnxruntime, tvm (tvm imported only inside its functions)
    brick.py    `python -m dlbricks_runtime.brick bricks/<id>.py`: one brick
    runner.py   `python -m dlbricks_runtime [run|check|tune|pack]`: the suite (`make run`)
"""
