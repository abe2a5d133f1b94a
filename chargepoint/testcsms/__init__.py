"""A test CSMS for OCPP 1.6J and OCPP 2.0.1: integration tests, benchmarks and the demo.

Built on the `ocpp` library's server side: a websockets server whose connection handler wraps each
station's connection in a library ChargePoint subclass chosen by the negotiated subprotocol
("ocpp1.6": `Ocpp16Session`, "ocpp2.0.1": `Ocpp201Session`; see `SESSION_CLASSES`). The CSMS
offers the versions given to its constructor (both by default) and takes the first subprotocol in
the station's list (the station lists them in its order of preference) that it offers. The default
answers come from `@on` handlers, so every CALL a station sends is checked against the OCPP JSON
schemas of its version and a violation is answered with a CALLERROR (and listed in
`TestCsms.sent_errors`).

What the tests get:
- `received`: every CALL the stations sent, in arrival order, with the payload as on the wire
  (camelCase), including CALLs answered with a CALLERROR on purpose (`fail_next`).
- `call()`: CSMS -> station CALLs with an action name and a camelCase payload dict, one outstanding
  CALL per station as OCPP-J requires; `send_raw()` for frames the schemas would refuse.
- Outages (`refuse_connections`, `disconnect`), late answers (`delay`), CALLERRORs (`fail_next`),
  custom answers (`respond_with`), and `transaction_log()` (1.6) / `transaction_log_201()` (2.0.1)
  built from what was received. All of these work the same for both versions; the action names
  and payloads are those of the station's version.
- Security profiles: HTTP Basic auth per station (1, 2), TLS (2) and TLS client certificates (3);
  `generate_test_pki()` writes a CA, a server and a client certificate for such tests.

Transactions: StartTransaction gets a fresh transactionId from one counter starting at 1. A
StartTransaction repeated with the same connectorId, idTag, meterStart and timestamp (a station
resending because the answer was lost) gets the same transactionId again, as a real CSMS
deduplicates it.

OCPP 2.0.1 transactions: the station names them (`transactionInfo.transactionId`, a string), so
the CSMS assigns nothing; `transaction_log_201()` groups the TransactionEvents by that id. Id

The package, one job per module:
- `server`: `TestCsms`, listening and accepting stations; it is `state.CsmsState` (configuration,
  records, connections) plus one part per job: `handshake` (station id, Basic auth, client
  certificate, subprotocol), `faults` (fail_next, delay, garble_next, respond_with,
  refuse_connections), `observations` (messages, wait_for, connection_info, ...), `transactions`
  (transaction ids and logs) and `commands` (call, send_raw, disconnect), with `authorization`
  over it (tag_answers: Blocked/Expired/group answers; local lists, reservations).
- `session`: one station's connection (frame log, schema validation both ways, replies to the
  CSMS's CALLs); `v16` and `v201`: the answers to each version's CALLs; `schemas`: the schema
  check of every frame (the library's schemas compiled to Python, the library's verdict);
  `payload_keys`: the library's key renaming for the `@on` handlers, once per key.
- `records`, `errors`, `ocppj` (subprotocol names, OCPP-J helpers), `pki` (the test PKI).
"""

from chargepoint.testcsms.errors import CallErrorReply, SchemaViolation, StationNotConnected
from chargepoint.testcsms.ocppj import (
    OCPP_PATH,
    SUBPROTOCOL_16,
    SUBPROTOCOL_201,
    VERSION_SUBPROTOCOLS,
    utc_now_text,
)
from chargepoint.testcsms.pki import TestPki, generate_test_pki
from chargepoint.testcsms.records import Frame, Handshake, Received, ResponseHandler, SentError
from chargepoint.testcsms.server import SESSION_CLASSES, TestCsms
from chargepoint.testcsms.v16 import Ocpp16Session
from chargepoint.testcsms.v201 import Ocpp201Session

__all__ = [
    "OCPP_PATH",
    "SESSION_CLASSES",
    "SUBPROTOCOL_16",
    "SUBPROTOCOL_201",
    "VERSION_SUBPROTOCOLS",
    "CallErrorReply",
    "Frame",
    "Handshake",
    "Ocpp16Session",
    "Ocpp201Session",
    "Received",
    "ResponseHandler",
    "SchemaViolation",
    "SentError",
    "StationNotConnected",
    "TestCsms",
    "TestPki",
    "generate_test_pki",
    "utc_now_text",
]
