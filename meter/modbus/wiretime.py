"""Modbus RTU frame sizes and their time on the wire.

A character is 11 bits for 8E1 and 8N2 (start + 8 data + parity/stop + stop), 10 bits for 8N1;
frames are separated by 3.5 characters of silence.
"""

from __future__ import annotations

from dataclasses import dataclass

INTER_FRAME_CHARS = 3.5


def read_request_bytes() -> int:
    return 8  # unit, fc, address(2), count(2), crc(2)


def read_reply_bytes(count: int) -> int:
    return 5 + 2 * count  # unit, fc, byte count, data, crc(2)


def write_request_bytes(count: int) -> int:
    return 9 + 2 * count  # unit, fc, address(2), count(2), byte count, data, crc(2)


def write_reply_bytes() -> int:
    return 8


def exception_reply_bytes() -> int:
    return 5


@dataclass(frozen=True)
class LineSettings:
    baudrate: int = 19200
    parity: str = "E"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def bits_per_char(self) -> int:
        return 1 + self.bytesize + (0 if self.parity.upper() == "N" else 1) + self.stopbits

    def seconds(self, chars: float) -> float:
        return chars * self.bits_per_char / self.baudrate

    def transaction_seconds(self, request_bytes: int, reply_bytes: int) -> float:
        """Request, gap, reply, gap: the time one exchange holds the bus."""
        return self.seconds(request_bytes + reply_bytes + 2 * INTER_FRAME_CHARS)

    def read_seconds(self, count: int) -> float:
        return self.transaction_seconds(read_request_bytes(), read_reply_bytes(count))

    def write_seconds(self, count: int) -> float:
        return self.transaction_seconds(write_request_bytes(count), write_reply_bytes())
