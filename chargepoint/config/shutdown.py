"""The `shutdown:` section: what the daemon does with open sessions when it is asked to stop."""

from __future__ import annotations

from pydantic import Field, StrictBool, StrictFloat

from chargepoint.config.base import ConfigModel

__all__ = ["ShutdownConfig"]


class ShutdownConfig(ConfigModel):
    """What the daemon does when it is asked to stop (SIGTERM or SIGINT: `systemctl stop` or
    `restart`, `docker stop`)."""

    end_sessions: StrictBool = Field(
        default=False,
        description="`false`: open sessions stay open on the meter and in the store (the meter "
        "keeps counting) and the next start resumes them when the meter still holds the "
        "same open turn-on (else it takes their signed turn-off). `true`: every session "
        "is ended now with its signed turn-off (reason Reboot) and its end message is sent "
        "before the daemon exits",
    )
    grace_period: StrictFloat = Field(
        default=15.0,
        ge=0,
        description="seconds a meter operation in flight (a snapshot being signed, a session "
        "being stored) gets to finish before the daemon stops; what has not finished by then "
        "is resumed at the next start like after a power loss",
    )
    flush_timeout: StrictFloat = Field(
        default=10.0,
        ge=0,
        description="with `end_sessions: true`: seconds to deliver the queued messages to the "
        "CSMS before exiting; what is left stays in the store and is sent after the next start",
    )
