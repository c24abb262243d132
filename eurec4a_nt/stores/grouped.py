"""Group commits: many small writes handed to a store together.

Publishing thousands of small files one object at a time pays one durable write (and,
over HTTP, one round trip) per object. :class:`GroupCommit` gathers the objects of
several files and hands them to the store's ``put_many`` in groups, so the store
makes each group durable at once and a site server is asked once per group which
objects it lacks. A full group is written in a thread of its own while the next one
fills, so cutting and hashing a file overlap with writing it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from ..ids import Hashed, Item, ObjectId
from .base import ObjectStore, checked, verified

#: A group is handed on when it holds this many bytes or objects.
GROUP_BYTES = 16 << 20
GROUP_COUNT = 2048


#: Groups written at once in a process (each publish has at most one being written, so
#: publishes running in threads of one process do not wait for each other's writes).
_GROUP_WRITERS = 4


@functools.cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_GROUP_WRITERS, thread_name_prefix="eurec4a-nt-group")


class GroupCommit:
    """A write-only sink in front of ``store``; use it as a context manager.

    Every object is verified (or taken as :class:`Hashed`) when it is given. Objects
    are durable in ``store`` once :meth:`flush` returns, which leaving the ``with``
    block without an error does; after an error, objects not yet handed on are
    dropped (nothing refers to them). At most two groups are held: the one filling and
    the one being written; an error writing a group is raised by the next call that
    hands one on, or by :meth:`flush`.
    """

    def __init__(self, store: ObjectStore, group_bytes: int = GROUP_BYTES, group_count: int = GROUP_COUNT) -> None:
        self.store = store
        self.group_bytes, self.group_count = group_bytes, group_count
        self.pending: dict[ObjectId, Hashed] = {}
        self.held = 0
        self._writing: Future[object] | None = None

    def put(self, data: bytes, oid: ObjectId | None = None) -> ObjectId:
        """Queue ``data``; return its id. Raise :class:`Corrupt` if it does not hash to ``oid``."""
        oid = verified(data, oid)
        self._add(Hashed(oid, data))
        return oid

    def put_many(self, items: Iterable[Item]) -> None:
        """Queue every item, each verified; raise :class:`Corrupt` at the first wrong one."""
        for item in items:
            self._add(Hashed(checked(item), item[1]))

    def _add(self, item: Hashed) -> None:
        if item.id not in self.pending:
            self.pending[item.id] = item
            self.held += len(item.data)
            if self.held >= self.group_bytes or len(self.pending) >= self.group_count:
                self._hand_on()

    def _hand_on(self) -> None:
        """Start writing the queued objects, once the group before them is written."""
        self._wait()
        if self.pending:
            items, self.pending, self.held = list(self.pending.values()), {}, 0
            self._writing = _writers().submit(self.store.put_many, items)

    def _wait(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def flush(self) -> None:
        """Hand every queued object to the store, durably."""
        self._hand_on()
        self._wait()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.flush()
        elif self._writing is not None:  # the group being written is finished, not torn
            self._writing.exception()
            self._writing = None
