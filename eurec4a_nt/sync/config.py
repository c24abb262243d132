"""Link configuration: which site to dial, and what flows over the link.

A link is configured at the side that dials out (a ship dials the hub). A YAML file
holds a list of links::

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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from ..entries import check_topics
from ..errors import BadInput

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*(?:/s)?\s*")

DEFAULT_PRIORITY = ("planning", "quicklook", "sondes")
DEFAULT_ESSENTIAL = ("planning", "quicklook")


def parse_size(value: object) -> int:
    """``250KB``, ``1.5 MiB``, ``1000`` -> bytes (decimal units: KB = 1000 B)."""
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE.fullmatch(str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise BadInput(f"bad size {value!r}: use a number with B, KB, MB, GB, KiB, MiB or GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


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

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> LinkConfig:
        if not isinstance(body, dict) or "url" not in body:
            raise BadInput(f"a link needs a url: {body!r}")
        url = str(body["url"]).rstrip("/")
        if urlparse(url).scheme not in ("http", "https"):
            raise BadInput(f"link url {url!r} must start with http:// or https://")
        rate = body.get("rate") or {}
        known = {"url", "push", "prefetch", "names", "lazy", "rate", "budget", "essential",
                 "priority", "compress"}
        unknown = set(body) - known
        if unknown:
            raise BadInput(f"unknown link setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(
            url=url,
            push=check_topics(body.get("push") or ()),
            prefetch=check_topics(body.get("prefetch") or ()),
            names=tuple(str(n) for n in body.get("names") or ()),
            lazy=bool(body.get("lazy", True)),
            up_rate=parse_size(rate["up"]) if rate.get("up") else None,
            down_rate=parse_size(rate["down"]) if rate.get("down") else None,
            budget=parse_size(body["budget"]) if body.get("budget") else None,
            essential=tuple(body.get("essential", DEFAULT_ESSENTIAL)),
            priority=tuple(body.get("priority", DEFAULT_PRIORITY)),
            compress=bool(body.get("compress", True)),
        )


def load_links(path: Path) -> list[LinkConfig]:
    """Read the ``links:`` list of a YAML file."""
    try:
        body = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise BadInput(f"no links file at {path}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML: {exc}") from None
    return [LinkConfig.from_dict(item) for item in body.get("links") or []]
