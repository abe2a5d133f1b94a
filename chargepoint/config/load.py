"""Reading the station's YAML file: `load_config(path)` and `parse_config(text, path)`.

The result is a `LoadedConfig`: the validated `StationConfig`, its warnings as
`FILE:LINE: path: message`, and the line of every key. Every problem is reported at once in a
`ConfigError`, each with its key path and line: YAML syntax, duplicate and unknown keys, wrong
types, broken rules. Command-line overrides replace the file's values before validation.
Relative paths in the file are relative to the file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chargepoint.config.base import CONFIG_DIR, field_values
from chargepoint.config.model import StationConfig, station_warnings
from chargepoint.config.overrides import Overrides
from chargepoint.config.problems import (
    ConfigError,
    ConfigProblem,
    LineMap,
    Loc,
    problem_at,
    sorted_problems,
)
from chargepoint.config.validation import validate_model
from chargepoint.config.yaml_source import read_yaml

__all__ = ["LoadedConfig", "load_config", "parse_config"]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, its warnings (`FILE:LINE: path: message`) and the file it came from."""

    config: StationConfig
    warnings: list[str]
    path: Path
    lines: LineMap = field(default_factory=dict, repr=False, compare=False)

    def problem(self, loc: Loc, message: str) -> ConfigProblem:
        """A problem at the key `loc`, with its line in the file."""
        return problem_at(loc, message, self.lines)

    def with_overrides(
        self,
        csms_url: str | None = None,
        ocpp_version: str | None = None,
        state_dir: Path | None = None,
    ) -> LoadedConfig:
        """Overrides applied to this config; problems and warnings keep their file lines.

        `load_config(path, overrides)` applies them before the file is validated; this is for
        a config that is valid already.
        """
        overrides = Overrides(csms_url=csms_url, ocpp_version=ocpp_version, state_dir=state_dir)
        data = overrides.apply(field_values(self.config))
        config, problems = validate_model(StationConfig, data, self.lines)
        if config is None:
            raise ConfigError(sorted_problems(overrides.mark(problems)), self.path)
        warnings = _render_warnings(config, self.path, self.lines, overrides)
        return LoadedConfig(config, warnings, self.path, self.lines)


def _render_warnings(
    config: StationConfig, path: Path, lines: LineMap, overrides: Overrides
) -> list[str]:
    found = [problem_at(loc, msg, lines) for loc, msg in station_warnings(config)]
    return [p.format(path) for p in sorted_problems(overrides.mark(found))]


def parse_config(text: str, path: Path, overrides: Overrides | None = None) -> LoadedConfig:
    """Validate YAML `text` as if read from `path`: `path` is named in messages, and relative
    paths in the text are relative to its directory. `overrides` replace the text's values
    before validation."""
    overrides = overrides or Overrides()
    document = read_yaml(text, path)
    context = {CONFIG_DIR: Path(path).parent.absolute()}
    data = overrides.apply(document.data)
    config, problems = validate_model(StationConfig, data, document.lines, context)
    problems = document.problems + overrides.mark(problems)
    if problems or config is None:
        raise ConfigError(sorted_problems(problems), path)
    warnings = _render_warnings(config, path, document.lines, overrides)
    return LoadedConfig(config, warnings, path, document.lines)


def load_config(path: Path, overrides: Overrides | None = None) -> LoadedConfig:
    """Read and validate the station's YAML file, with `overrides` (values given on the command
    line) in place of the file's; raises ConfigError listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("", None, f"cannot read the file: {exc.strerror or exc}")], path
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem("", None, "the file is not UTF-8 text")], path) from None
    return parse_config(text, Path(path), overrides)
