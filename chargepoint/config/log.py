"""The `logging:` section: level and format of the daemon's log, and the journal mode."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chargepoint.config.base import ConfigModel

__all__ = ["LoggingConfig"]


class LoggingConfig(ConfigModel):
    """The daemon's log, written to stderr (the journal under systemd)."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="the least severe level written"
    )
    format: Literal["plain", "json"] = Field(
        default="plain",
        description="`plain`: one line per event (time, level, logger, message); `json`: one "
        "JSON object per line (time, level, logger, message, exception)",
    )
    journal: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="systemd journal mode: each line starts with its syslog level (`<3>` error "
        "... `<7>` debug, sd-daemon(3)) and carries no time, which the journal adds. `auto`: "
        "when stderr is the journal (JOURNAL_STREAM names it, as under systemd)",
    )
