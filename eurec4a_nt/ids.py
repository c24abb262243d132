"""The object id: lowercase hex SHA-256 of an object's bytes.

An id is an immutable value. Every id that enters the system from outside goes
through :meth:`ObjectId.parse`, so anything typed ``ObjectId`` is well formed.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from .errors import BadInput

_ID_RE = re.compile(r"[0-9a-f]{64}")


class ObjectId(str):
    """A validated content address (64 lowercase hex digits)."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: object) -> ObjectId:
        """Return ``text`` as an id; raise :class:`BadInput` if it is not one."""
        if isinstance(text, ObjectId):
            return text
        if not isinstance(text, str) or not _ID_RE.fullmatch(text):
            shown = repr(text)[:80]
            raise BadInput(f"not an object id (64 lowercase hex digits): {shown}")
        return str.__new__(cls, text)

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> ObjectId:
        """The id of ``data``."""
        return str.__new__(cls, hashlib.sha256(data).hexdigest())

    @property
    def short(self) -> str:
        """The first 12 digits, for messages."""
        return self[:12]

    def path(self) -> str:
        """The object's relative path in a store: ``objects/<id[:2]>/<id>``."""
        return f"objects/{self[:2]}/{self}"


#: An object to store: its id and its bytes (``bytes``, or a read-only view of ``bytes``).
Item = tuple[ObjectId, "bytes | memoryview"]


class Hashed(NamedTuple):
    """Bytes together with the id computed from them while they were in hand.

    Made by :meth:`Hashed.of`, which hashes, or right after the bytes were checked
    against the id; a store takes the id as the verification of the write, so every
    byte of a publish or a fetch is hashed once. ``data`` is immutable: ``bytes``, or a
    read-only view of ``bytes`` (a block of a file being published, see
    :mod:`eurec4a_nt.chunking`), which is written as it is, never copied first.
    """

    id: ObjectId
    data: bytes | memoryview

    @classmethod
    def of(cls, data: bytes) -> Hashed:
        """``data`` and its id."""
        return cls(ObjectId.of(data), data)
