"""Progress of a long command on the terminal (stderr): shown only after a second, only when
stderr is a terminal, never with --quiet; the line is cleared when the work is done."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

DELAY_S = 1.0  # work that ends sooner shows nothing


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(items: Iterable[T], unit: str, quiet: bool = False) -> Iterator[T]:
    """`items`, counted on stderr as they pass when that is a terminal."""
    if quiet or not stderr_is_terminal():
        yield from items
        return
    bar = tqdm(
        items,
        unit=f" {unit}",
        file=sys.stderr,
        delay=DELAY_S,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        yield from bar
    finally:
        bar.close()
