"""Result archives as `make pack` writes them (results-<id>.tar.gz), opened as results folders.

An archive comes from outside like every result file: each member is checked before anything
is written (regular files and folders only, no links or devices, no absolute path or `..`,
each member at most a result file's size limit, a bounded count and total), and only the
result files (`<root>/results/*.json`) are extracted, into a private temporary folder.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .files import MAX_RESULT_BYTES

MAX_MEMBERS = 100_000  # a suite of many thousand bricks, with its tuning records
MAX_TOTAL_BYTES = 4 << 30


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar"))


def _checked(archive: Path, member: tarfile.TarInfo) -> PurePosixPath:
    """The member's path, after refusing (ValueError naming it) what `make pack` never writes."""
    name = PurePosixPath(member.name)
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"{archive}: member {member.name[:100]!r} is a link or special file: refused")
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise ValueError(f"{archive}: member {member.name[:100]!r} points outside the archive: refused")
    if member.size > MAX_RESULT_BYTES:
        raise ValueError(f"{archive}: member {member.name[:100]!r} is {member.size} bytes, more than "
                         f"a result file can be: refused")
    return name


def extract_results(archive: Path, into: Path) -> Path:
    """Extract the result files of a `make pack` archive into `into`; ValueError naming the
    archive (and member) for anything else."""
    count = total = 0
    into = into / archive.name  # messages about its files then name the archive
    into.mkdir()
    seen: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # streamed: a member is checked before it is read
                count, total = count + 1, total + member.size
                if count > MAX_MEMBERS or total > MAX_TOTAL_BYTES:
                    raise ValueError(f"{archive}: more than {MAX_MEMBERS} members or {MAX_TOTAL_BYTES} "
                                     "bytes: not an archive `make pack` writes")
                name = _checked(archive, member)
                if member.isfile() and len(name.parts) == 3 and name.parts[1] == "results" \
                        and name.suffix == ".json":
                    if name.name in seen:
                        raise ValueError(f"{archive}: holds {name.name} twice: refused")
                    seen.add(name.name)
                    source = tar.extractfile(member)
                    if source is not None:
                        with source, open(into / name.name, "wb") as target:
                            shutil.copyfileobj(source, target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{archive}: not a readable results archive: {exc}") from None
    return into


@contextlib.contextmanager
def results_folders(paths: list[Path]) -> Iterator[list[Path]]:
    """The paths, with each archive replaced by a temporary folder of its result files
    (removed on exit)."""
    with contextlib.ExitStack() as stack:
        folders = []
        for path in paths:
            if path.is_file() and not is_archive(path):
                raise ValueError(f"{path}: neither a results folder nor an archive `make pack` writes "
                                 "(results-<suite>.tar.gz)")
            if is_archive(path):
                temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dlbricks-results-")))
                folders.append(extract_results(path, temp))
            else:
                folders.append(path)
        yield folders
