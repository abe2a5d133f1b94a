"""One owner of a Modbus bus: serialises every exchange, maps failures to typed errors,
and counts what went over the wire.

A reply must answer its request: same unit, function code, register count (reads) or
address and count (writes); anything else is `MeterReplyInvalid`. After a request that got
no matching reply (timeout, mismatch, or a caller cancelled while waiting) the link is
closed and reopened before the next request: RTU frames carry no transaction id, and a
late reply would otherwise be taken as the answer to the next request. Modbus TCP is
reopened the same way, so a late reply cannot fail the next request on a transaction id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from meter.errors import (
    MeterConnectionError,
    MeterNoReply,
    MeterReplyInvalid,
    ModbusExceptionReply,
)
from meter.modbus import wiretime
from meter.modbus.link import (
    LinkKind,
    LinkSettings,
    make_client,
    parse_link_url,
    serial_device_problem,
)

log = logging.getLogger("chargepoint.meter.bus")

DEFAULT_REQUEST_TIMEOUT = 12.0  # the meter may hold its reply while it signs (field guide 1.4)
DEFAULT_CONNECT_TIMEOUT = 5.0
# a read the line garbled is asked for once more (each costs a request timeout: RTU has no
# negative acknowledge, a frame with a broken CRC is just dropped)
DEFAULT_READ_RETRIES = 1


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
    read_retries: int = 0

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
        read_retries: int = DEFAULT_READ_RETRIES,
    ) -> None:
        self.settings = settings
        self.request_timeout = request_timeout
        self.read_retries = read_retries
        self.connect_timeout = connect_timeout
        self.stats = BusStatistics()
        self._client: ModbusBaseClient | None = None
        self._lock = asyncio.Lock()
        self._in_doubt = False  # a request went out whose reply may still arrive

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
        if self.settings.kind is LinkKind.SERIAL:
            problem = serial_device_problem(self.settings.port)
            if problem is not None:
                raise MeterConnectionError(problem)
        client = make_client(self.settings, self.request_timeout)
        try:
            ok = await asyncio.wait_for(client.connect(), self.connect_timeout)
        except (TimeoutError, OSError, ModbusException) as exc:
            client.close()
            raise MeterConnectionError(f"cannot open {self.settings.describe()}: {exc}") from exc
        if not ok:
            client.close()
            what = (
                "the serial port did not open"
                if self.settings.kind is LinkKind.SERIAL
                else "connection refused or no answer (is the gateway on and reachable?)"
            )
            raise MeterConnectionError(f"cannot open {self.settings.describe()}: {what}")
        self._client = client
        log.info("meter bus open: %s", self.settings.describe())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._in_doubt = False

    async def _client_ready(self) -> ModbusBaseClient:
        if self._client is not None and self._in_doubt:
            # The last request got no (or no matching) reply, or its caller gave up: its
            # reply may still arrive. RTU frames carry no transaction id, so a late reply
            # would be taken as the answer to the next request. A new connection drops it.
            log.info(
                "meter bus %s: reopening after an unanswered request", self.settings.describe()
            )
            self.close()
        if self._client is None or not self._client.connected:
            self.close()
            await self.connect()
        assert self._client is not None
        return self._client

    async def _exchange(
        self, unit: int, what: str, call: Callable[[ModbusBaseClient], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        """One request and its reply; the link stays in doubt until a matching reply came."""
        client = await self._client_ready()
        self.stats.requests += 1
        self._in_doubt = True  # also when the caller is cancelled while waiting
        try:
            return await call(client)
        except (ModbusIOException, TimeoutError) as exc:
            self.stats.no_replies += 1
            raise MeterNoReply(f"unit {unit}: no reply {what}") from exc
        except (ConnectionException, OSError) as exc:
            self.close()
            raise MeterConnectionError(f"{self.settings.describe()}: {exc}") from exc

    def _exception_reply(
        self, reply: ModbusPDU, unit: int, function_code: int, address: int
    ) -> None:
        """Raise for a Modbus exception reply; a mismatched one is an invalid reply."""
        if reply.function_code != function_code | 0x80 or reply.dev_id not in (0, unit):
            raise MeterReplyInvalid(
                f"unit {unit}: exception reply {reply.function_code:#04x} from unit "
                f"{reply.dev_id} does not answer function {function_code} at {address}"
            )
        self._in_doubt = False
        self.stats.exception_replies += 1
        self.stats.bytes_on_wire += wiretime.exception_reply_bytes()
        raise ModbusExceptionReply(function_code, int(reply.exception_code), address)

    async def read(self, unit: int, address: int, count: int) -> list[int]:
        """Read holding registers (FC3) at a wire address. A read changes nothing on the
        meter, so a lost or garbled reply (line noise, a broken CRC) is asked for again, up
        to `read_retries` times, on a fresh link; then MeterNoReply / MeterReplyInvalid."""
        for attempt in range(self.read_retries + 1):
            try:
                return await self._read_once(unit, address, count)
            except (MeterNoReply, MeterReplyInvalid) as exc:
                if attempt == self.read_retries:
                    raise
                self.stats.read_retries += 1
                log.info("meter bus %s: %s; reading again", self.settings.describe(), exc)
        raise AssertionError("unreachable")

    async def _read_once(self, unit: int, address: int, count: int) -> list[int]:
        async with self._lock:
            self.stats.reads += 1
            self.stats.bytes_on_wire += wiretime.read_request_bytes()
            reply = await self._exchange(
                unit,
                f"reading {count} at {address}",
                lambda c: c.read_holding_registers(address, count=count, device_id=unit),
            )
            if reply.isError():
                self._exception_reply(reply, unit, 3, address)
            registers = list(reply.registers)
            if reply.function_code != 3 or reply.dev_id not in (0, unit) or len(registers) != count:
                raise MeterReplyInvalid(
                    f"unit {unit}: reply (function {reply.function_code}, unit {reply.dev_id}, "
                    f"{len(registers)} registers) does not answer reading {count} at {address}"
                )
            self._in_doubt = False
            self.stats.registers_read += count
            self.stats.bytes_on_wire += wiretime.read_reply_bytes(count)
            return registers

    async def write(self, unit: int, address: int, values: Sequence[int]) -> None:
        """Write multiple registers (FC16) at a wire address."""
        data = list(values)
        async with self._lock:
            self.stats.writes += 1
            self.stats.bytes_on_wire += wiretime.write_request_bytes(len(data))
            reply = await self._exchange(
                unit,
                f"writing {len(data)} at {address}",
                lambda c: c.write_registers(address, data, device_id=unit),
            )
            if reply.isError():
                self._exception_reply(reply, unit, 16, address)
            if (
                reply.function_code != 16
                or reply.dev_id not in (0, unit)
                or reply.address != address
                or reply.count != len(data)
            ):
                raise MeterReplyInvalid(
                    f"unit {unit}: reply (function {reply.function_code}, unit {reply.dev_id}, "
                    f"{reply.count} at {reply.address}) does not answer writing {len(data)} "
                    f"at {address}"
                )
            self._in_doubt = False
            self.stats.registers_written += len(data)
            self.stats.bytes_on_wire += wiretime.write_reply_bytes()
