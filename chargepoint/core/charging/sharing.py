"""A station-wide limit (ChargingStationMaxProfile, external constraints on EVSE 0) divided
between the connectors: "the limit value of ChargePointMaxProfile is the limit for all
connectors combined" (OCPP 1.6 3.13.3).

Max-min fair: every connector that draws gets an equal share, and what one cannot use (its
own limit or its EV's power is lower) goes to the others.
"""

from __future__ import annotations

from collections.abc import Mapping


def share(total: float, demands: Mapping[int, float]) -> dict[int, float]:
    """How much of `total` each consumer gets: never more than its demand (which may be
    `math.inf`), together never more than `total`, and the smallest share as large as it
    can be."""
    remaining = max(total, 0.0)
    allocation: dict[int, float] = {}
    order = sorted(demands, key=lambda k: demands[k])
    for i, key in enumerate(order):
        fair = remaining / (len(order) - i)
        given = min(max(demands[key], 0.0), fair)
        allocation[key] = given
        remaining = max(remaining - given, 0.0)
    return allocation
