"""The rules of the security variables of the OCPP 2.0.1 device model (SecurityCtrlr).

SecurityProfile can only be raised over OCPP, and only to a profile the configuration is
complete for (the CA file, client certificate and key exist, a password resolves);
BasicAuthPassword takes 16 to 40 printable characters without spaces. `csms_with` applies both
to the YAML's csms section for the next connection. Problems name configuration keys, never
the secrets themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from chargepoint.config import ConfigError, CsmsConfig, SecretRef
from chargepoint.csms.ocpp201.device_values import (
    R_INVALID_VALUE,
    R_MISSING_INFO,
    R_NO_DOWNGRADE,
    Rejection,
)

PASSWORD_LENGTH: Final = (16, 40)  # A00.FR.205; maxLimit of BasicAuthPassword


def check_password(value: str) -> Rejection | None:
    """The rule of SecurityCtrlr.BasicAuthPassword beyond its data type."""
    low, high = PASSWORD_LENGTH
    if not low <= len(value) <= high:
        return Rejection(R_INVALID_VALUE, f"must be {low} to {high} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return Rejection(R_INVALID_VALUE, "must not contain spaces or control characters")
    return None


def profile_change_rejection(
    csms: CsmsConfig, password: str | None, current: int, new: int
) -> Rejection | None:
    """Why SecurityCtrlr.SecurityProfile may not go from `current` to `new` (None: it may),
    given the YAML's csms section and the BasicAuthPassword set through OCPP (if any)."""
    if new < current:
        return Rejection(
            R_NO_DOWNGRADE,
            f"the station uses security profile {current}; it cannot be lowered over OCPP",
        )
    if new == current:
        return None
    problems = profile_problems(csms, password, new)
    if problems:
        return Rejection(R_MISSING_INFO, "; ".join(problems))
    return None


def profile_problems(csms: CsmsConfig, password: str | None, profile: int) -> list[str]:
    """What the configuration lacks for `profile` (never the secrets themselves)."""
    try:
        candidate = csms_with(csms, profile, password)
    except ValidationError as exc:
        return [text for err in exc.errors(include_url=False) for text in _plain_errors(err)]
    problems: list[str] = []
    if profile in (1, 2) and candidate.password is not None:
        try:
            candidate.password.resolve()
        except ConfigError as exc:
            problems += [p.message for p in exc.problems]
    if profile in (2, 3) and candidate.ca_file is not None and not candidate.ca_file.is_file():
        problems.append(f"csms.ca_file {candidate.ca_file} does not exist")
    if profile == 3:
        for name in ("client_cert", "client_key"):
            path = getattr(candidate, name)
            if path is not None and not path.is_file():
                problems.append(f"csms.{name} {path} does not exist")
    return problems


def csms_with(csms: CsmsConfig, profile: int, password: str | None) -> CsmsConfig:
    """`csms` with the security profile and (when set) the password replaced, validated as the
    YAML would be: ValidationError when the result is not a usable configuration."""
    fields = _fields(csms)
    fields["security_profile"] = profile
    if password is not None:
        fields["password"] = SecretRef(value=password)
    return CsmsConfig.model_validate(fields)


def _plain_errors(err: Mapping[str, Any]) -> list[str]:
    """A pydantic error of CsmsConfig as `csms.KEY: message` texts (inputs are never shown:
    the config models hide them)."""
    where = tuple(str(p) for p in err.get("loc", ()))
    issues = getattr((err.get("ctx") or {}).get("error"), "issues", None)
    if isinstance(issues, list):  # the config's rule violations: (key path, message) pairs
        return [
            ".".join(("csms", *where, *(str(p) for p in loc))) + f": {msg}" for loc, msg in issues
        ]
    message = str(err.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return [".".join(("csms", *where)) + f": {message}"]


def _fields(model: Any) -> dict[str, Any]:
    return {name: getattr(model, name) for name in type(model).model_fields}
