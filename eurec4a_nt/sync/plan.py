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

from ..entries import Entry
from ..errors import Corrupt
from ..ids import ObjectId
from ..manifests import Manifest, Ref, entry_ref, record_of
from ..stores.base import ObjectStore
from ..tree import Kind, walk

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

    @classmethod
    def merged(cls, parts: Iterable[Wants]) -> Wants:
        """The wants of ``parts`` in one, each id once (in linear time)."""
        parts = list(parts)
        return cls(list(dict.fromkeys(o for w in parts for o in w.shallow)),
                   list(dict.fromkeys(o for w in parts for o in w.deep)),
                   {k: v for w in parts for k, v in w.bases.items()},
                   {k: v for w in parts for k, v in w.spans.items()})


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


class _Previous:
    """The previous version of an entry, as far as it is held: delta bases."""

    def __init__(self, entry: Entry | None, store: ObjectStore) -> None:
        self.store = store
        self.refs: dict[str, Ref] = {}
        if entry is not None and store.has(entry.root):
            try:
                self.refs = ({"": entry_ref(entry)} if entry.kind == "file"
                             else Manifest.from_bytes(store.get(entry.root)).items)
            except Corrupt:  # a damaged old version: no delta bases from it
                pass

    def value(self, path: str, new: ObjectId) -> ObjectId | None:
        """A held old value at ``path`` to send ``new`` as a delta against."""
        ref = self.refs.get(path)
        if ref is None or ref.record or ref.id == new or not self.store.has(ref.id):
            return None
        return ref.id

    def blocks(self, path: str) -> Blocks:
        """The blocks of the old file record at ``path`` ([] if none is held)."""
        ref = self.refs.get(path)
        if ref is None or not ref.record or not self.store.has(ref.id):
            return []
        try:
            return [(b.id, b.offset, b.length) for b in record_of(ref, self.store.get(ref.id)).blocks]
        except Corrupt:
            return []


def missing(entry: Entry, previous: Entry | None, store: ObjectStore) -> Wants:
    """The next round of wants to complete ``entry`` in ``store``.

    Without the root: the root alone if an earlier version may share blocks with it,
    else the root with everything under it (``deep``). With the root: every missing
    value, record or block, with delta bases from ``previous`` where it has them.
    Raises :class:`~eurec4a_nt.errors.Corrupt` for an entry its objects contradict.
    """
    wants = Wants()
    nodes = walk(entry, store)
    if not next(nodes).held:
        (wants.shallow if previous is not None else wants.deep).append(entry.root)
        return wants
    old = _Previous(previous, store)
    absent: dict[str, Blocks] = {}
    for node in nodes:
        if node.held:
            continue
        if node.kind is Kind.VALUE:
            wants.shallow.append(node.id)
            base = old.value(node.path, node.id)
            if base is not None:
                wants.bases[node.id] = base
        elif node.kind is Kind.RECORD:
            (wants.shallow if node.path in old.refs else wants.deep).append(node.id)
        else:
            wants.shallow.append(node.id)
            absent.setdefault(node.path, []).append((node.id, node.offset, node.size))
    for path, blocks in absent.items():
        wants.bases.update(delta_bases(blocks, old.blocks(path), store.has))
    return wants


def complete(entry: Entry, store: ObjectStore) -> bool:
    """Whether every object of the entry is held."""
    return not missing(entry, None, store)
