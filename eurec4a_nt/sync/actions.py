"""What a :class:`~.core.Peer` asks its session to do: the actions it returns.

A session carries out :class:`Say` itself and hands the others to the site's
exchange; each names the core method to report the outcome to, where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ids import ObjectId
from ..logstate import CheckpointRef
from ..parts import Part
from .outbox import Follow, Priority
from .wire import message


@dataclass(frozen=True)
class Say:
    """Send a control message to the peer (before any further object piece)."""

    kind: str
    body: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return message(self.kind, **self.body)


def merge_pushing(actions: list[Action]) -> list[Action]:
    """``actions`` with every ``pushing`` message folded into one, in the place of the
    first: a batch of entries is announced in one message, not one per entry."""
    roots = [r for a in actions if isinstance(a, Say) and a.kind == "pushing" for r in a.body["roots"]]
    out: list[Action] = []
    for action in actions:
        if isinstance(action, Say) and action.kind == "pushing":
            if roots:
                out.append(Say("pushing", {"roots": roots}))
                roots = []
            continue
        out.append(action)
    return out


@dataclass(frozen=True)
class Keep:
    """An object arrived whole (``payload`` encoded as ``encoding``, maybe as a delta
    against ``base``): decode, verify and store it, then report :meth:`Peer.stored`."""

    oid: ObjectId
    encoding: int
    payload: bytes
    base: ObjectId | None


@dataclass(frozen=True)
class Relay:
    """The peer wants objects not held here: fetch them from ``site`` (at most
    ``hops - 1`` links away), then queue them with :meth:`Peer.relayed`."""

    ids: list[ObjectId]
    follow: dict[ObjectId, Follow]
    spans: dict[ObjectId, tuple[int, int]]
    bases: dict[ObjectId, ObjectId]
    priority: Priority
    hops: int
    site: str | None


@dataclass(frozen=True)
class Receive:
    """Verify and keep commits the peer sent, then :meth:`Peer.received_commits`."""

    raws: list[bytes]


@dataclass(frozen=True)
class Lacking:
    """The peer does not hold ``ids`` (``pending``: it waits for them itself)."""

    ids: list[ObjectId]
    held_at: str
    pending: bool


@dataclass(frozen=True)
class Refused:
    """The peer cannot fetch ``site``'s data on this side's behalf, for ``reason``
    (None: it can again)."""

    site: str
    reason: str | None


@dataclass(frozen=True)
class Limits:
    """The peer lets bulk flow again, or holds it back (its budget is spent)."""

    bulk: bool


@dataclass(frozen=True)
class Join:
    """The peer offers its checkpoint ``ref`` of ``site``'s log: unless this site holds
    commits of that log, fetch the checkpoint's objects over this link, verify it and
    start the log there; then report how far the log got with :meth:`Peer.joined`."""

    site: str
    ref: CheckpointRef


@dataclass(frozen=True)
class Prove:
    """The peer asks for verified parts of blocks, ``(id, start, end, record)`` each:
    answer each with its leaves and their proof (see :mod:`.ranges`), or a ``lack``.
    ``record`` (else None) is the file record naming a block of the third ``site``: one
    this site does not hold is relayed from there."""

    ranges: list[tuple[ObjectId, int, int, ObjectId | None]]
    site: str | None = None


@dataclass(frozen=True)
class KeepPart:
    """A verified part of a block arrived (see :mod:`.ranges`): keep it if it was asked
    for and checks against the block's tree root."""

    part: Part


@dataclass(frozen=True)
class CatchUp:
    """The peer answered a checkpoint offer: send it the commits it lacks now
    (:meth:`Peer.behind`)."""


Action = Say | Keep | Relay | Receive | Lacking | Refused | Limits | Join | CatchUp | Prove | KeepPart
