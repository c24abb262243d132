"""Many blocks of a site server's entries at once, straight from the object store the
server keeps them in where it offers that (``serve --direct-reads``: signed URLs from
``POST /objects/urls``, see docs/http-api.md), else through the server.

Every block is checked against its id before it is used. A block that cannot be had
straight (its URL refused or expired, the object store out of reach, bytes that do not
hash to the id) is read through the server instead, and the read logs one line saying
how many and why; the server's answer is checked too, so a read never returns wrong
bytes. After a read none of whose blocks came straight, URLs are not asked for again
for :data:`PAUSE` seconds.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from ..ids import Hashed, ObjectId
from .base import verified

log = logging.getLogger(__name__)

#: Blocks fetched at once, straight or through the server.
AT_ONCE = 8
#: Seconds to connect to the object store, and to wait for its answer.
TIMEOUT = (5, 60)
#: Seconds URLs are not asked for after a read none of whose blocks came straight.
PAUSE = 300.0
#: The part of a URL's life it is used in (a fetch queued behind others, clocks apart).
USABLE = 0.8

#: ``(id -> URL, seconds they are good for)`` for some ids: the server's answer.
Signer = Callable[[list[ObjectId]], tuple[dict[ObjectId, str], int]]
_S3_CODE = re.compile(rb"<Code>([A-Za-z]{1,64})</Code>")


class DirectReads:
    """The fetching of many blocks at once for the readers of one site server."""

    def __init__(self, server: str) -> None:
        self.server = server
        #: Requests to the object store carry no token of the server's.
        self.bucket = requests.Session()
        self._pool: ThreadPoolExecutor | None = None
        self._guard = threading.Lock()
        #: ``time.monotonic()`` before which URLs are not asked for.
        self.paused_until = 0.0
        #: Blocks read straight from the object store, and through the server.
        self.straight = self.through = 0

    def get_many(self, oids: list[ObjectId], sign: Signer, through: Callable[[ObjectId], bytes]) -> list[Hashed]:
        """Each of ``oids`` (distinct) with its bytes, checked: straight with the URLs
        ``sign`` gives, then the rest (and those that failed) by ``through``,
        :data:`AT_ONCE` at a time."""
        urls: dict[ObjectId, str] = {}
        deadline = 0.0
        if time.monotonic() >= self.paused_until:
            asked = time.monotonic()
            urls, expires = sign(oids)
            deadline = asked + expires * USABLE
            if not urls:  # not offered: asked again after a pause
                self.paused_until = asked + PAUSE
        pool = self._threads()
        tried = dict(zip(urls, pool.map(lambda oid: self._straight(oid, urls[oid], deadline), urls), strict=True))
        got = {oid: item for oid, item in tried.items() if isinstance(item, Hashed)}
        with self._guard:
            self.straight += len(got)
            self.through += len(oids) - len(got)
        failed = [(oid, why) for oid, why in tried.items() if isinstance(why, str)]
        if failed:
            pause = not got
            if pause:
                self.paused_until = time.monotonic() + PAUSE
            log.warning("%d of %d blocks not read straight from the object store (%s: %s); read through %s "
                        "instead%s", len(failed), len(urls), failed[0][0].short, failed[0][1], self.server,
                        f"; direct reads paused for {PAUSE:.0f} s" if pause else "")
        rest = [oid for oid in oids if oid not in got]
        got.update(zip(rest, pool.map(lambda oid: _checked(oid, through(oid)), rest), strict=True))
        return [got[oid] for oid in oids]

    def _threads(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(AT_ONCE, thread_name_prefix="eurec4a-nt-blocks")
            return self._pool

    def _straight(self, oid: ObjectId, url: str, deadline: float) -> Hashed | str:
        """The block from the object store, checked; else why not."""
        if time.monotonic() > deadline:
            return "its URL expired before it was used"
        try:
            answer = self.bucket.get(url, timeout=TIMEOUT)
        except requests.RequestException as exc:
            return f"the object store is out of reach ({type(exc).__name__})"
        data = answer.content
        if answer.status_code != 200:
            code = _S3_CODE.search(data[:2000])
            return f"HTTP {answer.status_code}" + (f" {code.group(1).decode()}" if code else "")
        if ObjectId.of(data) != oid:
            return "its bytes do not match its id"
        return Hashed(oid, data)


def _checked(oid: ObjectId, data: bytes) -> Hashed:
    """``data`` as ``oid``; :class:`~eurec4a_nt.errors.Corrupt` unless it hashes to it."""
    return Hashed(verified(data, oid), data)
