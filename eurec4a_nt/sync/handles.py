"""Short names for objects sent in several pieces on one connection.

The id, encoding, base and total of an object repeat in the header of every piece of it
(40 bytes; at a slow link's 16 KiB pieces that is a quarter of a percent). To a peer that
takes batches, the first piece of such an object sent on a connection names it with the
next number (see :meth:`.wire.Piece.pack`), and its later pieces go as::

    'Q' | varint(number) | varint(offset) | bytes

Both ends keep the numbers alike, from the order of the messages alone: a number is
given up with its object's last piece, and at most :data:`LIMIT` are kept (opening one
more gives up the oldest, on both ends). Acknowledgements still count every piece at its
full size (:attr:`.wire.Piece.size`).
"""

from __future__ import annotations

from ..car import varint
from ..errors import BadInput
from ..ids import ObjectId
from .wire import Piece, read_varint

#: Numbers kept at once on each end of a connection.
LIMIT = 64


class Handles:
    """The numbers one end of a connection knows: :meth:`pack` on the sending end,
    :meth:`unpack` on the receiving end."""

    def __init__(self) -> None:
        self._heads: dict[int, Piece] = {}  #: number -> the object's first piece, without its bytes
        self._numbers: dict[ObjectId, int] = {}
        self._next = 0

    def pack(self, piece: Piece) -> bytes:
        """``piece`` as sent to a peer that takes batches."""
        if piece.whole:
            return piece.pack(compact=True)
        if piece.offset == 0 and piece.last:  # one piece: nothing to name
            return piece.pack()
        number = self._numbers.get(piece.oid)
        head = self._heads.get(number) if number is not None else None
        if number is not None and head is not None and (head.encoding, head.base, head.total) == (
                piece.encoding, piece.base, piece.total):
            message = b"Q" + varint(number) + varint(piece.offset) + piece.data
        else:
            number = self._open(piece)
            message = piece.pack(number=number)
        if piece.last:
            self._close(number)
        return message

    def unpack(self, message: bytes) -> Piece:
        """A piece as received, in either form; :class:`BadInput` if it is malformed or
        names a number not open here."""
        if message[:1] == b"Q":
            number, at = read_varint(message, 1)
            offset, at = read_varint(message, at)
            head = self._heads.get(number)
            if head is None:
                raise BadInput(f"a piece names object number {number}, which is not open")
            piece = Piece(head.oid, head.encoding, head.base, offset, head.total, message[at:]).checked()
        else:
            piece, named = Piece.unpack_named(message)
            if named is None:
                return piece
            if named != self._next:
                raise BadInput(f"a piece opens object number {named} where {self._next} was next")
            number = self._open(piece)
        if piece.last:
            self._close(number)
        return piece

    def _open(self, piece: Piece) -> int:
        number, self._next = self._next, self._next + 1
        self._heads[number] = Piece(piece.oid, piece.encoding, piece.base, 0, piece.total, b"")
        self._numbers[piece.oid] = number
        if len(self._heads) > LIMIT:
            self._close(next(iter(self._heads)))
        return number

    def _close(self, number: int) -> None:
        head = self._heads.pop(number, None)
        if head is not None and self._numbers.get(head.oid) == number:
            del self._numbers[head.oid]
