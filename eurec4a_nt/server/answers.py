"""Catalog answers kept built, by ETag: the newest in memory, more in a SQLite file
beside the log state (``state/catalogs.sqlite``).

An ETag names the log head(s) and the request, so an answer kept under it is never
stale: a restarted server answers a catalog it built before (same heads, same
request, same version of this package) with one indexed read instead of building the
site's index. Deleting the file costs a build per answer, nothing else.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from aiohttp import web

from ..sqlitefile import SQLiteFile

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (etag TEXT PRIMARY KEY, content_type TEXT NOT NULL,
    body BLOB NOT NULL, made REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS answers_made ON answers(made);
"""


class Built(NamedTuple):
    """The body of an answer and its content type (text, UTF-8); ``final`` False for
    an answer that may change without the log changing (it says something is not held
    here yet): neither kept nor given an ETag."""

    body: bytes
    content_type: str
    final: bool = True


class Answers(SQLiteFile):
    """Answers by ETag: ``in_memory`` of them kept in memory (least recently used goes
    first), ``on_disk`` bytes of them in the file (oldest built goes first). Safe from
    several threads and server processes; a failing write is not an error (the answer
    is built again next time)."""

    def __init__(self, path: Path, in_memory: int = 64, on_disk: int = 64 << 20) -> None:
        super().__init__(path, _SCHEMA)
        self.in_memory, self.on_disk = in_memory, on_disk
        self._kept: OrderedDict[str, Built] = OrderedDict()
        self._kept_lock = threading.Lock()

    def get(self, etag: str) -> Built | None:
        """The answer kept under ``etag``, or None (one indexed read when not in memory)."""
        with self._kept_lock:
            found = self._kept.get(etag)
            if found is not None:
                self._kept.move_to_end(etag)
                return found
        rows = self._query("SELECT body, content_type FROM answers WHERE etag=?", (etag,))
        if not rows:
            return None
        found = Built(bytes(rows[0][0]), rows[0][1])
        self._remember(etag, found)
        return found

    def put(self, etag: str, built: Built) -> None:
        """Keep ``built`` under ``etag``, dropping the oldest past the limits."""
        self._remember(etag, built)
        try:
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                           (etag, built.content_type, built.body, time.time()))
                db.execute("DELETE FROM answers WHERE made <= (SELECT made FROM (SELECT made, SUM(LENGTH(body)) "
                           "OVER (ORDER BY made DESC) AS kept FROM answers) WHERE kept > ? ORDER BY made DESC "
                           "LIMIT 1)", (self.on_disk,))
        except sqlite3.Error as exc:  # a full disk, a file locked too long: built again next time
            log.warning("keeping a catalog answer in %s: %s", self.path, exc)

    def _remember(self, etag: str, built: Built) -> None:
        with self._kept_lock:
            self._kept[etag] = built
            self._kept.move_to_end(etag)
            while len(self._kept) > self.in_memory:
                self._kept.popitem(last=False)


ANSWERS = web.AppKey("answers", Answers)
