"""The ``watch:`` section of a site server's config: folders the server publishes itself.

Each folder is watched in a thread of its own; objects and commits go through the
:class:`~eurec4a_nt.node.Node`, so the index counts them and links send them on as
if they had been published over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from ..entries import Entry
from ..ids import Hashed, Item, ObjectId
from ..log import Change, Commit
from ..node import Node
from ..stores.base import ObjectStore, batches, verified
from ..watch.folder import FolderWatcher
from ..watch.rules import WatchRule
from ..watch.state import WatchState

log = logging.getLogger(__name__)

_BATCH_BYTES = 16 << 20


class NodeSink(ObjectStore):
    """The node's objects; writes go through :meth:`Node.put_objects` on the event loop."""

    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop) -> None:
        self.node, self.loop, self.objects = node, loop, node.store.objects

    def _read(self, oid: ObjectId) -> bytes:
        return self.objects.get(oid)

    def _write(self, oid: ObjectId, data: bytes) -> None:
        self.put_many([(oid, data)])

    def has(self, oid: ObjectId) -> bool:
        return self.objects.has(oid)

    def size(self, oid: ObjectId) -> int:
        return self.objects.size(oid)

    def delete(self, oid: ObjectId) -> None:
        self.objects.delete(oid)

    def ids(self) -> Iterator[ObjectId]:
        return self.objects.ids()

    def put(self, data: bytes, oid: ObjectId | None = None) -> ObjectId:
        oid = verified(data, oid)
        self.put_many([(oid, data)])
        return oid

    def put_many(self, items: Iterable[Item]) -> list[ObjectId]:
        # bytes of their own (a Hashed item stays one, so it is not hashed again)
        owned = (item if isinstance(item, Hashed) else (item[0], bytes(item[1])) for item in items)
        return [oid for batch in batches(owned, _BATCH_BYTES) for oid in self._send(batch)]

    def _send(self, batch: Sequence[Item]) -> list[ObjectId]:
        return asyncio.run_coroutine_threadsafe(self.node.put_objects(batch), self.loop).result()


class NodeTarget:
    """The running server as the target of a watched folder."""

    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop) -> None:
        self.node, self.loop = node, loop
        self.sink = NodeSink(node, loop)

    @property
    def site(self) -> str:
        return self.node.site

    @property
    def tmp_dir(self) -> Path:
        return self.node.store.tmp_dir

    def sites(self) -> list[str]:
        return self.node.store.sites()

    def entries(self, site: str) -> Mapping[str, Entry]:
        return self.node.store.entries(site)

    def commit(self, changes: list[Change]) -> Commit:
        return asyncio.run_coroutine_threadsafe(self.node.commit(changes), self.loop).result()


def start_watching(node: Node, rules: list[WatchRule], stop: threading.Event) -> list[threading.Thread]:
    """Start one thread per watched folder; they end when ``stop`` is set.

    Raises :class:`~eurec4a_nt.errors.NotFound` for a folder that does not exist.
    """
    if not rules:
        return []
    target = NodeTarget(node, asyncio.get_running_loop())
    state = WatchState(node.store.path / "state" / "watch.sqlite")
    watchers = [FolderWatcher(rule, target, state) for rule in rules]
    threads = [threading.Thread(target=w.run, args=(stop,), name=f"watch {w.root}", daemon=True)
               for w in watchers]
    for thread, watcher in zip(threads, watchers, strict=True):
        log.info("watching %s", watcher.root)
        thread.start()
    return threads
