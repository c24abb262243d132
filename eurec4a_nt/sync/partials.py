"""Objects received in part: pieces are appended in order, and what is held of each
object is the resume point a peer continues from after a drop."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from ..ids import ObjectId
from .wire import Piece

#: Bytes of partial objects kept; the oldest are dropped beyond this.
MAX_HELD = 64 << 20

Resume = tuple[int, ObjectId | None, int]


def parse_resume(body: Mapping[str, Any]) -> dict[ObjectId, Resume]:
    """``{id: [encoding, base or null, offset]}`` (as :meth:`Partials.header` writes
    them) -> resume points."""
    return {ObjectId.parse(k): (int(v[0]), ObjectId.parse(v[1]) if v[1] else None, int(v[2]))
            for k, v in body.items()}


class Partials:
    """Partly received objects of one site, shared by all its links."""

    def __init__(self) -> None:
        self._held: OrderedDict[ObjectId, tuple[int, ObjectId | None, int, bytearray]] = OrderedDict()
        self._size = 0

    def assemble(self, piece: Piece) -> bytes | None:
        """Add a piece; return the whole encoded object once its last piece is here.

        A piece that does not continue what is held (another encoding, or a gap)
        discards the partial object: the transfer is asked for again later.
        """
        current = self._held.pop(piece.oid, None)
        if current is not None:
            self._size -= len(current[3])
        if piece.offset == 0:
            current = (piece.encoding, piece.base, piece.total, bytearray())
        if current is None or current[:3] != (piece.encoding, piece.base, piece.total) \
                or len(current[3]) != piece.offset:
            return None
        buffer = current[3]
        buffer += piece.data
        if len(buffer) >= piece.total:
            return bytes(buffer)
        self._held[piece.oid] = current
        self._size += len(buffer)
        while self._size > MAX_HELD:
            _, (_, _, _, dropped) = self._held.popitem(last=False)
            self._size -= len(dropped)
        return None

    def specs(self, oids: Iterable[ObjectId] | None = None) -> dict[ObjectId, Resume]:
        """Resume points ``(encoding, base, bytes held)`` of partial objects."""
        chosen = self._held if oids is None else [o for o in oids if o in self._held]
        return {oid: (self._held[oid][0], self._held[oid][1], len(self._held[oid][3])) for oid in chosen}

    def header(self, limit: int = 20) -> dict[str, list[Any]]:
        """Resume points for a handshake header: the ``limit`` most recently added to,
        so that the header stays well inside HTTP's usual 8 KiB per field."""
        specs = list(self.specs().items())[-limit:]
        return {oid: [e, b, n] for oid, (e, b, n) in specs}
