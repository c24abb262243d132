"""CAR v1 files (IPFS content archives) of raw SHA-256 blocks: the bundle file format.

A CAR file is a header (DAG-CBOR ``{"roots": [CID], "version": 1}``) and then blocks,
each framed as ``varint(len(cid) + len(data)) cid data``. Every object id here is the
SHA-256 of raw bytes, so each block's CID is a CIDv1 with the raw codec (0x55) and a
sha2-256 multihash (0x12): ``ipfs dag import`` takes our files unchanged. Reading
checks every block's bytes against its CID; nothing unverified is ever returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import BinaryIO

from .errors import BadInput, Corrupt
from .ids import Hashed, ObjectId

RAW, SHA2_256 = 0x55, 0x12
_CID_PREFIX = bytes([0x01, RAW, SHA2_256, 32])
#: Largest block accepted when reading (objects are at most 256 MiB, see frames.py).
MAX_BLOCK = (256 << 20) + 64


def varint(n: int) -> bytes:
    """Unsigned LEB128, as multiformats use it."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def cid(oid: ObjectId) -> bytes:
    """The binary CIDv1 (raw, sha2-256) of an object id."""
    return _CID_PREFIX + bytes.fromhex(oid)


_HEADER_HEAD = b"\xa2\x65roots\x81\xd8\x2a\x58\x25\x00" + _CID_PREFIX
_HEADER_TAIL = b"\x67version\x01"


def header(root: ObjectId) -> bytes:
    """The framed CAR v1 header naming one root: DAG-CBOR ``{"roots": [root], "version": 1}``
    (a link is tag 42 over a byte string of a 0 byte and the binary CID)."""
    body = _HEADER_HEAD + bytes.fromhex(root) + _HEADER_TAIL
    return varint(len(body)) + body


def block(oid: ObjectId, data: bytes) -> bytes:
    """One framed block (the caller vouches that ``data`` hashes to ``oid``)."""
    c = cid(oid)
    return varint(len(c) + len(data)) + c + data


def _read_varint(f: BinaryIO) -> int | None:
    """The next varint, or None at a clean end of the file."""
    n = shift = 0
    for i in range(10):
        byte = f.read(1)
        if not byte:
            if i == 0:
                return None
            raise Corrupt("the bundle ends inside a block length: it is truncated")
        n |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            return n
    raise Corrupt("a block length in the bundle is malformed")


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise Corrupt(f"the bundle ends inside {what}: it is truncated")
    return data


def read_header(f: BinaryIO) -> ObjectId:
    """Read the header of a CAR v1 file as written by :func:`header` and return its root;
    raise :class:`BadInput` for any other file."""
    length = _read_varint(f)
    size = len(_HEADER_HEAD) + 32 + len(_HEADER_TAIL)
    body = _read_exact(f, size, "the header") if length == size else b""
    if not (body.startswith(_HEADER_HEAD) and body.endswith(_HEADER_TAIL)):
        raise BadInput("not a bundle: the file does not start with a CAR v1 header "
                       "naming one raw sha2-256 root")
    return ObjectId.parse(body[len(_HEADER_HEAD):-len(_HEADER_TAIL)].hex())


def read_blocks(f: BinaryIO) -> Iterator[Hashed]:
    """Every block after the header as ``(id, bytes)``, each verified against its CID
    (as :class:`~eurec4a_nt.ids.Hashed`, so a store does not hash it again).

    Raises :class:`Corrupt` at the first block whose bytes do not match its CID, or
    where the file is truncated; :class:`BadInput` for a CID that is not raw sha2-256.
    """
    index = 0
    while (length := _read_varint(f)) is not None:
        index += 1
        if not len(_CID_PREFIX) + 32 <= length <= MAX_BLOCK:
            raise Corrupt(f"block {index} of the bundle has an impossible length {length}")
        prefix = _read_exact(f, len(_CID_PREFIX), f"block {index}")
        if prefix != _CID_PREFIX:
            raise BadInput(f"block {index} of the bundle is not a raw sha2-256 block (CID {prefix.hex()}...)")
        digest = _read_exact(f, 32, f"block {index}")
        data = _read_exact(f, length - len(_CID_PREFIX) - 32, f"block {index}")
        if hashlib.sha256(data).digest() != digest:
            raise Corrupt(f"block {index} of the bundle ({digest.hex()[:12]}) does not match its "
                          "hash: the file was damaged; nothing of it was made visible")
        yield Hashed(ObjectId.parse(digest.hex()), data)
