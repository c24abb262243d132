"""The ``want`` message, written and read: which objects one side asks the other
for, what is to follow each, the delta bases and resume points it holds, at which
priority, and through which site."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ids import ObjectId
from .actions import Action, Say
from .outbox import Follow, Priority
from .partials import Resume, parse_resume
from .plan import Wants

_WANT_BATCH = 2000


def want_messages(wants: Wants, resume: Mapping[ObjectId, Resume], priority: Priority, site: str | None,
                  hops: int, leaves: bool = False) -> list[Action]:
    """``want`` messages asking for ``wants`` (in batches), resuming at ``resume``; with
    ``leaves`` (to a peer that takes them), the leaves read in parts of the spans too."""
    every = wants.shallow + wants.deep
    deep = set(wants.deep)
    out: list[Action] = []
    for i in range(0, len(every), _WANT_BATCH):
        part = every[i:i + _WANT_BATCH]
        out.append(Say("want", {
            "ids": part, "deep": [o for o in part if o in deep], "site": site, "hops": hops,
            "bases": {k: v for k, v in wants.bases.items() if k in part},
            "spans": {k: list(v) for k, v in wants.spans.items() if k in part},
            "resume": {k: list(v) for k, v in resume.items() if k in part}, "class": priority.wire,
            **({"leaves": True} if leaves and wants.spans else {})}))
    return out


@dataclass(frozen=True)
class Want:
    """A ``want`` message as read."""

    ids: list[ObjectId]
    follow: dict[ObjectId, Follow]
    spans: dict[ObjectId, tuple[int, int]]
    bases: dict[ObjectId, ObjectId]
    resume: dict[ObjectId, Resume]
    priority: Priority
    hops: int
    site: Any


def read_want(body: Mapping[str, Any], parts: bool = False) -> Want:
    """Parse a ``want`` message; with ``parts`` (from a peer that reads parts of blocks),
    a record wanted with a span is followed only by the blocks the peer does not read
    in parts, and, if the message asks for ``leaves``, by the leaves of the others
    holding the span. Raises KeyError, ValueError or TypeError (or
    :class:`~eurec4a_nt.errors.BadInput`) if it is malformed."""
    ids = [ObjectId.parse(i) for i in body.get("ids") or []]
    follow = {ObjectId.parse(i): Follow.ALL for i in body.get("deep") or []}
    spans = {ObjectId.parse(k): (int(v[0]), int(v[1])) for k, v in (body.get("spans") or {}).items()}
    leaves, site = bool(body.get("leaves")), body.get("site")
    follow.update((oid, Follow.within(span, parts, leaves, site)) for oid, span in spans.items())
    bases = {ObjectId.parse(k): ObjectId.parse(v) for k, v in (body.get("bases") or {}).items()}
    resume = parse_resume(body.get("resume") or {})
    priority = Priority.from_wire(body.get("class"))
    return Want(ids, follow, spans, bases, resume, priority, int(body.get("hops", 1)), site)
