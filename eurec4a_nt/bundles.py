"""Offline bundles: signed commits and the objects they need in one file, for moving
data where no link reaches (a USB disk, a ship in port, a laptop behind a firewall).

A bundle is a CAR v1 file (:mod:`eurec4a_nt.car`) of raw SHA-256 blocks: first a JSON
manifest (the root), then the selected sites' commits, oldest first (a commit's id is
the SHA-256 of its bytes, so it is a block like any other), then the objects of the
selected entries. Importing verifies every block against its hash and every commit
against the keyring and the logs held before any commit is appended: until then,
objects stored are invisible, and they are what a second, resumed import skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec

from . import car
from .entries import Entry, check_site, check_topics, utc_now
from .errors import BadCommit, BadInput, Corrupt, NotFound
from .ids import Hashed, ObjectId
from .log import Commit, parse_commit, verify_commit
from .schema import decode
from .times import parse_time
from .tree import walk

if TYPE_CHECKING:
    from .client import SiteClient
    from .sitestore import SiteStore

FORMAT = "eurec4a-nt-bundle"
_BATCH_BYTES = 16 << 20


class BundleManifest(msgspec.Struct, forbid_unknown_fields=True):
    """The root block of a bundle."""

    format: str
    version: int
    created: str
    commits: list[str]
    objects: int
    missing: int = 0


@dataclass(frozen=True)
class ExportReport:
    commits: int
    objects: int
    missing: int
    bytes: int


@dataclass(frozen=True)
class ImportReport:
    commits: list[Commit]
    objects_new: int
    objects_held: int
    rejected: list[str]


# -- export ----------------------------------------------------------------------------


def _selected(store: SiteStore, sites: list[str], topics: tuple[str, ...], names: list[str],
              since: datetime | None, until: datetime | None) -> Iterator[Entry]:
    """The current entries selected, or with a time range every version put in it."""
    for site in sites:
        if since is None and until is None:
            candidates: Iterable[Entry] = store.state(site).entries.values()
        else:
            candidates = [c.entry for commit in store.log(site)
                          if (since is None or parse_time(commit.time) >= since)
                          and (until is None or parse_time(commit.time) <= until)
                          for c in commit.changes if c.entry is not None]
        yield from (e for e in candidates if e.matches(topics, [site], names))


def export_bundle(store: SiteStore, path: str | os.PathLike[str], sites: Iterable[str] = (),
                  topics: Iterable[str] = (), names: Iterable[str] = (), since: str | None = None,
                  until: str | None = None) -> ExportReport:
    """Write a bundle of ``sites``' logs (default: this store's site) and the objects of
    their entries selected by topics, ``SITE/NAME`` globs and a time range of commits.

    Objects this store lacks are left out and counted as missing. The file appears
    complete or not at all (written beside it, then renamed).
    """
    chosen = [check_site(s) for s in sites] or ([store.site] if store.site else store.sites())
    for site in chosen:
        store.entries(site)  # NotFound for an unknown site
    start, end = (parse_time(since) if since else None), (parse_time(until) if until else None)
    commits = [c for site in chosen for c in store.log(site)]
    oids: dict[ObjectId, None] = {}
    missing = 0
    for entry in _selected(store, chosen, check_topics(list(topics)), list(names), start, end):
        for node in walk(entry, store.objects):
            if node.held:
                oids.setdefault(node.id)
            else:
                missing += 1
    manifest = msgspec.json.encode(BundleManifest(FORMAT, 1, utc_now(), [c.id for c in commits],
                                                  len(oids), missing))
    root = ObjectId.of(manifest)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part")
    with open(tmp, "wb") as f:
        f.write(car.header(root) + car.block(root, manifest))
        for commit in commits:
            f.write(car.block(ObjectId.parse(commit.id), commit.raw))
        for oid in oids:
            f.write(car.block(oid, store.objects.get(oid)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return ExportReport(len(commits), len(oids), missing, target.stat().st_size)


# -- import ----------------------------------------------------------------------------


def _check_commits(commits: list[Commit], store: SiteStore) -> None:
    """Raise :class:`BadCommit` unless every commit is signed by its site's key and
    continues (or repeats) the log held of its site."""
    heads: dict[str, tuple[int, str | None]] = {}
    for commit in commits:
        verify_commit(commit, store.keyring)
        log = store.log(commit.site)
        seq, head = heads.get(commit.site) or (log.seq, log.current().head)
        if commit.seq <= log.seq:
            held = log.commits_after(commit.seq - 1, limit=1)[0]
            if held.id != commit.id:
                raise BadCommit(f"commit {commit.label} differs from the one held: a forged or diverged log")
        elif commit.seq != seq + 1 or commit.parent != head:
            raise BadCommit(f"commit {commit.label} does not follow {commit.site}#{seq} in the bundle")
        heads[commit.site] = (commit.seq, commit.id)


def _read_start(f: BinaryIO) -> tuple[BundleManifest, list[Commit], Iterator[Hashed]]:
    root = car.read_header(f)
    blocks = car.read_blocks(f)
    oid, data = next(blocks, (None, b""))
    if oid != root:
        raise BadInput("not a bundle: the first block is not the manifest its header names")
    manifest = decode(bytes(data), BundleManifest, "not a bundle: bad manifest")
    if manifest.format != FORMAT or manifest.version != 1:
        raise BadInput(f"not a bundle of this version: {manifest.format} {manifest.version}")
    commits = []
    for expected in manifest.commits:
        oid, data = next(blocks, (None, b""))
        if oid != expected:
            raise Corrupt("the bundle's commits are not those its manifest lists: truncated or damaged")
        commits.append(parse_commit(bytes(data)))
    return manifest, commits, blocks


def import_bundle(path: str | os.PathLike[str], target: SiteStore | SiteClient) -> ImportReport:
    """Verify a bundle and make its entries held here as if they had crossed a link.

    Every block is checked against its hash and, on a local store, every commit
    against the keyring and the logs held, before any commit is appended (a site
    server checks commits itself). A damaged, truncated or forged bundle raises
    :class:`~eurec4a_nt.errors.Corrupt` or :class:`BadCommit` with nothing made
    visible; objects already stored stay (invisible) and are skipped when the import
    is run again.
    """
    from .sitestore import SiteStore

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"no bundle at {path}") from None
    with f:
        manifest, commits, blocks = _read_start(f)
        if isinstance(target, SiteStore):
            _check_commits(commits, target)
        sink = target.objects if isinstance(target, SiteStore) else target.sink
        new = count = 0
        batch: list[Hashed] = []
        size = 0
        try:
            for block in blocks:
                batch.append(block)
                count, size = count + 1, size + len(block.data)
                if size >= _BATCH_BYTES:
                    new += len(sink.put_many(batch))
                    batch, size = [], 0
        except Corrupt:
            sink.put_many(batch)  # the objects verified so far are kept for a resumed import
            raise
        new += len(sink.put_many(batch))
    if count != manifest.objects:
        raise Corrupt(f"the bundle holds {count} objects, not the {manifest.objects} its manifest "
                      "lists: it is truncated; nothing was made visible")
    added, rejected = target.receive([c.raw for c in commits])
    return ImportReport(added, new, count - new, rejected)
