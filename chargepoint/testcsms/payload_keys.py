"""The `ocpp` library's payload conversions for an `@on` handler, done once per key.

The library renames every key of a CALL's payload from camelCase to snake_case for the handler
(`camel_to_snake_case`: two regular expressions a key) and turns the handler's answer into a
payload (`serialize_as_dict`: `dataclasses.asdict`, `remove_nones`, `snake_to_camel_case`:
a dozen string replacements a key), for every frame. Here each key is renamed by the
library's own function the first time it is seen and looked up after that; the tree is walked
as the library walks it (dicts and lists, nothing else), so the handler gets the same
arguments and the station the same answer, in a fraction of the time.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from ocpp.charge_point import (  # type: ignore[import-untyped, unused-ignore]
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)

# Keys come from the schemas (and a station's customData): a bounded cache either way.
_KEYS_CACHED = 4096


@functools.lru_cache(maxsize=_KEYS_CACHED)
def snake_key(key: str) -> str:
    """`key` as `camel_to_snake_case` renames it."""
    (renamed,) = camel_to_snake_case({key: None})
    return str(renamed)


@functools.lru_cache(maxsize=_KEYS_CACHED)
def camel_key(key: str) -> str:
    """`key` as `snake_to_camel_case` renames it."""
    (renamed,) = snake_to_camel_case({key: None})
    return str(renamed)


def snake_keys(data: Any) -> Any:
    """`camel_to_snake_case(data)`: new dicts and lists, the other values as they are."""
    return _renamed(data, snake_key)


def camel_keys(data: Any) -> Any:
    """`snake_to_camel_case(data)`: new dicts and lists, the other values as they are."""
    return _renamed(data, camel_key)


def _renamed(data: Any, rename: Callable[[str], str]) -> Any:
    """`data` with every dict's keys renamed, walked as the library walks it (dicts and
    lists, nothing else)."""
    if isinstance(data, dict):
        return {rename(key): _renamed(value, rename) for key, value in data.items()}
    if isinstance(data, list):
        return [_renamed(value, rename) for value in data]
    return data


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}  # per class a handler answered with


def _field_names(cls: type) -> tuple[str, ...] | None:
    """The names of the fields `dataclasses.asdict` reads of an instance of `cls` (None: no
    dataclass)."""
    if cls not in _FIELD_NAMES:
        is_dataclass = dataclasses.is_dataclass(cls)
        names = tuple(f.name for f in dataclasses.fields(cls)) if is_dataclass else None
        _FIELD_NAMES[cls] = names
    return _FIELD_NAMES[cls]


_SCALARS = (str, int, float, type(None))  # bool is an int


def _as_dict(value: Any) -> Any:
    """`dataclasses.asdict` for what a handler answers with (dataclasses of dataclasses, lists,
    tuples, dicts and scalars), without its deep copy of each scalar (immutable)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_as_dict(item) for item in value]
    if isinstance(value, dict):
        return {_as_dict(k): _as_dict(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_as_dict(item) for item in value)
    names = None if isinstance(value, type) else _field_names(type(value))
    if names is None:
        raise _Unusual
    return {name: _as_dict(getattr(value, name)) for name in names}


class _Unusual(Exception):
    """A value `_as_dict` leaves to the library (a namedtuple, an object to deep-copy)."""


def answer_payload(response: Any) -> Any:
    """The payload of the CALLRESULT the library makes of a handler's `response`:
    `snake_to_camel_case(remove_nones(serialize_as_dict(response)))`."""
    try:
        if isinstance(response, type) or _field_names(type(response)) is None:
            raise _Unusual
        plain = _as_dict(response)
    except _Unusual:
        plain = serialize_as_dict(response)  # the library's errors for what is no dataclass
    return camel_keys(remove_nones(plain))
