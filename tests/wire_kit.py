"""Helpers for the link-protocol tests: objects cut into pieces as a sender cuts them."""

from __future__ import annotations

from eurec4a_nt.ids import ObjectId
from eurec4a_nt.sync.wire import Outgoing, Piece


def pieces(oid: ObjectId, encoding: int, base: ObjectId | None, payload: bytes,
           start: int = 0) -> list[Piece]:
    """An encoded object cut into pieces of :data:`~eurec4a_nt.sync.wire.PIECE` bytes, from byte ``start``."""
    outgoing = Outgoing(oid, encoding, base, payload, start)
    cut = [outgoing.next_piece()]
    while not outgoing.done:
        cut.append(outgoing.next_piece())
    return cut
