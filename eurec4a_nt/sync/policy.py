"""Which entries cross a link, and how urgently: push, prefetch and lazy reads as
pure rules over entries and link settings.

- *push*: a new entry the peer subscribes to (its prefetch rules, the link's prefetch
  topics, or the topics the link pushes) is sent whole, as soon as this site holds
  all of it (store-and-forward: a relay passes on what it has received whole);
- *prefetch*: at every connection, a site asks for what it lacks of the entries it
  subscribes to;
- *lazy*: a reader's want goes over the session of the site holding the data, else
  over a dialled link that allows lazy reads.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..entries import Entry, check_topics
from ..ids import ObjectId
from .config import LinkConfig
from .outbox import Priority
from .plan import Wants, priority_key

T = TypeVar("T")


@dataclass
class Selection:
    """Entries of any of ``topics``, of any of ``sites`` and matching any of ``names``
    (an empty tuple matches all)."""

    topics: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def selects(self, entry: Entry) -> bool:
        return entry.matches(self.topics, self.sites, self.names)

    def to_json(self) -> dict[str, list[str]]:
        return {"topics": list(self.topics), "sites": list(self.sites), "names": list(self.names)}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Selection:
        return cls(check_topics(body.get("topics") or []), tuple(body.get("sites") or []),
                   tuple(str(n) for n in body.get("names") or []))


@dataclass
class Subscription:
    """What a site wants from its peer: entries any of the selections selects."""

    selections: list[Selection] = field(default_factory=list)

    def selects(self, entry: Entry) -> bool:
        return any(s.selects(entry) for s in self.selections)

    def to_json(self) -> dict[str, Any]:
        return {"any": [s.to_json() for s in self.selections]}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Subscription:
        return cls([Selection.from_json(s) for s in body.get("any") or [] if isinstance(s, dict)])


def subscription(rules: Iterable[Selection], link: LinkConfig | None, peer: str,
                 peer_push: tuple[str, ...]) -> Subscription:
    """What a site wants held from a peer: its prefetch ``rules``, the link's prefetch
    topics (dialling side), and what a dialling peer said it pushes."""
    out = list(rules)
    if link is not None and link.prefetch:
        out.append(Selection(link.prefetch, (), link.names))
    if link is None and peer_push:
        out.append(Selection(peer_push, (peer,)))
    return Subscription(out)


def pushed(entry: Entry, peer: str, link: LinkConfig | None, peer_wants: Subscription) -> bool:
    """Whether ``entry`` goes to ``peer`` unasked: the peer subscribes to it or the link
    pushes its topics. A peer is never sent its own entries."""
    if entry.site == peer:
        return False
    by_link = link is not None and bool(link.push) and entry.matches(link.push, (), link.names)
    return by_link or peer_wants.selects(entry)


def rank(entry: Entry, essential: Iterable[str], priority: Iterable[str]) -> tuple[Priority, tuple[Any, ...]]:
    """Priority and rank of an entry's objects on a link: essential topics before bulk;
    within them the link's topic order, small before large, new before old."""
    level = Priority.ESSENTIAL if set(entry.topics) & set(essential) else Priority.BULK
    return level, priority_key(entry, priority)


def to_complete(entries: Iterable[Entry], own: str, chosen: Subscription, skip: Container[ObjectId],
                priority: Iterable[str]) -> list[Entry]:
    """Prefetch: the entries of other sites ``chosen`` selects whose objects to check
    (all but those with a root in ``skip``), most urgent first."""
    order = tuple(priority)
    return sorted((e for e in entries if e.site != own and e.root not in skip and chosen.selects(e)),
                  key=lambda e: priority_key(e, order))


def by_priority(rounds: Iterable[tuple[Entry, Wants]], rank: Callable[[Entry], tuple[Priority, Any]],
                through: Callable[[Entry], str | None] = lambda e: None,
                ) -> list[tuple[Priority, str | None, Wants]]:
    """The wants of many entries merged per priority and per site a peer must fetch them
    from on this side's behalf (``through(entry)``; None: the peer holds them or gets
    them anyway), most urgent first."""
    groups: dict[tuple[Priority, str], list[Wants]] = {}
    for entry, wants in rounds:
        if wants:
            groups.setdefault((rank(entry)[0], through(entry) or ""), []).append(wants)
    return [(priority, site or None, Wants.merged(parts)) for (priority, site), parts in sorted(groups.items())]


def route(site: str | None, peers: Mapping[str, T], lazy: Callable[[T], bool]) -> T | None:
    """The peer a read of ``site``'s data goes over: the site itself if connected,
    else the first connected peer for which ``lazy`` holds (a dialled link allowing
    lazy reads); None if no peer can bring it."""
    if site and site in peers:
        return peers[site]
    return next((p for p in peers.values() if lazy(p)), None)


class PushWaits(Generic[T]):
    """Pushes of entries not yet held whole here, waiting for the objects they lack."""

    def __init__(self) -> None:
        self._waiting: dict[ObjectId, list[tuple[T, Entry]]] = {}
        self._blockers: dict[ObjectId, set[ObjectId]] = {}

    def waits(self, root: ObjectId) -> bool:
        """Whether pushes of the entry with ``root`` wait for objects."""
        return root in self._waiting

    def add(self, root: ObjectId, lacking: Iterable[ObjectId]) -> None:
        """Record that the entry with ``root`` lacks ``lacking`` here (none: nothing)."""
        lacking = list(lacking)
        if lacking:
            self._waiting.setdefault(root, [])
            for oid in lacking:
                self._blockers.setdefault(oid, set()).add(root)

    def hold(self, peer: T, entry: Entry) -> None:
        """Push ``entry`` to ``peer`` once it is whole here."""
        self._waiting[entry.root].append((peer, entry))

    def unblocked(self, stored: Iterable[ObjectId]) -> list[Entry]:
        """Entries some of whose lacking objects were just stored (one per root):
        check them again with :meth:`add` or :meth:`release`."""
        roots: set[ObjectId] = set()
        for oid in stored:
            roots |= self._blockers.pop(oid, set())
        return [self._waiting[r][0][1] for r in roots if self._waiting.get(r)]

    def peers_for(self, site: str, which: Callable[[Entry], bool]) -> list[T]:
        """The peers waiting for pushes of ``site``'s entries for which ``which`` holds."""
        return [peer for waiting in self._waiting.values() for peer, entry in waiting
                if entry.site == site and which(entry)]

    def entries(self) -> list[Entry]:
        """One entry per root whose pushes wait."""
        return [waiting[0][1] for waiting in self._waiting.values() if waiting]

    def release(self, root: ObjectId) -> list[tuple[T, Entry]]:
        """The pushes of a root now held whole, to send."""
        return self._waiting.pop(root, [])

