"""What every backend shares: settings and policy, random data, SPEC -> ONNX, timing,
statistics, the machine, calibration and result files. Imports nothing from backends/."""
