"""Reclaiming the space of old versions with a retention rule.

Logs keep every version's commit forever (history stays visible); what a purge
deletes are the objects that only versions the rule lets go of need. A version is
let go of when it was replaced (or removed) and it is neither among the ``keep``
newest replaced versions of its name nor replaced less than ``keep_days`` ago. An
object still needed by the current entry of any site or by a kept version is never
deleted. Opening a purged version afterwards fails with ``ObjectMissing`` naming
the object, until the data is held here again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .entries import Entry
from .errors import BadInput
from .ids import ObjectId
from .index import Index
from .sitestore import SiteStore
from .times import parse_time
from .tree import walk

#: The longest ``keep_days`` (a century: longer than any campaign's data is kept).
MAX_KEEP_DAYS = 36_500


@dataclass(frozen=True)
class Retention:
    """Keep the ``keep`` newest replaced versions of each name, and every version
    replaced less than ``keep_days`` days ago (None: no such rule)."""

    keep: int = 0
    keep_days: float | None = None

    def __post_init__(self) -> None:
        if self.keep < 0 or (self.keep_days is not None and self.keep_days < 0):
            raise BadInput("retention: --keep and --keep-days must not be negative")
        if self.keep_days is not None and not self.keep_days <= MAX_KEEP_DAYS:
            raise BadInput(f"retention: --keep-days must be at most {MAX_KEEP_DAYS}")


@dataclass(frozen=True)
class PurgeReport:
    versions: int
    objects: list[ObjectId]
    bytes: int


def _old_versions(store: SiteStore, rule: Retention, now: datetime) -> Iterator[tuple[Entry, bool]]:
    """Every replaced or removed version as ``(entry, kept by the rule)``."""
    for site in store.sites():
        changes: dict[str, list[tuple[str, Entry | None]]] = {}
        for commit in store.log(site):
            for change in commit.changes:
                changes.setdefault(change.name, []).append((commit.time, change.entry))
        for items in changes.values():
            replaced = [(entry, items[i + 1][0]) for i, (_, entry) in enumerate(items[:-1]) if entry]
            for rank, (entry, when) in enumerate(reversed(replaced)):
                recent = rule.keep_days is not None and now - parse_time(when) < timedelta(days=rule.keep_days)
                yield entry.with_site(site), rank < rule.keep or recent


def purge(store: SiteStore, rule: Retention, dry_run: bool = False) -> PurgeReport:
    """Delete (unless ``dry_run``) the objects only versions ``rule`` lets go of need;
    return how many versions lose data, which objects and how many bytes."""
    now = datetime.now(UTC)
    keep: set[ObjectId] = set()
    for site in store.sites():
        for entry in store.state(site).entries.values():
            keep.update(n.id for n in walk(entry, store.objects) if n.held)
    dropped: list[Entry] = []
    for entry, kept in _old_versions(store, rule, now):
        if kept:
            keep.update(n.id for n in walk(entry, store.objects) if n.held)
        else:
            dropped.append(entry)
    doomed: dict[ObjectId, int] = {}
    versions = 0
    for entry in dropped:
        held = [n.id for n in walk(entry, store.objects) if n.held and n.id not in keep]
        versions += bool(held)
        for oid in held:
            doomed.setdefault(oid, store.objects.size(oid))
    if not dry_run:
        for oid in doomed:
            store.objects.delete(oid)
        index = store.path / "state" / "index.sqlite"
        if index.exists():  # a site server's index, running or not, forgets them too
            Index(index).removed(doomed)
    return PurgeReport(versions, list(doomed), sum(doomed.values()))
