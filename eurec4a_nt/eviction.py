"""Keeping a site server's store under its cache cap (``serve --cache-cap``): least
recently used objects go first, never those of this site's own entries, of pinned
topics or of entries a prefetch rule asks this site to hold."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import Corrupt
from .ids import ObjectId
from .tree import walk

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)


def protected(node: Node) -> set[ObjectId]:
    """Objects never evicted: this site's own entries and entries of pinned topics or
    prefetch rules."""
    keep: set[ObjectId] = set()
    for entry in node.entries():
        if entry.site == node.site or set(entry.topics) & node.pinned_topics or node.wanted_here(entry):
            try:
                keep.update(n.id for n in walk(entry, node.store.objects) if n.held)
            except Corrupt as exc:
                node.report_damaged(entry, exc)
    return keep


def evict(node: Node, cap: int) -> int:
    """Delete least recently used objects not :func:`protected` until the store holds at
    most 90% of ``cap`` bytes; the bytes freed (blocking: call it in a thread)."""
    node.index.flush_access()
    keep = protected(node)
    total, target, freed = node.index.total_size(), int(cap * 0.9), 0
    removed: list[ObjectId] = []
    for oid, size in node.index.least_recent(limit=1_000_000):
        if total - freed <= target:
            break
        if oid in keep:
            continue
        node.store.objects.delete(oid)
        removed.append(oid)
        freed += size
    node.index.removed(removed)
    if total - freed > cap:
        log.warning("cache over its cap (%d bytes) with only protected data left", cap)
    log.info("evicted %d objects (%d bytes)", len(removed), freed)
    return freed
