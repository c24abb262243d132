"""Signed checkpoints: a site's state at one seq, so no one replays a whole log.

Every :data:`CHECKPOINT_EVERY` commits a site writes its state (every current entry
and the version each replaced) at its head as a checkpoint signed with its key, stores
it as objects (a file record of blocks, like any file) and names it in its next commit
(``checkpoint: {seq, root, size}``). A joining site fetches the newest checkpoint,
checks its signature against the campaign keyring, starts its copy of the log there
and fetches only the commits after it: over HTTP (:mod:`eurec4a_nt.join`), or over a
link, where the peer offers its checkpoint of a log this side holds nothing of
(:mod:`eurec4a_nt.sync.core`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from .chunking import record_bytes
from .entries import Entry
from .errors import BadCommit
from .ids import Item
from .keyring import Keyring, SiteKey
from .logstate import CheckpointRef, Head, LogState
from .manifests import Ref, RefReader
from .schema import MAX_CHECKPOINT, CheckpointBody, canonical, decode
from .stores.base import ObjectStore

if TYPE_CHECKING:
    from .sitestore import SiteStore

#: Commits between two checkpoints of a site's log.
CHECKPOINT_EVERY = 1000


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: the state of ``site`` at ``seq`` (commit ``head``)."""

    site: str
    seq: int
    head: str
    time: str
    entries: list[Entry]
    previous: list[Entry]
    raw: bytes

    def as_head(self, position: int) -> Head:
        """The head of a log that starts at this checkpoint, read up to ``position``."""
        return Head(self.seq, self.head, self.time, len(self.entries), self.seq, position)


def make_checkpoint(key: SiteKey, site: str, head: Head, entries: list[Entry],
                    previous: list[Entry]) -> bytes:
    """The signed checkpoint of ``site`` at ``head`` (canonical JSON)."""
    body = {"type": "checkpoint", "site": site, "seq": head.seq, "head": head.head,
            "time": head.time, "entries": [e.to_json() for e in entries],
            "previous": [e.to_json() for e in previous]}
    return key.signed(body)


def checkpoint_due(key: SiteKey, state: LogState, site: str, sink: ObjectStore) -> CheckpointRef | None:
    """If :data:`CHECKPOINT_EVERY` commits of ``site`` were made since its last
    checkpoint, make one of its state now, store it in ``sink`` and return what the
    next commit names (None otherwise)."""
    last = state.checkpoint(site)
    if state.head(site).seq - (last.seq if last else 0) < CHECKPOINT_EVERY:
        return None
    head, entries, previous = state.snapshot(site)
    return store_checkpoint(make_checkpoint(key, site, head, entries, previous), head.seq, sink)


def parse_checkpoint(raw: bytes, keyring: Keyring | None) -> Checkpoint:
    """Parse a checkpoint and verify its signature against ``keyring`` (None: bytes this
    store verified before it kept them); raise :class:`BadCommit` if it is malformed or
    not signed by its site's key."""
    body = decode(raw, CheckpointBody, "malformed checkpoint", error=BadCommit, max_bytes=MAX_CHECKPOINT)
    plain = msgspec.to_builtins(body)
    if canonical(plain) != raw:
        raise BadCommit(f"malformed checkpoint of {body.site} at seq {body.seq}: not in canonical form")
    if keyring is not None:
        keyring.verify(plain, body.site, body.seq)
    return Checkpoint(body.site, body.seq, body.head, body.time,
                      [Entry.from_body(e, body.site, BadCommit) for e in body.entries],
                      [Entry.from_body(e, body.site, BadCommit) for e in body.previous], raw)


def store_checkpoint(raw: bytes, seq: int, sink: ObjectStore) -> CheckpointRef:
    """Store a checkpoint as a file record of blocks; return what a commit names."""
    objects: list[Item] = []
    record = record_bytes(raw, objects.extend)
    sink.put_many(objects)
    root = sink.put(record.to_bytes())
    return CheckpointRef(seq, root, len(raw))


def read_checkpoint(ref: CheckpointRef, store: ObjectStore) -> bytes:
    """The bytes of a checkpoint from any store holding its objects (each verified by
    its id on the way in)."""
    return RefReader(Ref(ref.root, ref.size, record=True), store).read(0, ref.size)


def start_at(store: SiteStore, ref: CheckpointRef, source: ObjectStore) -> bool:
    """Start the log of another site in ``store`` at the checkpoint ``ref``, its bytes
    read from ``source`` (every object verified by its id), once its signature verifies
    against ``store``'s keyring. Return False if ``store`` holds that seq already.

    Raises :class:`BadCommit` for a checkpoint that does not verify (nothing of it is
    kept), :class:`~eurec4a_nt.errors.BadInput` if ``store`` holds commits of that log
    already, and what ``source`` raises for objects it cannot give.
    """
    return store.start_from(read_checkpoint(ref, source))
