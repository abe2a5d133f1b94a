"""Who may connect to the control interface's Unix socket: its directory is mode 0750 and the
socket 0660, both in the group `control.group` (default: the group the directory has; under
systemd that is the service's group, chargepoint). The charge controller's and the operators'
accounts join that group (docs/operations.md); any other local account cannot reach the socket.

A directory shared with others (world-writable, like /tmp) or owned by another user is not
changed: the daemon refuses to start and says to give the socket a directory of its own.
"""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from chargepoint.config import ConfigError, ConfigProblem

DIRECTORY_MODE = 0o750
SOCKET_MODE = 0o660


def _problem(message: str, key: str = "control.listen") -> ConfigError:
    return ConfigError([ConfigProblem(key, None, message)])


def group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise _problem(f"group {group!r} does not exist on this machine", "control.group") from None


def prepare_directory(directory: Path, group: str | None) -> int:
    """Create `directory` if needed, give it the group and mode 0750; returns the group id.
    Raises ConfigError when the directory cannot be the socket's own."""
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_mode & (stat.S_ISVTX | stat.S_IWOTH):
        raise _problem(
            f"the control socket's directory {directory} is shared (world-writable); "
            "give the socket a directory of its own (e.g. unix:control.sock in the state dir)"
        )
    if info.st_uid != os.geteuid():
        raise _problem(
            f"the control socket's directory {directory} belongs to uid {info.st_uid}, "
            "not to the service user; give the socket a directory of its own"
        )
    gid = info.st_gid if group is None else group_id(group)
    try:
        os.chown(directory, -1, gid)
    except PermissionError:
        raise _problem(
            f"cannot give {directory} the group {group!r}: the service user is not a member "
            "(systemd: SupplementaryGroups= in chargepoint.service)",
            "control.group",
        ) from None
    os.chmod(directory, DIRECTORY_MODE)
    return gid


def secure_socket(path: Path, gid: int) -> None:
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        raise _problem(
            f"cannot give the socket {path} the group {gid} of its directory: the service user "
            "is not a member (set control.group to one of its groups)",
            "control.group",
        ) from None
    os.chmod(path, SOCKET_MODE)
