"""Probe: one brick through ONNX Runtime and through TVM (Relax ONNX frontend), timed alike.

Reproduces docs/tvm-notes.md items 2-4: a brick SPEC -> ONNX model (the suite runtime's
build_model) -> its random float weights turned into graph inputs -> Relax IRModule
(tvm.relax.frontend.onnx.from_onnx) -> tvm.compile for llvm with the host's mcpu ->
export_library(.so) -> tvm.runtime.load_module + relax.VirtualMachine -> timed with the
runtime's own warm-up/repeat loop, next to ONNX Runtime (io_binding) on 1 thread.

Standalone; needs a Python with apache-tvm 0.27, onnx, onnxruntime and numpy (not the project's
environment), e.g.:

    python3 -m venv /tmp/tvmvenv
    /tmp/tvmvenv/bin/pip install apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 \\
        onnx onnxruntime numpy jsonschema
    taskset -c 0 /tmp/tvmvenv/bin/python benchmarks/tvm_probe.py            # the 3x3 conv
    taskset -c 0 /tmp/tvmvenv/bin/python benchmarks/tvm_probe.py --op all   # every op below

export_library needs a C compiler (gcc/cc) on PATH; loading and running need only the runtime.
"""

from __future__ import annotations

import os

# The TVM runtime reads TVM_NUM_THREADS when its thread pool starts: set it before importing tvm.
os.environ.setdefault("TVM_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tvm  # noqa: E402
from tvm import relax  # noqa: E402
from tvm.relax.frontend.onnx import from_onnx  # noqa: E402

# The suite runtime from this checkout (dlbricks_gen/__init__.py imports nothing), so that the
# TVM environment needs no dlbricks-gen install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlbricks_gen.runtime.backends import tvm as tvm_backend  # noqa: E402
from dlbricks_gen.runtime.core.data import input_feeds, random_array  # noqa: E402
from dlbricks_gen.runtime.core.session import bound_call, make_session  # noqa: E402
from dlbricks_gen.runtime.core.settings import Settings  # noqa: E402
from dlbricks_gen.runtime.core.spec import build_model  # noqa: E402
from dlbricks_gen.runtime.core.timing import measure_call  # noqa: E402


def _t(name, shape, dtype="FLOAT"):
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def _w(name, shape, dtype="FLOAT"):
    return {"name": name, "dtype": dtype, "shape": list(shape), "data": "random"}


def _a(name, kind, value):
    return {"name": name, "type": kind, "value": value}


def _spec(inputs, outputs, initializers, nodes, opset=13):
    return {"format": 1, "brick": "probe", "layers": len(nodes), "opset_imports": {"": opset},
            "inputs": inputs, "outputs": outputs, "initializers": initializers, "nodes": nodes}


# One-layer bricks (SPEC format 1, docs/FORMATS.md) for the ops measured in docs/tvm-notes.md.
SPECS = {
    "conv": _spec(
        [_t("x0", [1, 64, 56, 56])], [_t("y0", [1, 64, 56, 56])],
        [_w("w0", [64, 64, 3, 3]), _w("b0", [64])],
        [{"op_type": "Conv", "inputs": ["x0", "w0", "b0"], "outputs": ["y0"],
          "attributes": [_a("kernel_shape", "INTS", [3, 3]), _a("pads", "INTS", [1, 1, 1, 1])]}]),
    "dwconv": _spec(
        [_t("x0", [1, 64, 56, 56])], [_t("y0", [1, 64, 56, 56])],
        [_w("w0", [64, 1, 3, 3]), _w("b0", [64])],
        [{"op_type": "Conv", "inputs": ["x0", "w0", "b0"], "outputs": ["y0"],
          "attributes": [_a("kernel_shape", "INTS", [3, 3]), _a("pads", "INTS", [1, 1, 1, 1]),
                         _a("group", "INT", 64)]}]),
    "gemm": _spec(
        [_t("x0", [1, 2048])], [_t("y0", [1, 1000])],
        [_w("w0", [2048, 1000]), _w("b0", [1000])],
        [{"op_type": "Gemm", "inputs": ["x0", "w0", "b0"], "outputs": ["y0"], "attributes": []}]),
    "matmul": _spec(
        [_t("x0", [1, 2048])], [_t("y0", [1, 1000])],
        [_w("w0", [2048, 1000])],
        [{"op_type": "MatMul", "inputs": ["x0", "w0"], "outputs": ["y0"], "attributes": []}]),
    "layernorm": _spec(
        [_t("x0", [1, 128, 768])], [_t("y0", [1, 128, 768])],
        [_w("g0", [768]), _w("b0", [768])],
        [{"op_type": "LayerNormalization", "inputs": ["x0", "g0", "b0"], "outputs": ["y0"],
          "attributes": [_a("axis", "INT", -1), _a("epsilon", "FLOAT", 1e-5)]}], opset=17),
    "softmax": _spec(
        [_t("x0", [1, 12, 128, 128])], [_t("y0", [1, 12, 128, 128])], [],
        [{"op_type": "Softmax", "inputs": ["x0"], "outputs": ["y0"],
          "attributes": [_a("axis", "INT", -1)]}]),
    "maxpool": _spec(
        [_t("x0", [1, 64, 112, 112])], [_t("y0", [1, 64, 56, 56])], [],
        [{"op_type": "MaxPool", "inputs": ["x0"], "outputs": ["y0"],
          "attributes": [_a("kernel_shape", "INTS", [3, 3]), _a("strides", "INTS", [2, 2]),
                         _a("pads", "INTS", [1, 1, 1, 1])]}]),
    # Integer shape constant + a small float constant next to a big weight: only w0 becomes a
    # runtime parameter; s0 and c0 stay constants folded into the graph.
    "mixed": _spec(
        [_t("x0", [1, 2048])], [_t("y0", [1, 1000])],
        [_w("w0", [2048, 1000]), {"name": "s0", "dtype": "INT64", "shape": [2], "data": [1, -1]},
         {"name": "c0", "dtype": "FLOAT", "shape": [], "data": [0.5]}],
        [{"op_type": "MatMul", "inputs": ["x0", "w0"], "outputs": ["t0"], "attributes": []},
         {"op_type": "Reshape", "inputs": ["t0", "s0"], "outputs": ["t1"], "attributes": []},
         {"op_type": "Mul", "inputs": ["t1", "c0"], "outputs": ["y0"], "attributes": []}]),
}


def weights_as_inputs(model: onnx.ModelProto, spec: dict) -> list[str]:
    """Move the SPEC's random float weights from initializers to graph inputs, in place, as the
    TVM backend does (literal constants stay initializers, so Relax folds them as ONNX Runtime
    does); returns their names, in the order they were appended to graph.input."""
    names = tvm_backend.spec_weights(spec)
    tvm_backend.weights_as_inputs(model, names)
    return names


def time_call(call, settings) -> dict:
    """The runtime's own warm-up + repeat loop (the same as for ONNX Runtime), on any call."""
    stats = measure_call(call, settings)["stats"]
    return {key: stats[key] for key in ("median", "min", "n", "loops")}


def run_ort(spec: dict, settings):
    model = build_model(spec)
    feeds = input_feeds(spec["inputs"])
    session = make_session(model.SerializeToString(), settings)
    expected = session.run(None, feeds)
    call, keepalive = bound_call(session, feeds)
    result = time_call(call, settings)
    del keepalive
    return result, expected


def run_tvm(spec: dict, settings, target: tvm.target.Target, workdir: Path):
    timing = {}
    model = build_model(spec)
    weight_names = weights_as_inputs(model, spec)

    start = time.perf_counter()
    mod = from_onnx(model, keep_params_in_input=False)
    timing["import_s"] = time.perf_counter() - start
    # Relax parameters of main, in call order: the graph inputs in graph.input order (data
    # inputs first, then the weights appended by weights_as_inputs). The frontend sanitizes
    # names (a.b:0 -> a_b:0), so feed by position, not by Relax name.
    constant = {t.name for t in model.graph.initializer}
    param_names = [v.name for v in model.graph.input if v.name not in constant]
    assert len(param_names) == len(mod["main"].params), (param_names, mod["main"].params)

    start = time.perf_counter()
    executable = tvm.compile(mod, target=target)
    timing["compile_s"] = time.perf_counter() - start

    library = workdir / "kernels.so"
    start = time.perf_counter()
    executable.export_library(str(library))
    timing["export_s"] = time.perf_counter() - start
    timing["so_bytes"] = library.stat().st_size

    # What a brick program does: the TVM runtime only (no compiler), weights drawn at run time.
    start = time.perf_counter()
    loaded = tvm.runtime.load_module(str(library))
    device = tvm.cpu(0)
    vm = relax.VirtualMachine(loaded, device)
    timing["load_s"] = time.perf_counter() - start
    arrays = input_feeds(spec["inputs"])
    for t in spec["initializers"]:
        if t["name"] in weight_names:
            arrays[t["name"]] = random_array(t["name"], t["dtype"], t["shape"], "weight")
    args = [tvm.runtime.tensor(np.ascontiguousarray(arrays[name]), device) for name in param_names]
    output = vm["main"](*args)
    outputs = [output] if isinstance(output, tvm.runtime.Tensor) else list(output)

    # save_function binds the arguments once: calling the saved closure costs no argument
    # conversion, like ONNX Runtime's io_binding.
    vm.save_function("main", "main_bound", *args)
    bound = vm["main_bound"]
    result = time_call(bound, settings)
    # TVM's own C++ timer, for comparison with the Python loop.
    evaluator = vm.time_evaluator("main_bound", device, number=1, repeat=10, min_repeat_ms=50)
    result["time_evaluator_median"] = float(np.median(evaluator().results))
    return result, [o.numpy() for o in outputs], timing, param_names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--op", default="conv", choices=[*SPECS, "all"])
    parser.add_argument("--mcpu", default=None,
                        help="LLVM cpu (default: tvm.target.codegen.llvm_get_system_cpu(); "
                             "'generic' for none)")
    parser.add_argument("--quick", action="store_true", help="the runtime's quick policy")
    args = parser.parse_args(argv)

    settings = Settings(intra_op_threads=1, inter_op_threads=1, quick=args.quick)
    mcpu = args.mcpu or tvm.target.codegen.llvm_get_system_cpu()
    target_json = {"kind": "llvm", "num-cores": 1}
    if mcpu != "generic":
        target_json["mcpu"] = mcpu
    target = tvm.target.Target(target_json)
    import tvm_ffi
    print(f"tvm {tvm.__version__}, tvm-ffi {tvm_ffi.__version__}, onnxruntime {ort.__version__}, "
          f"onnx {onnx.__version__}, numpy {np.__version__}")
    print(f"target {target}  TVM_NUM_THREADS={os.environ['TVM_NUM_THREADS']}  "
          f"affinity={sorted(os.sched_getaffinity(0))}")

    failed = 0
    for op in (list(SPECS) if args.op == "all" else [args.op]):
        spec = SPECS[op]
        ort_result, expected = run_ort(spec, settings)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                tvm_result, got, timing, params = run_tvm(spec, settings, target,
                                                          Path(tmp))
            except Exception as error:  # noqa: BLE001 - a probe reports every failure
                failed += 1
                print(f"{op:10s} TVM FAILED: {type(error).__name__}: "
                      f"{str(error).strip().splitlines()[-1][:200]}")
                continue
        diff = max(float(np.max(np.abs(e - g))) for e, g in zip(expected, got, strict=True))
        ratio = tvm_result["median"] / ort_result["median"]
        print(f"{op:10s} ORT {ort_result['median'] * 1e3:9.4f} ms | "
              f"TVM {tvm_result['median'] * 1e3:9.4f} ms (time_evaluator "
              f"{tvm_result['time_evaluator_median'] * 1e3:9.4f} ms) "
              f"| TVM/ORT {ratio:6.2f}x | max|diff| {diff:.2e}")
        print(f"{'':10s} params {params} | import {timing['import_s']:.2f} s, compile "
              f"{timing['compile_s']:.2f} s, export {timing['export_s']:.2f} s, load "
              f"{timing['load_s'] * 1e3:.1f} ms, .so {timing['so_bytes'] / 1024:.0f} KiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
