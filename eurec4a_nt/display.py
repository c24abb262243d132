"""HTML views of core objects in notebooks, registered by :mod:`eurec4a_nt.jupyter`.

Core classes ask here for their ``_repr_html_``; the notebook package fills the
registry when it is imported (which ``import eurec4a_nt`` does inside IPython), so no
core module imports UI code. Without a registered view the plain repr is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_VIEWS: dict[str, Callable[[Any], str]] = {}


def register(kind: str, view: Callable[[Any], str]) -> None:
    """Show objects of ``kind`` (``entry``, ``entries``, ``source``) with ``view``."""
    _VIEWS[kind] = view


def html(kind: str, obj: Any) -> str | None:
    """The HTML view of ``obj``, or None (plain repr) if none is registered."""
    view = _VIEWS.get(kind)
    return view(obj) if view is not None else None
