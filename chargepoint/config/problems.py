"""What is wrong with a configuration: `ConfigProblem` (where and what) and `ConfigError`.

A problem's place is the dotted path of its key (`connectors[1].meter.unit`, list indexes count
from 0) and its line in the YAML file. Models raise `RuleViolations` for rules that span
several keys; the loader turns each issue into a problem at its own key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXIT_CONFIG",
    "ConfigError",
    "ConfigProblem",
    "LineMap",
    "Loc",
    "RuleViolations",
    "dotted",
    "line_key",
    "line_of",
    "problem_at",
    "raise_issues",
    "sorted_problems",
]

EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h

Loc = tuple[str | int, ...]
"""Where a key is: section names and list indexes from the top of the file."""

LineMap = Mapping[tuple[str, ...], int]
"""Key path (every part as text) -> 1-based line in the file; `()` is the document."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration: where (dotted key path, file line) and what."""

    path: str
    line: int | None
    message: str

    def format(self, file: Path | str | None = None) -> str:
        """`FILE:LINE: path: message`, leaving out what is unknown."""
        where = ""
        if file is not None:
            where = f"{file}:{self.line}: " if self.line is not None else f"{file}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"

    def __str__(self) -> str:
        return self.format()


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists everything that is wrong."""

    def __init__(self, problems: Iterable[ConfigProblem], file: Path | None = None) -> None:
        self.problems = list(problems)
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(p.format(self.file) for p in self.problems)


class RuleViolations(ValueError):
    """Raised by model validators: several problems, each at a key below the model's own."""

    def __init__(self, issues: list[tuple[Loc, str]]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{dotted(loc) or '(here)'}: {msg}" for loc, msg in issues))


def raise_issues(issues: list[tuple[Loc, str]]) -> None:
    """Raise RuleViolations when there is any issue."""
    if issues:
        raise RuleViolations(issues)


def dotted(loc: Iterable[str | int]) -> str:
    """`("connectors", 1, "meter")` -> `connectors[1].meter`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_key(loc: Loc) -> tuple[str, ...]:
    """The LineMap key of `loc`."""
    return tuple(str(p) for p in loc)


def line_of(lines: LineMap, loc: Loc) -> int | None:
    """The line of the key at `loc`, else of its nearest ancestor that is in the file."""
    parts = line_key(loc)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return lines.get(())


def problem_at(loc: Loc, message: str, lines: LineMap) -> ConfigProblem:
    """A problem at `loc`, with the line of the key (or its nearest ancestor)."""
    return ConfigProblem(dotted(loc), line_of(lines, loc), message)


def sorted_problems(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    """In file order; problems without a line last."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))
