"""pydantic's validation errors as `ConfigProblem`s an operator can act on.

Each problem names its key and line; unknown keys get a "did you mean" from the model's own
field names, wrong types a hint at what YAML made of the value. Nothing repeats a value (it
could be a secret).
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chargepoint.config.problems import ConfigProblem, LineMap, Loc, RuleViolations, problem_at

__all__ = ["validate_model", "validation_problems"]

M = TypeVar("M", bound=BaseModel)


def validate_model(
    root: type[M], data: Any, lines: LineMap, context: dict[str, Any] | None = None
) -> tuple[M | None, list[ConfigProblem]]:
    """`root` validated from `data`, or None and every problem (with lines from `lines`)."""
    try:
        return root.model_validate(data, context=context), []
    except ValidationError as exc:
        return None, validation_problems(exc, (), lines, root)
    except RecursionError:
        return None, [ConfigProblem("", None, "the YAML aliases refer to themselves")]


def validation_problems(
    exc: ValidationError, prefix: Loc, lines: LineMap, root: type[BaseModel]
) -> list[ConfigProblem]:
    """One problem per error of `exc`, at `prefix` + its location below `root`."""
    problems: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc: Loc = prefix + tuple(err["loc"])
        kind = err["type"]
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, RuleViolations):
            problems += [problem_at(loc + sub, msg, lines) for sub, msg in error.issues]
            continue
        if kind in ("value_error", "assertion_error") and error is not None:
            message = str(error)
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "extra_forbidden":
            message = _unknown_key(loc, root)
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = "must be a mapping of keys (a YAML section)"
            if err.get("input") is None:
                message += "; it is empty"
        elif kind == "list_type":
            message = "must be a list (one `- ` item per entry)"
        else:
            message = _plain(str(err["msg"])) + _type_hint(kind, err.get("input"))
        problems.append(problem_at(loc, message, lines))
    return problems


def _plain(message: str) -> str:
    if message.startswith("Input should be "):
        return "must be " + message[len("Input should be ") :]
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    return message


def _type_hint(kind: str, value: Any) -> str:
    """Why YAML produced the wrong type; never repeats the value (it could be a secret)."""
    if kind == "string_type":
        if value is None:
            return " (the value is empty; write '' for empty text)"
        if isinstance(value, bool):
            return " (YAML read a boolean: put the text in quotes)"
        if isinstance(value, int | float):
            return " (YAML read a number: put the text in quotes)"
        if isinstance(value, dict):
            return " (YAML read a mapping: text starting with { must be in quotes)"
        if isinstance(value, list):
            return " (YAML read a list: text starting with [ must be in quotes)"
    if kind in ("int_type", "float_type", "bool_type") and isinstance(value, str):
        return " (write it without quotes)"
    if value is None and kind.endswith("_type"):
        return " (the value is empty)"
    return ""


def _unknown_key(loc: Loc, root: type[BaseModel]) -> str:
    key = str(loc[-1])
    known = _fields_at(loc[:-1], root)
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    if known and len(known) <= 12:
        return f"{message} (known keys: {', '.join(known)})"
    return message


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _fields_at(loc: Loc, root: type[BaseModel]) -> list[str]:
    """The field names of the model found at `loc` below `root`, if it is one."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) and typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            current = field_info.annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []
