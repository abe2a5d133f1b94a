"""The ocpp library's `@on` with a type (the library's is untyped), for handler mixins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from ocpp import routing

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: str) -> Callable[[_F], _F]:
    """`ocpp.routing.on`: the method answers the CSMS's CALLs of `action`."""
    return cast(Callable[[_F], _F], routing.on(action))


def after(action: str) -> Callable[[_F], _F]:
    """`ocpp.routing.after`: the method runs once the answer to `action` has gone out."""
    return cast(Callable[[_F], _F], routing.after(action))
