"""The `control:` section: where the local control interface (charge controller, HMI) listens."""

from __future__ import annotations

import grp
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from chargepoint.config.base import ConfigModel

__all__ = ["ControlConfig"]

_LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


class ControlConfig(ConfigModel):
    """The local control interface for the charge controller and the HMI."""

    listen: str = "unix:control.sock"
    group: str | None = Field(
        default=None,
        description="the group that may connect to the Unix socket: the socket's directory "
        "gets mode 0750 and the socket 0660 in this group; the charge controller's and the "
        "operators' accounts join it (docs/operations.md). Not set: the group the directory "
        "already has (under systemd `chargepoint`, the service's group). A group the service "
        "user is not a member of needs `SupplementaryGroups=` in the unit. On "
        "`http://` the token in `store.state_dir`/control.token (mode 0600, new at every "
        "start) is needed instead",
    )

    @field_validator("group")
    @classmethod
    def _group_exists(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            grp.getgrnam(value)
        except KeyError:
            raise ValueError(f"group {value!r} does not exist on this machine") from None
        return value

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.startswith("unix:"):
            if not value[len("unix:") :]:
                raise ValueError("unix: needs a socket path")
            return value
        parts = urlsplit(value)
        if parts.scheme != "http":
            raise ValueError("must be unix:PATH or http://127.0.0.1:PORT")
        if parts.hostname not in _LOOPBACK_NAMES:
            raise ValueError(
                f"http is served on loopback only ({', '.join(_LOOPBACK_NAMES)}); "
                "use unix:PATH to reach it from elsewhere on the controller"
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a bad port number") from None
        if port is None or port == 0:
            raise ValueError("needs a port: http://127.0.0.1:PORT")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("must be just http://HOST:PORT")
        return value

    def unix_path(self, state_dir: Path) -> Path | None:
        """The socket path (relative paths under `state_dir`), or None for http."""
        if not self.listen.startswith("unix:"):
            return None
        path = Path(self.listen[len("unix:") :])
        return path if path.is_absolute() else state_dir / path
