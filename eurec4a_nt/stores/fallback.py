"""Reading one site's objects from several places in turn.

A :class:`FallbackStore` asks its sources in order (nearest first) and returns the
first answer. A source that cannot be reached, answers ``Pending`` (it knows the data
but cannot fetch it now) or lacks the object is passed over for the next one, so a
``Pending`` from one source never hides another that holds the data. When every
source fails, the first source's error is raised with the others' reasons appended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from ..errors import BadInput, Corrupt, NotFound, Pending, Unreachable
from ..ids import ObjectId
from .base import ObjectStore

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Errors after which the next source is tried.
PASSED_OVER = (Unreachable, Pending, NotFound, Corrupt)


class FallbackStore(ObjectStore):
    """Read-only: ``sources`` are ``(label, store)`` pairs, nearest first.

    ``on_fallback(label used, [(label, reason), ...])`` is called when a source other
    than the first one answered.
    """

    #: Read-only: it neither deletes nor lists.
    supports_delete = False
    supports_listing = False

    def __init__(self, sources: Sequence[tuple[str, ObjectStore]],
                 on_fallback: Callable[[str, list[tuple[str, str]]], None] | None = None) -> None:
        if not sources:
            raise BadInput("a fallback store needs at least one source")
        self.sources = list(sources)
        self.on_fallback = on_fallback

    def __repr__(self) -> str:
        return f"FallbackStore({[label for label, _ in self.sources]})"

    def _first(self, call: Callable[[ObjectStore], T]) -> T:
        failed: list[tuple[str, str]] = []
        first_error: Exception | None = None
        for label, store in self.sources:
            try:
                value = call(store)
            except PASSED_OVER as exc:
                failed.append((label, f"{type(exc).__name__}: {exc}"))
                first_error = first_error or exc
                continue
            if failed and self.on_fallback:
                self.on_fallback(label, failed)
            return value
        assert first_error is not None
        if len(failed) > 1:
            first_error.args = (f"{first_error}; also tried "
                                + "; ".join(f"{label} ({why})" for label, why in failed[1:]),)
        raise first_error

    def _read(self, oid: ObjectId) -> bytes:
        return self._first(lambda s: s.get(oid))

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        return self._first(lambda s: s.get_range(oid, start, end))

    def get_part(self, oid: ObjectId, start: int, end: int, size: int, tree: str,
                 record: ObjectId | None = None) -> bytes:
        return self._first(lambda store: store.get_part(oid, start, end, size, tree, record))

    def has(self, oid: ObjectId) -> bool:
        return any(_has(store, oid) for _, store in self.sources)

    def size(self, oid: ObjectId) -> int:
        return self._first(lambda s: s.size(oid))

    def _write(self, oid: ObjectId, data: bytes) -> None:
        raise BadInput("reading from several places is read-only: publish to one site server")

    def delete(self, oid: ObjectId) -> None:
        raise BadInput("reading from several places is read-only")

    def ids(self) -> Iterator[ObjectId]:
        raise BadInput("reading from several places does not list objects")


def _has(store: ObjectStore, oid: ObjectId) -> bool:
    try:
        return store.has(oid)
    except PASSED_OVER:
        return False
