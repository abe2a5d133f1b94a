"""Meter link URLs and the pymodbus client behind each.

- `serial:///dev/ttyUSB0?baudrate=19200&parity=E&stopbits=1&bytesize=8` RTU on a serial port
  (any pyserial URL works too: `serial://socket://127.0.0.1:5020` keeps the serial code path)
- `rtu+tcp://host:port`   RTU framing through a TCP serial gateway
- `tcp://host:port`       Modbus TCP
"""

from __future__ import annotations

import enum
import os
import stat
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.framer import FramerType

from meter.modbus.wiretime import LineSettings


class LinkKind(enum.Enum):
    SERIAL = "serial"
    RTU_OVER_TCP = "rtu+tcp"
    TCP = "tcp"


class LinkUrlError(ValueError):
    """A meter URL that cannot be used; the message says why."""


@dataclass(frozen=True)
class LinkSettings:
    kind: LinkKind
    port: str = ""  # serial device or pyserial URL
    host: str = ""
    tcp_port: int = 0
    line: LineSettings = field(default_factory=LineSettings)

    def describe(self) -> str:
        if self.kind is LinkKind.SERIAL:
            ln = self.line
            return f"{self.port} {ln.baudrate} {ln.bytesize}{ln.parity}{ln.stopbits}"
        return f"{self.kind.value}://{self.host}:{self.tcp_port}"


_SERIAL_KEYS = {"baudrate", "parity", "stopbits", "bytesize"}


def parse_link_url(url: str) -> LinkSettings:
    """Parse a meter URL; raise LinkUrlError naming the problem."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "serial":
        query = parse_qs(parts.query)
        unknown = set(query) - _SERIAL_KEYS
        if unknown:
            raise LinkUrlError(f"unknown serial option(s) {', '.join(sorted(unknown))} in {url}")
        port = url[len("serial://") :].split("?", 1)[0]
        if not port:
            raise LinkUrlError(f"no serial device in {url}")
        try:
            line = LineSettings(
                baudrate=int(query.get("baudrate", ["19200"])[0]),
                parity=query.get("parity", ["E"])[0].upper(),
                stopbits=int(query.get("stopbits", ["1"])[0]),
                bytesize=int(query.get("bytesize", ["8"])[0]),
            )
        except ValueError as exc:
            raise LinkUrlError(f"bad number in {url}: {exc}") from None
        if line.parity not in ("N", "E", "O"):
            raise LinkUrlError(f"parity must be N, E or O in {url}")
        if line.stopbits not in (1, 2) or line.bytesize not in (7, 8) or line.baudrate <= 0:
            raise LinkUrlError(f"unsupported serial line settings in {url}")
        return LinkSettings(LinkKind.SERIAL, port=port, line=line)
    if scheme in ("rtu+tcp", "tcp"):
        if not parts.hostname:
            raise LinkUrlError(f"no host in {url}")
        try:
            port_number = parts.port
        except ValueError:
            raise LinkUrlError(f"bad port in {url}") from None
        if port_number is None:
            port_number = 502
        kind = LinkKind.TCP if scheme == "tcp" else LinkKind.RTU_OVER_TCP
        return LinkSettings(kind, host=parts.hostname, tcp_port=port_number)
    raise LinkUrlError(f"unknown meter URL scheme {parts.scheme!r} in {url} (serial, rtu+tcp, tcp)")


def serial_device_problem(port: str) -> str | None:
    """Why a serial device path cannot be a meter bus, in words a person can act on, or None.

    Only plain device paths are checked; pyserial URLs (`socket://...`, `rfc2217://...`) are not
    files.
    """
    if "://" in port:
        return None
    try:
        mode = os.stat(port).st_mode
    except FileNotFoundError:
        return f"no such device {port} (check the cable / udev name)"
    except PermissionError:
        return f"permission denied on {port} (is the service user in the dialout group?)"
    except OSError as exc:
        return f"cannot use {port}: {exc.strerror or exc}"
    if not stat.S_ISCHR(mode):
        return f"{port} is not a serial device (not a character device)"
    if not os.access(port, os.R_OK | os.W_OK):
        return f"permission denied on {port} (is the service user in the dialout group?)"
    return None


def make_client(settings: LinkSettings, request_timeout: float) -> ModbusBaseClient:
    """A pymodbus client with its own retries off: the bus decides what to retry."""
    if settings.kind is LinkKind.SERIAL:
        return AsyncModbusSerialClient(
            settings.port,
            framer=FramerType.RTU,
            baudrate=settings.line.baudrate,
            parity=settings.line.parity,
            stopbits=settings.line.stopbits,
            bytesize=settings.line.bytesize,
            timeout=request_timeout,
            retries=0,
            reconnect_delay=0,
        )
    framer = FramerType.SOCKET if settings.kind is LinkKind.TCP else FramerType.RTU
    return AsyncModbusTcpClient(
        settings.host,
        port=settings.tcp_port,
        framer=framer,
        timeout=request_timeout,
        retries=0,
        reconnect_delay=0,
    )
