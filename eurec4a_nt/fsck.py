"""Checking a store: every object re-hashed, every log verified, every entry's
objects accounted for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .entries import Entry
from .errors import Corrupt, NTError, ObjectMissing
from .ids import ObjectId
from .sitestore import SiteStore
from .stores.base import ObjectStore
from .tree import Kind, walk


@dataclass
class Report:
    """What :func:`fsck` found."""

    objects: int = 0
    bad_objects: list[tuple[ObjectId, str]] = field(default_factory=list)
    bad_commits: list[str] = field(default_factory=list)
    #: Entries whose records or manifests are damaged or disagree with them (answered 422).
    bad_entries: list[str] = field(default_factory=list)
    missing: dict[str, list[ObjectId]] = field(default_factory=dict)
    own_site: str | None = None

    @property
    def ok(self) -> bool:
        """No damage, and nothing of this site's own entries missing (for other sites'
        entries a missing object is normal in a cache)."""
        own_missing = any(path.split("/", 1)[0] == self.own_site for path in self.missing)
        return not (self.bad_objects or self.bad_commits or self.bad_entries or own_missing)

    def lines(self) -> list[str]:
        out = [f"{self.objects} objects checked"]
        out += [f"damaged object {oid} moved to {where}" for oid, where in self.bad_objects]
        out += [f"bad commit: {reason}" for reason in self.bad_commits]
        out += [f"bad entry: {reason}" for reason in self.bad_entries]
        for path, oids in sorted(self.missing.items()):
            own = path.split("/", 1)[0] == self.own_site
            out.append(f"{'MISSING' if own else 'not held'}: {path}: {len(oids)} object(s), first {oids[0]}")
        out.append("ok" if self.ok else "problems found")
        return out


def fsck(store: SiteStore, progress: Callable[[int], None] | None = None) -> Report:
    """Re-hash every object (quarantining damaged ones), verify every site log, and
    list objects each entry needs that are absent."""
    report = Report(own_site=store.site)
    objects = store.objects
    for oid in list(objects.ids()):
        report.objects += 1
        try:
            objects.get(oid, verify=True)
        except Corrupt:
            report.bad_objects.append((oid, objects.quarantine(oid)))
        except ObjectMissing:
            continue
        if progress:
            progress(1)
    for site in store.sites():
        try:
            log = store.log(site)
        except NTError as exc:
            report.bad_commits.append(str(exc))
            continue
        report.bad_commits += log.verify(store.keyring)
        for entry in list(log.current().entries.values()):
            try:
                absent = _absent(entry, objects)
            except Corrupt as exc:
                report.bad_entries.append(f"{entry.path}: {exc}")
                continue
            if absent:
                report.missing[entry.path] = absent
    return report


def _absent(entry: Entry, objects: ObjectStore) -> list[ObjectId]:
    """The objects ``entry`` needs that are not held; raise :class:`Corrupt` if a
    manifest or record is damaged or gives another size than an object has."""
    absent = []
    for node in walk(entry, objects):
        if not node.held:
            absent.append(node.id)
        elif node.kind is Kind.VALUE and (size := objects.size(node.id)) != node.size:
            raise Corrupt(f"{node.path!r} has {size} bytes, but its manifest says {node.size}")
    return absent
