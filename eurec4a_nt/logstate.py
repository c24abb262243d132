"""The state of every site log a store knows, in SQLite: heads, commits, current
entries, the versions they replaced, and forks seen.

This is a cache of the durable logs (see :mod:`eurec4a_nt.logfiles`): deleting
``state/logs.sqlite`` costs one replay of each log, nothing else. It makes every
question about a site's state cost the same at 100,000 entries as at 100: a process
opening a store reads only the commits appended since the state was last brought up
to date, and a query reads only the rows it returns.

Several threads and processes may share one state file; applying a commit is one
transaction that does nothing if another writer applied it first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import namechanges, summaries
from .entries import Entry
from .ids import ObjectId
from .schema import canonical
from .sqlitefile import SQLiteFile
from .summaries import Summary

if TYPE_CHECKING:
    from .log import Commit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS heads (site TEXT PRIMARY KEY, seq INTEGER NOT NULL, head TEXT,
    time TEXT NOT NULL, entries INTEGER NOT NULL, base INTEGER NOT NULL,
    position INTEGER NOT NULL, last_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commits (site TEXT NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
    PRIMARY KEY (site, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (site TEXT NOT NULL, name TEXT NOT NULL, root TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (site, name)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_root ON entries(root);
CREATE TABLE IF NOT EXISTS previous (site TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (site, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (site TEXT NOT NULL, seq INTEGER NOT NULL, root TEXT NOT NULL,
    size INTEGER NOT NULL, PRIMARY KEY (site, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forks (site TEXT NOT NULL, seq INTEGER NOT NULL, held TEXT NOT NULL,
    other TEXT NOT NULL, raw BLOB NOT NULL, seen TEXT NOT NULL, PRIMARY KEY (site, seq, other));
""" + summaries.SCHEMA + namechanges.SCHEMA

#: Names are ASCII (see :func:`~eurec4a_nt.entries.check_name`): this sorts after any.
_AFTER_ALL = "\x7f"
#: The tables of entries by name: the current ones, and the versions they replaced.
_TABLES = ("entries", "previous")
#: Entries :meth:`SiteState.list` returns at most per call.
MAX_PAGE = 10_000


def _body(entry: Entry) -> str:
    return canonical(entry.to_json()).decode()


class CheckpointRef(NamedTuple):
    """A checkpoint a commit names: the state at ``seq``, in the file record ``root`` of
    ``size`` bytes (see :mod:`eurec4a_nt.checkpoint`)."""

    seq: int
    root: ObjectId
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "root": self.root, "size": self.size}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CheckpointRef:
        """The reference in a body checked by the schema of its source (an answer of
        ``GET /logs/<site>/checkpoint``, a ``checkpoint`` link message); raises
        KeyError, ValueError or TypeError if it is malformed."""
        return cls(int(body["seq"]), ObjectId.parse(body["root"]), int(body["size"]))


@dataclass(frozen=True)
class Head:
    """Where a site's log stands: its seq and head commit id, the time of that commit,
    how many entries are current, the seq the log starts after (a checkpoint's, else
    0), and where the durable log was read up to (``position``; ``last_at`` is where
    its last commit starts, for checking it was not rewritten)."""

    seq: int = 0
    head: str | None = None
    time: str = ""
    entries: int = 0
    base: int = 0
    position: int = 0
    last_at: int = 0


@dataclass(frozen=True)
class Fork:
    """Two different commits, both validly signed, with one seq of one site."""

    site: str
    seq: int
    held: str
    other: str
    seen: str

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "seq": self.seq, "held": self.held, "other": self.other,
                "seen": self.seen}


class LogState(SQLiteFile):
    """The SQLite state of a store's site logs; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # -- heads -------------------------------------------------------------------------

    def head(self, site: str) -> Head:
        """Where the log of ``site`` stands here (all zero if nothing is held)."""
        rows = self._query("SELECT seq, head, time, entries, base, position, last_at FROM heads "
                           "WHERE site=?", (site,))
        return Head(*rows[0]) if rows else Head()

    def sites(self) -> list[str]:
        return [s for (s,) in self._query("SELECT site FROM heads ORDER BY site")]

    def heads(self) -> dict[str, Head]:
        rows = self._query("SELECT site, seq, head, time, entries, base, position, last_at FROM heads")
        return {row[0]: Head(*row[1:]) for row in rows}

    # -- changing ----------------------------------------------------------------------

    def reset(self, site: str, seen: Head, base: Head | None = None, entries: Iterable[Entry] = (),
              previous: Iterable[Entry] = ()) -> bool:
        """Forget what is held of ``site`` if the state still stands at ``seen``; with
        ``base``, start from a checkpoint's state (its entries, and the versions they
        replaced) at ``base.seq``, the durable log read up to ``base.position``.

        Returns False, changing nothing, if another writer moved the state since
        ``seen`` was read: it read the durable log as it is now.
        """
        with self._tx() as db:
            row = db.execute("SELECT seq, head, position FROM heads WHERE site=?", (site,)).fetchone()
            if (row or (0, None, 0)) != (seen.seq, seen.head, seen.position):
                return False
            for table in ("heads", "commits", "entries", "previous", "checkpoints"):
                db.execute(f"DELETE FROM {table} WHERE site=?", (site,))
            summaries.forget(db, site)
            namechanges.forget(db, site)
            if base is None:
                return True
            rows = [(site, e.name, e.root, _body(e)) for e in entries]
            db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO previous VALUES (?, ?, ?)",
                           [(site, e.name, _body(e)) for e in previous])
            db.execute("INSERT INTO heads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (site, base.seq, base.head, base.time, len(rows), base.seq, base.position, 0))
            summaries.rebuild(db, site)
            namechanges.mark(db, site, base.seq)
        return True

    def apply(self, batch: list[tuple[Commit, int, int]]) -> None:
        """Apply commits of one site, each the next after the one before, with the
        durable log's position after each and where each starts; one transaction.
        Commits another writer applied first are skipped; a commit that does not follow
        the state's head ends the batch, so the state never skips a commit.

        The caller has checked that the commits follow the head (seq and parent).
        """
        with self._tx() as db:
            site = batch[0][0].site
            row = db.execute("SELECT seq, entries, base FROM heads WHERE site=?", (site,)).fetchone()
            seq, count, base = row if row else (0, 0, 0)
            # else they are made again when next read
            summarize, versioned = summaries.summarized(db, site), namechanges.current(db, site)
            for commit, position, last_at in batch:
                if commit.seq <= seq:
                    continue
                if commit.seq != seq + 1:
                    break  # never jump a gap: the next refresh reads what is missing from the log
                count += self._apply_changes(db, commit, summarize)
                if versioned:
                    namechanges.add(db, site, commit.seq, (c.name for c in commit.changes))
                db.execute("INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (site, commit.seq, commit.id, commit.time, count, base, position, last_at))
                db.execute("INSERT INTO commits VALUES (?, ?, ?)", (site, commit.seq, commit.raw))
                if commit.checkpoint is not None:
                    db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)",
                               (site, *commit.checkpoint))
                seq = commit.seq
            if summarize:
                summaries.mark(db, site, seq)
            if versioned:
                namechanges.mark(db, site, seq)

    @staticmethod
    def _apply_changes(db: sqlite3.Connection, commit: Commit, summarize: bool) -> int:
        """Apply a commit's changes (to the summaries too with ``summarize``); return by
        how much the number of entries changed."""
        added = 0
        names: dict[str, int] = {}  # by name: +1 new, -1 gone, 0 both or replaced
        for change in commit.changes:
            old = db.execute("SELECT root, body FROM entries WHERE site=? AND name=?",
                             (commit.site, change.name)).fetchone()
            db.execute("DELETE FROM previous WHERE site=? AND name=?", (commit.site, change.name))
            if change.entry is not None:
                db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                           (commit.site, change.name, change.entry.root, _body(change.entry)))
                added += old is None
                names[change.name] = names.get(change.name, 0) + (old is None)
                if old is not None and old[0] != change.entry.root:
                    db.execute("INSERT INTO previous VALUES (?, ?, ?)", (commit.site, change.name, old[1]))
            elif old is not None:
                db.execute("DELETE FROM entries WHERE site=? AND name=?", (commit.site, change.name))
                added -= 1
                names[change.name] = names.get(change.name, 0) - 1
        if summarize:
            summaries.change(db, commit.site, [n for n, k in names.items() if k > 0],
                             [n for n, k in names.items() if k < 0])
        return added

    # -- commits -----------------------------------------------------------------------

    def commit_raws(self, site: str, after: int, limit: int) -> list[bytes]:
        """Raw commits of ``site`` with seq > ``after``, oldest first."""
        rows = self._query("SELECT raw FROM commits WHERE site=? AND seq>? ORDER BY seq LIMIT ?",
                           (site, after, limit))
        return [bytes(r) for (r,) in rows]

    def commit_raw(self, site: str, seq: int) -> bytes | None:
        rows = self._query("SELECT raw FROM commits WHERE site=? AND seq=?", (site, seq))
        return bytes(rows[0][0]) if rows else None

    def snapshot(self, site: str) -> tuple[Head, list[Entry], list[Entry]]:
        """The head, current entries and replaced versions of ``site``, read in one
        transaction (so consistent however many writers commit meanwhile)."""
        with self._reading() as db:
            head = self.head(site)
            rows = db.execute("SELECT body FROM entries WHERE site=? ORDER BY name", (site,))
            entries = [Entry.from_stored(body, site) for (body,) in rows]
            rows = db.execute("SELECT body FROM previous WHERE site=? ORDER BY name", (site,))
            previous = [Entry.from_stored(body, site) for (body,) in rows]
        return head, entries, previous

    def summarize(self, site: str) -> None:
        """Make the summaries of ``site``'s folders (see :mod:`eurec4a_nt.summaries`) again
        if they are not of the state's seq: once for a state an earlier version wrote
        (a few seconds at 100,000 entries)."""
        with self._lock:
            if not summaries.summarized(self._db, site):
                with self._tx() as db:
                    if not summaries.summarized(db, site):
                        summaries.rebuild(db, site)

    @contextmanager
    def summary(self, site: str) -> Iterator[Summary]:
        """The summaries of the folders of ``site``, read in one transaction."""
        with self._lock:
            self.summarize(site)
            with self._reading() as db:
                yield Summary(db, site)

    def index_changes(self, site: str) -> None:
        """Make the rows of which commits changed each name of ``site`` (see
        :mod:`eurec4a_nt.namechanges`) again if they are not of the state's seq: once for
        a state an earlier version wrote (about a second at 100,000 commits)."""
        with self._lock:
            if not namechanges.current(self._db, site):
                with self._tx() as db:
                    if not namechanges.current(db, site):
                        namechanges.rebuild(db, site)

    def changed(self, site: str, name: str) -> list[bytes]:
        """The raw commits of ``site`` that changed ``name``, oldest first."""
        with self._lock:
            self.index_changes(site)
            with self._reading() as db:
                return [bytes(raw) for seq in namechanges.seqs(db, site, name)
                        for (raw,) in db.execute("SELECT raw FROM commits WHERE site=? AND seq=?", (site, seq))]

    def checkpoint(self, site: str) -> CheckpointRef | None:
        """The newest checkpoint the log of ``site`` names, as far as it is held here."""
        rows = self._query("SELECT seq, root, size FROM checkpoints WHERE site=? ORDER BY seq DESC "
                           "LIMIT 1", (site,))
        return CheckpointRef(rows[0][0], ObjectId.parse(rows[0][1]), rows[0][2]) if rows else None

    # -- forks -------------------------------------------------------------------------

    def record_fork(self, site: str, seq: int, held: str, other: Commit, seen: str) -> bool:
        """Keep the proof of a fork; return True if it is news."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO forks VALUES (?, ?, ?, ?, ?, ?)",
                             (site, seq, held, other.id, other.raw, seen))
            return cur.rowcount > 0

    def forks(self) -> list[Fork]:
        rows = self._query("SELECT site, seq, held, other, seen FROM forks ORDER BY seen")
        return [Fork(*row) for row in rows]

    # -- entries -----------------------------------------------------------------------

    def entry(self, site: str, name: str, table: str = "entries") -> Entry | None:
        rows = self._query(f"SELECT body FROM {table} WHERE site=? AND name=?", (site, name))
        return Entry.from_stored(rows[0][0], site) if rows else None

    def entries(self, site: str, prefix: str = "", after: str = "", limit: int = MAX_PAGE,
                table: str = "entries") -> list[Entry]:
        """Entries of ``site`` whose names start with ``prefix`` and sort after ``after``,
        in name order, at most ``limit``."""
        low = max(prefix, after)
        op = ">" if after and after >= prefix else ">="
        rows = self._query(f"SELECT body FROM {table} WHERE site=? AND name {op} ? AND name < ? "
                           "ORDER BY name LIMIT ?", (site, low, prefix + _AFTER_ALL, limit))
        return [Entry.from_stored(body, site) for (body,) in rows]

    def count(self, site: str, prefix: str = "", table: str = "entries") -> int:
        if not prefix and table == "entries":
            return self.head(site).entries
        rows = self._query(f"SELECT COUNT(*) FROM {table} WHERE site=? AND name >= ? AND name < ?",
                           (site, prefix, prefix + _AFTER_ALL))
        return int(rows[0][0])

    def by_root(self, root: ObjectId) -> list[Entry]:
        """The current entries of any site whose root is ``root`` (one indexed query)."""
        rows = self._query("SELECT site, body FROM entries WHERE root=? ORDER BY site, name", (str(root),))
        return [Entry.from_stored(body, site) for site, body in rows]

    def roots(self, oids: Iterable[str]) -> set[str]:
        """Those of ``oids`` that are the root of a current entry of any site (one
        indexed lookup each, no entry read)."""
        with self._lock:
            return {oid for oid in oids
                    if self._db.execute("SELECT 1 FROM entries WHERE root=? LIMIT 1", (oid,)).fetchone()}


class EntryMap(Mapping[str, Entry]):
    """A read-only mapping name -> :class:`Entry` over the state, read when asked:
    ``m[name]``, ``name in m`` and ``len(m)`` cost one indexed query; iterating reads
    pages of :data:`MAX_PAGE` entries in name order."""

    def __init__(self, state: LogState, site: str, table: str = "entries") -> None:
        if table not in _TABLES:
            raise ValueError(f"no table {table!r}")
        self._state, self._site, self._table = state, site, table

    def __getitem__(self, name: str) -> Entry:
        found = self._state.entry(self._site, name, self._table) if isinstance(name, str) else None
        if found is None:
            raise KeyError(name)
        return found

    def get(self, name: str, default: Any = None) -> Any:
        found = self._state.entry(self._site, name, self._table) if isinstance(name, str) else None
        return default if found is None else found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._state.entry(self._site, name, self._table) is not None

    def __len__(self) -> int:
        return self._state.count(self._site, table=self._table)

    def __iter__(self) -> Iterator[str]:
        return (e.name for e in self.values())

    def values(self) -> Iterator[Entry]:  # type: ignore[override]
        return self.under("")

    def under(self, prefix: str) -> Iterator[Entry]:
        """The entries whose names start with ``prefix``, in name order, a query per
        page of :data:`MAX_PAGE`."""
        after = ""
        while True:
            page = self._state.entries(self._site, prefix, after, table=self._table)
            yield from page
            if len(page) < MAX_PAGE:
                return
            after = page[-1].name

    def items(self) -> Iterator[tuple[str, Entry]]:  # type: ignore[override]
        return ((e.name, e) for e in self.values())


class SiteState:
    """A site's state: ``seq``, ``head`` and ``time`` as of when it was taken; its
    entries read from the state when asked.

    The query API: :meth:`get`, :meth:`list` (by name prefix, paged) and
    :meth:`count`; ``entries`` and ``previous`` are read-only mappings by name.
    """

    def __init__(self, state: LogState, site: str, head: Head) -> None:
        self.site = site
        self.seq, self.head, self.time, self.base = head.seq, head.head, head.time, head.base
        self._state = state
        self.entries = EntryMap(state, site)
        #: The version each current entry replaced, where it replaced one.
        self.previous = EntryMap(state, site, "previous")

    def get(self, name: str) -> Entry | None:
        """The current entry ``name``, or None."""
        return self._state.entry(self.site, name)

    def list(self, prefix: str = "", after: str = "", limit: int = 1000) -> list[Entry]:
        """Up to ``limit`` (at most :data:`MAX_PAGE`) current entries whose names start
        with ``prefix``, in name order, after the name ``after`` (the last of the
        previous page)."""
        return self._state.entries(self.site, prefix, after, max(0, min(limit, MAX_PAGE)))

    def count(self, prefix: str = "") -> int:
        """How many current entries have names starting with ``prefix``."""
        return self._state.count(self.site, prefix)
