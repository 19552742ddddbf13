"""The one error type of the frontend: names the model file and, where known, the node."""

from __future__ import annotations


class FrontendError(Exception):
    """A model that cannot be lowered. `str()` is one line: file, node, reason."""

    def __init__(self, file: str, message: str, node: str | None = None, op: str | None = None):
        self.file = file
        self.node = node
        self.op = op
        self.message = " ".join(str(message).split())  # always one line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file.replace("\n", "\\n").replace("\r", "\\r")  # file names may hold anything
        if self.node is not None:
            where += f": node {self.node!r}" + (f" ({self.op})" if self.op else "")
        return f"{where}: {self.message}"
