"""What a watched folder has published: one SQLite row per file, keyed by folder and
path, with the size, mtime and content id it had when published.

A file whose size and mtime match its row is not read again; one whose bytes hash to
the content id of its row is not published again. So a restart publishes nothing
twice, and a file touched without changing publishes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS published (
    dir TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    root TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (dir, path));
"""


@dataclass(frozen=True)
class Published:
    """A file as it was when last published (or found already published)."""

    size: int
    mtime_ns: int
    root: str
    name: str


class WatchState:
    """The rows of one state file; safe for use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def get(self, directory: str, path: str) -> Published | None:
        with self._lock:
            row = self._db.execute("SELECT size, mtime_ns, root, name FROM published WHERE dir=? AND path=?",
                                   (directory, path)).fetchone()
        return Published(*row) if row else None

    def folder(self, directory: str) -> dict[str, Published]:
        """Every row of ``directory`` by path, in one query (for a scan of the folder)."""
        with self._lock:
            rows = self._db.execute("SELECT path, size, mtime_ns, root, name FROM published WHERE dir=?",
                                    (directory,)).fetchall()
        return {row[0]: Published(*row[1:]) for row in rows}

    def set_many(self, directory: str, items: list[tuple[str, Published]]) -> None:
        """Record files as published, in one transaction (durable when this returns)."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO published VALUES (?, ?, ?, ?, ?, ?)",
                                 [(directory, path, p.size, p.mtime_ns, p.root, p.name) for path, p in items])

    def close(self) -> None:
        with self._lock:
            self._db.close()
