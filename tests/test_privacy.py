"""Privacy that is measured: keyed ids link nothing without the secret, decoys survive the attacks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlbricks_gen.cli import app
from dlbricks_gen.codegen import attacks
from dlbricks_gen.codegen.audit import read_suite
from dlbricks_gen.codegen.keys import keyed_id, load_secret
from dlbricks_gen.frontend import ShapeOptions
from dlbricks_gen.passes.cost import brick_cost
from dlbricks_gen.passes.decoys import Budget
from dlbricks_gen.workflows.compile import Recipe, assemble, fusion_groups, layout_conversions, lower_all
from dlbricks_gen.workflows.examples import example_suite

B1 = ShapeOptions(batch=1)
runner = CliRunner()


@pytest.fixture(scope="module")
def lowered(tiny_zoo: Path):
    models, failed = lower_all(tiny_zoo, B1)
    assert not failed
    return models


def ids(suite) -> set[str]:
    return {d for d, _ in suite.partition.bricks}


def test_same_secret_same_bytes_another_secret_no_id_in_common(lowered):
    one, again = (assemble(lowered, Recipe(1, B1, decoy_share=0.2, secret=b"alice" * 8)) for _ in range(2))
    other = assemble(lowered, Recipe(1, B1, decoy_share=0.2, secret=b"bob" * 8))
    assert one.files == again.files and one.plan == again.plan and one.decoys
    reverse = assemble(lowered[::-1], Recipe(1, B1, decoy_share=0.2, secret=b"alice" * 8))
    assert reverse.files == one.files  # decoys depend on neither model order nor names
    assert ids(one) and not ids(one) & ids(other) and one.info.suite != other.info.suite
    plain = assemble(lowered, Recipe(1, B1))
    digests = json.loads(one.plan)["ids"]["digests"]
    real = set(ids(one)) - set(one.decoys)
    assert {digests[i] for i in real} == ids(plain)  # the plan maps keyed ids back to digests
    assert {keyed_id(b"alice" * 8, d) for d in ids(plain)} == real


def test_a_public_model_cannot_be_looked_up_by_id_without_the_secret(tiny_zoo: Path, tmp_path: Path):
    suite = tmp_path / "suite"
    result = runner.invoke(app, ["compile", str(tiny_zoo), "-o", str(suite), "--batch", "1"])
    assert result.exit_code == 0, result.output
    bricks = attacks.views(read_suite(suite))
    public = tiny_zoo / "resnet18.onnx"
    [found] = attacks.membership(bricks, public, 1)
    assert found.bricks > 5 and found.by_id == 0 and found.by_content == found.bricks  # shapes still match
    models, units = fusion_groups(lower_all(tiny_zoo, B1)[0], True)  # as compile cuts by default
    plain = assemble(models, Recipe(1, B1), units, layouts=layout_conversions(models))  # no secret: plain digests
    [same] = attacks.membership(attacks.views({r: t.encode() for r, t in plain.files.items()}), public, 1)
    assert same.by_id == same.bricks  # what keying prevents: plain digests are public


def test_the_secret_is_made_once_0600_in_the_config_home_and_can_be_shared(tiny_zoo: Path, tmp_path: Path,
                                                                           user_config: Path):
    def compile_ids(out: str, *extra: str) -> set[str]:
        result = runner.invoke(app, ["compile", str(tiny_zoo), "-o", str(tmp_path / out), "--batch", "1", *extra])
        assert result.exit_code == 0, result.output
        return set(json.loads((tmp_path / out / "suite.json").read_text())["bricks"])

    first = compile_ids("a")
    secret = user_config / "dlbricks-gen" / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(load_secret(secret)) == 32
    assert compile_ids("b") == first  # the same secret, kept: the same ids
    team = tmp_path / "team.secret"
    team.write_text(secret.read_text())
    assert compile_ids("c", "--secret", str(team)) == first  # a shared copy keys the same
    assert not compile_ids("d", "--secret", str(tmp_path / "new.secret")) & first
    team.write_text("not hex\n")
    bad = runner.invoke(app, ["compile", str(tiny_zoo), "-o", str(tmp_path / "e"), "--secret", str(team)])
    assert bad.exit_code == 1 and f"{team}: not a dlbricks-gen secret" in bad.output
    assert not (tmp_path / "e").exists()


def test_decoys_change_no_estimate_and_keep_real_ids(lowered):
    without = assemble(lowered, Recipe(1, B1, secret=b"k" * 16))
    with_ = assemble(lowered, Recipe(1, B1, decoy_share=0.3, secret=b"k" * 16))
    assert with_.decoys and with_.partition.models == without.partition.models
    assert ids(with_) - set(with_.decoys) == ids(without)


def test_the_budget_is_a_share_of_guessed_latency_or_a_count(lowered):
    real = sum(brick_cost(b) for _, b in assemble(lowered, Recipe(1, B1)).partition.bricks)
    for share in (0.1, 0.5):
        suite = assemble(lowered, Recipe(1, B1, decoy_share=share, secret=b"s" * 16))
        bricks = dict(suite.partition.bricks)
        spent = sum(brick_cost(bricks[d]) for d in suite.decoys)
        largest = max(brick_cost(bricks[d]) for d in suite.decoys)
        assert share * real <= spent < share * real + largest
    assert Budget.parse("20%") == Budget(share=0.2) == Budget.parse("0.2") and Budget.parse("7") == Budget(count=7)
    for bad in ("-1", "x", "2000%"):
        with pytest.raises(ValueError, match="--decoys"):
            Budget.parse(bad)


def test_the_attacks_catch_lone_decoys():
    """The attacks are real: decoys that do not chain, at shapes no real brick has, are found."""
    def view(i: int, ins: str, outs: str) -> attacks.View:
        return attacks.View(f"{i:064x}", ("Relu",), (ins,), (outs,), (), str(i))

    chain = [view(i, f"FLOAT[1,{i}]", f"FLOAT[1,{i + 1}]") for i in range(1, 20)]
    lone = [view(100 + i, f"FLOAT[7,{i}]", f"FLOAT[9,{i}]") for i in range(5)]
    decoys = {b.id for b in lone}
    found = attacks.chaining(chain + lone, decoys)
    assert found.auc is not None and found.auc > 0.9 and found.recall == 1.0
    assert (attacks.histogram(chain + lone, decoys).auc or 0) > 0.9


def test_the_default_budget_hides_the_demo_suites_decoys_from_every_attack():
    """The demo models at default scale with compile's default decoy budget, as shipped (keyed
    with the demo secret): every attack at AUC <= 0.6."""
    suite = example_suite(decoys=True)
    assert len(suite.decoys) >= 10
    files = {rel: text.encode() for rel, text in suite.files.items()}
    for finding in attacks.attack_suite(files, set(suite.decoys)):
        assert finding.auc is not None and finding.auc <= 0.6, finding


def test_audit_attacks_prints_what_each_attack_recovers(tiny_zoo: Path, tmp_path: Path):
    for out, extra in (("a", []), ("b", ["--secret", str(tmp_path / "other.secret")])):
        result = runner.invoke(app, ["compile", str(tiny_zoo), "-o", str(tmp_path / out), "--batch", "1", *extra])
        assert result.exit_code == 0, result.output
    assert "decoys: " in result.stdout and "s more measuring" in result.stdout
    result = runner.invoke(app, ["audit", str(tmp_path / "a"), "--attacks", "--plan", str(tmp_path / "a.plan.json"),
                                 "--public", str(tiny_zoo / "resnet18.onnx"), "--against", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    for line in ("attack chaining:", "attack entry-and-head: at least", "attack histogram:",
                 "attack cross-suite: 0 ids in common", "by id", "decoy AUC", "audit: passed"):
        assert line in result.stdout, result.stdout
    result = runner.invoke(app, ["audit", str(tmp_path / "a"), "--plan", str(tmp_path / "a.plan.json")])
    assert result.exit_code == 2 and "go with --attacks" in result.output
