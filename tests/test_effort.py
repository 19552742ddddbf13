"""Issue 16, the effort part: fixed costs per brick cut without changing what is measured.

The build cache (later worker passes reuse the first pass's built bytes and never import onnx),
weights copied into the model once (the same bytes as before), the Makefile's PROCESSES=N.
Real ONNX Runtime sessions and real runner processes in quick mode; nothing is timed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from dlbricks_gen.runtime.backends.onnxruntime import measure_spec
from dlbricks_gen.runtime.core import buildcache
from dlbricks_gen.runtime.core.buildcache import BuildCache, brick_key
from dlbricks_gen.runtime.core.data import NUMPY_NAMES, element_type, numpy_dtype, random_array
from dlbricks_gen.runtime.core.results import validate_result
from dlbricks_gen.runtime.core.settings import Settings
from dlbricks_gen.runtime.core.spec import RAW_DTYPES, build_model, fill_tensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite_overhead import conv_spec, matmul_add_spec, relu_spec, write_suite

QUICK2 = Settings(quick=True, processes=2)


def test_numpy_names_agree_with_onnx():
    for name, numpy_name in NUMPY_NAMES.items():
        assert numpy_dtype(name) == np.dtype(helper.tensor_dtype_to_np_dtype(element_type(name)))
        assert np.dtype(numpy_name) == numpy_dtype(name)


@pytest.mark.parametrize("dtype", sorted(RAW_DTYPES | {"BFLOAT16", "STRING", "INT4"}))
def test_weights_filled_in_place_are_the_bytes_numpy_helper_writes(dtype: str):
    tensor = {"dtype": dtype, "shape": [3, 5], "data": "random"}
    proto = helper.make_model(helper.make_graph([], "g", [], [])).graph.initializer.add()
    fill_tensor(proto, "w0_1", tensor)
    expected = numpy_helper.from_array(random_array("w0_1", dtype, [3, 5], "weight"), "w0_1")
    expected.data_type = element_type(dtype)
    assert proto.SerializeToString() == expected.SerializeToString()


def test_later_passes_reuse_the_first_pass_bytes(tmp_path: Path):
    spec = conv_spec(4, 8)
    cache = BuildCache(tmp_path / "cache")
    first = measure_spec(spec, QUICK2, cache=cache)
    assert first["status"] == "ok" and "build_s" in first["timing"]
    assert cache.get(brick_key(spec["brick"])) == build_model(spec).SerializeToString()
    later = measure_spec(spec, QUICK2, profile=False, cache=cache)
    assert later["status"] == "ok" and validate_result(later) == []
    assert "build_s" not in later["timing"] and "calibration" not in later


def test_a_later_pass_without_its_cached_graph_builds_it(tmp_path: Path):
    spec = relu_spec([1, 6])
    result = measure_spec(spec, QUICK2, profile=False, cache=BuildCache(tmp_path / "empty"))
    assert result["status"] == "ok" and "build_s" in result["timing"]


def test_a_later_pass_never_imports_onnx(tmp_path: Path):
    spec = matmul_add_spec(2, 16, 16)
    cache = BuildCache(tmp_path / "cache")
    assert measure_spec(spec, QUICK2, cache=cache)["status"] == "ok"
    from dlbricks_gen.runtime.core.reference import graph_bytes

    cache.put(buildcache.REFERENCE, graph_bytes())
    program = f"""
import json, sys
from pathlib import Path
from dlbricks_gen.runtime.backends.onnxruntime import measure_spec
from dlbricks_gen.runtime.core.buildcache import REFERENCE, BuildCache
from dlbricks_gen.runtime.core.reference import ReferenceClock
from dlbricks_gen.runtime.core.settings import Settings
cache = BuildCache(Path({str(cache.directory)!r}))
clock = ReferenceClock(graph=cache.get(REFERENCE))
spec = json.loads({json.dumps(json.dumps(spec))})
result = measure_spec(spec, Settings(quick=True, processes=2), profile=False, cache=cache)
print(result["status"], clock.latest() > 0, "onnx" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.stdout.split() == ["ok", "True", "False"], done.stderr


def test_the_cache_is_bounded_and_clearing_removes_only_its_own_files(tmp_path: Path):
    cache = BuildCache(tmp_path / "cache")
    assert cache.put("b-ab", b"model bytes") and cache.get("b-ab") == b"model bytes"
    cache.budget = 3
    assert not cache.put("b-cd", b"too large") and cache.get("b-cd") is None
    foreign = tmp_path / "cache" / "notes.txt"
    foreign.write_text("not the cache's")
    buildcache.clear(tmp_path / "cache")
    assert foreign.exists() and not list((tmp_path / "cache").glob("*.onnx"))
    foreign.unlink()
    buildcache.clear(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_runs_remove_their_cache_unless_a_later_pass_is_to_come(tmp_path: Path):
    suite = write_suite(tmp_path / "suite", [relu_spec([1, 4, 4, 4]), conv_spec(4, 8)])
    cache = suite / "results" / buildcache.DIRECTORY
    command = [sys.executable, "-B", "-m", "dlbricks_runtime", "--quick", "--processes", "2"]

    def run(*args: str) -> None:
        done = subprocess.run([*command, *args], cwd=suite, text=True, capture_output=True,
                              check=False, timeout=120)
        assert done.returncode == 0, done.stderr

    run("--pass", "0")  # study's first round: the second one reads the cache
    assert sorted(p.name for p in cache.glob("*.onnx"))[-1] == "reference.onnx"
    assert len(list(cache.glob("b-*.onnx"))) == 2
    run("--pass", "1")
    assert not cache.exists()
    shutil.rmtree(suite / "results")
    run()
    assert not cache.exists()
    for path in (suite / "results").glob("*.json"):
        data = json.loads(path.read_text())
        assert validate_result(data) == [] and data["stats"]["processes"] == 2


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_processes(tmp_path: Path):
    directory = write_suite(tmp_path / "suite", [relu_spec([1, 9])])

    def make(*args: str) -> subprocess.CompletedProcess:
        command = ["make", "-s", "-C", str(directory), f"PYTHON={sys.executable}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert "PROCESSES=2" in make("help").stdout
    assert "`PROCESSES=" in (directory / "README.md").read_text()
    for bad in ("0", "two", "-1"):
        refused = make("run", "QUICK=1", f"PROCESSES={bad}")
        assert refused.returncode != 0 and "--processes" in refused.stderr, refused.stderr
        assert "expected a whole number >= 1" in refused.stderr
    assert not list((directory / "results").glob("*.json")) if (directory / "results").exists() else True
    done = make("run", "QUICK=1", "PROCESSES=3")
    assert done.returncode == 0 and "3 process(es)" in done.stdout, done.stdout + done.stderr
    data = json.loads(next((directory / "results").glob("*.json")).read_text())
    assert data["stats"]["processes"] == 3 and data["settings"]["policy"]["processes"] == 3


def test_warm_up_is_bounded_by_time_for_slow_calls_and_by_count_for_fast_ones():
    from dlbricks_gen.runtime.core.timing import _warm_up

    settings = Settings()  # full policy: 1 ms and >= 2 calls
    slow = _warm_up(lambda: time.sleep(2 * settings.warmup_s), settings)
    assert len(slow) == 1  # its first call lasted the whole warm-up
    fast = _warm_up(lambda: None, settings)
    assert len(fast) >= settings.warmup_calls and sum(fast) < settings.warmup_s <= 1.0
    counted = _warm_up(lambda: None, Settings(warmup_s=0.0, warmup_calls=5))
    assert len(counted) == 5


def test_the_runner_finds_the_libraries_without_importing_onnx(monkeypatch: pytest.MonkeyPatch):
    from dlbricks_gen.runtime import suite as suites

    done = subprocess.run([sys.executable, "-c", "import sys; from dlbricks_gen.runtime import "
                           "runloop, suite; suite.require_libraries(); print('onnx' in sys.modules)"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
    monkeypatch.setattr(suites, "LIBRARIES", ("numpy", "no_such_library_here"))
    with pytest.raises(suites.RunBroken, match="No module named 'no_such_library_here'"):
        suites.require_libraries()


def test_the_effort_benchmark_prints_its_figures():
    """benchmarks/effort.py in its smoke-test mode: the figures are printed, not checked."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "effort.py"
    done = subprocess.run([sys.executable, str(script), "--sets", "zoo", "--tiny", "--quick"],
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in ("CPU ", "every model end to end", "suite, run 2", "ratio", "repeatability",
                 "intervals cover the difference for"):
        assert text in done.stdout, done.stdout


def test_no_benchmark_script_shadows_the_standard_library():
    """A script runs with its own folder first on sys.path: benchmarks/realworld/select.py once
    hid the standard library's `select`, and make_corpus.py (subprocess imports it) could not
    start."""
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    shadows = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if p.stem in sys.stdlib_module_names)
    assert not shadows, f"benchmark scripts named like standard-library modules: {shadows}"
