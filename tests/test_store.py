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


def test_two_different_results_for_one_brick_in_one_import_are_both_refused(tmp_path: Path):
    one = write_results(tmp_path / "one", [result("a", 1.0), result("b", 2.0)])
    two = write_results(tmp_path / "two", [result("a", 9.0), result("b", 2.0)])  # b: the same
    records, problems = read_records([one, two])
    assert sorted(r.brick for r in records) == ["b", "b"]
    assert len(problems) == 1 and "a.json" in problems[0] and "both refused" in problems[0]


def test_quick_results_get_their_own_fingerprint(tmp_path: Path):
    real = result("a", 1.0)
    real["settings"] = {**real["settings"], "quick": False}
    db = imported(tmp_path / "s.db", write_results(tmp_path / "q", [result("a", 0.5)]),
                  write_results(tmp_path / "real", [real]))
    assert len(db.machines()) == 2


def rows_edited(store: Path, sql: str) -> None:
    db = sqlite3.connect(store)
    with db:
        db.execute(sql)
    db.close()


@pytest.mark.parametrize("edit, reason", [
    ("json_remove(result, '$.stats')", "stats"),
    ("replace(result, '\"median\":1.0', '\"median\":NaN')", "NaN"),
    ("json_set(result, '$.stats.median', -1.0, '$.values', json('[-1.0]'))", "minimum"),
])
def test_the_store_validates_what_it_reads(tmp_path: Path, edit: str, reason: str):
    imported(tmp_path / "s.db", write_results(tmp_path / "r", [result("a", 1.0), result("b", 2.0)])).close()
    rows_edited(tmp_path / "s.db", f"UPDATE results SET result = {edit} WHERE brick = 'a'")
    db = Store.open(tmp_path / "s.db")
    (machine,) = db.machines()
    assert sorted(db.latest(machine.fingerprint)) == ["b"]
    assert len(db.problems) == 1 and "brick a" in db.problems[0] and reason in db.problems[0], db.problems


def test_a_read_only_store_is_a_one_line_error(tmp_path: Path):
    import os
    imported(tmp_path / "s.db", write_results(tmp_path / "r", [result("a", 1.0)])).close()
    import subprocess
    os.chmod(tmp_path / "s.db", 0o444)
    immutable = os.access(tmp_path / "s.db", os.W_OK)  # root writes read-only files: make it immutable
    if immutable and subprocess.run(["chattr", "+i", str(tmp_path / "s.db")], capture_output=True,
                                    check=False).returncode != 0:
        pytest.skip("running as root without chattr: a read-only file is still writable")
    try:
        run = runner.invoke(app, ["store", "import", str(tmp_path / "s.db"),
                                  str(write_results(tmp_path / "r2", [result("b", 1.0)]))])
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(tmp_path / "s.db")], check=False)
    assert run.exit_code == 1 and "s.db" in run.output and "read" in run.output.lower(), run.output
    assert run.exception is None or isinstance(run.exception, SystemExit)


def test_a_store_another_process_holds_locked_is_a_one_line_error(tmp_path: Path):
    imported(tmp_path / "s.db", write_results(tmp_path / "r", [result("a", 1.0)])).close()
    holder = sqlite3.connect(tmp_path / "s.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        run = runner.invoke(app, ["store", "import", str(tmp_path / "s.db"),
                                  str(write_results(tmp_path / "r2", [result("b", 1.0)]))])
    finally:
        holder.rollback()
        holder.close()
    assert run.exit_code == 1 and "s.db" in run.output and "locked" in run.output, run.output


def test_import_steps_a_progress_bar_per_result_file(tmp_path: Path, monkeypatch):
    import io

    from rich.console import Console

    from dlbricks_gen import cli
    from dlbricks_gen.results.store import result_paths

    d1 = write_results(tmp_path / "r1", [result("a", 1.0), result("b", 2.0)])
    d2 = write_results(tmp_path / "r2", [result("c", 1.0)])
    (d2 / "broken.json").write_text("{")
    paths, problems = result_paths([d1, d2, tmp_path / "nope"])
    assert len(paths) == 4 and len(problems) == 1
    seen: list[str] = []
    records, problems = read_records([d1, d2], seen.append)
    assert seen == [p.as_posix() for p in result_paths([d1, d2])[0]] and len(records) == 3
    screen = io.StringIO()  # the command on a terminal: a bar with counts and ETA
    real = cli.progress_bar
    monkeypatch.setattr(cli, "progress_bar", lambda *a: real(*a, Console(file=screen, force_terminal=True, width=120)))
    run = runner.invoke(app, ["store", "import", str(tmp_path / "s.db"), str(d1), str(d2)])
    assert run.exit_code == 0 and "3 new results" in run.stdout, run.output
    assert "store import" in screen.getvalue() and "4/4" in screen.getvalue() and "ETA" in screen.getvalue()
