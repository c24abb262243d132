"""eurec4a-nt: near-time data sharing between the sites of a field campaign.

What a scientist uses::

    import eurec4a_nt as nt
    nt.publish("sonde.nc", name="sondes/2020-02-01T1045.nc", topics=["sondes"])
    cat = nt.open_catalog()
    ds = cat["RV-Meteor"]["sondes/2020-02-01T1045.nc"].to_dask()
    nt.prefetch(topics=["quicklook"])
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import browse, init_site, open_catalog, prefetch, publish, remove
from .entries import Entry
from .errors import NTError, Pending

__all__ = [
    "Entry",
    "NTError",
    "Pending",
    "__version__",
    "browse",
    "init_site",
    "open_catalog",
    "prefetch",
    "publish",
    "remove",
]
