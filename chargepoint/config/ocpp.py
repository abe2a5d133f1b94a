"""The `ocpp:` section: the initial values of the OCPP configuration keys (the CSMS may change
them later; the station keeps those changes in its store)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from chargepoint.config.base import ConfigModel

__all__ = ["MEASURANDS", "OcppSettings"]

# What the meter driver reads (EnergyReading): only these can be reported.
MEASURANDS = frozenset({"Energy.Active.Import.Register", "Power.Active.Import"})
_MAX_CSL_ITEMS = 5


def _check_measurands(value: str) -> str:
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if item not in MEASURANDS]
    if bad:
        raise ValueError(
            f"unsupported measurand(s) {', '.join(bad)}; this station measures "
            f"{', '.join(sorted(MEASURANDS))}"
        )
    if len(items) > _MAX_CSL_ITEMS:
        raise ValueError(f"at most {_MAX_CSL_ITEMS} measurands")
    return ",".join(items)


class OcppSettings(ConfigModel):
    """Initial values of the OCPP configuration keys (the CSMS may change them later; the
    station keeps those changes in its store). Intervals in seconds, 0 = off."""

    heartbeat_interval: StrictInt = Field(default=300, ge=0)
    meter_value_sample_interval: StrictInt = Field(default=60, ge=0)
    meter_values_sampled_data: str = "Energy.Active.Import.Register,Power.Active.Import"
    clock_aligned_data_interval: StrictInt = Field(default=0, ge=0)
    meter_values_aligned_data: str = "Energy.Active.Import.Register"
    stop_txn_sampled_data: str = ""
    start_txn_sampled_data: str = ""
    authorize_remote_tx_requests: StrictBool = False
    local_authorize_offline: StrictBool = True
    local_pre_authorize: StrictBool = False
    authorization_cache_enabled: StrictBool = True
    allow_offline_tx_for_unknown_id: StrictBool = False
    stop_transaction_on_invalid_id: StrictBool = True
    stop_transaction_on_ev_side_disconnect: StrictBool = True
    connection_time_out: StrictInt = Field(default=60, ge=1)
    transaction_message_attempts: StrictInt = Field(default=3, ge=1)
    transaction_message_retry_interval: StrictInt = Field(default=60, ge=0)
    sampled_data_sign_readings: StrictBool = True
    sampled_data_sign_started_readings: StrictBool = False
    sampled_data_sign_updated_readings: StrictBool = False
    aligned_data_sign_readings: StrictBool = False
    aligned_data_sign_updated_readings: StrictBool = False
    public_key_with_signed_meter_value: Literal[
        "Never", "OncePerTransaction", "EveryMeterValue"
    ] = "OncePerTransaction"
    web_socket_ping_interval: StrictInt = Field(default=30, ge=0)

    @field_validator(
        "meter_values_sampled_data",
        "meter_values_aligned_data",
        "stop_txn_sampled_data",
        "start_txn_sampled_data",
    )
    @classmethod
    def _measurands(cls, value: str) -> str:
        return _check_measurands(value)

    @field_validator(
        "sampled_data_sign_updated_readings",
        "aligned_data_sign_readings",
        "aligned_data_sign_updated_readings",
    )
    @classmethod
    def _pairing(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "cannot be enabled: a signed reading during a session would break the "
                "begin/end pairing the transparency software checks"
            )
        return value
