"""Which commits changed each name, in the log state (see :mod:`eurec4a_nt.logstate`):
one row per change, kept in the transaction that applies its commit, so the versions of
one entry cost a read of its own commits, never of the whole log.

``versioned`` holds the seq the rows are of; where it differs from the site's head (a
state written by an earlier version) they are made again from the commits held, once,
before they are read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import msgspec

SCHEMA = """
CREATE TABLE IF NOT EXISTS name_changes (site TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (site, name, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versioned (site TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


class _Named(msgspec.Struct):
    name: str


class _Changes(msgspec.Struct):
    seq: int
    changes: list[_Named]


#: Reads only the seq and the names of a stored commit (checked when it arrived).
_names = msgspec.json.Decoder(_Changes)


def current(db: sqlite3.Connection, site: str) -> bool:
    """Whether the rows of ``site`` are of the seq its state is at."""
    held = db.execute("SELECT seq FROM versioned WHERE site=?", (site,)).fetchone()
    head = db.execute("SELECT seq FROM heads WHERE site=?", (site,)).fetchone()
    return (held[0] if held else 0) == (head[0] if head else 0)


def add(db: sqlite3.Connection, site: str, seq: int, names: Iterable[str]) -> None:
    """Note that commit ``seq`` of ``site`` changed ``names``."""
    db.executemany("INSERT OR IGNORE INTO name_changes VALUES (?, ?, ?)", [(site, n, seq) for n in names])


def mark(db: sqlite3.Connection, site: str, seq: int) -> None:
    """Note that the rows of ``site`` are of ``seq``."""
    db.execute("INSERT OR REPLACE INTO versioned VALUES (?, ?)", (site, seq))


def forget(db: sqlite3.Connection, site: str) -> None:
    """Drop the rows of ``site``."""
    for table in ("name_changes", "versioned"):
        db.execute(f"DELETE FROM {table} WHERE site=?", (site,))


def rebuild(db: sqlite3.Connection, site: str) -> None:
    """Make the rows of ``site`` again from the commits held (in a transaction)."""
    forget(db, site)
    for (raw,) in db.execute("SELECT raw FROM commits WHERE site=? ORDER BY seq", (site,)).fetchall():
        commit = _names.decode(raw)
        add(db, site, commit.seq, (c.name for c in commit.changes))
    head = db.execute("SELECT seq FROM heads WHERE site=?", (site,)).fetchone()
    mark(db, site, head[0] if head else 0)


def seqs(db: sqlite3.Connection, site: str, name: str) -> list[int]:
    """The seqs of the commits of ``site`` that changed ``name``, oldest first."""
    return [s for (s,) in db.execute("SELECT seq FROM name_changes WHERE site=? AND name=? ORDER BY seq",
                                     (site, name))]
