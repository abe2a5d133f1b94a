"""`SecretRef`: a secret (the CSMS password) given inline, in a file or in the environment.

The secret is read only by `resolve()`, and never appears in reprs, messages or logs.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from chargepoint.config.base import ConfigModel
from chargepoint.config.problems import ConfigError, ConfigProblem

__all__ = ["SecretRef"]


class SecretRef(ConfigModel):
    """A secret given inline, read from a file, or read from an environment variable.

    In YAML: `password: s3cret`, `password: {file: /etc/chargepoint/csms-password}` or
    `password: {env: CSMS_PASSWORD}`. Nothing is read before `resolve()`.
    """

    value: str | None = Field(default=None, min_length=1, repr=False)
    file: Path | None = None
    env: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"value": data}
        if isinstance(data, bool | int | float):
            raise ValueError(
                "YAML read this as a number or boolean: put the secret in quotes, or use "
                "{file: PATH} or {env: VARIABLE}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("value", "file", "env") if getattr(self, name) is not None]
        if len(given) != 1:
            found = f" (found {' and '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of value, file, env{found}")
        return self

    def resolve(self, key_path: str = "csms.password") -> str:
        """The secret itself; raises ConfigError naming `key_path` (never the secret)."""
        if self.value is not None:
            return self.value
        if self.file is not None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                _secret_error(
                    key_path, f"cannot read secret file {self.file}: {exc.strerror or exc}"
                )
            except UnicodeDecodeError:
                _secret_error(key_path, f"secret file {self.file} is not UTF-8 text")
            secret = text.rstrip("\r\n")
            if not secret:
                _secret_error(key_path, f"secret file {self.file} is empty")
            return secret
        assert self.env is not None
        from_env = os.environ.get(self.env)
        if from_env is None:
            _secret_error(key_path, f"environment variable {self.env} is not set")
        if not from_env:
            _secret_error(key_path, f"environment variable {self.env} is empty")
        return from_env

    def describe(self) -> str:
        """Where the secret comes from, for messages: `inline`, `file X`, `environment X`."""
        if self.file is not None:
            return f"file {self.file}"
        if self.env is not None:
            return f"environment variable {self.env}"
        return "inline value"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        if self.value is not None:
            yield "value", "***"
        if self.file is not None:
            yield "file", self.file
        if self.env is not None:
            yield "env", self.env


def _secret_error(key_path: str, message: str) -> typing.NoReturn:
    raise ConfigError([ConfigProblem(key_path, None, message)])
