"""The daemon's log on stderr: plain lines or JSON lines, with systemd level prefixes in the
journal.

Under systemd, stderr is a stream into the journal, which stamps every line with the time and
reads a leading `<N>` as the line's syslog priority (sd-daemon(3)). In that mode the lines carry
no time of their own and every line of a multi-line record (a traceback) gets the prefix, so the
journal files all of it at the record's priority.
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Literal, TextIO

from chargepoint.store.files import FILE_MODE, make_directory, open_text

JournalMode = Literal["auto", "always", "never"]

# syslog priorities, as sd-daemon.h's SD_ERR ... SD_DEBUG
SD_CRIT = 2
SD_ERR = 3
SD_WARNING = 4
SD_INFO = 6
SD_DEBUG = 7

QUIET_LOGGERS = {
    "ocpp": logging.WARNING,  # the adapters log each message themselves
    "pymodbus": logging.CRITICAL,  # the meter layer reports what matters, typed
    "websockets": logging.WARNING,
}


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level (sd-daemon(3) `<N>` prefix)."""
    if levelno >= logging.CRITICAL:
        return SD_CRIT
    if levelno >= logging.ERROR:
        return SD_ERR
    if levelno >= logging.WARNING:
        return SD_WARNING
    if levelno >= logging.INFO:
        return SD_INFO
    return SD_DEBUG


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    """True when `stream` (stderr) is connected to the journal: $JOURNAL_STREAM holds its
    `device:inode`, as systemd sets it for a service's stdout/stderr."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(device) and st.st_ino == int(inode)


class PlainFormatter(logging.Formatter):
    """`2026-01-31 12:00:00,123 WARNING chargepoint.station: text`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception)."""

    def __init__(self, with_time: bool = True) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {}
        if self.with_time:
            entry["time"] = self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z")
        entry["level"] = record.levelname.lower()
        entry["logger"] = record.name
        entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class JournalFormatter(logging.Formatter):
    """Each line as `<N>logger: message`, N the syslog priority; JSON keeps its one line."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        text = self.inner.format(record)
        return "\n".join(prefix + line for line in text.splitlines() or [""])


def make_formatter(fmt: str, journal: bool) -> logging.Formatter:
    """The formatter for `logging.format` (plain, json), in journal mode or not."""
    if fmt == "json":
        inner: logging.Formatter = JsonFormatter(with_time=not journal)
    elif journal:
        inner = logging.Formatter("%(name)s: %(message)s")
    else:
        inner = PlainFormatter()
    return JournalFormatter(inner) if journal else inner


def setup_logging(
    level: str, fmt: str, journal: JournalMode = "auto", stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger to stderr (or `stream`) in the configured format; returns the
    handler. `journal`: `auto` uses journal mode when stderr is the journal."""
    out = stream if stream is not None else sys.stderr
    in_journal = journal == "always" or (journal == "auto" and stderr_is_journal(out))
    handler = logging.StreamHandler(out)
    handler.setFormatter(make_formatter(fmt, in_journal))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    return handler


LOG_FILE_NAME = "chargepoint.log"


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """Size-capped rotating log files of mode FILE_MODE, whatever the umask (the rotated
    files keep it: rotation renames)."""

    def _open(self) -> io.TextIOWrapper:
        return open_text(Path(self.baseFilename), FILE_MODE, append=True, encoding="utf-8")


def add_file_log(
    directory: Path, max_bytes: int, backups: int, level: str | None = None
) -> logging.Handler:
    """Also write the log to size-capped rotating files `<directory>/chargepoint.log[.N]`
    (plain lines with times; they go into the diagnostics archive). Returns the handler."""
    make_directory(directory)
    handler = LogFileHandler(
        directory / LOG_FILE_NAME, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(PlainFormatter())
    if level is not None:
        handler.setLevel(level.upper())
    logging.getLogger().addHandler(handler)
    return handler
