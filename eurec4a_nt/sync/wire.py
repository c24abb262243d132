"""What crosses a link: JSON control messages and binary object pieces.

An object travels as one or more pieces, each a binary WebSocket message::

    'O' | encoding (1 byte) | id (32 bytes) | base id (32 bytes) | offset (8) | total (8) | bytes

``offset`` and ``total`` count bytes of the *encoded* object, so a transfer cut by a
drop resumes where it stopped. Encodings: raw, zstd, or a zstd delta against a base
object the receiver said it holds. The receiver always verifies the decoded bytes
against the id before keeping them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import zstandard

from ..errors import BadInput, Corrupt
from ..ids import ObjectId

PIECE = 64 << 10
#: Largest object a link carries, encoded or decoded: a peer cannot make this site hold
#: more for one object (blocks are at most 4 MiB; records and manifests are smaller).
MAX_OBJECT = 32 << 20
RAW, ZSTD, DELTA = 0, 1, 2
_HEADER = struct.Struct(">cB32s32sQQ")
_NO_BASE = bytes(32)
_LEVEL = 3
#: Keep a compressed encoding only when it saves at least this fraction.
_WORTH = 0.9


@dataclass(frozen=True)
class Piece:
    """One piece of an encoded object."""

    oid: ObjectId
    encoding: int
    base: ObjectId | None
    offset: int
    total: int
    data: bytes

    def pack(self) -> bytes:
        base = bytes.fromhex(self.base) if self.base else _NO_BASE
        return _HEADER.pack(b"O", self.encoding, bytes.fromhex(self.oid), base,
                            self.offset, self.total) + self.data

    @classmethod
    def unpack(cls, message: bytes) -> Piece:
        if len(message) < _HEADER.size:
            raise BadInput("short object piece")
        kind, encoding, oid, base, offset, total = _HEADER.unpack_from(message)
        if kind != b"O" or encoding not in (RAW, ZSTD, DELTA):
            raise BadInput("unknown piece kind or encoding")
        data = message[_HEADER.size:]
        if offset + len(data) > total:
            raise BadInput("piece runs past the end of its object")
        if total > MAX_OBJECT:
            raise BadInput(f"object of {total} bytes in a piece; a link carries at most {MAX_OBJECT}")
        return cls(ObjectId.parse(oid.hex()), encoding, ObjectId.parse(base.hex()) if base != _NO_BASE else None,
                   offset, total, data)


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


def pieces(oid: ObjectId, encoding: int, base: ObjectId | None, payload: bytes,
           start: int = 0) -> list[Piece]:
    """Cut an encoded object into pieces, from byte ``start``."""
    total = len(payload)
    offsets = range(start, total, PIECE) if total else [0]
    return [Piece(oid, encoding, base, o, total, payload[o:o + PIECE]) for o in offsets]


def message(kind: str, **body: Any) -> str:
    return json.dumps({"type": kind, **body}, separators=(",", ":"))
