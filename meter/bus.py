"""One owner of a Modbus bus: serialises every exchange, maps failures to typed errors,
and counts what went over the wire."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from meter import wiretime
from meter.errors import MeterConnectionError, MeterNoReply, ModbusExceptionReply
from meter.link import LinkSettings, make_client, parse_link_url

log = logging.getLogger("chargepoint.meter.bus")

DEFAULT_REQUEST_TIMEOUT = 12.0  # the meter may hold its reply while it signs (field guide 1.4)
DEFAULT_CONNECT_TIMEOUT = 5.0


@dataclass
class BusStatistics:
    """Frames and bytes as they would travel on an RTU line (Modbus TCP adds its own header)."""

    requests: int = 0
    reads: int = 0
    writes: int = 0
    registers_read: int = 0
    registers_written: int = 0
    bytes_on_wire: int = 0
    no_replies: int = 0
    exception_replies: int = 0

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)


class ModbusBus:
    """A meter bus (one serial line, gateway or TCP connection) shared by its meters."""

    def __init__(
        self,
        settings: LinkSettings,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.stats = BusStatistics()
        self._client: ModbusBaseClient | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> ModbusBus:
        return cls(parse_link_url(url), request_timeout=request_timeout)

    async def __aenter__(self) -> ModbusBus:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def connect(self) -> None:
        if self._client is not None and self._client.connected:
            return
        client = make_client(self.settings, self.request_timeout)
        try:
            ok = await asyncio.wait_for(client.connect(), self.connect_timeout)
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise MeterConnectionError(f"cannot open {self.settings.describe()}: {exc}") from exc
        if not ok:
            client.close()
            raise MeterConnectionError(f"cannot open {self.settings.describe()}")
        self._client = client
        log.info("meter bus open: %s", self.settings.describe())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _client_ready(self) -> ModbusBaseClient:
        if self._client is None or not self._client.connected:
            self.close()
            await self.connect()
        assert self._client is not None
        return self._client

    async def read(self, unit: int, address: int, count: int) -> list[int]:
        """Read holding registers (FC3) at a wire address."""
        async with self._lock:
            client = await self._client_ready()
            self.stats.requests += 1
            self.stats.reads += 1
            self.stats.bytes_on_wire += wiretime.read_request_bytes()
            try:
                reply = await client.read_holding_registers(address, count=count, device_id=unit)
            except (ModbusIOException, TimeoutError) as exc:
                self.stats.no_replies += 1
                raise MeterNoReply(f"unit {unit}: no reply reading {count} at {address}") from exc
            except (ConnectionException, OSError) as exc:
                self.close()
                raise MeterConnectionError(f"{self.settings.describe()}: {exc}") from exc
            if reply.isError():
                self.stats.exception_replies += 1
                self.stats.bytes_on_wire += wiretime.exception_reply_bytes()
                raise ModbusExceptionReply(3, int(getattr(reply, "exception_code", 0)), address)
            registers = list(reply.registers)
            if len(registers) != count:
                raise MeterNoReply(
                    f"unit {unit}: {len(registers)} registers instead of {count} at {address}"
                )
            self.stats.registers_read += count
            self.stats.bytes_on_wire += wiretime.read_reply_bytes(count)
            return registers

    async def write(self, unit: int, address: int, values: Sequence[int]) -> None:
        """Write multiple registers (FC16) at a wire address."""
        async with self._lock:
            client = await self._client_ready()
            self.stats.requests += 1
            self.stats.writes += 1
            self.stats.bytes_on_wire += wiretime.write_request_bytes(len(values))
            try:
                reply = await client.write_registers(address, list(values), device_id=unit)
            except (ModbusIOException, TimeoutError) as exc:
                self.stats.no_replies += 1
                raise MeterNoReply(f"unit {unit}: no reply writing at {address}") from exc
            except (ConnectionException, OSError) as exc:
                self.close()
                raise MeterConnectionError(f"{self.settings.describe()}: {exc}") from exc
            if reply.isError():
                self.stats.exception_replies += 1
                self.stats.bytes_on_wire += wiretime.exception_reply_bytes()
                raise ModbusExceptionReply(16, int(getattr(reply, "exception_code", 0)), address)
            self.stats.registers_written += len(values)
            self.stats.bytes_on_wire += wiretime.write_reply_bytes()
