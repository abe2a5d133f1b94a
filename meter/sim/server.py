"""Put simulated meters on a Modbus bus: TCP (socket or RTU framing) or a serial port.

Several meters (different unit ids) share one bus; a request for a unit that is not on
the bus gets no reply, as on RS-485. With wire-time emulation each reply is held back
for the time its request and reply frames take on the line at the configured baud rate,
and the bus carries one exchange at a time. Like the device, the meters know only
function codes 3 and 16: any other gets ILLEGAL_FUNCTION.

Late replies: pymodbus's own request handler serves each request in a task of its own and,
once the datastore has answered, takes the reply's unit and transaction id from
`last_pdu`, the handler's *latest* request. A reply held back (reply_delay, wire time)
would go out labelled as the answer to whatever request came after it. `_MeterHandler`
keeps the request it serves and labels the reply with that request's ids; a reply whose
connection has gone (the client gave up and reconnected) is dropped. On RTU framing a
late reply still carries no transaction id: a client must not take it for the answer to
its next request (the driver's bus reconnects after an unanswered request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.simulator import DataType, SimData, SimDevice

from meter.modbus import wiretime
from meter.modbus.wiretime import LineSettings
from meter.sim.device import BASE, SIZE, SimulatedBsm
from meter.sim.pymodbus_server import (
    ModbusBaseServer,
    ModbusSerialServer,
    ModbusTcpServer,
    ServerRequestHandler,
)

log = logging.getLogger("chargepoint.meter.simulator")

SUPPORTED_FUNCTIONS = (3, 16)  # read holding registers, write multiple registers


@dataclass
class BusTraffic:
    """What the simulated line carried (RTU frame sizes)."""

    exchanges: int = 0
    bytes_on_wire: int = 0
    busy_seconds: float = 0.0


class SimulatedBus:
    """A bus with simulated meters behind a pymodbus server."""

    def __init__(
        self, meters: Sequence[SimulatedBsm], wire_time: LineSettings | None = None
    ) -> None:
        ids = [m.config.unit for m in meters]
        if len(set(ids)) != len(ids):
            raise ValueError(f"unit ids on one bus must differ: {ids}")
        if any(not 1 <= u <= 247 for u in ids):
            raise ValueError(f"unit ids must be 1..247: {ids}")
        self.meters = {m.config.unit: m for m in meters}
        self.wire_time = wire_time
        self.traffic = BusTraffic()
        self._line = asyncio.Lock()
        self._server: ModbusBaseServer | None = None

    def _devices(self) -> list[SimDevice]:
        devices = [
            SimDevice(
                id=unit,
                simdata=[SimData(BASE, count=SIZE, values=0, datatype=DataType.REGISTERS)],
                action=self._action_for(meter),
            )
            for unit, meter in self.meters.items()
        ]

        async def nobody_home(*_: object) -> ExcCodes | None:
            raise NoSuchIdException("no meter with this unit id")  # no reply, as on RS-485

        devices.append(
            SimDevice(
                id=0,
                simdata=[SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)],
                action=nobody_home,
            )
        )
        return devices

    def _action_for(self, meter: SimulatedBsm):  # type: ignore[no-untyped-def]
        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current_registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if meter.faults.no_reply:
                raise NoSuchIdException("simulated meter does not answer")
            if set_values is not None:
                frames = wiretime.write_request_bytes(count), wiretime.write_reply_bytes()
            else:
                frames = wiretime.read_request_bytes(), wiretime.read_reply_bytes(count)
            await self._hold_line(*frames)
            if meter.faults.reply_delay:
                await asyncio.sleep(meter.faults.reply_delay)
            offset = address - start_address
            if set_values is None:
                current_registers[offset : offset + count] = meter.read(address, count)
                return None
            values = [int(v) for v in set_values]
            code = await meter.write(address, values)
            if code is not None:
                return ExcCodes(code)
            set_values[:] = meter.read(address, len(values))  # type: ignore[assignment]
            return None

        return action

    async def answer(self, request: ModbusPDU, server: ModbusBaseServer) -> ModbusPDU | None:
        """The reply to one request, or None where the meter stays silent."""
        meter = self.meters.get(request.dev_id)
        if meter is None or meter.faults.no_reply:
            return None  # nobody answers, as on RS-485
        if request.function_code not in SUPPORTED_FUNCTIONS:
            await self._hold_line(wiretime.read_request_bytes(), wiretime.exception_reply_bytes())
            if meter.faults.reply_delay:
                await asyncio.sleep(meter.faults.reply_delay)
            return ExceptionResponse(request.function_code, ExcCodes.ILLEGAL_FUNCTION)
        try:
            return await request.datastore_update(server.context, request.dev_id)  # type: ignore[arg-type]
        except NoSuchIdException:
            return None
        except Exception:
            log.exception("simulated meter %d failed on %s", request.dev_id, request)
            return ExceptionResponse(request.function_code, ExcCodes.DEVICE_FAILURE)

    async def _hold_line(self, request: int, reply: int) -> None:
        async with self._line:
            self.traffic.exchanges += 1
            self.traffic.bytes_on_wire += request + reply
            if self.wire_time is not None:
                seconds = self.wire_time.transaction_seconds(request, reply)
                self.traffic.busy_seconds += seconds
                await asyncio.sleep(seconds)

    async def serve_tcp(self, host: str, port: int, rtu_framing: bool = False) -> None:
        """Listen on TCP: Modbus TCP, or RTU frames over TCP (a serial gateway)."""
        framer = FramerType.RTU if rtu_framing else FramerType.SOCKET
        server = _MeterTcpServer(
            self._devices(), framer=framer, address=(host, port), ignore_missing_devices=True
        )
        server.sim_bus = self
        await server.serve_forever(background=True)
        self._server = server
        log.info(
            "simulated meters %s on tcp %s:%d (%s)", list(self.meters), host, port, framer.value
        )

    async def serve_serial(self, port: str, line: LineSettings) -> None:
        """Serve on a serial port (e.g. one end of a socat pty pair)."""
        server = _MeterSerialServer(
            self._devices(),
            framer=FramerType.RTU,
            port=port,
            baudrate=line.baudrate,
            parity=line.parity,
            stopbits=line.stopbits,
            bytesize=line.bytesize,
            ignore_missing_devices=True,
        )
        server.sim_bus = self
        await server.serve_forever(background=True)
        self._server = server
        log.info("simulated meters %s on serial %s", list(self.meters), port)

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        for meter in self.meters.values():
            await meter.aclose()


class _MeterHandler(ServerRequestHandler):
    """One connection's requests, each answered with its own unit and transaction id."""

    sim_bus: SimulatedBus

    async def handle_request(self) -> None:
        # Keep the request now: `last_pdu` moves on when the next request arrives.
        request, addr = self.last_pdu, self.last_addr
        if request is None:
            return
        response = await self.sim_bus.answer(request, self.server)
        if response is None:
            return
        if not self.transport:
            log.debug("dropping a late reply to unit %d: its connection is gone", request.dev_id)
            return
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        meter = self.sim_bus.meters.get(request.dev_id)
        if meter is not None and meter.faults.crc_errors > 0:
            meter.faults.crc_errors -= 1
            packet = bytearray(self.framer.buildFrame(response))
            packet[-1] ^= 0xFF  # line noise: the checksum no longer matches
            self.low_level_send(bytes(packet), addr=addr)
            return
        self.pdu_send(response, addr=addr)


def _handler(server: ModbusBaseServer, sim_bus: SimulatedBus) -> _MeterHandler:
    handler = _MeterHandler(server, server.trace_packet, server.trace_pdu, server.trace_connect)  # type: ignore[no-untyped-call]
    handler.sim_bus = sim_bus
    return handler


class _MeterTcpServer(ModbusTcpServer):
    sim_bus: SimulatedBus

    def callback_new_connection(self) -> _MeterHandler:
        return _handler(self, self.sim_bus)


class _MeterSerialServer(ModbusSerialServer):
    sim_bus: SimulatedBus

    def callback_new_connection(self) -> _MeterHandler:
        return _handler(self, self.sim_bus)
