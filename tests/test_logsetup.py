"""The daemon's log lines: plain, JSON, and with systemd level prefixes under the journal."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint.service.logsetup import JournalMode, setup_logging, stderr_is_journal


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(fmt: str, journal: JournalMode) -> list[str]:
    out = io.StringIO()
    setup_logging("debug", fmt, journal, stream=out)
    log = logging.getLogger("chargepoint.test")
    log.debug("debug line")
    log.info("info line")
    log.warning("meter on connector %d is slow", 1)
    try:
        raise ValueError("bad reply")
    except ValueError:
        log.exception("sampling failed")
    log.critical("store lost")
    return out.getvalue().splitlines()


def test_journal_lines_carry_the_syslog_level_and_no_time() -> None:
    lines = emit("plain", "always")
    assert lines[:3] == [
        "<7>chargepoint.test: debug line",
        "<6>chargepoint.test: info line",
        "<4>chargepoint.test: meter on connector 1 is slow",
    ]
    # the whole traceback is filed as an error, line by line
    error = lines[3 : lines.index("<2>chargepoint.test: store lost")]
    assert error[0] == "<3>chargepoint.test: sampling failed"
    assert error[-1] == "<3>ValueError: bad reply"
    assert all(line.startswith("<3>") for line in error)


def test_plain_lines_outside_the_journal_have_time_and_level() -> None:
    lines = emit("plain", "never")
    assert lines[1].endswith(" INFO chargepoint.test: info line")
    assert lines[1][:4].isdigit()  # the year
    assert not any(line.startswith("<") for line in lines)


def test_json_lines_under_the_journal_are_one_object_each() -> None:
    lines = emit("json", "always")
    assert len(lines) == 5  # the traceback stays inside its object
    assert all(line.startswith("<") for line in lines)
    entries = [json.loads(line[3:]) for line in lines]
    assert [e["level"] for e in entries] == ["debug", "info", "warning", "error", "critical"]
    assert "time" not in entries[0]  # the journal stamps it
    assert entries[3]["message"] == "sampling failed"
    assert "ValueError: bad reply" in entries[3]["exception"]


def test_json_lines_outside_the_journal_have_the_time() -> None:
    entry = json.loads(emit("json", "never")[1])
    assert entry["message"] == "info line" and entry["logger"] == "chargepoint.test"
    assert entry["time"][:4].isdigit()


def test_auto_detects_the_journal_by_the_stream_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "stderr").open("w") as stream, (tmp_path / "other").open("w") as other:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert stderr_is_journal(stream)
        assert not stderr_is_journal(other)  # inherited by a child writing elsewhere
        setup_logging("info", "plain", "auto", stream=stream)
        logging.getLogger("chargepoint.test").warning("to the journal")
        stream.flush()
    assert (tmp_path / "stderr").read_text() == "<4>chargepoint.test: to the journal\n"
    monkeypatch.delenv("JOURNAL_STREAM")
    with (tmp_path / "stderr").open("r") as stream:
        assert not stderr_is_journal(stream)
