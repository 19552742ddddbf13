"""Brick ids keyed with the user's secret, so that ids link nothing outside the user's side.

A brick's digest (sha256 of its canonical text) is the same for every user: a vendor holding
two customers' suites could match their ids, and could tell whether a public model is in a
suite by compiling it and comparing ids. A shipped suite therefore names each brick by
HMAC-SHA256(secret, digest): same models, options and secret -> same ids (and bytes); another
secret -> no id in common; without the secret, a digest cannot be turned into an id. The plan
maps the keyed ids back to digests; results come back under the keyed ids, so a results store
filled with one secret serves every compile with that secret (share the file within a team on
purpose, `--secret PATH`).

The secret is made on first use (32 random bytes, hex, mode 0600) under the user's config
directory, `$XDG_CONFIG_HOME/dlbricks-gen/secret` (default `~/.config/...`): the CLI resolves
that path and passes it down; nothing here reads the environment itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..passes.partition import Partition

SECRET_BYTES = 32
MAX_SECRET_FILE = 4096  # a secret file is one line of hex: anything larger is not one
HEX = re.compile(r"[0-9a-f]{32,256}")
# Public on purpose: it keys only the committed example suite (generated/, `make generate`), so
# that anyone can reproduce it byte for byte. Never use it for real models.
DEMO_SECRET = b"dlbricks-gen demo secret: public, keys the committed example suite only"


def default_secret_path(environ: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME/dlbricks-gen/secret, or ~/.config/dlbricks-gen/secret."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or "~").expanduser() / ".config")
    return Path(base) / "dlbricks-gen" / "secret"


def load_secret(path: Path) -> bytes:
    """The secret in `path`, made there (0600) when the file does not exist yet."""
    if not path.exists():
        _make_secret(path)
    try:
        if path.stat().st_size > MAX_SECRET_FILE:
            raise ValueError(f"{path}: not a dlbricks-gen secret (larger than {MAX_SECRET_FILE} bytes)")
        text = path.read_bytes().decode("ascii").strip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the secret: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        text = ""
    if not HEX.fullmatch(text):
        raise ValueError(f"{path}: not a dlbricks-gen secret (expected one line of 32 to 256 hex digits)")
    return bytes.fromhex(text)


def _make_secret(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another compile: use that one
        return
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(os.urandom(SECRET_BYTES).hex() + "\n")


def keyed_id(secret: bytes, digest: str) -> str:
    """The id a brick has in suites keyed with `secret` (64 hex digits, like a digest)."""
    return hmac.new(secret, b"dlbricks-gen brick id v1\n" + digest.encode("ascii"), hashlib.sha256).hexdigest()


def secret_label(secret: bytes) -> str:
    """A short public name for a secret (in the private plan), telling secrets apart without
    revealing them."""
    return hmac.new(secret, b"dlbricks-gen secret label v1", hashlib.sha256).hexdigest()[:16]


def key_partition(parts: Partition, decoys: tuple[str, ...], secret: bytes
                  ) -> tuple[Partition, tuple[str, ...], dict[str, str]]:
    """The partition and decoys under keyed ids (bricks re-sorted by id), and {id: digest}."""
    ids = {digest: keyed_id(secret, digest) for digest, _ in parts.bricks}
    bricks = tuple(sorted(((ids[d], b) for d, b in parts.bricks), key=lambda item: item[0]))
    models = tuple(replace(m, instances=tuple(ids[d] for d in m.instances)) for m in parts.models)
    return (Partition(parts.granularity, bricks, models), tuple(sorted(ids[d] for d in decoys)),
            {ids[d]: d for d in sorted(ids)})
