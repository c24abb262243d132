"""Deciding what to ask for, in which order, and what to send as a delta: pure code
over entries and a store's listing, with no network.

A receiver completes an entry in rounds: it asks for the root; once the root is
here it knows the blocks and asks for the missing ones, naming for each a block it
already holds of the previous version (a *base*), so the sender can send a small
delta instead of the block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..chunking import FileRecord
from ..entries import Entry
from ..ids import ObjectId
from ..manifests import Manifest, Ref, entry_ref
from ..stores.base import ObjectStore

Blocks = list[tuple[ObjectId, int, int]]


@dataclass
class Wants:
    """What to ask a peer for to complete some entries."""

    shallow: list[ObjectId] = field(default_factory=list)
    deep: list[ObjectId] = field(default_factory=list)
    bases: dict[ObjectId, ObjectId] = field(default_factory=dict)
    spans: dict[ObjectId, tuple[int, int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.shallow or self.deep)

    def extend(self, other: Wants) -> None:
        self.shallow += [o for o in other.shallow if o not in self.shallow]
        self.deep += [o for o in other.deep if o not in self.deep]
        self.bases.update(other.bases)
        self.spans.update(other.spans)


def _published(entry: Entry) -> float:
    try:
        return datetime.fromisoformat(entry.published.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def priority_key(entry: Entry, priority: Iterable[str]) -> tuple[int, int, float]:
    """Order for transfers: topics in ``priority`` order first; then small before large,
    then new before old."""
    order = list(priority)
    rank = min((order.index(t) for t in entry.topics if t in order), default=len(order))
    return rank, entry.size, -_published(entry)


def delta_bases(new: Blocks, old: Blocks, held: Callable[[ObjectId], bool]) -> dict[ObjectId, ObjectId]:
    """For each new block, the held old block that overlaps its byte range the most.

    After an insertion or an append, the block covering the same offsets in the old
    version holds nearly the same bytes, so it makes a good delta base.
    """
    old_ids = {oid for oid, _, _ in old}
    bases = {}
    for oid, start, length in new:
        if oid in old_ids:
            continue
        best, overlap = None, 0
        for base, b_start, b_length in old:
            shared = min(start + length, b_start + b_length) - max(start, b_start)
            if shared > overlap and held(base):
                best, overlap = base, shared
        if best is not None:
            bases[oid] = best
    return bases


def _record_blocks(store: ObjectStore, ref: Ref | None) -> Blocks:
    if ref is None or not ref.record or not store.has(ref.id):
        return []
    return [(b.id, b.offset, b.length) for b in FileRecord.from_bytes(store.get(ref.id)).blocks]


def _refs(store: ObjectStore, entry: Entry | None) -> dict[str, Ref] | None:
    """Path -> ref of an entry whose root is held ("" for a file entry); None if not held."""
    if entry is None or not store.has(entry.root):
        return None
    if entry.kind == "file":
        return {"": entry_ref(entry)}
    return Manifest.from_bytes(store.get(entry.root)).items


def missing(entry: Entry, previous: Entry | None, store: ObjectStore) -> Wants:
    """The next round of wants to complete ``entry`` in ``store``.

    Without the root: the root alone if an earlier version may share blocks with it,
    else the root with everything under it (``deep``). With the root: every missing
    value, record or block, with delta bases from ``previous`` where it has them.
    """
    wants = Wants()
    refs = _refs(store, entry)
    if refs is None:
        (wants.shallow if previous is not None else wants.deep).append(entry.root)
        return wants
    old = _refs(store, previous) or {}
    for path, ref in refs.items():
        old_ref = old.get(path)
        if not ref.record:
            if not store.has(ref.id):
                wants.shallow.append(ref.id)
                if old_ref and not old_ref.record and old_ref.id != ref.id and store.has(old_ref.id):
                    wants.bases[ref.id] = old_ref.id
            continue
        if not store.has(ref.id):
            (wants.shallow if old_ref else wants.deep).append(ref.id)
            continue
        blocks = _record_blocks(store, ref)
        absent = [b for b in blocks if not store.has(b[0])]
        wants.shallow += [b[0] for b in absent]
        wants.bases.update(delta_bases(absent, _record_blocks(store, old_ref), store.has))
    return wants


def complete(entry: Entry, store: ObjectStore) -> bool:
    """Whether every object of the entry is held."""
    return not missing(entry, None, store)
