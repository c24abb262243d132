"""Progress bars for long work, in terminals and notebooks alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(total: int, description: str, enabled: bool | None = None, unit: str = "B") -> Iterator[Any]:
    """A bar with ``update(n)`` counting bytes, or whole things of another ``unit``.

    ``enabled=None`` shows it only where someone watches (a terminal or a notebook).
    """
    from tqdm.auto import tqdm

    sizes = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    bar = tqdm(total=total or None, desc=description, unit=unit, **sizes,
               disable=None if enabled is None else not enabled, leave=False)
    try:
        yield bar
    finally:
        bar.close()
