"""The time smart charging reads. Tests and the plot script may run it shifted or faster
than real time (a daily profile crossing 08:00 in seconds, not hours)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, UTC."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock take in real time."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, seconds: float) -> float:
        return seconds


class ShiftedClock:
    """Starts at `start` and runs `speed` times as fast as real time."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()
        self.speed = speed

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._origin) * self.speed
        return self._start + timedelta(seconds=elapsed)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed
