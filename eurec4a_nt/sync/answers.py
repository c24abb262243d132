"""What the sync core needs to know from the stores: blocking functions that sessions
and the exchange run off the event loop (:func:`~eurec4a_nt.stores.offloop.call`), handing the answers
to the core as values.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable

from ..entries import Entry
from ..errors import Corrupt, ObjectMissing
from ..ids import ObjectId
from ..log import Commit
from ..logstate import CheckpointRef
from ..sitestore import SiteStore
from ..stores.base import ObjectStore
from . import plan
from .actions import Keep
from .wire import decode, encode

log = logging.getLogger(__name__)


def _missing(entry: Entry, previous: Entry | None, store: ObjectStore) -> plan.Wants:
    """What ``entry`` still lacks; nothing for an entry its objects contradict (it is
    never completed, so never pushed; fsck reports it)."""
    try:
        return plan.missing(entry, previous, store)
    except Corrupt as exc:
        log.warning("%s: %s", entry.path, exc)
        return plan.Wants()


def lacking(entries: Iterable[Entry], store: ObjectStore) -> dict[ObjectId, list[ObjectId]]:
    """Per entry root, the objects of the entry not held (its next round of wants)."""
    out = {}
    for entry in entries:
        wants = _missing(entry, None, store)
        out[entry.root] = wants.shallow + wants.deep
    return out


def rounds(entries: Iterable[Entry], site_store: SiteStore) -> list[tuple[Entry, plan.Wants]]:
    """Per entry, the next round of wants to complete it (with delta bases from its
    previous version)."""
    state = site_store.state
    return [(e, _missing(e, state(e.site).previous.get(e.name), site_store.objects)) for e in entries]


def commits_after(site_store: SiteStore, behind: dict[str, int]) -> list[Commit]:
    """The commits of every site in ``behind`` after the seq given for it."""
    return [c for site, known in behind.items() for c in site_store.log(site).commits_after(known)]


def checkpoints(site_store: SiteStore, sites: Iterable[str], linked: Container[str]) -> dict[str, CheckpointRef]:
    """The newest checkpoint of each of ``sites`` a peer may be offered: held here (see
    :meth:`SiteStore.checkpoint`), or named here of a site in ``linked`` (connected now:
    its objects are relayed from it when asked for)."""
    found = {site: site_store.db.checkpoint(site) if site in linked else site_store.checkpoint(site)
             for site in sites}
    return {site: ref for site, ref in found.items() if ref is not None}


def held(store: ObjectStore, oids: list[ObjectId]) -> set[ObjectId]:
    """Which of ``oids`` are held."""
    missing = set(store.missing(oids))
    return {oid for oid in oids if oid not in missing}


def _get_if_held(store: ObjectStore, oid: ObjectId | None) -> bytes | None:
    if oid is None:
        return None
    try:
        return store.get(oid)
    except ObjectMissing:
        return None


def encoded(store: ObjectStore, oid: ObjectId, base: ObjectId | None,
            compress: bool) -> tuple[bytes, bool, int, bytes]:
    """An object's bytes, whether its delta ``base`` was held, and its cheapest
    encoding ``(encoding, payload)``; raises :class:`ObjectMissing` if absent."""
    data = store.get(oid)
    base_data = _get_if_held(store, base)
    return (data, base_data is not None, *encode(data, base_data, compress))


def decoded(store: ObjectStore, keep: Keep) -> bytes:
    """The verified bytes of an object that arrived; raises :class:`~eurec4a_nt.errors.Corrupt`."""
    return decode(keep.encoding, keep.payload, _get_if_held(store, keep.base), keep.oid)
