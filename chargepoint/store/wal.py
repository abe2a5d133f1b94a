"""Reading the store's write-ahead log before SQLite does, to notice damage SQLite hides.

SQLite reads a WAL up to its first frame whose salt or checksum does not match and silently
ignores the rest: right for the torn tail of a write cut short by a crash, wrong when the
damage sits in front of transactions that were committed (synced) after it, which would then
be lost without a word, and a WAL whose header is garbage loses every commit in it. With
``synchronous=FULL`` a transaction's frames are synced before the next one begins, so a
broken frame followed by two or more complete commits is damage, not a torn tail.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from chargepoint.store.errors import StoreDamaged

__all__ = ["WalState", "check_wal", "read_wal"]

WAL_MAGIC = (0x377F0682, 0x377F0683)  # little- / big-endian checksums
WAL_VERSION = 3007000
HEADER = 32
FRAME_HEADER = 24


@dataclass(frozen=True)
class WalState:
    """What a WAL holds: `problem` is None when SQLite would read all that was committed."""

    size: int
    frames: int  # whole frames in the file
    valid_frames: int  # the prefix SQLite reads
    commits_lost: int  # complete commits after the first broken frame
    problem: str | None


def _checksum(data: bytes, big_endian: bool, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's running WAL checksum over `data` (a multiple of 8 bytes), from (s0, s1)."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & mask
        s1 = (s1 + words[i + 1] + s0) & mask
    return s0, s1


def read_wal(wal: Path) -> WalState:
    """Walk the WAL file `wal` (missing or empty: nothing to read)."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return WalState(0, 0, 0, 0, None)
    if not data:
        return WalState(0, 0, 0, 0, None)
    if len(data) < HEADER:
        return WalState(len(data), 0, 0, 0, f"{len(data)} bytes, shorter than a WAL header")
    magic, version, page_size, _, salt1, salt2, ck1, ck2 = struct.unpack(">8I", data[:HEADER])
    big = magic == WAL_MAGIC[1]
    if (
        magic not in WAL_MAGIC
        or version != WAL_VERSION
        or page_size < 512
        or page_size > 65536
        or page_size & (page_size - 1)
        or _checksum(data[:24], big, 0, 0) != (ck1, ck2)
    ):
        return WalState(len(data), 0, 0, 0, "its header is garbage; every commit in it is lost")
    frame_size = FRAME_HEADER + page_size
    frames = (len(data) - HEADER) // frame_size
    s0, s1 = ck1, ck2
    valid = 0
    for n in range(frames):
        at = HEADER + n * frame_size
        head = data[at : at + FRAME_HEADER]
        f_salt1, f_salt2, f_ck1, f_ck2 = struct.unpack(">4I", head[8:24])
        if (f_salt1, f_salt2) != (salt1, salt2):
            break
        s0, s1 = _checksum(head[:8] + data[at + FRAME_HEADER : at + frame_size], big, s0, s1)
        if (s0, s1) != (f_ck1, f_ck2):
            break
        valid += 1
    lost = 0
    for n in range(valid + 1, frames):
        at = HEADER + n * frame_size
        _, commit_size, f_salt1, f_salt2 = struct.unpack(">4I", data[at : at + 16])
        if commit_size and (f_salt1, f_salt2) == (salt1, salt2):
            lost += 1
    problem = None
    if lost >= 2:
        problem = (
            f"frame {valid + 1} of {frames} is damaged and {lost} commits after it would be lost"
        )
    return WalState(len(data), frames, valid, lost, problem)


def check_wal(path: Path) -> None:
    """Raise StoreDamaged when the WAL next to the store file `path` is damaged."""
    wal = path.with_name(path.name + "-wal")
    try:
        state = read_wal(wal)
        if state.problem is not None and read_wal(wal) != state:
            return  # changing under the reader: a live writer is restarting it, not damage
    except OSError as exc:
        raise StoreDamaged(f"{path}: cannot read its write-ahead log {wal}: {exc}") from exc
    if state.problem is not None:
        raise StoreDamaged(f"{path} is damaged: its write-ahead log {wal.name} {state.problem}")
