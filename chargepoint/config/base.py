"""What every section of the station's YAML file shares.

A section is a `ConfigModel`: unknown keys are errors, the validated model is frozen, and
pydantic's own errors never repeat an input (it could be a secret). A section may name things
that are allowed but probably wrong in `section_warnings()`; `check-config` and the daemon
show them with their lines.

Every `Path` field of a section (`Path` or `Path | None`) is relative to the directory of the
config file when the file gives a relative path, whatever directory the daemon is started
from. The loader names that directory in the validation context (`CONFIG_DIR`); models built
in code, and `Path` values (a `--state-dir` typed on the command line, relative to the current
directory), are taken as they are.

Adding a section: a module with its `ConfigModel` (every field described, see
chargepoint/cli/config_reference.py) and one field in `StationConfig` (config/model.py).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from chargepoint.config.problems import Loc

__all__ = ["CONFIG_DIR", "ConfigModel", "config_dir", "field_values"]

CONFIG_DIR = "config_dir"
"""Validation context key: the absolute directory of the config file being loaded."""


class ConfigModel(BaseModel):
    """A section (or part of one) of the station's YAML file."""

    # hide_input_in_errors: a pydantic ValidationError must never print a secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @field_validator("*", mode="before")
    @classmethod
    def _path_relative_to_config_dir(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name is None:
            return value
        base = config_dir(info)
        if base is None or not _is_path(cls.model_fields[info.field_name].annotation):
            return value
        return value if Path(value).is_absolute() else base / value

    def section_warnings(self) -> list[tuple[Loc, str]]:
        """Things this section allows but that are probably wrong, at keys relative to it."""
        return []


def config_dir(info: ValidationInfo) -> Path | None:
    """The directory of the config file being loaded, or None (a model built in code)."""
    context = info.context
    if isinstance(context, dict):
        found = context.get(CONFIG_DIR)
        if isinstance(found, Path):
            return found
    return None


def _is_path(annotation: Any) -> bool:
    """`Path` or an optional `Path`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_path(arg) for arg in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, Path)


def field_values(model: BaseModel) -> dict[str, Any]:
    """The model's fields as they are (nested models stay validated instances)."""
    return {name: getattr(model, name) for name in type(model).model_fields}
