"""The `metadata:` section: the templates of Meta1-3, which the meter writes into every signed
reading, checked against what the meter holds."""

from __future__ import annotations

import string
from typing import Self

from pydantic import field_validator, model_validator

from chargepoint.config.base import ConfigModel
from chargepoint.config.problems import Loc, raise_issues
from meter.bsm.driver import META_LIMITS

__all__ = ["META_PLACEHOLDERS", "MetadataConfig"]

META_PLACEHOLDERS = ("id_tag", "evse_id", "connector_id", "station_id")
# Longest value each placeholder can take: OCPP 2.0.1 idToken 36 (1.6: 20), EVSE id 36,
# connector number, OCPP identity 48.
_PLACEHOLDER_MAX = {"id_tag": 36, "evse_id": 36, "connector_id": 3, "station_id": 48}


def _template_fields(template: str) -> list[str]:
    """The placeholder names in a metadata template; ValueError when it is not usable."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc} (write {{{{ and }}}} for literal braces)") from None
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in META_PLACEHOLDERS:
            allowed = " ".join(f"{{{p}}}" for p in META_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format or conversion")
        names.append(name)
    return names


def _fixed_bytes(template: str) -> int:
    """UTF-8 length of the template's text outside placeholders."""
    return sum(len(text.encode()) for text, *_ in string.Formatter().parse(template))


def _worst_case_bytes(template: str) -> int:
    names = _template_fields(template)
    return _fixed_bytes(template) + sum(_PLACEHOLDER_MAX[name] for name in names)


class MetadataConfig(ConfigModel):
    """What the meter writes into each signed reading: Meta1 (the identification, OCMF `ID`),
    Meta2 and Meta3. Placeholders: {id_tag} {evse_id} {connector_id} {station_id}."""

    meta1: str = "{id_tag}"
    meta2: str = "{evse_id}"
    meta3: str = ""

    @field_validator("meta1", "meta2", "meta3")
    @classmethod
    def _template(cls, value: str) -> str:
        _template_fields(value)
        return value

    @model_validator(mode="after")
    def _fixed_text_fits(self) -> Self:
        issues: list[tuple[Loc, str]] = []
        for n, template in enumerate(self.templates(), start=1):
            fixed = _fixed_bytes(template)
            if fixed > META_LIMITS[n]:
                issues.append(
                    (
                        (f"meta{n}",),
                        f"the fixed text alone is {fixed} bytes; the meter holds {META_LIMITS[n]}",
                    )
                )
        raise_issues(issues)
        return self

    def templates(self) -> tuple[str, str, str]:
        return self.meta1, self.meta2, self.meta3

    def render(self, **values: object) -> tuple[str, str, str]:
        """Meta1..3 with the placeholders filled; ValueError for a missing or unknown value."""
        unknown = sorted(set(values) - set(META_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown metadata placeholder(s): {', '.join(unknown)}")
        texts = {name: str(value) for name, value in values.items()}
        out: list[str] = []
        for n, template in enumerate(self.templates(), start=1):
            try:
                out.append(template.format(**texts))
            except KeyError as exc:
                raise ValueError(f"meta{n} needs a value for {{{exc.args[0]}}}") from None
        return out[0], out[1], out[2]

    def section_warnings(self) -> list[tuple[Loc, str]]:
        out: list[tuple[Loc, str]] = []
        for n, template in enumerate(self.templates(), start=1):
            worst = _worst_case_bytes(template)
            if worst > META_LIMITS[n]:
                out.append(
                    (
                        (f"meta{n}",),
                        f"can reach {worst} bytes with long values; the meter holds "
                        f"{META_LIMITS[n]} and refuses longer metadata",
                    )
                )
        return out
