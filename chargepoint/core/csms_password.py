"""The Basic-auth password the CSMS set (OCPP 1.6 AuthorizationKey): a file of mode 0600 under
the state directory, with the previous password beside it until the new one has worked.

The password is never logged, never returned by GetConfiguration, and never part of the
store or of any archive of the state directory's other files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from chargepoint.core.certificates.files import ensure_directory, remove, write_atomically

DIRECTORY: Final = "secrets"
CURRENT: Final = "csms-password"
PREVIOUS: Final = "csms-password.previous"
LENGTH: Final = (16, 40)  # OCPP security whitepaper / 2.0.1 A00.FR.205


def password_problem(value: str) -> str | None:
    """Why `value` cannot be a Basic-auth password (None: it can); never quotes the value."""
    low, high = LENGTH
    if not low <= len(value) <= high:
        return f"must be {low} to {high} characters"
    if any(ch.isspace() or not ch.isprintable() or ch == ":" for ch in value):
        return "must not contain spaces, colons or control characters"
    return None


class PasswordFile:
    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / DIRECTORY

    def read(self) -> str | None:
        """The password set through OCPP, None when none was."""
        try:
            return (self.directory / CURRENT).read_text(encoding="utf-8") or None
        except FileNotFoundError:
            return None

    def store(self, value: str) -> None:
        """Set the password at once (OCPP 2.0.1 BasicAuthPassword: the device model's own
        rule applies; an empty value removes it)."""
        current = self.directory / CURRENT
        if not value:
            if current.exists():
                remove(current)
            return
        ensure_directory(self.directory, 0o700)
        write_atomically(current, value.encode("utf-8"), 0o600)

    def replace(self, value: str) -> None:
        """Set a new password; the one before it is kept until `confirm` or `revert`."""
        ensure_directory(self.directory, 0o700)
        current = self.directory / CURRENT
        previous = self.directory / PREVIOUS
        if not previous.exists():  # empty: no password was set through OCPP before
            write_atomically(previous, current.read_bytes() if current.exists() else b"", 0o600)
        write_atomically(current, value.encode("utf-8"), 0o600)

    def confirm(self) -> None:
        """The new password worked: forget the previous one."""
        if (self.directory / PREVIOUS).exists():
            remove(self.directory / PREVIOUS)

    def revert(self) -> None:
        """The new password did not work: back to the previous one (or to none set)."""
        previous = self.directory / PREVIOUS
        current = self.directory / CURRENT
        if not previous.exists():
            return
        before = previous.read_bytes()
        if before:
            write_atomically(current, before, 0o600)
        else:
            remove(current)
        remove(previous)

    @property
    def trial(self) -> bool:
        """A new password was set and has not worked yet."""
        return (self.directory / PREVIOUS).exists()
