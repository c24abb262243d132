"""Summaries of every site's folders in the log state (see :mod:`eurec4a_nt.logstate`),
kept up to date in the transaction that applies each commit: the folder, series
template and time of every current name, the number of names directly in a folder by
template, and the number of entries below every folder. A folder's catalog reads its
own rows (a few indexed queries per sub-folder and series, and the entries shown),
never every entry of the site.

They depend on the names alone (see :mod:`eurec4a_nt.series`): replacing an entry
changes none of them. ``summarized`` holds the seq they are of; where it differs from
the site's head (a state written by an earlier version, or by one that skipped them),
they are made again from the names in one transaction before they are read.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from .entries import Entry
from .folders import Folder, Span, find_product, make_folder, non_empty
from .series import Product, stamp_of, template_at

if TYPE_CHECKING:
    from .logstate import LogState

SCHEMA = """
CREATE TABLE IF NOT EXISTS folder_names (site TEXT NOT NULL, folder TEXT NOT NULL, template TEXT NOT NULL,
    name TEXT NOT NULL, time TEXT NOT NULL, PRIMARY KEY (site, folder, template, name)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS folder_names_time ON folder_names(site, template, time);
CREATE TABLE IF NOT EXISTS folder_templates (site TEXT NOT NULL, folder TEXT NOT NULL,
    template TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (site, folder, template)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folder_counts (site TEXT NOT NULL, parent TEXT NOT NULL, folder TEXT NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (site, parent, folder)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summarized (site TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""
_TABLES = ("folder_names", "folder_templates", "folder_counts", "summarized")


def _place(name: str) -> tuple[str, str, str]:
    """The folder of ``name``, its template ("" without a timestamp) and the time it says."""
    folder = name[:name.rfind("/") + 1]
    stamp = stamp_of(name)
    return (folder, "", "") if stamp is None else (folder, template_at(name, stamp), stamp.time.isoformat())


def _parents(name: str) -> Iterator[tuple[str, str]]:
    """``(parent, folder)`` of every folder ``name`` is below, but the top one."""
    end = name.find("/")
    while end >= 0:
        folder = name[:end + 1]
        yield folder[:folder.rfind("/", 0, end) + 1], folder
        end = name.find("/", end + 1)


def summarized(db: sqlite3.Connection, site: str) -> bool:
    """Whether the summaries of ``site`` are of the seq its state is at."""
    held = db.execute("SELECT seq FROM summarized WHERE site=?", (site,)).fetchone()
    head = db.execute("SELECT seq FROM heads WHERE site=?", (site,)).fetchone()
    return (held[0] if held else 0) == (head[0] if head else 0)


def mark(db: sqlite3.Connection, site: str, seq: int) -> None:
    """Note that the summaries of ``site`` are of ``seq``."""
    db.execute("INSERT OR REPLACE INTO summarized VALUES (?, ?)", (site, seq))


def change(db: sqlite3.Connection, site: str, added: Iterable[str], removed: Iterable[str] = ()) -> None:
    """Count the new names ``added`` in and the names ``removed`` out (in the transaction
    that changes the entries; no name in both)."""
    for names, sign in ((list(removed), -1), (list(added), 1)):
        placed = [(name, *_place(name)) for name in names]
        if sign > 0:
            db.executemany("INSERT INTO folder_names VALUES (?, ?, ?, ?, ?)",
                           [(site, folder, template, name, time) for name, folder, template, time in placed])
        else:
            db.executemany("DELETE FROM folder_names WHERE site=? AND folder=? AND template=? AND name=?",
                           [(site, folder, template, name) for name, folder, template, _ in placed])
        _count(db, site, "folder_templates", ("folder", "template"),
               Counter((folder, template) for _, folder, template, _ in placed), sign)
        _count(db, site, "folder_counts", ("parent", "folder"),
               Counter(key for name in names for key in _parents(name)), sign)


def _count(db: sqlite3.Connection, site: str, table: str, columns: tuple[str, str],
           counts: Counter[tuple[str, str]], sign: int) -> None:
    """Add ``sign`` times ``counts`` to the counts of ``table`` by ``columns``; drop those
    that reach 0."""
    keys = ", ".join(columns)
    db.executemany(f"INSERT INTO {table} (site, {keys}, count) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT DO UPDATE SET count = count + excluded.count",
                   [(site, *key, sign * n) for key, n in counts.items()])
    if sign < 0:
        where = " AND ".join(f"{c}=?" for c in columns)
        db.executemany(f"DELETE FROM {table} WHERE site=? AND {where} AND count <= 0",
                       [(site, *key) for key in counts])


def rebuild(db: sqlite3.Connection, site: str) -> None:
    """Make the summaries of ``site`` again from its current names (in a transaction)."""
    forget(db, site)
    change(db, site, [name for (name,) in db.execute("SELECT name FROM entries WHERE site=?", (site,))])
    head = db.execute("SELECT seq FROM heads WHERE site=?", (site,)).fetchone()
    mark(db, site, head[0] if head else 0)


def forget(db: sqlite3.Connection, site: str) -> None:
    """Drop the summaries of ``site``."""
    for table in _TABLES:
        db.execute(f"DELETE FROM {table} WHERE site=?", (site,))


class Summary:
    """The summaries of one site, read in one transaction of ``db`` (see
    :meth:`~eurec4a_nt.logstate.LogState.summary`): what :func:`~eurec4a_nt.folders.make_folder`
    makes a folder of."""

    def __init__(self, db: sqlite3.Connection, site: str) -> None:
        self.db, self.site = db, site

    def groups(self, prefix: str) -> dict[str, int]:
        rows = self.db.execute("SELECT template, count FROM folder_templates WHERE site=? AND folder=?",
                               (self.site, prefix))
        return dict(rows.fetchall())

    def sub_folders(self, prefix: str) -> dict[str, int]:
        rows = self.db.execute("SELECT folder, count FROM folder_counts WHERE site=? AND parent=? ORDER BY folder",
                               (self.site, prefix))
        return {folder[len(prefix):-1]: count for folder, count in rows}

    def span(self, prefix: str, template: str) -> Span:
        def one(sql: str, *args: str) -> str:
            return str(self.db.execute(sql, (self.site, *args)).fetchone()[0])

        by_time = "FROM folder_names WHERE site=? AND template=?"  # on the time index
        by_name = "FROM folder_names WHERE site=? AND folder=? AND template=?"
        return Span(one(f"SELECT MIN(time) {by_time}", template), one(f"SELECT MAX(time) {by_time}", template),
                    one(f"SELECT MIN(name) {by_name}", prefix, template),
                    one(f"SELECT MAX(name) {by_name}", prefix, template))

    def entries(self, prefix: str, template: str) -> list[Entry]:
        rows = self.db.execute(
            "SELECT e.body FROM folder_names n JOIN entries e ON e.site = n.site AND e.name = n.name "
            "WHERE n.site=? AND n.folder=? AND n.template=? ORDER BY n.name", (self.site, prefix, template))
        return [Entry.from_stored(body, self.site) for (body,) in rows]

    def entry(self, name: str) -> Entry:
        row = self.db.execute("SELECT body FROM entries WHERE site=? AND name=?", (self.site, name)).fetchone()
        return Entry.from_stored(row[0], self.site)

    def members(self, template: str, start: datetime, end: datetime) -> list[tuple[str, Entry]]:
        """The time and entry of every name of ``template`` with a time in ``[start, end)``,
        oldest first (names of one time in name order)."""
        rows = self.db.execute(
            "SELECT n.time, e.body FROM folder_names n JOIN entries e ON e.site = n.site AND e.name = n.name "
            "WHERE n.site=? AND n.template=? AND n.time>=? AND n.time<? ORDER BY n.time, n.name",
            (self.site, template, start.isoformat(), end.isoformat()))
        return [(time, Entry.from_stored(body, self.site)) for time, body in rows]


class SiteFolders:
    """Folders and series of ``site`` as its log state is now, read from the summaries:
    what :class:`~eurec4a_nt.listing.SiteIndex` offers for them, without holding every
    entry (for a site without a product map); ``seq`` is where the log stood when it
    was made (what it reads may be newer)."""

    def __init__(self, state: LogState, site: str) -> None:
        self.state, self.site = state, site
        self.seq = state.head(site).seq

    def folder(self, prefix: str = "") -> Folder:
        """The folder ``prefix`` (``""`` or ending in ``/``); :class:`NotFound` if empty
        and not the top."""
        with self.state.summary(self.site) as summary:
            return non_empty(make_folder(summary, prefix))

    def product(self, path: str) -> Product:
        """The product ``FOLDER/KEY`` (or ``KEY`` in the top folder); NotFound if none."""
        return find_product(self.site, path, self._folder)

    def _folder(self, prefix: str) -> Folder:
        with self.state.summary(self.site) as summary:
            return make_folder(summary, prefix)

    def members(self, product: Product, start: datetime, end: datetime) -> list[Entry]:
        """The entries of ``product`` whose name time is in ``[start, end)``, oldest first."""
        with self.state.summary(self.site) as summary:
            return [entry for _, entry in summary.members(product.template, start, end)]

    def days(self, product: Product) -> dict[str, list[Entry]]:
        """The entries of ``product`` by day (``YYYY-MM-DD``), days and entries in time order."""
        out: dict[str, list[Entry]] = {}
        with self.state.summary(self.site) as summary:
            for time, entry in summary.members(product.template, datetime.min, datetime.max):
                out.setdefault(time[:10], []).append(entry)
        return out
