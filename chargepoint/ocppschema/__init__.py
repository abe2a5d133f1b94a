"""The OCPP JSON schemas the `ocpp` library ships, compiled to Python: one place for the station
(chargepoint.csms) and the project's test CSMS (chargepoint.testcsms) to check frames with.
Imports nothing of the project."""
