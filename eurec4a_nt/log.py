"""Site logs: signed, append-only lists of commits, and their replay into a site state.

A commit ``{site, seq, parent, time, changes}`` is signed with the site's key; its id
is the SHA-256 of its canonical JSON (signature included) and the next commit names
it as ``parent``. So the signature on the newest commit vouches for the whole chain:
checking every link of the chain plus one signature verifies the log.

A log is stored as one file of canonical JSON lines per site. Appends take a file
lock, are fsynced, and a line torn by a crash (no trailing newline) is cut off when
the log is next opened: it was never acknowledged to anyone.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .entries import Entry, check_name, check_site, utc_now
from .errors import BadCommit, BadInput, Corrupt
from .keyring import Keyring, SiteKey
from .schema import CommitBody, convert, decode

MAX_COMMIT_BYTES = 4 << 20


def canonical(body: Any) -> bytes:
    """The canonical JSON bytes of ``body`` (sorted keys, no spaces, UTF-8)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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

    @property
    def id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.site}#{self.seq}"

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers: the commit without its signature."""
        body = json.loads(self.raw)
        body.pop("signature", None)
        return canonical(body)


def make_commit(key: SiteKey, site: str, seq: int, parent: str | None,
                changes: Iterable[Change]) -> Commit:
    """Create and sign a commit."""
    body = {
        "site": site, "seq": seq, "parent": parent, "time": utc_now(),
        "changes": [c.to_json() for c in changes],
    }
    body["signature"] = key.sign(canonical(body))
    return parse_commit(canonical(body))


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
    return Commit(site, parsed.seq, parsed.parent, parsed.time, tuple(changes), parsed.signature, raw)


def verify_commit(commit: Commit, keyring: Keyring) -> None:
    """Raise :class:`BadCommit` unless the commit is signed by its site's key."""
    keyring.verify(commit.site, commit.signed_bytes(), commit.signature, commit.seq)


class SiteState:
    """A site's entries after replaying its log up to ``seq``."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.seq = 0
        self.head: str | None = None
        self.time = ""
        self.entries: dict[str, Entry] = {}
        #: The version each current entry replaced, where it replaced one.
        self.previous: dict[str, Entry] = {}

    def apply(self, commits: Iterable[Commit], in_place: bool = False) -> None:
        """Apply commits in order.

        Unless ``in_place`` (replaying a log nobody reads yet), ``entries`` and
        ``previous`` are replaced, never changed: a reader iterating them (in another
        thread, or across an ``await``) keeps a consistent version.
        """
        entries = self.entries if in_place else dict(self.entries)
        previous = self.previous if in_place else dict(self.previous)
        last = None
        for commit in commits:
            for change in commit.changes:
                old = entries.pop(change.name, None)
                previous.pop(change.name, None)
                if change.op == "put" and change.entry is not None:
                    entries[change.name] = change.entry
                    if old is not None and old.root != change.entry.root:
                        previous[change.name] = old
            last = commit
        self.entries, self.previous = entries, previous
        if last is not None:
            self.seq, self.head, self.time = last.seq, last.id, last.time


class SiteLog:
    """The log of one site, stored as ``<dir>/<site>.jsonl``.

    Safe for concurrent use by threads and processes; a process sees appends made by
    others when it next reads.
    """

    def __init__(self, directory: Path, site: str) -> None:
        self.site = check_site(site)
        self.path = directory / f"{site}.jsonl"
        self._lock = threading.RLock()
        self._commits: list[Commit] = []
        self._offset = 0
        self.state = SiteState(site)
        self._refresh()

    # -- reading -----------------------------------------------------------------------

    def _refresh(self) -> None:
        """Read commits appended since the last read, checking the hash chain."""
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                return
            if size == self._offset:
                return
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            held = len(self._commits)
            try:
                loaded = [self._load(line) for line in data[:end].splitlines()]
            except Corrupt:
                del self._commits[held:]  # read again (and fail again) next time
                raise
            self.state.apply(loaded, in_place=held == 0)
            self._offset += end

    def _load(self, line: bytes) -> Commit:
        seq = len(self._commits) + 1
        try:
            commit = parse_commit(line)
        except BadCommit as exc:
            raise Corrupt(f"log of {self.site} is damaged at seq {seq}: {exc}") from None
        self._check_next(commit)
        self._commits.append(commit)
        return commit

    def _check_next(self, commit: Commit) -> None:
        expected = len(self._commits) + 1
        if commit.site != self.site:
            raise BadCommit(f"commit {commit.label} does not belong to the log of {self.site}")
        if commit.seq != expected:
            raise BadCommit(f"commit {commit.label} is out of order: "
                            f"the log of {self.site} expects seq {expected}")
        if commit.parent != (self._commits[-1].id if self._commits else None):
            raise BadCommit(f"commit {commit.label} does not follow {self.site}#{expected - 1} "
                            "(its parent id differs): altered, or from a diverged log")

    @property
    def seq(self) -> int:
        self._refresh()
        return self.state.seq

    def commits_after(self, seq: int, limit: int | None = None) -> list[Commit]:
        """Commits with seq > ``seq``, oldest first."""
        self._refresh()
        with self._lock:
            out = self._commits[max(seq, 0):]
        return out[:limit] if limit else out

    def __iter__(self) -> Iterator[Commit]:
        return iter(self.commits_after(0))

    def current(self) -> SiteState:
        self._refresh()
        return self.state

    # -- writing -----------------------------------------------------------------------

    def append(self, commit: Commit, keyring: Keyring | None) -> bool:
        """Append a verified commit; return False if the log already holds it.

        Raises :class:`BadCommit` for a commit that is forged, out of order or that
        contradicts a commit already held.
        """
        if keyring is not None:
            verify_commit(commit, keyring)
        with self._lock:
            if not self.path.exists():  # refuse before creating the log of a new site
                self._check_next(commit)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                self._repair_torn_tail(f)
                self._refresh()
                if commit.seq <= len(self._commits):
                    held = self._commits[commit.seq - 1]
                    if held.id == commit.id:
                        return False
                    raise BadCommit(f"commit {commit.label} differs from the one already held "
                                    "with that seq: a forged or diverged log")
                self._check_next(commit)
                f.write(commit.raw + b"\n")
                f.flush()
                os.fsync(f.fileno())
                self._commits.append(commit)
                self.state.apply([commit])
                self._offset += len(commit.raw) + 1
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return True

    def _repair_torn_tail(self, f: Any) -> None:
        """Cut off a last line left without its newline by a crash."""
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return
        with open(self.path, "rb") as r:
            r.seek(max(size - MAX_COMMIT_BYTES, 0))
            tail = r.read()
        if not tail.endswith(b"\n"):
            keep = size - len(tail) + tail.rfind(b"\n") + 1
            os.truncate(self.path, keep)

    def commit(self, key: SiteKey, changes: list[Change]) -> Commit:
        """Sign ``changes`` as this site's next commit and append it."""
        if not changes:
            raise BadInput("nothing to commit")
        while True:
            with self._lock:
                state = self.current()
                seq, head = state.seq, state.head  # the state object changes under us
            commit = make_commit(key, self.site, seq + 1, head, changes)
            try:
                self.append(commit, None)
                return commit
            except BadCommit:
                if self.seq == seq:  # not a race with another writer
                    raise

    def verify(self, keyring: Keyring) -> list[str]:
        """Check every commit's signature; return problems as ``site#seq: reason``."""
        problems = []
        for commit in self:
            try:
                verify_commit(commit, keyring)
            except BadCommit as exc:
                problems.append(str(exc))
        return problems
