"""The benchmark harness of a dlbricks-gen suite: SPEC -> ONNX graph -> timed with ONNX Runtime
-> one result (docs/FORMATS.md: brick SPEC format 1, random data policy 2, result format 1).

Copied verbatim into every generated suite as harness.py, so it imports only the standard
library, numpy, onnx and onnxruntime. Each bricks/<digest>.py calls `brick_main(SPEC)`; run.py
calls `measure_spec` for many bricks in one process; `dlbricks-gen e2e` calls `measure_model`
on whole models, so bricks and models are timed by the same code with the same settings.
TVM suites: `measure_spec(..., backend="tvm")` hands the brick to tvm_backend.py (beside this
file, imported only then), which times the brick's kernel with `measure_call`, the same loop.

Measurement policy (`measure_session`, numbers in FULL_POLICY / QUICK_POLICY):
  1. warm-up: at least `warmup_calls` calls and `warmup_s` seconds; the first call pays one-off
     allocations, the later ones calibrate the loop count;
  2. each timed value runs the model `loops` times back to back, loops chosen so that a value
     lasts at least `min_value_s` (far above timer resolution and per-call Python overhead);
  3. values are repeated until at least `min_values` values and `min_runs` timed calls are
     done, then until the 95% confidence interval of the median is within `ci_target` of the
     median, or `max_time_s` of timed repetitions, or `max_values`; every value is recorded.
     Not reaching the target is a warning in the result, never an error.

`min_runs` (100, as in the DLBricks paper) gives every benchmark, brick or whole model, the
same number of timed calls, so the time a suite spends measuring is proportional to its
bricks' latencies, just as running every model is proportional to the models' latencies.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import hashlib
import itertools
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

RESULT_VERSION = 1
SPEC_FORMAT = 1
SCHEMA_FILE = "result.schema.json"
BACKEND = "onnxruntime"

# Full runs. Warm-up 5 ms and >= 2 calls: run.py's worker keeps the CPU busy between bricks, so
# a new session only needs its first call (allocations) and a few more (caches). Values of >= 1 ms:
# about 1000x the timer resolution and 300x ONNX Runtime's per-call overhead. >= 10 values: the
# smallest n whose 95% median interval ([x2, x9]) excludes both extremes. >= 100 timed calls (the
# paper's count), the same for bricks and whole models. Then the 2% target, capped at 1 s of timed
# repetitions or 500 values. A fast brick costs about 10 ms of values; any benchmark costs at
# least 100x its own latency, which keeps fixed per-brick costs small against measuring.
FULL_POLICY = {"warmup_s": 0.005, "warmup_calls": 2, "min_value_s": 0.001, "min_values": 10,
               "min_runs": 100, "ci_target": 0.02, "max_time_s": 1.0, "max_values": 500}
# Quick runs (tests, smoke runs): the same procedure with tiny budgets, ~10-40 ms per fast brick.
QUICK_POLICY = {"warmup_s": 0.002, "warmup_calls": 1, "min_value_s": 0.0002, "min_values": 6,
                "min_runs": 1, "ci_target": 0.02, "max_time_s": 0.03, "max_values": 50}
# A distribution-free 95% interval of the median needs at least 6 values (2 / 2**6 < 5%).
MIN_VALUES_FOR_CI = 6

OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
FLOAT_DTYPES = frozenset({
    "FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16", "COMPLEX64", "COMPLEX128",
    "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1",
})
# The oldest IR version that can hold these element types (older ones reject them).
MIN_IR_FOR_DTYPE = {"FLOAT8E4M3FN": 9, "FLOAT8E4M3FNUZ": 9, "FLOAT8E5M2": 9, "FLOAT8E5M2FNUZ": 9,
                    "INT4": 10, "UINT4": 10, "FLOAT4E2M1": 11}
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
# CPU flags that decide which kernels ONNX Runtime uses (x86 and Arm spellings).
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",
                "amx_int8", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2")


# --- settings -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """How to run: ONNX Runtime session options plus the measurement policy.

    Policy knobs left at None take the FULL_POLICY or QUICK_POLICY value (by `quick`).
    """

    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization_level: str = "all"
    quick: bool = False
    taskset: str | None = None  # CPU list to pin the process to, e.g. "2" or "0-3"
    warmup_s: float | None = None
    warmup_calls: int | None = None
    min_value_s: float | None = None
    min_values: int | None = None
    min_runs: int | None = None
    ci_target: float | None = None
    max_time_s: float | None = None
    max_values: int | None = None

    def __post_init__(self) -> None:
        defaults = QUICK_POLICY if self.quick else FULL_POLICY
        for key, value in defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if self.graph_optimization_level not in OPT_LEVELS:
            raise ValueError(f"graph_optimization_level must be one of {', '.join(OPT_LEVELS)}")
        if self.intra_op_threads < 1 or self.inter_op_threads < 1:
            raise ValueError("thread counts must be >= 1")
        if self.min_runs < 1:
            raise ValueError("runs must be >= 1")

    def policy(self) -> dict:
        return {key: getattr(self, key) for key in FULL_POLICY}


def settings_record(settings: Settings) -> dict:
    """The "settings" part of a result. `taskset` is the pinning asked for, or else the CPU
    affinity the process was started with when it is narrower than the machine."""
    return {
        "intra_op_threads": settings.intra_op_threads,
        "inter_op_threads": settings.inter_op_threads,
        "graph_optimization_level": settings.graph_optimization_level,
        "taskset": settings.taskset or _restricted_affinity(),
        "quick": settings.quick,
        "policy": settings.policy(),
    }


def _restricted_affinity() -> str | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return None if len(cpus) >= (os.cpu_count() or 0) else format_cpus(cpus)


def parse_cpus(text: str) -> set[int]:
    """"0-3,6" -> {0, 1, 2, 3, 6} (taskset -c syntax)."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"bad CPU list {text!r} (expected e.g. 2 or 0-3,6)")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def format_cpus(cpus) -> str:
    ranges, cpus = [], sorted(cpus)
    for _, group in itertools.groupby(enumerate(cpus), lambda p: p[1] - p[0]):
        run = [c for _, c in group]
        ranges.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(ranges)


def pin_cpus(settings: Settings) -> None:
    """Pin this process to settings.taskset (before any session creates its threads)."""
    if settings.taskset:
        if not hasattr(os, "sched_setaffinity"):
            raise OSError("--taskset needs Linux (os.sched_setaffinity)")
        os.sched_setaffinity(0, parse_cpus(settings.taskset))


# --- random data policy v2 and the graph ----------------------------------------------------

def seed_of(name: str) -> int:
    """First 8 bytes of sha256(name), big-endian (docs/FORMATS.md, random data policy)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


def element_type(dtype: str) -> int:
    try:
        return onnx.TensorProto.DataType.Value(dtype)
    except ValueError:
        raise ValueError(f"unknown dtype {dtype!r}") from None


def numpy_dtype(dtype: str) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(element_type(dtype)))


def random_array(name: str, dtype: str, shape, role: str) -> np.ndarray:
    """The data policy v2: seeded by the tensor name, the same on every run and machine."""
    if role not in ("input", "weight"):
        raise ValueError(f"role must be 'input' or 'weight', not {role!r}")
    shape = tuple(int(d) for d in shape)
    np_type = numpy_dtype(dtype)
    if dtype == "STRING":
        return np.full(shape, "", dtype=object)
    if dtype not in FLOAT_DTYPES:  # integers are zeros (always valid indices), BOOL is False
        return np.zeros(shape, dtype=np_type)
    rng = np.random.default_rng(seed_of(name))
    if role == "input":
        low, high = -1.0, 1.0
    elif len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        low, high = (-1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in)) if fan_in else (-1.0, 1.0)
    else:  # scales, biases, BatchNorm variances: positive
        low, high = 0.5, 1.5
    if np_type == np.float32:  # most weights: drawn in float32 directly, twice as fast
        array = rng.random(size=shape, dtype=np.float32)
        array *= np.float32(high - low)
        array += np.float32(low)
        return array
    return rng.uniform(low, high, size=shape).astype(np_type)


def literal_array(dtype: str, shape, data: list) -> np.ndarray:
    """A constant given literally in a SPEC (flat, row-major; non-finite floats as strings)."""
    np_type = numpy_dtype(dtype)
    if dtype == "STRING":
        array = np.array(data, dtype=object)
    elif dtype in FLOAT_DTYPES:
        array = np.array([NON_FINITE[v] if isinstance(v, str) else v for v in data],
                         dtype=np.float64).astype(np_type)
    else:
        array = np.array(data, dtype=np_type)
    return array.reshape(tuple(int(d) for d in shape))


def make_tensor(name: str, tensor: dict) -> onnx.TensorProto:
    """A SPEC tensor ({"dtype", "shape", "data"}) as a TensorProto."""
    dtype, shape, data = tensor["dtype"], tensor["shape"], tensor["data"]
    if data == "random":
        array = random_array(name, dtype, shape, "weight")
    elif isinstance(data, list):
        array = literal_array(dtype, shape, data)
    else:
        raise ValueError(f"tensor {name}: data must be 'random' or a list")
    proto = numpy_helper.from_array(array, name)
    proto.data_type = element_type(dtype)
    return proto


def _attribute_value(name: str, kind: str, value):
    if kind == "FLOAT":
        return NON_FINITE.get(value, value) if isinstance(value, str) else float(value)
    if kind == "FLOATS":
        return [NON_FINITE[v] if isinstance(v, str) else float(v) for v in value]
    if kind == "TENSOR":
        return make_tensor(name, value)
    if kind in ("INT", "STRING", "INTS", "STRINGS"):
        return value
    raise ValueError(f"attribute {name}: type {kind} is not supported in a SPEC")


def make_attribute(attr: dict) -> onnx.AttributeProto:
    kind = attr["type"]
    code = onnx.AttributeProto.AttributeType.Value(kind)
    return helper.make_attribute(attr["name"], _attribute_value(attr["name"], kind, attr["value"]),
                                 attr_type=code)


def build_model(spec: dict) -> onnx.ModelProto:
    """The ONNX model of a brick SPEC (format 1), weights filled by the random data policy.

    ir_version is the oldest one that can hold the model's opsets and types, so any ONNX
    Runtime that supports those opsets loads it.
    """
    if spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"brick SPEC format {spec.get('format')!r} is not supported "
                         f"(this harness reads format {SPEC_FORMAT})")
    inputs = [helper.make_tensor_value_info(t["name"], element_type(t["dtype"]), t["shape"])
              for t in spec["inputs"]]
    outputs = [helper.make_tensor_value_info(t["name"], element_type(t["dtype"]), t["shape"])
               for t in spec["outputs"]]
    initializers = [make_tensor(t["name"], t) for t in spec["initializers"]]
    nodes = []
    for index, n in enumerate(spec["nodes"]):
        node = helper.make_node(n["op_type"], n["inputs"], n["outputs"], name=f"n{index}",
                                domain=n.get("domain", ""))
        node.attribute.extend(make_attribute(a) for a in n.get("attributes", []))
        nodes.append(node)
    graph = helper.make_graph(nodes, "brick", inputs, outputs, initializers)
    opsets = [helper.make_opsetid(domain, int(version))
              for domain, version in sorted(spec["opset_imports"].items())]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dlbricks-gen harness")
    dtypes = {t["dtype"] for t in [*spec["inputs"], *spec["outputs"], *spec["initializers"]]}
    # IR 4 at least: before it, initializers had to be listed as graph inputs too.
    model.ir_version = max([4, helper.find_min_ir_version_for(opsets, ignore_unknown=True),
                            *(MIN_IR_FOR_DTYPE.get(d, 3) for d in dtypes)])
    return model


def input_feeds(inputs: list[dict]) -> dict[str, np.ndarray]:
    """Seeded random data for graph inputs given as [{"name", "dtype", "shape"}]."""
    return {t["name"]: random_array(t["name"], t["dtype"], t["shape"], "input") for t in inputs}


def model_inputs(model: onnx.ModelProto) -> list[dict]:
    """The graph inputs of a model with static shapes, as SPEC-style dicts."""
    constant = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in constant:
            continue
        if not value.type.HasField("tensor_type"):
            raise ValueError(f"input {value.name} is not a tensor")
        tensor = value.type.tensor_type
        shape = []
        for dim in tensor.shape.dim:
            if not dim.HasField("dim_value"):
                raise ValueError(f"input {value.name} has a symbolic dimension "
                                 f"{dim.dim_param or '?'}: bind it before measuring")
            shape.append(dim.dim_value)
        inputs.append({"name": value.name, "shape": shape,
                       "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type)})
    return inputs


# --- timing ---------------------------------------------------------------------------------

def make_session(model_bytes: bytes, settings: Settings, profile_prefix: str | None = None
                 ) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPT_LEVELS[settings.graph_optimization_level]
    options.log_severity_level = 3  # errors only: warnings would flood a run's console
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def bound_call(session: ort.InferenceSession, feeds: dict[str, np.ndarray]):
    """(call, keepalive): a no-argument call that runs the session on pre-created inputs.

    io_binding with inputs bound once and outputs allocated by ONNX Runtime on the CPU is the
    cheapest public call path (about 3 us per call, against about 6 us for session.run); the
    keepalive holds the input buffers the binding points to.
    """
    strings = any(a.dtype == object for a in feeds.values())
    if strings or any(o.type == "tensor(string)" for o in session.get_outputs()):
        return functools.partial(session.run, None, feeds), (feeds,)  # io_binding has no strings
    binding = session.io_binding()
    values = []
    for name, array in feeds.items():
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))
        binding.bind_ortvalue_input(name, value)
        values.append(value)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cpu")
    return functools.partial(session.run_with_iobinding, binding), (binding, feeds, values)


@functools.cache
def _ci_rank(n: int) -> int:
    """Largest j with P(B <= j-1) <= 2.5%, B ~ Binomial(n, 1/2); 0 when n is too small."""
    total, cumulative, term, j = 2 ** n, 0, 1, 0
    while j < n and (cumulative + term) * 40 <= total:
        cumulative += term
        term = term * (n - j) // (j + 1)
        j += 1
    return j


def median_ci95(ordered: list[float]) -> tuple[float, float]:
    """Distribution-free 95% interval of the median: order statistics [x_(j), x_(n+1-j)]
    (1-based) with j from the binomial distribution; the whole range below 6 values."""
    n = len(ordered)
    j = _ci_rank(n)
    return (ordered[0], ordered[-1]) if j == 0 else (ordered[j - 1], ordered[n - j])


def ci95_rel(ordered: list[float]) -> float:
    """Half the width of the 95% interval of the median, relative to the median."""
    low, high = median_ci95(ordered)
    median = percentile(ordered, 50)
    return (high - low) / 2 / median if median > 0 else 0.0


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def trimmed_mean(ordered: list[float], proportion: float = 0.2) -> float:
    """scipy.stats.trim_mean semantics: drop int(proportion * n) values at each end."""
    cut = int(proportion * len(ordered))
    kept = ordered[cut:len(ordered) - cut]
    return math.fsum(kept) / len(kept)


def statistics(values: list[float], loops: int, ci_target: float) -> dict:
    """The "stats" part of a result, from per-call times in seconds."""
    ordered = sorted(values)
    n = len(ordered)
    median = percentile(ordered, 50)
    mean = math.fsum(ordered) / n
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    ci_rel = ci95_rel(ordered)
    return {
        "unit": "s", "median": median, "trimmed_mean_20": trimmed_mean(ordered, 0.2),
        "mean": mean, "stdev": stdev, "p90": percentile(ordered, 90), "min": ordered[0],
        "n": n, "loops": loops, "ci95_rel": ci_rel,
        "target_reached": n >= MIN_VALUES_FOR_CI and ci_rel <= ci_target,
    }


def _warm_up(call, settings: Settings) -> list[float]:
    """Per-call times of the warm-up calls."""
    timer = time.perf_counter
    times: list[float] = []
    start = timer()
    while len(times) < settings.warmup_calls or timer() - start < settings.warmup_s:
        t0 = timer()
        call()
        times.append(timer() - t0)
    return times


def _repeat(call, loops: int, settings: Settings) -> list[float]:
    """Timed values (seconds per call) until the CI target, the time cap or max_values."""
    timer = time.perf_counter
    values: list[float] = []
    next_check = settings.min_values
    start = timer()
    min_values = max(settings.min_values, math.ceil(settings.min_runs / loops))
    while len(values) < settings.max_values:
        t0 = timer()
        for _ in itertools.repeat(None, loops):
            call()
        values.append((timer() - t0) / loops)
        n = len(values)
        if n < min_values:
            continue
        if n >= next_check:  # sorting is cheap, but not worth doing after every value
            if n >= MIN_VALUES_FOR_CI and ci95_rel(sorted(values)) <= settings.ci_target:
                break
            next_check = n + max(1, n // 10)
        if timer() - start >= settings.max_time_s:
            break
    return values


def measure_session(session: ort.InferenceSession, feeds: dict[str, np.ndarray],
                    settings: Settings) -> dict:
    """Time a session: the "stats", "values", "warnings" and "timing" parts of a result."""
    call, keepalive = bound_call(session, feeds)
    part = measure_call(call, settings)
    del keepalive
    return part


def measure_call(call, settings: Settings) -> dict:
    """Time any no-argument call (an ONNX Runtime binding, a TVM closure) by the policy."""
    gc_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection inside a timed value is not the model's cost
    try:
        start = time.perf_counter()
        warm = _warm_up(call, settings)
        warmup_s = time.perf_counter() - start
        per_call = min(warm[1:] or warm)  # the first call pays one-off allocations
        loops = max(1, math.ceil(settings.min_value_s / per_call)) if per_call > 0 else 1000
        start = time.perf_counter()
        values = _repeat(call, loops, settings)
        measure_s = time.perf_counter() - start
    finally:
        if gc_enabled:
            gc.enable()
    stats = statistics(values, loops, settings.ci_target)
    warnings = []
    if not stats["target_reached"]:
        warnings.append(
            f"95% confidence interval of the median is +-{stats['ci95_rel']:.1%}, above the "
            f"{settings.ci_target:.0%} target after {stats['n']} values in {measure_s:.2f} s: "
            f"the machine is noisy or the time cap too small")
    return {"stats": stats, "values": values, "warnings": warnings,
            "timing": {"warmup_s": warmup_s, "measure_s": measure_s}}


# --- the machine ----------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _cpuinfo() -> dict:
    """model, flags and physical core count from /proc/cpuinfo (Linux), else what is known."""
    text = _read("/proc/cpuinfo") or ""
    model, flags, cores = None, set(), set()
    physical = core = None
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Hardware", "cpu model") and not model:
            model = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
    if not model and sys.platform == "darwin":
        import subprocess

        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], check=False,
                                   capture_output=True, text=True, timeout=5).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            model = None
    return {"model": model or platform.processor() or platform.machine() or "unknown",
            "flags": [f for f in KERNEL_FLAGS if f in flags],
            "physical_cores": len(cores) or None}


def _governors() -> list[str]:
    found = set()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    for cpu in cpus:
        value = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
        if value:
            found.add(value)
    return sorted(found)


def _turbo() -> str | None:
    """"on"/"off" when the kernel says (intel_pstate or the generic cpufreq boost switch)."""
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo in ("0", "1"):
        return "off" if no_turbo == "1" else "on"
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if boost in ("0", "1"):
        return "on" if boost == "1" else "off"
    return None


def _memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def machine_info() -> dict:
    """What the results depend on: CPU, its kernel-relevant flags, cores, frequency policy,
    memory, OS and the versions of Python and the libraries. Cached: it does not change."""
    cpu = _cpuinfo()
    governors = _governors()
    return {
        "cpu_model": cpu["model"],
        "cpu_flags": cpu["flags"],
        "cores": cpu["physical_cores"] or os.cpu_count() or 1,
        "logical_cores": os.cpu_count() or 1,
        "governor": ",".join(governors) or None,
        "turbo": _turbo(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
    }


def quiet_warnings(threads: int = 1) -> list[str]:
    """Reasons the machine is visibly not quiet, one line each (empty when it looks quiet).

    Load: the 1-minute load average minus the `threads` this process itself keeps busy; more
    than half a CPU (or 10% of the CPUs on big machines) of other work is a warning.
    """
    warnings = []
    info = machine_info()
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        limit = max(0.5, 0.1 * info["logical_cores"])
        if load - threads > limit:
            warnings.append(f"load average {load:.2f} on {info['logical_cores']} CPUs: other "
                            f"programs are running and may disturb the timings")
    governors = _governors()
    if governors and governors != ["performance"]:
        warnings.append(f"CPU frequency governor is {','.join(governors)}, not performance")
    if _turbo() == "on":
        warnings.append("turbo boost is on: the clock speed depends on temperature and load")
    return warnings


# --- results --------------------------------------------------------------------------------

# --- calibration ----------------------------------------------------------------------------
# A brick pays costs that the whole model does not: one session call (the runtime's fixed
# per-run overhead) and, around NCHWc kernels, layout reorders at its inputs and outputs. Both
# are measured here, in the same run, and recorded so that the estimator can remove them.
BOUNDARY_OPS = ("ReorderInput", "ReorderOutput")
PROFILE_CALLS = 4
PROFILE_BUDGET_S = 0.01


def _chain_seconds(nodes: int, settings: Settings) -> float:
    """Median time of one call of a session running `nodes` chained Neg ops on one float."""
    names = [f"v{i}" for i in range(nodes + 1)]
    graph = helper.make_graph(
        [helper.make_node("Neg", [a], [b]) for a, b in zip(names, names[1:])], "null",
        [helper.make_tensor_value_info(names[0], onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(names[-1], onnx.TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    session = make_session(model.SerializeToString(), settings)
    part = measure_session(session, {names[0]: np.zeros(1, np.float32)}, settings)
    return part["stats"]["median"]


CHAIN_NODES = 9


@functools.cache
def call_costs(intra: int, inter: int, level: str) -> dict:
    """The runtime's fixed costs, measured once per process: `null_call_s`, one call of a
    one-node session that does nothing, and `node_s`, what each further node adds (from a
    chain of CHAIN_NODES). A whole model pays the per-node part for every layer, as its
    bricks do, but the rest of the null call only once."""
    settings = Settings(intra_op_threads=intra, inter_op_threads=inter, graph_optimization_level=level,
                        quick=True, max_time_s=0.05)
    one = _chain_seconds(1, settings)
    chain = _chain_seconds(CHAIN_NODES, settings)
    node = min(max((chain - one) / (CHAIN_NODES - 1), 0.0), one)
    return {"null_call_s": one, "node_s": node}


# Ops from which ONNX Runtime's NCHWc layout pass starts (it then spreads to neighbours such
# as Add, Concat, Relu): a graph without any of them pays no reorders and is not profiled.
NCHWC_SEEDS = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                         "GlobalMaxPool", "Resize", "Upsample"})
NO_PROFILE = {"calls": 0, "run_s": 0.0, "kernels_s": {}, "boundary_s": 0.0}


def profile_calls(session: ort.InferenceSession, feeds: dict) -> dict:
    """On a session made with profiling on: one cold call, then PROFILE_CALLS profiled calls
    (fewer for slow graphs), and the kernel time per call by op type from ONNX Runtime's
    profiler. Profiling is ended before any timed call, so its cost never enters the measured
    values; the first (cold) run is not used. A fixed, small count keeps the profile (and the
    JSON that ONNX Runtime writes and this parses) small for microsecond bricks."""
    call, keepalive = bound_call(session, feeds)
    start = time.perf_counter()
    for count in range(1 + PROFILE_CALLS):
        call()
        if count >= 2 and time.perf_counter() - start > PROFILE_BUDGET_S:  # slow graphs
            break
    del keepalive
    return read_profile(session.end_profiling())


def read_profile(path: str) -> dict:
    """Kernel seconds per call by op type, from a profile whose first run was the cold one."""
    with open(path, encoding="utf-8") as handle:
        events = json.load(handle)
    os.remove(path)
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    if len(runs) < 2:
        return dict(NO_PROFILE)
    after = runs[0][1]
    kernels: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= after:
            op = e.get("args", {}).get("op_name", "?")
            kernels[op] = kernels.get(op, 0.0) + e["dur"] * 1e-6 / (len(runs) - 1)
    run_s = sum(b - a for a, b in runs[1:]) * 1e-6 / (len(runs) - 1)
    return {"calls": len(runs) - 1, "run_s": run_s, "kernels_s": dict(sorted(kernels.items())),
            "boundary_s": sum(kernels.get(op, 0.0) for op in BOUNDARY_OPS)}


def one_line(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


def _base(kind: str, id: str, suite: str | None, backend: str, settings: Settings) -> dict:
    return {"version": RESULT_VERSION, "kind": kind, "id": id, "suite": suite, "backend": backend,
            "settings": settings_record(settings), "machine": machine_info()}


def error_result(*, kind: str, id: str, error: BaseException | str, settings: Settings,
                 suite: str | None = None, backend: str = BACKEND, wall_s: float = 0.0,
                 warnings: list[str] | None = None) -> dict:
    """A result with status "error": a one-line error, no stats."""
    return {**_base(kind, id, suite, backend, settings), "status": "error",
            "error": one_line(error), "stats": None, "values": [],
            "warnings": list(warnings or []), "timing": {"wall_s": wall_s, "measure_s": 0.0}}


def measure_model(model: onnx.ModelProto, settings: Settings, *, kind: str, id: str,
                  suite: str | None = None, backend: str = BACKEND) -> dict:
    """A complete result (format v1) for any model; failures become an error result."""
    start = time.perf_counter()
    warnings = quiet_warnings(settings.intra_op_threads)
    try:
        if backend != BACKEND:
            raise ValueError(f"unknown backend {backend!r} (this harness knows {BACKEND})")
        profiled = any(node.op_type in NCHWC_SEEDS for node in model.graph.node)
        with tempfile.TemporaryDirectory() as tmp:
            session = make_session(model.SerializeToString(), settings,
                                   profile_prefix=os.path.join(tmp, "profile") if profiled else None)
            feeds = input_feeds(model_inputs(model))
            setup_s = time.perf_counter() - start
            profile = profile_calls(session, feeds) if profiled else dict(NO_PROFILE)
            calibration_s = time.perf_counter() - start - setup_s
            # Profiled calls are slower than plain ones: the warm-up after them calibrates loops.
            part = measure_session(session, feeds, settings)
        del session
        part["calibration"] = {**call_costs(settings.intra_op_threads, settings.inter_op_threads,
                                            settings.graph_optimization_level), "profile": profile}
        part["timing"]["calibration_s"] = calibration_s
    except Exception as exc:  # noqa: BLE001 - any failure is this brick's result, not a crash
        return error_result(kind=kind, id=id, error=exc, settings=settings, suite=suite,
                            backend=backend, wall_s=time.perf_counter() - start, warnings=warnings)
    timing = {"wall_s": time.perf_counter() - start, "setup_s": setup_s, **part["timing"]}
    return {**_base(kind, id, suite, backend, settings), "status": "ok", "error": None,
            "stats": part["stats"], "values": part["values"], "calibration": part["calibration"],
            "warnings": warnings + part["warnings"], "timing": timing}


def measure_spec(spec: dict, settings: Settings, *, suite: str | None = None,
                 backend: str = BACKEND, kernel_dir: Path | None = None) -> dict:
    """Build a brick SPEC and measure it; a SPEC that does not build gives an error result.
    backend "tvm": its kernel in kernel_dir, via tvm_backend.py (imported only then)."""
    if backend == "tvm":
        return _tvm_backend().measure_brick(spec, settings, kernel_dir or KERNEL_DIR, suite=suite)
    start = time.perf_counter()
    brick = str(spec.get("brick", "unknown")) if isinstance(spec, dict) else "unknown"
    try:
        model = build_model(spec)
    except Exception as exc:  # noqa: BLE001
        return error_result(kind="brick", id=brick, settings=settings, suite=suite,
                            error=f"cannot build the graph: {one_line(exc)}",
                            wall_s=time.perf_counter() - start)
    result = measure_model(model, settings, kind="brick", id=brick, suite=suite)
    result["timing"]["wall_s"] = time.perf_counter() - start
    return result


KERNEL_DIR = Path(__file__).resolve().parent / "kernels"  # a suite's TVM kernels


def _tvm_backend():
    """tvm_backend.py beside this file in a suite; the package's copy when imported from it."""
    try:
        import tvm_backend
    except ModuleNotFoundError as exc:
        if exc.name != "tvm_backend":
            raise
        from dlbricks_gen.runtime import tvm_backend
    return tvm_backend


def result_name(brick: str, backend: str = BACKEND) -> str:
    """results/<brick>.json for ONNX Runtime, results/<brick>.tvm.json for the TVM run."""
    return f"{brick}.json" if backend == BACKEND else f"{brick}.{backend}.json"


def write_result(result: dict, path: Path) -> None:
    """Write atomically (temp file + rename): a killed run never leaves half a result."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def summary_line(result: dict) -> str:
    head = f"{result['kind']} {result['id'][:16]}"
    if result.get("backend_requested", result["backend"]) != BACKEND:
        head += f" [{result['backend']}{', fallback' if result.get('fallback') else ''}]"
    if result["status"] != "ok":
        return f"{head}: error: {result['error']}"
    s = result["stats"]
    return (f"{head}: median {format_seconds(s['median'])}, trimmed mean "
            f"{format_seconds(s['trimmed_mean_20'])} (n={s['n']} x {s['loops']} loops, "
            f"CI +-{s['ci95_rel']:.1%}{'' if s['target_reached'] else ', target not reached'})")


# --- validation -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def result_schema() -> dict:
    path = Path(__file__).resolve().parent / SCHEMA_FILE
    return json.loads(path.read_text(encoding="utf-8"))


def validate_result(data: dict) -> list[str]:
    """Problems of a result document (empty list: valid), checked against result.schema.json
    with jsonschema when it is installed, else with a small built-in checker of the same
    schema. An unknown version is reported alone, in one clear line."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    if "version" not in data:
        return ["no 'version' field: not a dlbricks-gen result file"]
    version = data["version"]
    if version != RESULT_VERSION or isinstance(version, bool):
        return [(f"result format version {version!r} is not supported (this harness reads "
                 f"version {RESULT_VERSION}); use the dlbricks-gen release that wrote it")]
    validator = _schema_validator()
    if validator is None:
        return _check(result_schema(), data, "")
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def _schema_validator():
    """A jsonschema validator of result.schema.json, or None without jsonschema."""
    try:
        import jsonschema
    except ImportError:
        return None
    return _cached_validator(jsonschema)


@functools.lru_cache(maxsize=1)
def _cached_validator(jsonschema):
    return jsonschema.Draft202012Validator(result_schema())


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
          "integer": int, "number": (int, float)}


def _is_type(value, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _check(schema: dict, value, where: str) -> list[str]:
    """The JSON Schema keywords result.schema.json uses, for machines without jsonschema."""
    at = where or "(top)"
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"{at}: {value!r:.60} is not of type {' or '.join(names)}"]
    problems = []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{at}: {value!r:.60} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}: {value!r:.60} is not one of {schema['enum']}")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{at}: {value} is less than {schema['minimum']}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        problems.append(f"{at}: {value!r} is too short")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{at}: should have at least {schema['minItems']} items")
        for index, item in enumerate(value if "items" in schema else []):
            problems += _check(schema["items"], item, f"{where}/{index}".lstrip("/"))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{at}: {key!r} is a required property")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += _check(sub, value[key], f"{where}/{key}".lstrip("/"))
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(schema.get("properties", {})))
            if extra:
                problems.append(f"{at}: unexpected properties {extra}")
    for sub in schema.get("allOf", []):
        problems += _check(sub, value, where)
    if "if" in schema and not _check(schema["if"], value, where):
        problems += _check(schema.get("then", {}), value, where)
    return problems


# --- the brick program ----------------------------------------------------------------------

def brick_main(spec: dict, argv: list[str] | None = None) -> int:
    """Command line of bricks/<digest>.py: measure SPEC, print one line, optionally write the
    result file. Exit code 0 when measured, 1 on error (the error result is still written)."""
    brick = str(spec.get("brick", "?"))
    parser = argparse.ArgumentParser(
        description=f"Time brick {brick} ({spec.get('layers', '?')} layer(s)) with ONNX Runtime "
                    f"on the CPU and print its statistics.",
        epilog="example: python bricks/<digest>.py --threads 1 -o results/<digest>.json")
    parser.add_argument("-o", "--output", type=Path, help="write the result JSON to this file")
    parser.add_argument("--quick", action="store_true", help="tiny time budget (smoke tests)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--taskset", metavar="CPUS", help="pin to these CPUs, e.g. 2 or 0-3")
    parser.add_argument("--runs", type=int, metavar="N", help="timed calls at least (default 100)")
    parser.add_argument("--suite", metavar="ID", help="suite id recorded in the result")
    parser.add_argument("--backend", choices=[BACKEND, "tvm"], default=BACKEND,
                        help="onnxruntime (default) or tvm (the kernel in kernels/)")
    args = parser.parse_args(argv)
    try:
        settings = Settings(intra_op_threads=args.threads, quick=args.quick, taskset=args.taskset,
                            min_runs=args.runs)
        pin_cpus(settings)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    result = measure_spec(spec, settings, suite=args.suite, backend=args.backend)
    if args.output:
        write_result(result, args.output)
    print(summary_line(result))
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0 if result["status"] == "ok" else 1
