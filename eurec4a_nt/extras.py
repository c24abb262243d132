"""The optional parts of the package and the extra that installs each.

``pip install eurec4a-nt`` is what a site server needs (store, sync, server, CLI);
``[science]`` adds xarray, zarr, intake and dask for publishing datasets and opening
catalogs, ``[jupyter]`` the browser widget, ``[test]`` the test tools.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{purpose} needs {module}, which is not installed: "
                           f"pip install 'eurec4a-nt[{extra}]'") from exc
