"""Publishing many entries in one call: as many commits as the commit size limit needs,
each atomic, and nothing committed twice.

Entries are committed as they are built, in commits of at most :data:`BATCH_BYTES` of
changes, so a call cut short (a crash, a dropped LAN) keeps every commit it made; run
again, it stores no object twice and commits only entries that differ from the
current ones (the publication time aside).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .entries import Entry
from .log import MAX_COMMIT_BYTES, Change, Commit
from .schema import canonical

#: Bytes of changes in one commit at most (the rest of the limit is the envelope's).
BATCH_BYTES = MAX_COMMIT_BYTES * 3 // 4
#: Entries from which a server's entries under the names' common prefix are read once,
#: a page of 1,000 per request, to skip what is committed (below it, one request per
#: name: publishing through a server costs the same however many entries exist).
_LIST_FROM = 100


def same_entry(a: Entry | None, b: Entry) -> bool:
    """Whether ``a`` is ``b`` but for the time it was published."""
    if a is None:
        return False
    return {**a.to_json(), "published": ""} == {**b.to_json(), "published": ""}


def committed(target: Any, expected: int, prefix: str = "") -> Callable[[str], Entry | None]:
    """What is committed under a name at ``target``'s own site (a site store, the running
    server or a site-server client): asked name by name (an indexed query each, or a
    request each for fewer than ``_LIST_FROM`` names), or from a site server the entries
    under ``prefix`` (every name of the ``expected`` ones starts with it) read at once, a
    page of 1,000 per request."""
    site = target.site
    if not site or site not in target.sites():
        return lambda name: None
    if expected < _LIST_FROM or not hasattr(target, "entries_under"):
        return target.entries(site).get
    entries = {e.name: e for e in target.entries_under(site, prefix)}
    return entries.get


class Batches:
    """Commits entries to ``target`` (a site store or a site-server client) in batches.

    :meth:`add` each entry as it is built, then :meth:`close`. ``durable`` is called
    before each commit, to make the objects of its entries durable (a group commit's
    flush). ``published`` holds every entry as committed (or as already current, for
    one that was).
    """

    def __init__(self, target: Any, expected: int, durable: Callable[[], None] = lambda: None,
                 prefix: str = "") -> None:
        self.target = target
        self._durable = durable
        self.published: list[Entry] = []
        self.commits: list[Commit] = []
        self._changes: list[Change] = []
        self._size = 0
        self._current = committed(target, expected, prefix)

    def add(self, entry: Entry) -> None:
        current = self._current(entry.name)
        if same_entry(current, entry):
            assert current is not None
            self.published.append(current)
            return
        change = Change("put", entry.name, entry)
        size = len(canonical(change.to_json())) + 1
        if self._changes and self._size + size > BATCH_BYTES:
            self._commit()
        self._changes.append(change)
        self._size += size

    def _commit(self) -> None:
        self._durable()
        commit = self.target.commit(self._changes)
        self.commits.append(commit)
        self.published += [c.entry.with_site(commit.site) for c in self._changes if c.entry]
        self._changes, self._size = [], 0

    def close(self) -> None:
        """Commit what is left."""
        if self._changes:
            self._commit()
