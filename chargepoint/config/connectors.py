"""The `connectors:` section: each connector, its own signing meter (bus, unit, pinned key)
and the simulated EV that plugs into it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chargepoint.config.base import ConfigModel, config_dir
from meter.proof.keys import KeyFormatError, load_public_key

__all__ = ["ConnectorConfig", "EvSimConfig", "MeterRef"]


class MeterRef(ConfigModel):
    """The meter of one connector: its bus, Modbus unit id, and the pinned public key."""

    bus: str = Field(min_length=1)
    unit: StrictInt = Field(default=42, ge=1, le=247)
    public_key: str | None = None
    # "station-test": TEST MODE for a meter that cannot sign; the station signs the meter's
    # readings with its own key (kept in the state dir). NOT calibration-law compliant, and
    # every record, export and verification says so.
    signing: Literal["meter", "station-test"] = "meter"

    @model_validator(mode="after")
    def _test_signing_has_no_meter_key(self) -> MeterRef:
        if self.signing == "station-test" and self.public_key is not None:
            raise ValueError(
                "signing: station-test signs with the station's own key; remove public_key"
            )
        return self

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            value = _key_file_in_config_dir(value, config_dir(info))
            try:
                load_public_key(value)
            except KeyFormatError as exc:
                raise ValueError(f"not a usable public key: {exc}") from None
        return value


def _key_file_in_config_dir(spec: str, base: Path | None) -> str:
    """A relative key file path made relative to the config file's directory; key text (hex,
    base64, PEM, OCA), absolute and `~` paths stay as they are. Key text never holds a dot."""
    text = spec.strip()
    if base is None or not text or "\n" in text or text.startswith(("-----", "~")):
        return spec
    if Path(text).is_absolute():
        return spec
    candidate = base / text
    return str(candidate) if "." in text or candidate.is_file() else spec


class EvSimConfig(ConfigModel):
    """The simulated EV (embedded simulator and control interface `plug`)."""

    power_w: StrictFloat = Field(default=11000.0, gt=0)
    plug_in_delay: StrictFloat = Field(default=0.5, ge=0)


class ConnectorConfig(ConfigModel):
    id: StrictInt = Field(ge=1)
    evse_id: str = Field(min_length=1, max_length=36)
    meter: MeterRef
    ev: EvSimConfig = EvSimConfig()
