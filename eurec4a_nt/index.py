"""The site server's index: object sizes and last access, wants, prefetch rules and
bytes moved per link and day, in SQLite (WAL).

Everything here except wants, rules and byte counts can be rebuilt from the store;
:meth:`Index.rebuild` does so after an unclean shutdown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .ids import ObjectId
from .sqlitefile import SQLiteFile
from .stores.base import ObjectStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, size INTEGER NOT NULL, last_access REAL NOT NULL);
CREATE INDEX IF NOT EXISTS objects_lru ON objects(last_access);
CREATE TABLE IF NOT EXISTS wants (id TEXT NOT NULL, site TEXT NOT NULL, requester TEXT NOT NULL,
                                  created REAL NOT NULL, span TEXT, PRIMARY KEY (id, requester));
CREATE TABLE IF NOT EXISTS rules (id INTEGER PRIMARY KEY AUTOINCREMENT, topics TEXT NOT NULL,
                                  sites TEXT NOT NULL, names TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS traffic (link TEXT NOT NULL, day TEXT NOT NULL, sent INTEGER NOT NULL,
                                    received INTEGER NOT NULL, PRIMARY KEY (link, day));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS wants_site ON wants(site);
CREATE INDEX IF NOT EXISTS wants_requester ON wants(requester);
CREATE TABLE IF NOT EXISTS named (id TEXT PRIMARY KEY) WITHOUT ROWID;
"""

#: Wants kept per site of the data and per requester; more are not recorded.
MAX_WANTS_PER_SITE = 10_000
MAX_WANTS_PER_REQUESTER = 1_000
#: Seconds after which a want nobody satisfied is forgotten.
WANT_TTL = 3 * 86400


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Want:
    """An object someone asked for while the site holding it was out of reach."""

    id: ObjectId
    site: str
    requester: str
    span: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Rule:
    """A prefetch rule: hold every entry matching topics (any), sites and name patterns."""

    id: int
    topics: tuple[str, ...]
    sites: tuple[str, ...]
    names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "topics": list(self.topics), "sites": list(self.sites),
                "names": list(self.names)}


class Index(SQLiteFile):
    """SQLite state of one site server; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        self._touched: dict[str, float] = {}

    def close(self) -> None:
        self.flush_access()
        self.set_meta("clean", "1")
        super().close()

    # -- meta and recovery -------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def open_session(self, store: ObjectStore) -> bool:
        """Mark the index in use; rebuild it first if the last run did not close it.

        Returns True if a rebuild happened.
        """
        rebuilt = self.get_meta("clean") != "1"
        if rebuilt:
            self.rebuild(store)
        self.set_meta("clean", "0")
        return rebuilt

    def rebuild(self, store: ObjectStore) -> None:
        """Re-read which objects the store holds and their sizes, from the store's
        listing (:meth:`ObjectStore.sizes`: no request per object on S3)."""
        now = time.time()
        known = {row[0]: row[1] for row in self._query("SELECT id, last_access FROM objects")}
        rows = [(oid, size, known.get(oid, now)) for oid, size in store.sizes()]
        with self._tx() as db:
            db.execute("DELETE FROM objects")
            db.executemany("INSERT INTO objects VALUES (?, ?, ?)", rows)

    # -- objects -----------------------------------------------------------------------

    def added(self, items: Iterable[tuple[ObjectId, int]]) -> None:
        now = time.time()
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO objects VALUES (?, ?, ?)",
                           [(oid, size, now) for oid, size in items])

    def removed(self, oids: Iterable[ObjectId]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM objects WHERE id=?", [(o,) for o in oids])

    def touch(self, oid: ObjectId) -> None:
        """Note a read; written in batches by :meth:`flush_access`."""
        self._touched[oid] = time.time()

    def flush_access(self) -> None:
        touched, self._touched = self._touched, {}
        if touched:
            with self._tx() as db:
                db.executemany("UPDATE objects SET last_access=? WHERE id=?",
                               [(t, oid) for oid, t in touched.items()])

    def total_size(self) -> int:
        return int(self._query("SELECT COALESCE(SUM(size), 0) FROM objects")[0][0])

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM objects")[0][0])

    def least_recent(self, limit: int = 1000) -> list[tuple[ObjectId, int]]:
        rows = self._query("SELECT id, size FROM objects ORDER BY last_access LIMIT ?", (limit,))
        return [(ObjectId.parse(i), int(s)) for i, s in rows]

    # -- wants -------------------------------------------------------------------------

    def want(self, oids: Iterable[ObjectId], site: str, requester: str,
             spans: dict[ObjectId, tuple[int, int]] | None = None) -> int:
        """Record that ``requester`` wants objects of ``site`` (for a record, maybe only
        the blocks of a byte span); return how many new wants were recorded.

        Bounded: wants older than :data:`WANT_TTL` are forgotten, and beyond
        :data:`MAX_WANTS_PER_SITE` for the site or :data:`MAX_WANTS_PER_REQUESTER` for
        the requester nothing new is recorded (one want per id and requester).
        """
        now, spans = time.time(), spans or {}
        with self._tx() as db:
            db.execute("DELETE FROM wants WHERE created < ?", (now - WANT_TTL,))
            (per_site,), = db.execute("SELECT COUNT(*) FROM wants WHERE site=?", (site,)).fetchall()
            (per_requester,), = db.execute("SELECT COUNT(*) FROM wants WHERE requester=?", (requester,)).fetchall()
            room = max(min(MAX_WANTS_PER_SITE - per_site, MAX_WANTS_PER_REQUESTER - per_requester), 0)
            new = [oid for oid in dict.fromkeys(oids) if not db.execute(
                "SELECT 1 FROM wants WHERE id=? AND requester=?", (oid, requester)).fetchall()]
            db.executemany("INSERT INTO wants VALUES (?, ?, ?, ?, ?)",
                           [(oid, site, requester, now, json.dumps(spans[oid]) if oid in spans else None)
                            for oid in new[:room]])
            db.executemany("UPDATE wants SET span=? WHERE id=? AND requester=? AND span IS NULL",
                           [(json.dumps(spans[oid]), oid, requester) for oid in oids if oid in spans])
        return min(len(new), room)

    def wants(self, site: str | None = None) -> list[Want]:
        """Pending wants (not expired), oldest first, one per id."""
        sql = "SELECT id, site, requester, span FROM wants WHERE created >= ?"
        args: tuple[Any, ...] = (time.time() - WANT_TTL,)
        if site:
            sql, args = sql + " AND site=?", (*args, site)
        rows = self._query(sql + " GROUP BY id ORDER BY MIN(created)", args)
        return [Want(ObjectId.parse(i), s, r, tuple(json.loads(span)) if span else None)
                for i, s, r, span in rows]

    def forget_wants(self, oids: Iterable[ObjectId], site: str) -> None:
        """Drop wants of ``site``'s data for ids that site said it does not hold."""
        with self._tx() as db:
            db.executemany("DELETE FROM wants WHERE id=? AND site=?", [(o, site) for o in oids])

    # -- ids named by records and manifests held ----------------------------------------

    def name(self, oids: Iterable[ObjectId]) -> None:
        """Note ids that a record or manifest stored here names (what a reader may earn a want for)."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO named VALUES (?)", [(o,) for o in oids])

    def named(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        """Those of ``oids`` some record or manifest stored here names."""
        with self._lock:
            return {oid for oid in oids if self._db.execute("SELECT 1 FROM named WHERE id=?", (oid,)).fetchall()}

    def wanted_by(self, oid: ObjectId) -> list[str]:
        return [r for (r,) in self._query("SELECT requester FROM wants WHERE id=?", (oid,))]

    def satisfied(self, oids: Iterable[ObjectId]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM wants WHERE id=?", [(o,) for o in oids])

    # -- prefetch rules ----------------------------------------------------------------

    def add_rule(self, topics: Iterable[str], sites: Iterable[str], names: Iterable[str]) -> Rule:
        t, s, n = tuple(sorted(set(topics))), tuple(sorted(set(sites))), tuple(sorted(set(names)))
        for rule in self.rules():
            if (rule.topics, rule.sites, rule.names) == (t, s, n):
                return rule
        with self._tx() as db:
            cur = db.execute("INSERT INTO rules (topics, sites, names, created) VALUES (?, ?, ?, ?)",
                             (json.dumps(t), json.dumps(s), json.dumps(n), time.time()))
            return Rule(int(cur.lastrowid or 0), t, s, n)

    def remove_rule(self, rule_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM rules WHERE id=?", (rule_id,))

    def rules(self) -> list[Rule]:
        rows = self._query("SELECT id, topics, sites, names FROM rules ORDER BY id")
        return [Rule(int(i), tuple(json.loads(t)), tuple(json.loads(s)), tuple(json.loads(n)))
                for i, t, s, n in rows]

    # -- traffic -----------------------------------------------------------------------

    def count_traffic(self, link: str, sent: int = 0, received: int = 0) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO traffic VALUES (?, ?, ?, ?) ON CONFLICT(link, day) DO UPDATE "
                       "SET sent = sent + excluded.sent, received = received + excluded.received",
                       (link, today(), sent, received))

    def traffic(self, link: str, day: str | None = None) -> tuple[int, int]:
        rows = self._query("SELECT sent, received FROM traffic WHERE link=? AND day=?",
                           (link, day or today()))
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
