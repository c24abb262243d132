"""Progress bars for long work, in terminals and notebooks alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class _Hidden:
    """A bar nobody sees (``enabled=False``): it counts, so tqdm is not even imported."""

    total: int | None = None
    n: int = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        """Nothing to draw."""


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
    if enabled is False:
        yield _Hidden(total or None)
        return
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
