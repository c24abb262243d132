"""The framing of many objects in one HTTP body: ``<id> <length>\\n<bytes>`` repeated.

A length of ``-1`` with no bytes says the sender does not hold that object. Framing
lets a slow link carry hundreds of small objects in one request, so a 700 ms round
trip is paid once, not per object.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO, Protocol

from .errors import BadInput, TooLarge
from .ids import ObjectId

#: Largest single object a frame may carry (blocks are at most 4 MiB; manifests can be larger).
MAX_OBJECT = 256 << 20
_MAX_HEADER = 100


def header(oid: ObjectId, length: int) -> bytes:
    return f"{oid} {length}\n".encode()


def parse_header(line: bytes) -> tuple[ObjectId, int]:
    """Parse ``<id> <length>``; raise :class:`BadInput` if malformed."""
    try:
        text, length_text = line.decode().strip().split(" ")
        length = int(length_text)
    except (UnicodeDecodeError, ValueError):
        raise BadInput(f"malformed frame header {line[:80]!r}: expected '<id> <length>'") from None
    if length < -1:
        raise BadInput(f"malformed frame header {line[:80]!r}: negative length")
    if length > MAX_OBJECT:
        raise TooLarge(f"object of {length} bytes in a frame; at most {MAX_OBJECT} allowed")
    return ObjectId.parse(text), length


class AsyncReader(Protocol):
    async def readline(self) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...


async def read_frames(reader: AsyncReader) -> AsyncIterator[tuple[ObjectId, bytes | None]]:
    """Frames from an aiohttp request body; raise BadInput if it is cut short."""
    while True:
        line = await reader.readline()
        if not line:
            return
        if len(line) > _MAX_HEADER or not line.endswith(b"\n"):
            raise BadInput("truncated or malformed frame header; send the batch again")
        oid, length = parse_header(line)
        if length < 0:
            yield oid, None
            continue
        try:
            data = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):  # the body ended early
            raise BadInput(f"body ended inside object {oid.short}: truncated upload; "
                           "send it again") from None
        yield oid, data


def iter_frames(raw: BinaryIO) -> Iterator[tuple[ObjectId, bytes | None]]:
    """Frames from a file-like response body; raise BadInput if it is cut short."""
    while True:
        line = raw.readline(_MAX_HEADER)
        if not line:
            return
        if not line.endswith(b"\n"):
            raise BadInput("truncated frame header in a batch response")
        oid, length = parse_header(line)
        if length < 0:
            yield oid, None
            continue
        data = raw.read(length)
        if len(data) != length:
            raise BadInput(f"batch response ended inside object {oid.short}")
        yield oid, data
