"""Link configuration: which site to dial, and what flows over the link.

A link is configured at the side that dials out (a ship dials the hub). A YAML file
holds a list of links (parsed strictly by :mod:`eurec4a_nt.settings`)::

    links:
      - url: http://ops.example:8047
        push: [quicklook, sondes, planning]     # sent to the hub as soon as they exist
        prefetch: [planning, quicklook]         # pulled from the hub as soon as they exist
        lazy: true                              # readers here may fetch other data over it
        rate: {up: 250KB, down: 1MB}            # bandwidth caps, bytes per second
        budget: 500MB                           # bytes per UTC day, both directions
        essential: [planning, quicklook]        # keep flowing when the budget is spent
        priority: [planning, quicklook, sondes] # first among equals: small and new first
        names: ["RV-*/sondes/*"]                # optional SITE/NAME glob patterns
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

DEFAULT_PRIORITY = ("planning", "quicklook", "sondes")
DEFAULT_ESSENTIAL = ("planning", "quicklook")


@dataclass(frozen=True)
class LinkConfig:
    """One link, as configured at the dialling site."""

    url: str
    push: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    lazy: bool = True
    up_rate: int | None = None
    down_rate: int | None = None
    budget: int | None = None
    essential: tuple[str, ...] = DEFAULT_ESSENTIAL
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    compress: bool = True

    @property
    def name(self) -> str:
        """A short label: ``host:port`` of the URL."""
        return urlparse(self.url).netloc or self.url
