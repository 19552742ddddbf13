"""The results store on result files: history, latest valid result, machines kept apart."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from test_estimate import result, write_results
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.results.store import Store, read_records, select_machine

runner = CliRunner()


def imported(store: Path, *dirs: Path) -> Store:
    db = Store.open(store, create=True)
    db.add(read_records(list(dirs))[0])
    return db


def test_history_is_kept_and_the_latest_valid_result_wins(tmp_path: Path):
    db = imported(tmp_path / "s.db", write_results(tmp_path / "r1", [result("a", 1.0), result("b", None)]))
    assert db.add(read_records([tmp_path / "r1"])[0]) == 0  # the same results again: nothing new
    db.add(read_records([write_results(tmp_path / "r2", [result("a", 3.0)])])[0])
    db.add(read_records([write_results(tmp_path / "r3", [result("a", None, error="later crash")])])[0])
    (machine,) = db.machines()
    latest = db.latest(machine.fingerprint)
    assert latest["a"]["stats"]["median"] == 3.0  # a later failure does not hide a valid result
    assert latest["b"]["status"] == "error"  # no valid result: the error is what we know
    assert [h[3] for h in db.history("a")] == ["ok", "ok", "error"]
    assert machine.bricks == 1 and machine.rows == 4


def test_shards_of_identical_machines_merge_and_other_machines_stay_apart(tmp_path: Path):
    shard1 = write_results(tmp_path / "shard1", [result("a", 1.0)])
    shard2 = write_results(tmp_path / "shard2", [result("b", 2.0)])
    other = write_results(tmp_path / "other", [result("a", 9.0, cpu="cpu-y")])
    db = imported(tmp_path / "s.db", shard1, shard2, other)
    machines = db.machines()
    assert sorted(m.bricks for m in machines) == [1, 2]
    with pytest.raises(ValueError, match="2 machines, choose one with --machine"):
        select_machine(machines, None)
    x = next(m for m in machines if "cpu-x" in m.label)
    assert select_machine(machines, x.fingerprint[:6]) == x
    assert sorted(db.latest(x.fingerprint)) == ["a", "b"]


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path):
    (tmp_path / "junk.db").write_text("not sqlite")
    with pytest.raises(ValueError, match="junk.db: not a results store"):
        Store.open(tmp_path / "junk.db")
    db = sqlite3.connect(tmp_path / "future.db")
    db.executescript("CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('schema', '99');")
    db.commit()
    with pytest.raises(ValueError, match="unknown results store schema '99'"):
        Store.open(tmp_path / "future.db")


def test_cli_import_lists_machines_and_estimate_asks_which(tmp_path: Path):
    write_results(tmp_path / "r", [result("a", 1.0)])
    write_results(tmp_path / "o", [result("a", 2.0, cpu="cpu-y")])
    (tmp_path / "r" / "broken.json").write_text("{")
    out = runner.invoke(app, ["store", "import", str(tmp_path / "s.db"), str(tmp_path / "r"), str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    assert "2 new results" in out.output and "broken.json" in out.output
    plan = tmp_path / "p.plan.json"
    plan.write_text(json.dumps({"version": 1, "suite": "x", "granularity": 1,
                                "bricks": {"a": {"layers": 1, "ops": ["Relu"]}},
                                "models": [{"name": "m", "file": "m.onnx", "layers": 1,
                                            "instances": [{"brick": "a"}], "edges": []}]}))
    ambiguous = runner.invoke(app, ["estimate", "--store", str(tmp_path / "s.db"), "--plan", str(plan)])
    assert ambiguous.exit_code == 1 and "choose one with --machine" in ambiguous.output
    db = Store.open(tmp_path / "s.db")
    y = next(m for m in db.machines() if "cpu-y" in m.label)
    chosen = runner.invoke(app, ["estimate", "--store", str(tmp_path / "s.db"), "--plan", str(plan),
                                 "--machine", y.fingerprint, "--json", "--no-calibrate"])
    assert chosen.exit_code == 0, chosen.output
    assert f"estimating for machine {y.fingerprint}: cpu-y" in chosen.stderr
    assert json.loads(chosen.stdout)["models"][0]["sequential_ms"] == pytest.approx(2000.0)


def test_estimate_and_compile_say_which_sources_they_need(tmp_path: Path, models_dir: Path):
    plan = tmp_path / "p.plan.json"
    plan.write_text("{}")
    neither = runner.invoke(app, ["estimate", "--plan", str(plan)])
    assert neither.exit_code == 2 and "give --results DIR or --store STORE" in neither.output
    no_store = runner.invoke(app, ["estimate", "--results", str(tmp_path), "--model", str(models_dir)])
    assert no_store.exit_code == 2 and "--model needs --store" in no_store.output
    machine = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "s"), "--machine", "ab"])
    assert machine.exit_code == 2 and "give --have STORE" in machine.output
    absent = runner.invoke(app, ["compile", str(models_dir), "-o", str(tmp_path / "s"), "--have", str(tmp_path / "no.db")])
    assert absent.exit_code == 1 and "no.db: no such results store" in absent.output
