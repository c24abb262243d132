"""Progress bars for long work, in terminals and notebooks alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(total: int, description: str, enabled: bool | None = None) -> Iterator[Any]:
    """A byte-counting bar with ``update(n)``.

    ``enabled=None`` shows it only where someone watches (a terminal or a notebook).
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total or None, desc=description, unit="B", unit_scale=True,
               unit_divisor=1024, disable=None if enabled is None else not enabled, leave=False)
    try:
        yield bar
    finally:
        bar.close()
