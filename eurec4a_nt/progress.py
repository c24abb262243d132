"""Progress bars for long work, in terminals and notebooks alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(total: int, description: str, enabled: bool | None = None, unit: str = "B",
                 estimated: bool = False) -> Iterator[Any]:
    """A bar with ``update(n)`` counting bytes (in decimal units, kB and MB as everywhere
    in eurec4a-nt), or whole things of another ``unit``.

    With ``estimated``, ``total`` is a guess (a dataset's size before it is encoded):
    when the work ends without an error the bar ends full at what was counted. A bar
    that ends full is green in a notebook, where it stays; one that stops short, after
    an error or a timeout, is red. ``enabled=None`` shows it only where someone watches
    (a terminal or a notebook).
    """
    from tqdm.auto import tqdm

    sizes = {"unit_scale": True, "unit_divisor": 1000} if unit == "B" else {}
    notebook = tqdm.__module__ == "tqdm.notebook"
    bar = tqdm(total=total or None, desc=description, unit=unit, **sizes,
               disable=None if enabled is None else not enabled, leave=notebook)
    try:
        yield bar
    except BaseException:
        bar.close()
        raise
    if estimated and bar.total != bar.n:
        bar.total = bar.n
        bar.refresh()
    bar.close()
