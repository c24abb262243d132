"""Verified parts of blocks over a link, between sides that take ``ranges`` (see
:mod:`.handshake`).

A reader at one site needs a few bytes of a block held only across the link. Rather
than the whole block (1 MiB on average, up to 4 MiB), its site asks for the leaves
holding them (:mod:`eurec4a_nt.hashtree`) with a ``ranges`` control message,
``{"type": "ranges", "ranges": [[id, start, end], ...]}`` (at most
:data:`~eurec4a_nt.schema.MAX_RANGES`), and the other side answers each range with one
binary message::

    'R' | flags (1 byte) | id (32 bytes) | varint(block size) | varint(first)
        | varint(length) | count (1 byte) | count x 32 bytes of proof | bytes

``[first, first + length)`` is the leaf-aligned run holding the range, and its bytes are
zstd-compressed where ``flags`` is 1 (:data:`~.wire.ZSTD`). The asking side keeps a run only if it asked for
exactly that run of that block, and only once it checks against the block's tree root
in the file record it holds (:func:`eurec4a_nt.hashtree.verify`); a range the other side
does not hold, or that runs beyond the block, is answered with a ``lack``. Answers are
paced and acknowledged like pieces (see :mod:`.pacing`).

A range of a third site's block names the file record holding it and the site
(``[id, start, end, record]`` and ``"site"``): a hub that lacks the block asks that site
for the same run, checks it against the tree root in that record, and passes it on with
its proof (:mod:`.prover`).
"""

from __future__ import annotations

import struct

import zstandard

from .. import hashtree
from ..car import varint
from ..chunking import MAX_BLOCK
from ..errors import BadInput
from ..ids import ObjectId
from ..parts import Part
from .wire import RAW, ZSTD, encode, read_varint

_HEAD = struct.Struct(">cB32s")
#: Proof hashes an answer may carry: two per tree level at most (a 4 MiB block has 8).
MAX_PROOF = 32


def answer(oid: ObjectId, block: bytes, start: int, end: int) -> bytes:
    """The answer to a range ``[start, end)`` of ``block`` (within it): the leaves
    holding it and their proof, compressed where that pays."""
    first, last = hashtree.span(len(block), start, end)
    return packed(Part(oid, len(block), first, hashtree.prove(block, first, last), block[first:last]))


def packed(part: Part) -> bytes:
    """The answer carrying ``part`` (leaves and their proof, as received from the site
    holding the block, for a range relayed)."""
    encoding, payload = encode(part.data)  # raw or zstd: no base
    return b"".join((_HEAD.pack(b"R", encoding, bytes.fromhex(part.oid)), varint(part.size), varint(part.first),
                     varint(len(part.data)), bytes((len(part.proof),)), *part.proof, payload))


def read_answer(message: bytes) -> Part:
    """An answer as received; :class:`BadInput` if it is malformed, names a block larger
    than a block can be, a run not on leaf boundaries or beyond its block, too many
    proof hashes, or bytes that do not decompress to exactly the run."""
    if len(message) < _HEAD.size:
        raise BadInput("short range answer")
    kind, flags, oid = _HEAD.unpack_from(message)
    if kind != b"R" or flags not in (RAW, ZSTD):
        raise BadInput("unknown range answer encoding")
    size, at = read_varint(message, _HEAD.size)
    first, at = read_varint(message, at)
    length, at = read_varint(message, at)
    if size > MAX_BLOCK or first % hashtree.LEAF or not 0 < length <= size - first:
        raise BadInput(f"a range answer of {length} bytes at {first} of a block of {size}: not a run of its leaves")
    count = message[at] if at < len(message) else MAX_PROOF + 1
    if count > MAX_PROOF or len(message) < at + 1 + 32 * count:
        raise BadInput("a range answer with a bad proof length")
    proof = [message[at + 1 + 32 * i:at + 33 + 32 * i] for i in range(count)]
    payload = message[at + 1 + 32 * count:]
    if flags == ZSTD:
        try:
            with zstandard.ZstdDecompressor().stream_reader(payload) as reader:
                payload = reader.read(length + 1)  # more is a bomb
        except zstandard.ZstdError as exc:
            raise BadInput(f"damaged range answer: {exc}") from None
    if len(payload) != length:
        raise BadInput(f"a range answer holds {len(payload)} bytes where it says {length}")
    return Part(ObjectId.parse(oid.hex()), size, first, proof, payload)
