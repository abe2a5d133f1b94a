"""The station's YAML configuration, validated by pydantic.

`load_config(path)` reads the file and returns the validated `StationConfig` with a list of
warnings. Every problem is reported at once, each with the dotted path of the offending key
(`connectors[1].meter.unit`, list indexes count from 0) and its line in the file; unknown keys,
wrong types, duplicate keys and YAML syntax errors included. Secrets (the CSMS password) never
appear in messages, reprs or logs.

Relative paths in the file (`store.state_dir`, `csms.ca_file`, a password file, a pinned key
file, ...) are relative to the directory of the config file, whatever directory the process
runs in; `control.listen: unix:PATH` with a relative PATH is relative to the state directory.
Values given on the command line (`Overrides`: `--csms-url`, `--ocpp-version`, `--state-dir`)
replace the file's before it is validated; a `--state-dir` is relative to the working
directory, where it was typed.

The modules, one job each:

- `problems`: ConfigProblem, ConfigError, key paths and lines
- `base`: what every section model shares (ConfigModel; paths relative to the config file)
- `secrets`: SecretRef, a secret inline, in a file or in the environment
- one module per section: `station`, `csms`, `meter_buses` (and `simulator:`), `connectors`,
  `metadata`, `ocpp`, `control`, `log` (`logging:`), `shutdown`, `store`
- `model`: StationConfig, the whole file, and the rules and warnings spanning sections
- `overrides`: command-line values applied to the file's data before validation
- `yaml_source`: YAML text -> data with the line of every key; duplicate keys
- `validation`: pydantic's errors -> problems with "did you mean" and type hints
- `load`: load_config, parse_config, LoadedConfig
"""

from __future__ import annotations

from chargepoint.config.connectors import ConnectorConfig, EvSimConfig, MeterRef
from chargepoint.config.control import ControlConfig
from chargepoint.config.csms import CsmsConfig
from chargepoint.config.load import LoadedConfig, load_config, parse_config
from chargepoint.config.log import LoggingConfig
from chargepoint.config.metadata import META_PLACEHOLDERS, MetadataConfig
from chargepoint.config.meter_buses import SIMULATOR_BUS_URL, MeterBusConfig, SimulatorSettings
from chargepoint.config.model import StationConfig
from chargepoint.config.ocpp import MEASURANDS, OcppSettings
from chargepoint.config.overrides import Overrides
from chargepoint.config.problems import EXIT_CONFIG, ConfigError, ConfigProblem
from chargepoint.config.secrets import SecretRef
from chargepoint.config.shutdown import ShutdownConfig
from chargepoint.config.station import StationInfo
from chargepoint.config.store import StoreConfig

__all__ = [
    "EXIT_CONFIG",
    "MEASURANDS",
    "META_PLACEHOLDERS",
    "SIMULATOR_BUS_URL",
    "ConfigError",
    "ConfigProblem",
    "ConnectorConfig",
    "ControlConfig",
    "CsmsConfig",
    "EvSimConfig",
    "LoadedConfig",
    "LoggingConfig",
    "MetadataConfig",
    "MeterBusConfig",
    "MeterRef",
    "OcppSettings",
    "Overrides",
    "SecretRef",
    "ShutdownConfig",
    "SimulatorSettings",
    "StationConfig",
    "StationInfo",
    "StoreConfig",
    "load_config",
    "parse_config",
]
