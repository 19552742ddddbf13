"""The suite runner (`python -m dlbricks_runtime`) and the Makefile, on tiny suites laid out as the generator writes
them: resuming, crashes, timeouts, corrupt results, shards, `make run|check|pack`.

Real processes and ONNX Runtime, quick settings. Each runner call costs about a second of
imports (parent and worker), so the cases share runs where they can.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dlbricks_gen.runtime import suite as suites
from dlbricks_gen.runtime.core.results import validate_result
from dlbricks_gen.runtime.core.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from suite_overhead import conv_spec, matmul_add_spec, relu_spec, write_suite

SUITE = "0123456789abcdef"


def run_py(suite: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime", *args], cwd=suite, text=True,
                          capture_output=True, timeout=timeout, check=False)


def result(suite: Path, brick: str) -> dict:
    return json.loads((suite / "results" / f"{brick}.json").read_text())


def broken_op_spec() -> dict:
    spec = relu_spec([1, 3])
    spec["nodes"][0]["op_type"] = "NoSuchOp"
    spec["brick"] = "e" * 64
    return spec


@pytest.fixture
def suite(tmp_path: Path) -> tuple[Path, list[str]]:
    specs = [relu_spec([1, 4, 4, 4]), conv_spec(4, 8), matmul_add_spec(2, 16, 16)]
    return write_suite(tmp_path / "suite", specs, SUITE), sorted(s["brick"] for s in specs)


# --- pure parts -----------------------------------------------------------------------------

def test_shards_are_disjoint_and_together_complete():
    bricks = [f"{i:064x}" for i in range(23)]
    for n in (1, 2, 3, 7, 30):
        parts = [suites.shard(list(reversed(bricks)), k, n) for k in range(1, n + 1)]
        assert sorted(b for p in parts for b in p) == bricks
        assert sum(len(p) for p in parts) == len(bricks)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert parts == [suites.shard(bricks, k, n) for k in range(1, n + 1)]  # deterministic
    assert suites.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/0"):
        with pytest.raises(Exception, match="bad shard"):
            suites.parse_shard(bad)


def test_spec_is_read_as_a_literal_never_executed(tmp_path: Path):
    good = tmp_path / "good.py"
    good.write_text("import sys\nSPEC = {'format': 1, 'x': [1.5, 'inf']}\nsys.exit(0)\n")
    assert load_spec(good) == {"format": 1, "x": [1.5, "inf"]}
    evil = tmp_path / "evil.py"
    evil.write_text("SPEC = __import__('os').system('echo pwned')\n")
    with pytest.raises(ValueError):
        load_spec(evil)
    none = tmp_path / "none.py"
    none.write_text("X = 1\n")
    with pytest.raises(ValueError, match="no `SPEC"):
        load_spec(none)


# --- runs -----------------------------------------------------------------------------------

def test_run_measures_every_brick_then_resumes_and_redoes_partial_results(suite):
    directory, bricks = suite
    first = run_py(directory, "--quick")
    assert first.returncode == 0, first.stderr
    assert "[3/3]" in first.stdout and "3 measured, 0 failed, 0 skipped" in first.stdout
    for brick in bricks:
        data = result(directory, brick)
        assert data["status"] == "ok" and data["suite"] == SUITE
        assert validate_result(data) == []
    stamps = {b: (directory / "results" / f"{b}.json").stat().st_mtime_ns for b in bricks}

    # A killed run leaves a partial file (written without the harness), a stale temp file and a
    # missing result; a corrupt file is redone too.
    (directory / "results" / f"{bricks[0]}.json").write_text('{"version": 1, "kind": "bri')
    (directory / "results" / f".{bricks[0]}.x.tmp").write_text("half")
    (directory / "results" / f"{bricks[1]}.json").unlink()
    second = run_py(directory, "--quick")
    assert second.returncode == 0, second.stderr
    assert "1 already done, 2 to run" in second.stdout and "1 skipped" in second.stdout
    assert result(directory, bricks[0])["status"] == "ok"
    assert result(directory, bricks[1])["status"] == "ok"
    assert (directory / "results" / f"{bricks[2]}.json").stat().st_mtime_ns == stamps[bricks[2]]
    assert not list((directory / "results").glob("*.tmp"))

    # Other settings (threads) are not the same measurement: everything is redone.
    third = run_py(directory, "--quick", "--threads", "2", "--shard", "1/2")
    assert third.returncode == 0 and "2 bricks (shard 1/2), 0 already done" in third.stdout
    assert result(directory, bricks[0])["settings"]["intra_op_threads"] == 2


def test_crashing_failing_and_unreadable_bricks_become_error_results(tmp_path: Path):
    """A SPEC ONNX Runtime cannot load, a brick file that is not a literal, and a brick that
    kills the worker with SIGSEGV. The worker never executes brick files, so the crash is
    planted in this suite's copy of the ONNX Runtime backend (a real segfault of the measuring
    process)."""
    ok = [relu_spec([1, 5]), matmul_add_spec(1, 8, 8)]
    crash = relu_spec([1, 6])
    specs = [*ok, crash, broken_op_spec()]
    directory = write_suite(tmp_path / "suite", specs, SUITE)
    unreadable = "d" * 64
    (directory / "bricks" / f"{unreadable}.py").write_text("SPEC = {'format': 1,\n")
    suite_json = json.loads((directory / "suite.json").read_text())
    suite_json["bricks"] = sorted(suite_json["bricks"] + [unreadable])
    (directory / "suite.json").write_text(json.dumps(suite_json))
    with open(directory / "dlbricks_runtime" / "backends" / "onnxruntime.py", "a") as handle:
        handle.write(f"""

import signal as _signal
_measure_spec = measure_spec


def measure_spec(spec, settings, **options):  # planted by tests/test_runner.py
    if spec.get("brick") == {crash["brick"]!r}:
        os.kill(os.getpid(), _signal.SIGSEGV)
    return _measure_spec(spec, settings, **options)
""")
    done = run_py(directory, "--quick")
    assert done.returncode == 0, done.stderr
    assert "2 measured, 3 failed, 0 skipped" in done.stdout
    for spec in ok:
        assert result(directory, spec["brick"])["status"] == "ok"
    crashed = result(directory, crash["brick"])
    assert crashed["status"] == "error" and "SIGSEGV" in crashed["error"]
    assert "NoSuchOp" in result(directory, "e" * 64)["error"]
    assert "cannot read the SPEC" in result(directory, unreadable)["error"]
    for brick in suite_json["bricks"]:
        assert validate_result(result(directory, brick)) == []
    again = run_py(directory, "--quick", "--retry-errors", "--only", "eee")
    assert "0 already done, 1 to run" in again.stdout and "1 failed" in again.stdout


def test_a_brick_past_the_timeout_is_killed_and_the_run_goes_on(tmp_path: Path):
    huge = matmul_add_spec(4096, 4096, 4096)  # seconds per call: never done within 2 s
    small = relu_spec([1, 7])
    directory = write_suite(tmp_path / "suite", [huge, small], SUITE)
    done = run_py(directory, "--quick", "--timeout", "2")
    assert done.returncode == 0, done.stderr
    timed_out = result(directory, huge["brick"])
    assert timed_out["status"] == "error" and "timed out after 2 s" in timed_out["error"]
    assert result(directory, small["brick"])["status"] == "ok"


def test_a_broken_suite_stops_the_run_with_one_line(suite):
    directory, _ = suite
    (directory / "suite.json").write_text(json.dumps({"version": 9, "suite": "x", "bricks": []}))
    done = run_py(directory)
    assert done.returncode == 2
    assert "suite format version 9 is not supported" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert run_py(directory, "--only", "nope").returncode == 2


def test_a_brick_program_runs_on_its_own(suite):
    directory, bricks = suite
    out = directory / "one.json"
    done = subprocess.run([sys.executable, "-B", "-m", "dlbricks_runtime.brick", f"bricks/{bricks[0]}.py",
                           "--quick", "-o", str(out)], cwd=directory, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "median" in done.stdout and validate_result(json.loads(out.read_text())) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_check_run_pack_help(tmp_path: Path):
    specs = [relu_spec([1, 9]), conv_spec(2, 6)]
    directory = write_suite(tmp_path / "suite", specs, SUITE)

    def make(*args: str) -> subprocess.CompletedProcess:
        command = ["make", "-s", "-C", str(directory), f"PYTHON={sys.executable}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    before = sorted(p.relative_to(directory) for p in directory.rglob("*"))
    check = make("check")
    assert check.returncode == 0 and "ready" in check.stdout, check.stdout + check.stderr
    assert "onnxruntime" in check.stdout
    assert check.stdout.rstrip().endswith(f"make run PYTHON={sys.executable}`"), check.stdout
    assert sorted(p.relative_to(directory) for p in directory.rglob("*")) == before  # wrote nothing

    done = make("run", "QUICK=1", "THREADS=1", "TIMEOUT=60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 measured" in done.stdout and "expected run time" in done.stdout.splitlines()[1], done.stdout
    measured = sorted(p.stem for p in (directory / "results").glob("*.json"))
    assert measured == sorted(s["brick"] for s in specs)

    packed = make("pack")
    assert packed.returncode == 0 and "2 ok" in packed.stdout, packed.stdout + packed.stderr
    assert "2 of them QUICK" in packed.stdout, packed.stdout
    with tarfile.open(directory / f"results-{SUITE}.tar.gz") as tar:
        names = set(tar.getnames())
        machine = json.load(tar.extractfile(f"results-{SUITE}/machine.json"))
    assert {f"results-{SUITE}/suite.json", f"results-{SUITE}/machine.json"} <= names
    assert {f"results-{SUITE}/results/{s['brick']}.json" for s in specs} <= names
    assert machine["machine"]["cpu_model"]

    helped = make("help")
    for target in ("make check", "make run", "make pack", "make clean-results", "SHARD=K/N", "RUNS="):
        assert target in helped.stdout
    assert "`RUNS=" in (directory / "README.md").read_text()
    assert make("clean-results").returncode == 0
    assert not (directory / "results").exists()


def test_templates_render_with_strict_undefined(tmp_path: Path):
    directory = write_suite(tmp_path / "suite", [relu_spec([1, 2])], SUITE)
    readme = (directory / "README.md").read_text()
    assert SUITE in readme and "make run" in readme and "1 small benchmark" in readme
    assert "\t$(PYTHON) -B -m dlbricks_runtime run $(RUN_FLAGS)" in (directory / "Makefile").read_text()
    assert os.access(directory / "dlbricks_runtime" / "__main__.py", os.R_OK)


def test_brick_ids_must_be_plain_file_names(tmp_path: Path):
    (tmp_path / "suite.json").write_text(json.dumps(
        {"version": 2, "suite": SUITE, "bricks": ["ab12", "../../etc/passwd"]}))
    with pytest.raises(suites.RunBroken, match="not a plain file name"):
        suites.read_suite(tmp_path)


def test_one_run_per_suite_at_a_time_and_its_temp_files_are_left_alone(suite):
    import fcntl
    directory, bricks = suite
    (directory / "results").mkdir(exist_ok=True)
    in_flight = directory / "results" / f".{bricks[0]}.x.tmp"
    in_flight.write_text("being written by the first run")
    with open(directory / "results" / ".run.lock", "a") as lock:  # a run in progress holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = run_py(directory, "--quick")
    assert second.returncode == 2 and "a run is measuring this suite (pid" in second.stderr, second.stderr
    assert in_flight.exists() and not list((directory / "results").glob("*.json"))
    after = run_py(directory, "--quick")  # the lock dies with its holder
    assert after.returncode == 0 and "3 measured" in after.stdout, after.stderr


def test_a_quick_run_never_replaces_real_results(suite):
    directory, bricks = suite
    assert run_py(directory, "--quick").returncode == 0
    real = result(directory, bricks[0])
    real["settings"]["quick"] = False  # as a full run writes it (its timings do not matter here)
    (directory / "results" / f"{bricks[0]}.json").write_text(json.dumps(real))
    (directory / "results" / f"{bricks[1]}.json").unlink()
    again = run_py(directory, "--quick", "--retry-errors")
    assert again.returncode == 0, again.stderr
    assert result(directory, bricks[0]) == real and "real result" in again.stdout, again.stdout
    assert result(directory, bricks[1])["settings"]["quick"] is True


def test_clean_results_refuses_during_a_run_and_deletes_only_what_the_runs_wrote(suite):
    import fcntl
    directory, bricks = suite
    assert run_py(directory, "--quick").returncode == 0
    results = directory / "results"
    (results / "notes.txt").write_text("the vendor's own notes")
    (results / f".{bricks[0]}.x.tmp").write_text("left by a killed run")
    clean = ["make", "-s", "-C", str(directory), f"PYTHON={sys.executable}", "clean-results"]
    with open(results / ".run.lock", "a") as lock:  # a run in progress holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = subprocess.run(clean, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "a run is measuring this suite" in refused.stderr, refused.stderr
    assert "nothing was deleted" in refused.stderr and (results / ".run.lock").exists()
    assert len(list(results.glob("*.json"))) == 3
    done = subprocess.run(clean, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "deleted 4 files" in done.stdout and "notes.txt" in done.stdout, done.stdout
    assert sorted(p.name for p in results.iterdir()) == [".run.lock", "notes.txt"]
    (results / "notes.txt").unlink()
    assert subprocess.run(clean, capture_output=True, text=True, timeout=60, check=False).returncode == 0
    assert not results.exists()
