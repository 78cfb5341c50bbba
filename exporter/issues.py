"""A config's problems, each with its file, line and item: plain data shared by the loader and
the web config, importing nothing of the project."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    item: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" item {self.item}:" if self.item else ""
        return f"{where}:{who} {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; `issues` holds every problem found, in file order."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line or 0))
        super().__init__("\n".join(str(i) for i in self.issues))
