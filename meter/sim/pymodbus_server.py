"""pymodbus's server classes, without its HTTP simulator front end.

Importing anything from `pymodbus.server` runs that package's `__init__`, which also imports
`pymodbus.server.simulator.http_server`, pymodbus's web front end for its own simulator; where
aiohttp is installed (the station's web page uses it) that front end brings aiohttp along:
about 14 MiB resident in a daemon whose embedded meter simulator never serves HTTP. While
the server package is first imported, that one module is stood in for; an explicit import of
it later still gets the real module.
"""

from __future__ import annotations

import sys
import types

_FRONT_END = "pymodbus.server.simulator.http_server"

if "pymodbus.server" not in sys.modules and _FRONT_END not in sys.modules:
    _stand_in = types.ModuleType(_FRONT_END)
    _stand_in.ModbusSimulatorServer = None  # type: ignore[attr-defined]
    sys.modules[_FRONT_END] = _stand_in
    try:
        import pymodbus.server  # noqa: F401
    finally:
        del sys.modules[_FRONT_END]

from pymodbus.server import ModbusSerialServer, ModbusTcpServer  # noqa: E402
from pymodbus.server.base import ModbusBaseServer  # noqa: E402
from pymodbus.server.requesthandler import ServerRequestHandler  # noqa: E402

__all__ = ["ModbusBaseServer", "ModbusSerialServer", "ModbusTcpServer", "ServerRequestHandler"]
