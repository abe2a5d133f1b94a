"""Smart charging, version-free: charging profiles, the composite schedule per connector, and
the limit the load follows.

- `profiles`: the typed profile and schedule model (both OCPP versions map onto it), units
  (A <-> W with the nominal voltage and the number of phases), the stored form.
- `validation`: whether a profile may be installed, with a reason a person can read.
- `book`: the installed profiles and the rules of the specifications for them: replacement by
  id and by stack level + purpose, which profiles concern a connector, clearing, expiry.
- `composite`: the composite schedule exactly as OCPP 1.6 3.13 and 2.0.1 K describe it.
- `sharing`: a station-wide limit divided between the connectors that draw power.
- `clock`: the time the engine reads (injectable, for time-compressed tests).
- `controller`: the running part: profiles kept in the store, the effective limit of each
  connector recomputed when something changes, events for the control interface.
- `load`: the simulated EV that follows its limit with a ramp.

The modules below `controller` are pure: no I/O, no asyncio, no clock of their own.
"""
