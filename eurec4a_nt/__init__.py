"""eurec4a-nt: near-time data sharing between the sites of a field campaign.

What a scientist uses::

    import eurec4a_nt as nt
    nt.publish("sonde.nc", name="sondes/2020-02-01T1045.nc", topics=["sondes"])
    cat = nt.open_catalog()
    ds = cat["RV-Meteor"]["sondes/2020-02-01T1045.nc"].to_dask()
    rule = nt.prefetch(topics=["quicklook"])
    nt.prefetch_rules(); nt.unprefetch(rule)
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .api import browse, init_site, open_catalog, prefetch, prefetch_rules, publish, remove, unprefetch
    from .entries import Entry
    from .errors import NTError, Pending

#: Public names and the module each comes from, imported on first use (so the
#: command line starts fast).
_LAZY = {"browse": "api", "init_site": "api", "open_catalog": "api", "prefetch": "api",
         "prefetch_rules": "api", "publish": "api", "remove": "api", "unprefetch": "api",
         "Entry": "entries", "NTError": "errors", "Pending": "errors"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


if "IPython" in sys.modules:  # HTML views of entries and catalogs in notebooks
    from . import jupyter  # noqa: F401

__all__ = [
    "Entry",
    "NTError",
    "Pending",
    "__version__",
    "browse",
    "init_site",
    "open_catalog",
    "prefetch",
    "prefetch_rules",
    "publish",
    "remove",
    "unprefetch",
]
