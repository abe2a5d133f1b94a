"""Values given on the command line for keys of the station's file (`--csms-url`,
`--ocpp-version`, `--state-dir`).

They replace the file's values before anything is validated, so a file is judged with them in
place (a `ws://` URL in the file and `--csms-url wss://...` on the command line make a valid
security profile 2). A problem or warning at an overridden key says the value came from the
command line and names no line of the file.

Adding an override: a field here and its key in `_KEYS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chargepoint.config.base import field_values
from chargepoint.config.problems import ConfigProblem

__all__ = ["Overrides"]

# field of Overrides -> (section, key) in the file
_KEYS: dict[str, tuple[str, str]] = {
    "csms_url": ("csms", "url"),
    "ocpp_version": ("csms", "ocpp_version"),
    "state_dir": ("store", "state_dir"),
}

FROM_COMMAND_LINE = "(value given on the command line)"


@dataclass(frozen=True)
class Overrides:
    """Command-line values for keys of the file; None: not given."""

    csms_url: str | None = None
    ocpp_version: str | None = None
    state_dir: Path | None = None

    def given(self) -> dict[tuple[str, str], Any]:
        """(section, key) -> value, for every value given."""
        out: dict[tuple[str, str], Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[_KEYS[f.name]] = value
        return out

    def __bool__(self) -> bool:
        return bool(self.given())

    @property
    def paths(self) -> frozenset[str]:
        """The dotted paths of the overridden keys (`csms.url`)."""
        return frozenset(f"{section}.{key}" for section, key in self.given())

    def apply(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the file's top-level mapping with the overrides in place.

        A section the file lacks (or leaves empty) is created; one that is not a mapping is
        left for validation to name. Sections may be raw mappings or validated models.
        """
        out = dict(data)
        for (section, key), value in self.given().items():
            current = out.get(section)
            if isinstance(current, BaseModel):
                current = field_values(current)
            elif current is None:
                current = {}
            elif not isinstance(current, Mapping):
                continue
            out[section] = {**current, key: value}
        return out

    def mark(self, problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
        """Problems at overridden keys say so, without the file's line."""
        paths = self.paths
        return [
            ConfigProblem(p.path, None, f"{p.message} {FROM_COMMAND_LINE}")
            if p.path in paths
            else p
            for p in problems
        ]
