"""What crosses a link: JSON control messages and binary object pieces.

An object travels as one or more pieces, each a binary WebSocket message::

    'P' | flags (1 byte) | id (32 bytes) | [base id (32 bytes)] | offset | total | bytes

The flags hold the encoding (low two bits) and whether a base id follows (``0x80``:
only a delta names one); ``offset`` and ``total`` are unsigned LEB128 varints (three
bytes for a 1 MiB block), so a piece of 64 KiB carries 40 bytes of header. They count
bytes of the *encoded* object, so a transfer cut by a drop resumes where it stopped.
To a peer that takes batches (below), an object sent raw and whole in one piece goes as
``'P' | 0x40 | bytes``: the receiver computes its id from the bytes instead of being told
one to check them against, which proves exactly as much.
Encodings: raw, zstd, or a zstd delta against a base object the receiver said it
holds. The receiver always verifies the decoded bytes against the id before keeping
them.

A control message is JSON text; one of more than :data:`SQUEEZE_ABOVE` bytes that
zstd shrinks travels as a binary message ``'Z' | zstd(JSON)`` (commit batches, want
lists), see :func:`squeeze` and :func:`unsqueeze`. The receiver of pieces
acknowledges them, ``'A' | varint`` (the piece bytes received so far), so the sender
can pace itself (see :mod:`.pacing`).

Small objects sent whole one after another (file records, manifests, metadata) travel
together to a peer that takes batches: ``'M' | varint(bytes of the pieces) | zstd(
(varint(length) | piece)...)``, see :func:`batch`. Compressed together, their JSON and
hex ids cost about half, and the message framing is paid once. Acknowledgements always
count pieces at their full size (:attr:`Piece.size`), however they travelled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import zstandard

from ..car import varint
from ..errors import BadInput, Corrupt
from ..ids import ObjectId

#: The largest piece; a sender cuts smaller ones on a slow link (see :mod:`.pacing`),
#: and a receiver takes pieces of any size.
PIECE = 64 << 10
#: Largest object a link carries, encoded or decoded: a peer cannot make this site hold
#: more for one object (blocks are at most 4 MiB; records and manifests are smaller).
MAX_OBJECT = 32 << 20
RAW, ZSTD, DELTA = 0, 1, 2
_HEAD = struct.Struct(">cB32s")
_HAS_BASE = 0x80
_WHOLE = 0x40
_NAMED = 0x20
_ENCODING = 0x03
#: Control messages above this size are sent compressed when that saves bytes.
SQUEEZE_ABOVE = 512
#: A compressed control message may not expand past this (a bomb is refused).
_MAX_MESSAGE = 64 << 20
_LEVEL = 3
#: Keep a compressed encoding only when it saves at least this fraction.
_WORTH = 0.9
#: A whole object's piece of at most this many bytes may travel in a batch.
BATCH_PIECE = 4 << 10
#: A batch is sent once its pieces hold a piece's bytes (see :mod:`.pacing`), at most this many.
BATCH_BYTES = PIECE


@dataclass(frozen=True)
class Piece:
    """One piece of an encoded object."""

    oid: ObjectId
    encoding: int
    base: ObjectId | None
    offset: int
    total: int
    data: bytes

    @property
    def size(self) -> int:
        """Length of :meth:`pack` (what the peer's acknowledgements count)."""
        return (_HEAD.size + (32 if self.base else 0) + len(varint(self.offset)) + len(varint(self.total))
                + len(self.data))

    @property
    def whole(self) -> bool:
        """Whether this is a raw object whole in one piece (its id is its bytes' hash)."""
        return self.encoding == RAW and self.base is None and self.offset == 0 and len(self.data) == self.total

    @property
    def last(self) -> bool:
        """Whether this piece ends its object."""
        return self.offset + len(self.data) >= self.total

    def pack(self, compact: bool = False, number: int | None = None) -> bytes:
        """The piece as sent; ``compact`` (to a peer that takes batches) leaves out the
        id, offset and total of a :attr:`whole` piece; ``number`` names the object for
        its later pieces (see :mod:`.handles`)."""
        if compact and self.whole:
            return bytes((ord("P"), RAW | _WHOLE)) + self.data
        flags = self.encoding | (_HAS_BASE if self.base else 0) | (_NAMED if number is not None else 0)
        head = _HEAD.pack(b"P", flags, bytes.fromhex(self.oid))
        base = bytes.fromhex(self.base) if self.base else b""
        name = varint(number) if number is not None else b""
        return b"".join((head, base, varint(self.offset), varint(self.total), name, self.data))

    @classmethod
    def unpack(cls, message: bytes) -> Piece:
        """A piece as received; :class:`BadInput` if it is malformed."""
        return cls.unpack_named(message)[0]

    @classmethod
    def unpack_named(cls, message: bytes) -> tuple[Piece, int | None]:
        """A piece as received and the number it names its object by, if any;
        :class:`BadInput` if it is malformed."""
        if message[:2] == bytes((ord("P"), RAW | _WHOLE)):
            data = message[2:]
            if len(data) > PIECE:  # hashed here to learn its id: no more than a piece
                raise BadInput(f"a piece without an id of {len(data)} bytes; at most {PIECE}")
            return cls(ObjectId.of(data), RAW, None, 0, len(data), data), None
        if len(message) < _HEAD.size:
            raise BadInput("short object piece")
        kind, flags, oid = _HEAD.unpack_from(message)
        encoding = flags & _ENCODING
        if kind != b"P" or encoding not in (RAW, ZSTD, DELTA) or flags & ~(_ENCODING | _HAS_BASE | _NAMED):
            raise BadInput("unknown piece kind or encoding")
        at, base, number = _HEAD.size, None, None
        if flags & _HAS_BASE:
            if len(message) < at + 32:
                raise BadInput("short object piece")
            base, at = ObjectId.parse(message[at:at + 32].hex()), at + 32
        offset, at = read_varint(message, at)
        total, at = read_varint(message, at)
        if flags & _NAMED:
            number, at = read_varint(message, at)
        piece = cls(ObjectId.parse(oid.hex()), encoding, base, offset, total, message[at:])
        return piece.checked(), number

    def checked(self) -> Piece:
        """This piece, if it lies within its object and the object is not too large;
        else :class:`BadInput`."""
        if self.offset + len(self.data) > self.total:
            raise BadInput("piece runs past the end of its object")
        if self.total > MAX_OBJECT:
            raise BadInput(f"object of {self.total} bytes in a piece; a link carries at most {MAX_OBJECT}")
        return self


def read_varint(message: bytes, at: int) -> tuple[int, int]:
    """The varint at ``at`` and where it ends; :class:`BadInput` if cut or over 9 bytes."""
    value = shift = 0
    for i in range(at, min(at + 9, len(message))):
        value |= (message[i] & 0x7F) << shift
        shift += 7
        if not message[i] & 0x80:
            return value, i + 1
    raise BadInput("bad length in an object piece")


def ack(total: int) -> bytes:
    """``'A' | varint``: the receiver holds ``total`` bytes of pieces of this session."""
    return b"A" + varint(total)


def read_ack(message: bytes) -> int:
    """The total of an acknowledgement; :class:`BadInput` if it is malformed."""
    total, end = read_varint(message, 1)
    if end != len(message):
        raise BadInput("bad acknowledgement")
    return total


def batch(pieces: list[Piece]) -> bytes:
    """Pieces as one message: ``'M' | varint(their full size) | zstd((varint(length) |
    compact piece)...)``."""
    body = b"".join(varint(len(p)) + p for p in (piece.pack(compact=True) for piece in pieces))
    return b"M" + varint(sum(p.size for p in pieces)) + zstandard.ZstdCompressor(level=_LEVEL).compress(body)


def batch_size(message: bytes) -> int:
    """The piece bytes a batch says it holds (what the receiver acknowledges for it,
    damaged or not); :class:`BadInput` if that is unreadable or implausible."""
    size, _ = read_varint(message, 1)
    if size > BATCH_BYTES + BATCH_PIECE:
        raise BadInput("a batch of pieces claims too many bytes")
    return size


def unbatch(message: bytes) -> list[Piece]:
    """The pieces of a batch; :class:`BadInput` if it is damaged, expands past what it
    claims, or its pieces do not add up to it."""
    size = batch_size(message)
    _, at = read_varint(message, 1)
    try:
        with zstandard.ZstdDecompressor().stream_reader(message[at:]) as reader:
            body = reader.read(size + size // 8 + 16)  # pieces and their lengths; more is a bomb
    except zstandard.ZstdError as exc:
        raise BadInput(f"damaged batch of pieces: {exc}") from None
    out, at = [], 0
    while at < len(body):
        length, at = read_varint(body, at)
        out.append(Piece.unpack(body[at:at + length]))
        at += length
    if at != len(body) or sum(p.size for p in out) != size:
        raise BadInput("a batch of pieces does not add up")
    return out


def squeeze(text: str) -> str | bytes:
    """A control message as sent: the JSON text, or ``'Z' | zstd(text)`` if that is smaller."""
    if len(text) <= SQUEEZE_ABOVE:
        return text
    packed = b"Z" + zstandard.ZstdCompressor(level=_LEVEL).compress(text.encode())
    return packed if len(packed) < len(text) * _WORTH else text


def unsqueeze(message: bytes) -> str:
    """The JSON text of a compressed control message; :class:`BadInput` if it is damaged
    or expands past the limit."""
    try:
        with zstandard.ZstdDecompressor().stream_reader(message[1:]) as reader:
            text = reader.read(_MAX_MESSAGE + 1)
        if len(text) > _MAX_MESSAGE:
            raise BadInput("a compressed control message expands too far")
        return text.decode()
    except (zstandard.ZstdError, UnicodeDecodeError) as exc:
        raise BadInput(f"damaged compressed control message: {exc}") from None


def encode(data: bytes, base: bytes | None = None, compress: bool = True) -> tuple[int, bytes]:
    """The cheapest encoding of ``data``: a delta against ``base``, zstd, or raw."""
    if base is not None:
        dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        # The window must reach back over the whole base, and the match tables must
        # be large enough to index it, or a 4 MiB block finds no matches.
        params = zstandard.ZstdCompressionParameters.from_level(
            _LEVEL, window_log=max(20, min((len(base) + len(data)).bit_length(), 27)),
            hash_log=20, chain_log=20)
        delta = zstandard.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(data)
        if len(delta) < len(data) * _WORTH:
            return DELTA, delta
    if compress and len(data) > 256:
        packed = zstandard.ZstdCompressor(level=_LEVEL).compress(data)
        if len(packed) < len(data) * _WORTH:
            return ZSTD, packed
    return RAW, data


def decode(encoding: int, payload: bytes, base: bytes | None, oid: ObjectId) -> bytes:
    """Decode and verify; raise :class:`Corrupt` if the result is not ``oid`` or would
    be larger than :data:`MAX_OBJECT` (a decompression bomb stops there, whatever size
    its frame claims)."""
    try:
        if encoding == RAW:
            data = payload
        else:
            dictionary = None
            if encoding == DELTA:
                if base is None:
                    raise Corrupt(f"delta for {oid.short} arrived but its base is not held")
                dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            reader = zstandard.ZstdDecompressor(dict_data=dictionary).stream_reader(payload)
            data = reader.read(MAX_OBJECT + 1)
            if len(data) > MAX_OBJECT:
                raise Corrupt(f"object {oid.short} decodes to more than {MAX_OBJECT} bytes: dropped")
    except zstandard.ZstdError as exc:
        raise Corrupt(f"object {oid.short} arrived damaged: {exc}") from None
    if ObjectId.of(data) != oid:
        raise Corrupt(f"object {oid.short} arrived damaged (hash mismatch)")
    return data


@dataclass
class Outgoing:
    """An encoded object being sent, cut into pieces as it goes: each piece as large
    as the sender chooses when it sends it."""

    oid: ObjectId
    encoding: int
    base: ObjectId | None
    payload: bytes
    offset: int = 0  #: where the next piece starts
    cut: bool = False  #: whether a piece was cut (an empty object is one empty piece)

    @property
    def done(self) -> bool:
        return self.cut and self.offset >= len(self.payload)

    def next_piece(self, size: int = PIECE) -> Piece:
        """The next piece, of at most ``size`` bytes of payload (0 < size <= PIECE)."""
        data = self.payload[self.offset:self.offset + size]
        piece = Piece(self.oid, self.encoding, self.base, self.offset, len(self.payload), data)
        self.offset += len(data)
        self.cut = True
        return piece


def message(kind: str, **body: Any) -> str:
    return json.dumps({"type": kind, **body}, separators=(",", ":"))
