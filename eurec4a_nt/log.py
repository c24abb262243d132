"""Site logs: signed, append-only lists of commits, and their replay into a site state.

A commit ``{site, seq, parent, time, changes}`` is signed with the site's key; its id
is the SHA-256 of its canonical JSON (signature included) and the next commit names
it as ``parent``. So the signature on the newest commit vouches for the whole chain:
checking every link of the chain plus one signature verifies the log.

A log is durable in :mod:`~eurec4a_nt.logfiles` (a file of JSON lines per site, or one
object per seq on S3), where an append is conditional on the log's end, so two writers
never fork it. Its state (heads, current entries) is kept in SQLite by
:mod:`~eurec4a_nt.logstate`; opening a log reads only what was appended since.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .entries import Entry, check_name, check_site, utc_now
from .errors import BadCommit, BadInput, Corrupt, Forked
from .ids import ObjectId
from .keyring import Keyring, SiteKey
from .logfiles import LogFiles
from .logstate import CheckpointRef, Head, LogState, SiteState

if TYPE_CHECKING:
    from .checkpoint import Checkpoint
from .schema import CommitBody, canonical, convert, decode
from .times import parse_time

__all__ = ["Change", "Commit", "SiteLog", "SiteState", "make_commit", "parse_commit", "verify_commit"]

MAX_COMMIT_BYTES = 4 << 20


@dataclass(frozen=True)
class Change:
    """Put or remove one entry."""

    op: str
    name: str
    entry: Entry | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"op": self.op, "name": self.name}
        if self.entry is not None:
            body["entry"] = self.entry.to_json()
        return body


@dataclass(frozen=True)
class Commit:
    """One signed commit of a site log."""

    site: str
    seq: int
    parent: str | None
    time: str
    changes: tuple[Change, ...]
    signature: str
    raw: bytes
    checkpoint: CheckpointRef | None = None

    @property
    def id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.site}#{self.seq}"


def make_commit(key: SiteKey, site: str, seq: int, parent: str | None,
                changes: Iterable[Change], checkpoint: CheckpointRef | None = None) -> Commit:
    """Create and sign a commit (naming ``checkpoint``, if given)."""
    body: dict[str, Any] = {
        "site": site, "seq": seq, "parent": parent, "time": utc_now(),
        "changes": [c.to_json() for c in changes],
    }
    if checkpoint is not None:
        body["checkpoint"] = checkpoint.to_json()
    return parse_commit(key.signed(body))


def parse_commit(raw: bytes) -> Commit:
    """Parse a commit's bytes; raise :class:`BadCommit` if they are not a well-formed commit
    (strict JSON of exact types, in canonical form, at most :data:`MAX_COMMIT_BYTES`).

    The signature is not checked here (see :func:`verify_commit`).
    """
    if len(raw) > MAX_COMMIT_BYTES:
        raise BadCommit(f"commit is {len(raw)} bytes; at most {MAX_COMMIT_BYTES} allowed")
    body = decode(raw, dict[str, Any], "malformed commit", error=BadCommit)
    parsed = convert(body, CommitBody, "malformed commit", error=BadCommit)
    site = parsed.site
    if (parsed.parent is None) != (parsed.seq == 1):
        raise BadCommit(f"malformed commit {site}#{parsed.seq}: only seq 1 has no parent")
    try:
        parse_time(parsed.time, "commit time")
    except BadInput as exc:
        raise BadCommit(f"malformed commit {site}#{parsed.seq}: {exc}") from None
    changes = []
    for change in parsed.changes:
        try:
            name = check_name(change.name)
        except BadInput as exc:
            raise BadCommit(f"malformed commit {site}#{parsed.seq}: {exc}") from None
        if (change.op == "put") != (change.entry is not None):
            raise BadCommit(f"malformed commit {site}#{parsed.seq}: a put carries an entry, a remove none")
        entry = None if change.entry is None else Entry.from_body(change.entry, site, BadCommit)
        if entry is not None and entry.name != name:
            raise BadCommit(f"malformed commit {site}#{parsed.seq}: entry name differs from change name")
        changes.append(Change(change.op, name, entry))
    if canonical(body) != raw:
        raise BadCommit(f"malformed commit {site}#{parsed.seq}: not in canonical form")
    checkpoint = None
    if parsed.checkpoint is not None:
        if parsed.checkpoint.seq >= parsed.seq:
            raise BadCommit(f"malformed commit {site}#{parsed.seq}: it names a checkpoint of a later seq")
        checkpoint = CheckpointRef(parsed.checkpoint.seq, ObjectId.parse(parsed.checkpoint.root),
                                   parsed.checkpoint.size)
    return Commit(site, parsed.seq, parsed.parent, parsed.time, tuple(changes), parsed.signature, raw,
                  checkpoint)


def verify_commit(commit: Commit, keyring: Keyring) -> None:
    """Raise :class:`BadCommit` unless the commit is signed by its site's key."""
    keyring.verify(json.loads(commit.raw), commit.site, commit.seq)


class SiteLog:
    """The log of one site: durable in ``files``, its state in ``state``.

    Safe for concurrent use by threads and processes (and, on object storage, by
    processes on several machines): appends are conditional on the log's end, so a
    writer that lost a race re-reads the head and never forks the log. Questions are
    answered from the state; where reading the durable log's end is cheap (a folder)
    it is read first, else when :meth:`refresh` is called (a server polls it).
    """

    #: Tries of :meth:`commit` against other writers before it gives up.
    MAX_TRIES = 1000

    def __init__(self, files: LogFiles, state: LogState, site: str) -> None:
        self.site = check_site(site)
        self.files = files
        self.db = state
        self._lock = threading.RLock()
        self._checked = False
        self.refresh()

    # -- reading -----------------------------------------------------------------------

    def refresh(self) -> Head:
        """Read commits made durable since the state was last brought up to date,
        checking the hash chain; return the head. The first call also checks that
        the durable log still ends with the head the state holds, and replays it
        from the start if not (it was cut or rewritten)."""
        with self._lock:
            head = self.db.head(self.site)
            if not self._checked:
                self._checked = True
                if head.seq == 0 or (head.seq > head.base and not self.files.ends_with(
                        self.site, head.position, head.last_at, head.head or "")):
                    head = self._restart(head)
            batch: list[tuple[Commit, int, int]] = []
            for raw, start, end in self.files.read_from(self.site, head.position):
                try:
                    commit = parse_commit(raw)
                except BadCommit as exc:
                    raise Corrupt(f"log of {self.site} is damaged at seq {head.seq + 1}: {exc}") from None
                self._check_next(commit, head)
                batch.append((commit, end, start))
                head = Head(commit.seq, commit.id, commit.time, head.entries, head.base, end, start)
                if len(batch) >= 1000:
                    self.db.apply(batch)
                    batch = []
            if batch:
                self.db.apply(batch)
            return self.db.head(self.site) if batch else head

    def _restart(self, seen: Head) -> Head:
        """Forget the state of this log, to read it again from its start (seq 1, or the
        checkpoint it began at), unless another writer moved the state since ``seen``."""
        from .checkpoint import parse_checkpoint

        raw = self.files.load_base(self.site)
        return self._reset(seen, None if raw is None else parse_checkpoint(raw, None))

    def _reset(self, seen: Head, checkpoint: Checkpoint | None) -> Head:
        """Start the state of this log empty, or at ``checkpoint``, if it still stands at
        ``seen`` (a state another writer moved since was brought up to date by it, from
        the durable log as it is now); return the state's head."""
        if checkpoint is None:
            self.db.reset(self.site, seen)
        else:
            self.db.reset(self.site, seen, checkpoint.as_head(self.files.first_position(checkpoint.seq)),
                          checkpoint.entries, checkpoint.previous)
        return self.db.head(self.site)

    def start_from(self, checkpoint: Checkpoint) -> bool:
        """Start this (empty) log at a verified checkpoint: its state, then the commits
        after it as they come. Return False if the log already holds that seq.

        Raises :class:`BadInput` for a log that holds commits before the checkpoint.
        """
        if checkpoint.site != self.site:
            raise BadInput(f"a checkpoint of {checkpoint.site} cannot start the log of {self.site}")
        with self._lock:
            head = self.refresh()
            if head.seq >= checkpoint.seq:
                return False
            if head.seq:
                raise BadInput(f"the log of {self.site} here holds commits up to seq {head.seq}: "
                               "a checkpoint starts only an empty log")
            self.files.save_base(self.site, checkpoint.raw)
            if self._reset(head, checkpoint).seq != checkpoint.seq:
                return self.start_from(checkpoint)  # another writer appended meanwhile
            return True

    def _head(self) -> Head:
        return self.refresh() if self.files.cheap_to_poll else self.db.head(self.site)

    def _check_next(self, commit: Commit, head: Head) -> None:
        expected = head.seq + 1
        if commit.site != self.site:
            raise BadCommit(f"commit {commit.label} does not belong to the log of {self.site}")
        if commit.seq != expected:
            raise BadCommit(f"commit {commit.label} is out of order: "
                            f"the log of {self.site} expects seq {expected}")
        if commit.parent != head.head:
            raise BadCommit(f"commit {commit.label} does not follow {self.site}#{expected - 1} "
                            "(its parent id differs): altered, or from a diverged log")

    @property
    def seq(self) -> int:
        return self._head().seq

    @property
    def state(self) -> SiteState:
        return self.current()

    def current(self) -> SiteState:
        """The site's state (its query API: get, list by prefix, count)."""
        return SiteState(self.db, self.site, self._head())

    def raws_after(self, seq: int, limit: int | None = None) -> list[bytes]:
        """The bytes of the commits with seq > ``seq`` (from the first held, for a log
        that starts at a checkpoint), oldest first; at most ``limit``."""
        self._head()
        return self.db.commit_raws(self.site, max(seq, 0), limit or 1 << 62)

    def commits_after(self, seq: int, limit: int | None = None) -> list[Commit]:
        """Like :meth:`raws_after`, parsed."""
        return [parse_commit(raw) for raw in self.raws_after(seq, limit)]

    def changing(self, name: str) -> list[Commit]:
        """The commits held that changed ``name``, oldest first (an indexed query: the
        cost of its own commits, not of the log)."""
        self._head()
        return [parse_commit(raw) for raw in self.db.changed(self.site, name)]

    def __iter__(self) -> Iterator[Commit]:
        """Every commit held, oldest first, read in pages."""
        seq = 0
        while page := self.commits_after(seq, 1000):
            yield from page
            seq = page[-1].seq

    # -- writing -----------------------------------------------------------------------

    def _place(self, commit: Commit, head: Head) -> bool:
        """Write ``commit`` after ``head`` if the durable log still ends there."""
        placed = self.files.create(self.site, commit.seq, commit.raw, head.position)
        if placed is None:
            return False
        self.db.apply([(commit, *placed)])
        return True

    def append(self, commit: Commit, keyring: Keyring | None) -> bool:
        """Append a verified commit; return False if the log already holds it.

        Raises :class:`BadCommit` for a commit that is forged or out of order, and
        :class:`Forked` (a BadCommit) for a validly signed commit that contradicts
        one held: the site's log forked (its key wrote two histories). The fork is
        recorded with its proof (:meth:`LogState.forks`), and the branch held stays.
        """
        if keyring is not None:
            verify_commit(commit, keyring)
        with self._lock:
            for _ in range(self.MAX_TRIES):
                head = self.refresh()
                if commit.seq <= head.seq:
                    held = self.db.commit_raw(self.site, commit.seq)
                    if held is None or hashlib.sha256(held).hexdigest() == commit.id:
                        return False  # held, or older than the checkpoint this log starts at
                    reason = f"commit {commit.label} differs from the one already held with that seq"
                    self._forked(commit, commit.seq, hashlib.sha256(held).hexdigest(), keyring, reason)
                    raise BadCommit(f"{reason}: a forged or diverged log")
                if (keyring is not None and commit.seq == head.seq + 1
                        and commit.parent != head.head and commit.site == self.site):
                    self._forked(commit, head.seq, head.head or "", keyring,
                                 f"commit {commit.label} does not follow the {self.site}#{head.seq} held here")
                self._check_next(commit, head)
                if self._place(commit, head):
                    return True
        raise BadCommit(f"could not append {commit.label}: the log kept changing")

    def _forked(self, commit: Commit, seq: int, held: str, keyring: Keyring | None, reason: str) -> None:
        """Record and raise a fork shown by a commit verified against ``keyring``."""
        if keyring is None:
            return
        self.db.record_fork(self.site, seq, held, commit, utc_now())
        raise Forked(f"FORK: {self.site} signed two different histories: {reason} "
                     f"({held[:12]} held, {commit.id[:12]} received). The branch held is kept; "
                     f"{self.site} must stop writing its log from two places")

    def commit(self, key: SiteKey, changes: list[Change], checkpoint: CheckpointRef | None = None) -> Commit:
        """Sign ``changes`` as this site's next commit and append it; against another
        writer, re-read the head and sign again on it. The commit names ``checkpoint``
        if that is of the head it follows."""
        if not changes:
            raise BadInput("nothing to commit")
        with self._lock:
            for attempt in range(self.MAX_TRIES):
                head = self.refresh()
                named = checkpoint if checkpoint is not None and checkpoint.seq == head.seq else None
                commit = make_commit(key, self.site, head.seq + 1, head.head, changes, named)
                if self._place(commit, head):
                    return commit
                time.sleep(random.uniform(0, min(0.001 * attempt, 0.05)))
        raise BadCommit(f"could not commit to {self.site}: {self.MAX_TRIES} other commits got there first")

    def verify(self, keyring: Keyring) -> list[str]:
        """Check the durable log (not its state): every link of the chain, every
        signature, and the checkpoint it starts at if any; return problems as
        ``site#seq: reason`` (a broken chain ends the check: what follows it cannot be
        judged)."""
        from .checkpoint import parse_checkpoint

        problems = []
        head = Head()
        raw = self.files.load_base(self.site)
        if raw is not None:
            try:
                checkpoint = parse_checkpoint(raw, keyring)
            except BadCommit as exc:
                return [f"checkpoint the log of {self.site} starts at: {exc}"]
            head = Head(checkpoint.seq, checkpoint.head)
        for raw, _, _ in self.files.read_from(self.site, self.files.first_position(head.seq)):
            try:
                commit = parse_commit(raw)
                self._check_next(commit, head)
            except BadCommit as exc:
                problems.append(str(exc))
                break
            try:
                verify_commit(commit, keyring)
            except BadCommit as exc:
                problems.append(str(exc))
            head = Head(commit.seq, commit.id)
        return problems
