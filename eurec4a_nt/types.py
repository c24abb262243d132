"""Types shared across modules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from .entries import Entry
from .stores.base import ObjectStore
from .versions import At, Version


class Backend(Protocol):
    """Where entries and their objects come from: a local site store, or a site server."""

    def objects_for(self, site: str) -> ObjectStore:
        """Where the objects of ``site``'s entries are read from."""
        ...

    def sites(self) -> list[str]:
        """Every site known."""
        ...

    def entries(self, site: str, at: At | None = None) -> Mapping[str, Entry]:
        """The entries of ``site`` by name, now or at a past point ``at`` of its log;
        raise NotFound for an unknown site."""
        ...

    def entries_under(self, site: str, prefix: str = "", at: At | None = None) -> Iterator[Entry]:
        """The entries of ``site`` whose names start with ``prefix``, in name order, read
        a page at a time (now or at ``at``)."""
        ...

    def versions(self, site: str, name: str) -> list[Version]:
        """Every version of an entry, oldest first; raise NotFound if never published."""
        ...
