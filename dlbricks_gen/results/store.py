"""The results store: every brick result ever imported, kept in one SQLite file.

A result is keyed by brick digest, backend and machine fingerprint. The fingerprint is a
digest of what the result itself records about the machine and the settings that change
latency (machine.py: the one definition of machine identity, shared with the estimator), so
results from identical machines
(suite shards run on several copies of one machine type) share a fingerprint and merge, and
results from machines that differ are kept apart. Every import adds rows (history is kept);
re-importing the same result is a no-op. The estimator uses, per brick, the latest valid
(status "ok") result in import order. Schema: docs/FORMATS.md, section 4.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..runtime.backends import DEFAULT as DEFAULT_BACKEND
from ..runtime.core.results import validate_result
from .files import MAX_RESULT_BYTES, fingerprint, inconsistency, parse_strict, read_result_file, results_folder
from .load import BrickResult, brick_result, fastest_call_costs
from .machine import identity, identity_key, machine_label

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE machines (fingerprint TEXT PRIMARY KEY, label TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE results (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    brick TEXT NOT NULL,
    backend TEXT NOT NULL,
    machine TEXT NOT NULL REFERENCES machines(fingerprint),
    status TEXT NOT NULL,
    latency_s REAL,
    wall_s REAL,
    suite TEXT,
    imported_at TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    result TEXT NOT NULL
);
CREATE INDEX results_key ON results (machine, backend, brick, row);
"""


# --- records: result files as rows ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Record:
    brick: str
    backend: str
    machine: str  # fingerprint
    fields: dict  # the fingerprinted fields
    source: str
    data: dict  # the whole result

    @property
    def ok(self) -> bool:
        return self.data.get("status") == "ok"


def record_of(data: dict, source: str) -> Record:
    fields = identity(data)
    return Record(data["id"], data.get("backend") or DEFAULT_BACKEND, identity_key(fields), fields,
                  source, data)


def result_paths(dirs: list[Path]) -> tuple[list[Path], list[str]]:
    """The result files below each directory (results/*.json; a suite directory also works),
    and one problem per directory that is not a results directory."""
    paths, problems = [], []
    for directory in dirs:
        folder = results_folder(directory)
        if not folder.is_dir():
            problems.append(f"{directory}: not a results directory")
            continue
        paths += sorted(folder.glob("*.json"))
    return paths, problems


def read_records(dirs: list[Path], progress: Callable[[str], None] | None = None
                 ) -> tuple[list[Record], list[str]]:
    """Brick results below each directory. Unreadable or invalid files are reported, one line
    each, and left out. `progress(path)` as each file is read."""
    records = []
    paths, problems = result_paths(dirs)
    for path in paths:
        if progress:
            progress(path.as_posix())
        try:
            data = read_result_file(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if data.get("kind") != "brick":
            problems.append(f"{path}: a {data.get('kind')!r} result, not a brick result")
            continue
        records.append(record_of(data, path.as_posix()))
    return refuse_conflicts(records, problems)


def refuse_conflicts(records: list[Record], problems: list[str]) -> tuple[list[Record], list[str]]:
    """Leave out, as one problem each, bricks that one import holds two different results of
    for one machine and backend (which of them is right cannot be told; --results refuses
    both too)."""
    first: dict[tuple[str, str, str], Record] = {}
    conflicting: set[tuple[str, str, str]] = set()
    for rec in records:
        key = (rec.machine, rec.backend, rec.brick)
        if key in first and fingerprint(first[key].data) != fingerprint(rec.data):
            if key not in conflicting:
                problems.append(f"{rec.source}: brick {rec.brick} already has different results in "
                                f"{first[key].source}: both refused")
            conflicting.add(key)
        first.setdefault(key, rec)
    kept = [rec for rec in records if (rec.machine, rec.backend, rec.brick) not in conflicting]
    return kept, problems


def stored_result(text: str) -> dict:
    """A result as the store holds it, checked as a result file is (the store is a file too:
    anyone may have edited it); ValueError naming the problem otherwise."""
    if len(text) > MAX_RESULT_BYTES:
        raise ValueError(f"{len(text)} characters, more than a result can be")
    data = parse_strict(text)
    problems = validate_result(data) or inconsistency(data)
    if problems:
        raise ValueError(" ".join(problems[0].split())[:300])
    return data


# --- the store --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Machine:
    fingerprint: str
    label: str
    fields: dict
    bricks: int  # bricks with a valid result
    rows: int


class Store:
    """One SQLite file. `Store.open(path)` refuses files that are not a store of this version."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = connection, path
        self.problems: list[str] = []  # rows left out by `latest`, one line each

    @classmethod
    def open(cls, path: Path, create: bool = False) -> Store:
        if not path.exists() and not create:
            raise ValueError(f"{path}: no such results store (create one with `dlbricks-gen store import`)")
        try:
            db = sqlite3.connect(path)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables and create:
                db.executescript(SCHEMA)
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                db.commit()
            version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path}: not a results store: {exc}") from None
        if version is None or version[0] != str(SCHEMA_VERSION):
            raise ValueError(f"{path}: unknown results store schema {version and version[0]!r} "
                             f"(this dlbricks-gen reads schema {SCHEMA_VERSION})")
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def add(self, records: list[Record], now: datetime | None = None) -> int:
        """Insert the records; returns how many were new (identical results are kept once)."""
        try:
            return self._add(records, now)
        except sqlite3.Error as exc:  # read-only file, locked by another process, disk full
            raise ValueError(f"{self.path}: cannot write to the results store: {exc}") from None

    def _add(self, records: list[Record], now: datetime | None) -> int:
        stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
        added = 0
        with self.db:
            for rec in records:
                self.db.execute("INSERT OR IGNORE INTO machines VALUES (?, ?, ?)",
                                (rec.machine, machine_label(rec.fields), json.dumps(rec.fields, sort_keys=True)))
                text = json.dumps(rec.data, sort_keys=True, separators=(",", ":"))
                stats = rec.data.get("stats") or {}
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO results (brick, backend, machine, status, latency_s, wall_s,"
                    " suite, imported_at, source, sha256, result) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.brick, rec.backend, rec.machine, rec.data.get("status"),
                     stats.get("trimmed_mean_20"), (rec.data.get("timing") or {}).get("wall_s"),
                     rec.data.get("suite"), stamp, rec.source,
                     hashlib.sha256(text.encode()).hexdigest(), text))
                added += cursor.rowcount
        return added

    def machines(self, backend: str = DEFAULT_BACKEND) -> list[Machine]:
        rows = self.db.execute(
            "SELECT m.fingerprint, m.label, m.fields, COUNT(DISTINCT CASE WHEN r.status='ok' THEN r.brick END),"
            " COUNT(r.row) FROM machines m JOIN results r ON r.machine = m.fingerprint AND r.backend = ?"
            " GROUP BY m.fingerprint ORDER BY m.fingerprint", (backend,))
        return [Machine(fp, label, json.loads(fields), bricks, count) for fp, label, fields, bricks, count in rows]

    def latest(self, machine: str, backend: str = DEFAULT_BACKEND) -> dict[str, dict]:
        """Per brick, the latest valid result, or the latest error when none is valid."""
        found: dict[str, dict] = {}
        rows = self.db.execute("SELECT brick, status, result FROM results WHERE machine=? AND backend=?"
                               " ORDER BY (status='ok'), row", (machine, backend))
        for brick, _, text in rows:  # errors first, then ok results: the last one wins
            try:
                found[brick] = stored_result(text)
            except ValueError as exc:
                self.problems.append(f"{self.path}: row of brick {brick[:80]}: invalid result: {exc}")
        return found

    def history(self, brick: str) -> list[tuple[str, str, str, str, float | None, str]]:
        """(machine, backend, imported_at, status, latency_s, source) of every import of a brick."""
        return list(self.db.execute(
            "SELECT machine, backend, imported_at, status, latency_s, source FROM results"
            " WHERE brick=? ORDER BY row", (brick,)))


def select_machine(machines: list[Machine], wanted: str | None) -> Machine | None:
    """The machine to use: `wanted` (a fingerprint or a unique prefix of one), or the only
    machine of the store. None for an empty store; ValueError listing the machines otherwise."""
    if not machines:
        return None
    listing = "; ".join(f"{m.fingerprint} ({m.label}, {m.bricks} bricks)" for m in machines)
    if wanted is None:
        if len(machines) == 1:
            return machines[0]
        raise ValueError(f"the store holds results of {len(machines)} machines, choose one with "
                         f"--machine: {listing}")
    matches = [m for m in machines if m.fingerprint.startswith(wanted)]
    if len(matches) != 1:
        raise ValueError(f"--machine {wanted!r} matches {len(matches)} machines of the store: {listing}")
    return matches[0]


def brick_results(latest: dict[str, dict], statistic: str) -> dict[str, BrickResult]:
    return fastest_call_costs({brick: brick_result(data, statistic) for brick, data in latest.items()})
