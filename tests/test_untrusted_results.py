"""Result files come from outside: each bad one is a warning naming it, the rest still count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_estimate import PLAN, SUITE, result, write_results
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.results import load as rl
from dlbricks_gen.results.files import MAX_RESULT_BYTES

KNOWN = set(PLAN.bricks)


def load(directory: Path) -> rl.ResultSet:
    return rl.load_results([directory], SUITE, "median", known=KNOWN)


def bad_files() -> dict[str, str | bytes]:
    """name -> content of files that must be refused, one reason each."""
    ok = result("a", 1.0)
    return {
        "version.json": json.dumps({**ok, "version": 2}),
        "nan.json": json.dumps(ok).replace('"median": 1.0', '"median": NaN'),
        "inf.json": json.dumps({**ok, "values": [1.0, 1e999]}).replace("Infinity", "1e999"),
        "negative.json": json.dumps(result("b", -1.0)),
        "unplanned.json": json.dumps(result("zzz", 1.0)),
        "suite.json": json.dumps(result("c", 1.0, suite="ffffffffffffffff")),
        "binary.json": bytes(range(256)) * 4,
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "array.json": "[1, 2, 3]",
        "string_id.json": json.dumps({**ok, "id": {"__import__('os')": 1}}),
        "empty.json": "",
        "truncated.json": json.dumps(ok)[:40],
    }


def test_each_bad_result_file_is_a_warning_naming_it_and_the_rest_count(tmp_path: Path):
    d = write_results(tmp_path / "r", [result("a", 1.0), result("d", 0.5)])
    for name, content in bad_files().items():
        target = d / name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    out = load(d)
    assert set(out.results) == {"a", "d"} and out.results["a"].latency == 1.0
    for name in bad_files():
        named = [p for p in out.problems if f"/{name}:" in p]
        assert len(named) == 1, (name, out.problems)
        assert "\n" not in named[0] and len(named[0]) < 500
    assert any("version 2 is not supported" in p for p in out.problems)
    assert any("non-finite number NaN" in p for p in out.problems)
    assert any("overflows to infinity" in p for p in out.problems)
    assert any("not a brick of this plan" in p for p in out.problems)
    assert any("not UTF-8" in p for p in out.problems)


def test_duplicate_ids_with_different_values_are_both_refused(tmp_path: Path):
    one = write_results(tmp_path / "one", [result("a", 1.0), result("b", 2.0)])
    two = write_results(tmp_path / "two", [result("a", 9.0), result("b", 2.0)])  # b: same values
    out = rl.load_results([one, two], SUITE, "median", known=KNOWN)
    assert "a" not in out.results and out.results["b"].latency == 2.0
    assert len(out.problems) == 1 and "two/a.json: id a already has different results" in out.problems[0]


def test_huge_result_files_are_refused_without_reading_them(tmp_path: Path):
    d = write_results(tmp_path / "r", [result("a", 1.0)])
    with open(d / "huge.json", "wb") as f:
        f.truncate(MAX_RESULT_BYTES + 1)  # sparse: nothing is written
    out = load(d)
    assert set(out.results) == {"a"} and "huge.json" in out.problems[0] and "bytes" in out.problems[0]


def test_estimate_cli_warns_per_file_and_still_estimates(tmp_path: Path):
    plan_file(tmp_path)
    d = write_results(tmp_path / "r", [result(x, 1.0) for x in "abcd"])
    (d / "evil.json").write_text('{"version": 1, "id": "__import__(\'os\').system(\'touch x\')"}')
    (d / "nan.json").write_text(json.dumps(result("a", 1.0)).replace('"median": 1.0', '"median": NaN'))
    run = CliRunner().invoke(app, ["estimate", "--plan", str(tmp_path / "p.json"), "--results", str(d), "--json"])
    assert run.exit_code == 0, run.output
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 2 and any("evil.json" in w for w in warnings)
    assert "4 of 4 results are QUICK" in run.stderr  # the fixtures are quick results
    rows = json.loads(run.stdout)["models"]
    assert all(r["status"] == "complete" for r in rows), rows
    assert not (Path.cwd() / "x").exists()


@pytest.mark.parametrize("content", ["{", "[]", '{"version": 1, "kind": "e2e", "models": 3}',
                                     '{"version": 1, "kind": "e2e", "models": {"m": NaN}}'])
def test_bad_e2e_files_are_one_line_errors(tmp_path: Path, content: str):
    (tmp_path / "e2e.json").write_text(content)
    with pytest.raises(ValueError, match="e2e.json"):
        rl.load_e2e(tmp_path / "e2e.json", "median")


def test_devices_fifos_and_oversized_files_are_refused_without_reading(tmp_path: Path):
    import os
    d = write_results(tmp_path / "r", [result("a", 1.0)])
    (d / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(d / "fifo.json")
    (d / "dir.json").mkdir()
    out = load(d)  # must return: /dev/zero read whole exhausts memory, a FIFO blocks forever
    assert set(out.results) == {"a"}
    for name, kind in [("zero.json", "character device"), ("fifo.json", "FIFO"), ("dir.json", "directory")]:
        assert any(f"/{name}:" in p and kind in p for p in out.problems), (name, out.problems)
    assert rl.backends_in([d]) == ["onnxruntime"]
    from dlbricks_gen.results.store import read_records
    records, problems = read_records([d])  # store import reads them the same way
    assert [r.brick for r in records] == ["a"] and len(problems) == 3, problems


def test_a_file_growing_past_its_stat_size_is_read_only_to_the_limit(tmp_path: Path, monkeypatch):
    from dlbricks_gen.results import files
    (tmp_path / "big.json").write_text(json.dumps(result("a", 1.0)))
    monkeypatch.setattr(files, "MAX_RESULT_BYTES", 100)  # the file is larger than this
    with pytest.raises(ValueError, match="big.json: .*100"):
        files.read_json_file(tmp_path / "big.json")


def test_stats_that_do_not_summarise_the_values_are_refused(tmp_path: Path):
    edited = result("a", 1.0)
    edited["stats"] = {**edited["stats"], "trimmed_mean_20": 0.5}  # values untouched
    miscounted = result("b", 1.0)
    miscounted["stats"] = {**miscounted["stats"], "n": 50}
    d = write_results(tmp_path / "r", [edited, miscounted, result("c", 1.0)])
    out = load(d)
    assert set(out.results) == {"c"}
    assert any("a.json" in p and "stats/trimmed_mean_20" in p for p in out.problems), out.problems
    assert any("b.json" in p and "stats/n" in p for p in out.problems), out.problems


def test_results_without_a_suite_do_not_count_for_a_plan(tmp_path: Path):
    d = write_results(tmp_path / "r", [{**result("a", 1.0), "suite": None}, result("b", 1.0)])
    out = load(d)
    assert set(out.results) == {"b"} and any("a.json" in p for p in out.problems)


def plan_file(tmp_path: Path) -> Path:
    plan = {"version": 1, "suite": SUITE, "granularity": 1,
            "bricks": {d: {"layers": b.layers, "ops": list(b.ops)} for d, b in PLAN.bricks.items()},
            "models": [{"name": m.name, "file": m.file, "layers": m.layers,
                        "instances": [{"brick": i} for i in m.instances], "edges": [list(e) for e in m.edges]}
                       for m in PLAN.models], "failed": []}
    (tmp_path / "p.json").write_text(json.dumps(plan))
    return tmp_path / "p.json"


@pytest.mark.parametrize("results", [[], [result(x, 1.0, suite="ffffffffffffffff") for x in "abcd"]])
def test_nothing_estimated_is_a_failure_and_claims_no_zero_estimate(tmp_path: Path, results: list[dict]):
    d = write_results(tmp_path / "r", results)
    run = CliRunner().invoke(app, ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(d), "--json"])
    assert run.exit_code == 1 and "nothing could be estimated" in run.stderr, run.output
    rows = json.loads(run.stdout)["models"]
    assert all(r["estimate_ms"] is None and r["coverage"] == 0 for r in rows), rows


def packed(tmp_path: Path, results: list[dict]) -> Path:
    """The archive the suite's `make pack` writes (the runtime's own pack)."""
    import argparse

    from dlbricks_gen.runtime.pack import pack

    suite = tmp_path / "suite"
    write_results(suite / "results", results)
    (suite / "suite.json").write_text(json.dumps({"version": 2, "suite": SUITE, "bricks": sorted(KNOWN)}))
    pack(argparse.Namespace(suite_dir=suite, output=None, threads=1))
    return suite / f"results-{SUITE}.tar.gz"


def test_the_archive_make_pack_writes_is_accepted_packed_and_unpacked(tmp_path: Path):
    import tarfile
    archive = packed(tmp_path, [result(x, 1.0) for x in "abcd"])
    for given in (archive, tmp_path / "unpacked" / f"results-{SUITE}"):
        if not given.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(tmp_path / "unpacked", filter="data")
        run = CliRunner().invoke(app, ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(given), "--json"])
        assert run.exit_code == 0 and "warning: skipped" not in run.stderr, run.output
        assert all(r["status"] == "complete" for r in json.loads(run.stdout)["models"])
    run = CliRunner().invoke(app, ["store", "import", str(tmp_path / "s.db"), str(archive)])
    assert run.exit_code == 0 and "4 new results" in run.stdout, run.output


def _hostile_archive(path: Path, kind: str) -> Path:
    import io
    import tarfile
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo({"outside": "../../evil.json", "absolute": "/tmp/evil.json"}.get(kind, "r/results/a.json"))
        if kind == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/dev/zero"
            tar.addfile(info)
        elif kind == "huge":
            info.size = MAX_RESULT_BYTES + 1
            tar.addfile(info, io.BytesIO(b" " * info.size))
        else:
            tar.addfile(info, io.BytesIO(b"{}"))
    return path


@pytest.mark.parametrize("kind, reason", [("link", "link"), ("outside", "outside"), ("absolute", "outside"),
                                          ("huge", "bytes")])
def test_hostile_archives_are_refused_naming_the_member(tmp_path: Path, kind: str, reason: str):
    archive = _hostile_archive(tmp_path / "results-x.tar.gz", kind)
    run = CliRunner().invoke(app, ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(archive)])
    assert run.exit_code == 1 and "results-x.tar.gz" in run.stderr and reason in run.stderr, run.output
    assert not (tmp_path.parent / "evil.json").exists()


def test_every_output_names_machine_suite_statistic_h_version_and_date(tmp_path: Path):
    import datetime

    from dlbricks_gen import __version__
    d = write_results(tmp_path / "r", [result(x, 1.0) for x in "abcd"])
    base = ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(d), "--stat", "median"]
    table = CliRunner().invoke(app, [*base, "--html", str(tmp_path / "r.html")])
    about = json.loads(CliRunner().invoke(app, [*base, "--json"]).stdout)["about"]
    today = datetime.date.today().isoformat()
    assert about == {"machine": about["machine"], "suite": SUITE, "statistic": "median", "H": 1, "batch": None,
                     "dlbricks_gen": __version__, "date": today} and "cpu-x" in about["machine"]
    for text in (table.stdout.splitlines()[0], (tmp_path / "r.html").read_text()):
        for part in ("cpu-x", SUITE, "median", "H=1", __version__, today):
            assert part in text, (part, text[:300])
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(app, [*base, "--csv"]).stdout)))
    assert rows and all({k: r[k] for k in about} == {k: str(v if v is not None else "") for k, v in about.items()}
                        for r in rows), rows


def test_results_of_a_contended_run_are_flagged(tmp_path: Path):
    """Two copies of a suite run at once on one machine (the lock holds per suite folder): the
    runtime records the load in each result, and the estimate says so."""
    busy = "load average 3.10 on 2 CPUs: other programs are running and may disturb the timings"
    files = [result(x, 1.0) for x in "abcd"]
    for r in files[:2]:
        r["warnings"] = [busy]
    d = write_results(tmp_path / "r", files)
    run = CliRunner().invoke(app, ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(d)])
    assert run.exit_code == 0 and "2 of 4 results were measured while other programs" in run.stderr, run.output
    quiet = write_results(tmp_path / "q", [result(x, 1.0) for x in "abcd"])
    run = CliRunner().invoke(app, ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(quiet)])
    assert "other programs" not in run.stderr, run.output


@pytest.mark.parametrize("section, field, value", [
    ("machine", "cores", 16), ("machine", "arch", "aarch64"), ("machine", "logical_cores", 32),
    ("machine", "cpu_flags", ["avx512f"]), ("machine", "onnxruntime", "9.9"), ("machine", "cpu_model", "other"),
    ("machine", "cpu_id", "AuthenticAMD family 26 model 2 stepping 0"),
    ("settings", "intra_op_threads", 4), ("settings", "quick", False)])
def test_results_relabelled_as_another_machine_are_refused_as_the_store_keeps_them_apart(
        tmp_path: Path, section: str, field: str, value):
    from dlbricks_gen.results.store import Store, read_records

    files = [result(x, 1.0) for x in "abcd"]
    files[3][section] = {**files[3][section], field: value}
    d = write_results(tmp_path / "r", files)
    run = CliRunner().invoke(app, ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(d)])
    assert run.exit_code == 1 and f"{section}.{field} is" in run.stderr and "cannot be combined" in run.stderr, \
        run.output
    db = Store.open(tmp_path / "s.db", create=True)
    db.add(read_records([d])[0])
    assert len(db.machines()) == 2
    db.close()


@pytest.mark.parametrize("section, field, value", [("settings", "quick", False), ("machine", "cpu_model", "laptop")])
def test_whole_model_measurements_of_another_machine_or_quick_ones_are_flagged(
        tmp_path: Path, section: str, field: str, value):
    d = write_results(tmp_path / "r", [result(x, 1.0) for x in "abcd"])
    models = {name: {**result(name, 8.0), "kind": "model"} for name in ("diamond", "chain")}
    same = {"version": 1, "kind": "e2e", "models": models}
    other = {"version": 1, "kind": "e2e", "models": {
        n: {**r, section: {**r[section], field: value}} for n, r in models.items()}}
    base = ["estimate", "--plan", str(plan_file(tmp_path)), "--results", str(d), "--e2e"]
    for data, flagged in ((same, False), (other, True)):
        (tmp_path / "e2e.json").write_text(json.dumps(data))
        run = CliRunner().invoke(app, [*base, str(tmp_path / "e2e.json")])
        assert run.exit_code == 0, run.output
        assert (f"--e2e) have {section}.{field} {value!r}" in run.stderr) is flagged, run.stderr
